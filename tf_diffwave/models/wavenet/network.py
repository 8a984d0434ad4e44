"""The WaveNet backbone of DiffWave (Kong et al. 2021, section 3 and figure 2) as Keras functional models.

The network is split in two so that samplers can compute the mel conditioner once per utterance:
  conditioner: mel (B, frames, n_mels) -> conditioner projections (2 * layers, B, 1, frames * hop, C), gate and
               filter halves of each residual layer in turn
  denoiser:    audio (B, L), step (B,), [conditioner] -> predicted noise (B, L)
`Backbone.model` chains both for training. The backbone knows nothing about noise schedules.

Activations at audio rate dominate the cost, so the layers avoid copies of them: every tensor that the paper
splits in two (gate and filter, residual and skip, the conditioner's per-layer parts) is produced as separate
tensors by convolutions over slices of one kernel, never cut out of a larger tensor (TF's Split copies). The
residual layers keep Conv2D's layout (B, 1, L, C) from the first to the last: no reshape between them.
"""

import math

import keras
from keras import layers, ops

from tf_diffwave.models.contract import Backbone
from tf_diffwave.models.layers import (
    ConditionedGate,
    Conv1DOnRows,
    LayerwiseProjection,
    SplitConv1D,
    StepEmbedding,
    upsample_mel,
)
from tf_diffwave.models.strides import upsample_strides


