"""The FreGrad network (Nguyen et al. 2024, section 2 and figure 1) as Keras functional models.

The diffusion runs on the signal of the two half-rate Haar bands of the audio, interleaved sample by sample
(signal[2n] = low[n], signal[2n + 1] = high[n]): a frame keeps its hop of samples, so the diffusion core, chunked
vocoding and streaming need no change. The network reads the signal as (B, 1, L / 2, 2), the bands as channels in
Conv2D's layout (kept from the first convolution to the last, as in the WaveNet family), and predicts the noise of
both:
  conditioner: mel (B, frames, n_mels) -> every residual layer's projection of the upsampled mel (2 x layers, B,
               1, L / 2, C), gate and filter parts in turn, computed once per utterance
  denoiser:    signal (B, L), step (B,), conditioner -> predicted noise (B, L)
A residual layer is DiffWave's with its dilated convolution made frequency-aware (layers.FrequencyAwareConv:
DWT, a convolution over the stacked bands at a quarter of the audio rate, inverse DWT, folded into its weights).
"""

import math

import keras
import tensorflow as tf
from keras import layers, ops

from tf_diffwave.data.filters import biquad, filtered
from tf_diffwave.models.contract import Backbone
from tf_diffwave.models.layers import (
    ConditionedGate,
    Conv1DOnRows,
    FrequencyAwareConv,
    LayerwiseProjection,
    SplitConv1D,
    StepEmbedding,
    haar_bands,
    haar_inverse,
    upsample_mel,
)
from tf_diffwave.models.strides import upsample_strides