class WaveNetBackbone(Backbone):
    """The conditioner, denoiser and training models of one WaveNet, sharing their layers."""

    def __init__(self, model_config, audio_config, policy="float32"):
        m = model_config
        self.policy = policy
        self.channels = m["residual_channels"]
        self.num_layers = m["residual_layers"]
        self.dilations = [2 ** (i % m["dilation_cycle"]) for i in range(self.num_layers)]
        self.unconditional = m["unconditional"]
        self.skip_channels = m["skip_channels"] or self.channels
        self.step_embedding, self.step_frequencies = m["step_embedding"], m["step_frequencies"]
        self.step_in_residual = m["step_in_residual"]
        self.per_layer_upsampler = m["mel_upsampler"] == "per_layer"
        self.hop_length = audio_config["hop_length"]
        self.n_mels = audio_config["n_mels"]
        self._layers = {}  # the denoiser's, by name, shared with the chunk denoiser
        self.conditioner = upsampler = None
        if not self.unconditional:
            self.conditioner, upsampler = self._build_conditioners()
        self.denoiser = self._build_denoiser((m["embed_dim"], m["embed_out_dim"] or m["embed_dim"]))
        self.model = self._build_training_model()
        if self.unconditional:
            self._chunk_networks = (None, None)
        elif self.per_layer_upsampler:
            self._chunk_networks = (self.conditioner, self.denoiser)
        else:
            self._chunk_networks = (upsampler, self._build_chunk_denoiser())

    def chunk_networks(self):
        """The upsampler alone as the conditioner, and a denoiser (the same weights) that projects the upsampled
        mel inside each residual layer: n_mels values per sample held between the two, not 2 x layers x
        channels. (With an upsampler per layer, the conditioner and denoiser themselves.)"""
        return self._chunk_networks

    @property
    def context_frames(self):
        """Mel frames on each side that influence an output sample (receptive field of one network pass)."""
        one_side = sum(self.dilations)  # kernel 3: each layer reaches `dilation` samples to each side
        return math.ceil(one_side / self.hop_length) + 3  # + the transposed convolutions' reach

    @property
    def lookahead_frames(self):
        """The right-hand reach of a frame's last sample: `sum(dilations)` samples of noisy audio, and through the
        upsampler's 'same' transposed convolutions (kernel 2s, stride s), each of which reads input
        floor((j + s/2) / s) at most for output j, its mel frame."""
        first, second = upsample_strides(self.hop_length)
        last = self.hop_length - 1 + sum(self.dilations)  # from the frame's first sample
        return ((last + second // 2) // second + first // 2) // first, last // self.hop_length

    def _build_conditioners(self):
        """The conditioner, and its upsampler alone (the chunk conditioner; None with an upsampler per layer)."""
        mel = keras.Input((None, self.n_mels), name="mel")
        if self.per_layer_upsampler:  # layer i: its own upsampled mel, its own 1x1 projection (rows 2i, 2i + 1)
            cond = ops.concatenate([
                LayerwiseProjection(1, self.channels, name=f"conditioner_projection_{i}", dtype=self.policy)(
                    upsample_mel(mel, self.hop_length, self.policy, prefix=f"layer_{i}_"))
                for i in range(self.num_layers)], axis=0)
            return keras.Model(mel, cond, name="conditioner"), None
        x = upsample_mel(mel, self.hop_length, self.policy)
        cond = LayerwiseProjection(self.num_layers, self.channels, name="conditioner_projection",
                                   dtype=self.policy)(x)
        return keras.Model(mel, cond, name="conditioner"), keras.Model(mel, x, name="chunk_conditioner")

    def _build_denoiser(self, embed_dims):
        """The denoiser taking the conditioner's output: every layer's projection of the upsampled mel."""
        audio, step = keras.Input((None,), name="audio"), keras.Input((), name="step")
        if self.unconditional:
            return keras.Model([audio, step], self._denoise(audio, step, None, embed_dims), name="denoiser")
        cond = keras.Input(batch_shape=(2 * self.num_layers, None, 1, None, self.channels), name="cond",
                           dtype=keras.DTypePolicy(self.policy).compute_dtype)
        parts = ops.unstack(cond, 2 * self.num_layers, axis=0)
        eps = self._denoise(audio, step, lambda i, gate, filt: (gate + parts[2 * i], filt + parts[2 * i + 1]),
                            embed_dims)
        return keras.Model([audio, step, cond], eps, name="denoiser")

    def _build_chunk_denoiser(self):
        """The denoiser, its weights shared, taking the upsampled mel and projecting it in each residual layer."""
        audio, step = keras.Input((None,), name="audio"), keras.Input((), name="step")
        upsampled = keras.Input((None, self.n_mels), name="upsampled_mel",
                                dtype=keras.DTypePolicy(self.policy).compute_dtype)
        projection = self.conditioner.get_layer("conditioner_projection")
        eps = self._denoise(audio, step, lambda i, gate, filt: ConditionedGate(projection, i, dtype=self.policy)(
            upsampled, gate, filt), None)
        return keras.Model([audio, step, upsampled], eps, name="chunk_denoiser")

    def _denoise(self, audio, step, condition, embed_dims):
        """The denoiser's graph; condition(i, gate, filter) gives layer i's conditioned gate and filter (None:
        unconditional). Its layers are made on the first call and reused by the next (embed_dims, the widths of
        the step MLP's two layers, are read then)."""
        def layer(name, make):
            if name not in self._layers:
                self._layers[name] = make(name=name, dtype=self.policy)
            return self._layers[name]

        c = self.channels
        emb = layer("step_embedding", lambda **kw: StepEmbedding(128, self.step_embedding, self.step_frequencies,
                                                                 **kw))(step)
        emb = layer("step_mlp_1", lambda **kw: layers.Dense(embed_dims[0], activation="swish", **kw))(emb)
        emb = layer("step_mlp_2", lambda **kw: layers.Dense(embed_dims[1], activation="swish", **kw))(emb)
        # (B, 1, L, C) from the first convolution to the last. The graph has as many operations at each depth as
        # it had in (B, L, C): checkpoints find a layer by its position in that order
        x = layer("input_projection", lambda **kw: Conv1DOnRows(c, 1, activation="relu", **kw))(
            ops.expand_dims(audio, (1, -1)))
        skip_sum = None
        for i, dilation in enumerate(self.dilations):
            step_bias = layer(f"step_projection_{i}", lambda **kw: layers.Dense(c, **kw))(emb)
            stepped = x + ops.reshape(step_bias, (-1, 1, 1, c))
            # the gate in float32 under any policy: TensorFlow's CPU sigmoid and tanh of bfloat16 take twice as long
            gate, filt = layer(f"dilated_conv_{i}", lambda **kw: SplitConv1D(c, 2, 3, dilation, "float32",
                                                                                **kw))(stepped)
            if condition is not None:
                gate, filt = condition(i, gate, filt)
            y = ops.sigmoid(gate) * ops.tanh(filt)
            residual, skip = layer(f"output_projection_{i}", lambda **kw: SplitConv1D([c, self.skip_channels],
                                                                                     **kw))(y)
            x = ((stepped if self.step_in_residual else x) + residual) / math.sqrt(2.0)
            skip_sum = skip if skip_sum is None else skip_sum + skip
        x = skip_sum / math.sqrt(self.num_layers)
        x = layer("skip_projection", lambda **kw: Conv1DOnRows(self.skip_channels, 1, activation="relu", **kw))(x)
        x = layer("output", lambda **kw: Conv1DOnRows(1, 1, kernel_initializer="zeros",
                                                      **{**kw, "dtype": "float32"}))(x)
        return ops.squeeze(x, (1, -1))

    def _build_training_model(self):
        audio = keras.Input((None,), name="audio")
        step = keras.Input((), name="step")
        if self.unconditional:
            return keras.Model([audio, step], self.denoiser([audio, step]), name="diffwave")
        mel = keras.Input((None, self.n_mels), name="mel")
        eps = self.denoiser([audio, step, self.conditioner(mel)])
        return keras.Model([audio, step, mel], eps, name="diffwave")