class FreGradBackbone(Backbone):
    """The conditioner, denoiser and training models of one FreGrad vocoder, sharing their layers."""

    signal_bands = 2

    def __init__(self, model_config, audio_config, policy="float32"):
        m = model_config
        self.policy, self.unconditional = policy, False
        self.channels, self.num_layers = m["residual_channels"], m["residual_layers"]
        self.dilations = [2 ** (i % m["dilation_cycle"]) for i in range(self.num_layers)]
        self.hop_length, self.n_mels = audio_config["hop_length"], audio_config["n_mels"]
        self.sample_rate = audio_config["sample_rate"]
        self.output_filter = m["output_filter"]
        self.local_decoding = not self.output_filter
        # FreGrad's upsampler: the larger stride first (16 then 8 for its hop of 256: 128 band samples per frame)
        self.strides = tuple(sorted(upsample_strides(self.hop_length // 2), reverse=True))
        self._layers = {}
        mel = keras.Input((None, self.n_mels), name="mel")
        self.upsampler = keras.Model(mel, upsample_mel(mel, self.hop_length // 2, policy, self.strides),
                                     name="upsampler")
        projection = LayerwiseProjection(self.num_layers, self.channels, name="conditioner_projection", dtype=policy)
        self.conditioner = keras.Model(mel, projection(self.upsampler(mel)), name="conditioner")
        self.denoiser = self._build_denoiser(m, None, "denoiser")
        # for long inputs, chunk by chunk: the upsampled mel alone held, each layer projecting its own part
        self._chunk_denoiser = self._build_denoiser(m, projection, "chunk_denoiser")
        signal, step = keras.Input((None,), name="signal"), keras.Input((), name="step")
        self.model = keras.Model([signal, step, mel], self.denoiser([signal, step, self.conditioner(mel)]),
                                 name="fregrad")

    def chunk_networks(self):
        return self.upsampler, self._chunk_denoiser

    def _build_denoiser(self, m, projection, name):
        """A denoiser taking the conditioner's rows as its third input, or (given the conditioner's `projection`)
        the upsampled mel, which each layer projects itself; the layers are made on the first build and shared by
        the next."""
        def layer(key, make):
            if key not in self._layers:
                self._layers[key] = make(name=key, dtype=self.policy)
            return self._layers[key]

        c = self.channels
        signal, step = keras.Input((None,), name="signal"), keras.Input((), name="step")
        dtype = keras.DTypePolicy(self.policy).compute_dtype
        if projection is None:
            cond = keras.Input(batch_shape=(2 * self.num_layers, None, 1, None, c), name="cond", dtype=dtype)
            parts = ops.unstack(cond, 2 * self.num_layers, axis=0)
        else:
            cond = keras.Input((None, self.n_mels), name="upsampled_mel", dtype=dtype)
        emb = layer("step_embedding", lambda **kw: StepEmbedding(128, m["step_embedding"], **kw))(step)
        emb = layer("step_mlp_1", lambda **kw: layers.Dense(m["embed_dim"], activation="swish", **kw))(emb)
        emb = layer("step_mlp_2", lambda **kw: layers.Dense(m["embed_dim"], activation="swish", **kw))(emb)
        bands = layers.Reshape((1, -1, 2), dtype=self.policy)(signal)  # (B, 1, L / 2, [low, high])
        x = layer("input_projection", lambda **kw: Conv1DOnRows(c, 1, activation="relu", **kw))(bands)
        skip_sum = None
        for i, dilation in enumerate(self.dilations):
            step_bias = layer(f"step_projection_{i}", lambda **kw: layers.Dense(c, **kw))(emb)
            y = x + ops.reshape(step_bias, (-1, 1, 1, c))
            gate, filt = layer(f"dilated_conv_{i}", lambda **kw: FrequencyAwareConv([c, c], dilation, **kw))(y)
            if projection is None:
                gate, filt = gate + parts[2 * i], filt + parts[2 * i + 1]
            else:
                gate, filt = ConditionedGate(projection, i, dtype=self.policy)(cond, gate, filt)
            y = ops.sigmoid(gate) * ops.tanh(filt)
            residual, skip = layer(f"output_projection_{i}", lambda **kw: SplitConv1D([c, c], **kw))(y)
            x = (x + residual) / math.sqrt(2.0)
            skip_sum = skip if skip_sum is None else skip_sum + skip
        x = skip_sum / math.sqrt(self.num_layers)
        x = layer("skip_projection", lambda **kw: Conv1DOnRows(c, 1, activation="relu", **kw))(x)
        x = layer("output", lambda **kw: Conv1DOnRows(2, 1, kernel_initializer="zeros",
                                                      **{**kw, "dtype": "float32"}))(x)
        return keras.Model([signal, step, cond], layers.Reshape((-1,), dtype="float32")(x), name=name)

    @property
    def context_frames(self):
        """Mel frames on each side that influence an output sample: each Freq-DConv reaches `dilation` samples of
        the quarter rate (4 audio samples each) to either side, a Haar pair its 4-sample group; + the upsampler."""
        reach = 4 * sum(self.dilations) + 4
        return math.ceil(reach / self.hop_length) + 2

    def audio_to_signal(self, audio):
        """The two Haar bands of audio (B, L), interleaved: (B, L)."""
        low, high = haar_bands(tf.expand_dims(tf.cast(audio, tf.float32), -1))
        return tf.reshape(tf.concat([low, high], axis=-1), tf.shape(audio))

    def signal_to_audio(self, signal):
        """The audio of interleaved bands (B, L): their inverse DWT, unclamped (FreGrad's released audio), after
        FreGrad's remove_cutoff_alias with `output_filter`: per band a 5 Hz highpass and a lowpass at 5500 Hz of the
        band rate 11025 (sample rate / 4 - 12.5 Hz), each clamped to [-1, 1]."""
        bands = tf.reshape(signal, [tf.shape(signal)[0], -1, 2])
        if self.output_filter:
            rate = self.sample_rate // 2
            highpass, lowpass = biquad("highpass", rate, 5.0), biquad("lowpass", rate, rate / 2 - 12.5)
            bands = tf.stack([filtered(filtered(bands[..., k], *highpass, portable=False), *lowpass, portable=False)
                              for k in range(2)], axis=-1)
        return tf.reshape(haar_inverse(bands[..., :1], bands[..., 1:]), tf.shape(signal))
