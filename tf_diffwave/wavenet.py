"""The WaveNet backbone of DiffWave (Kong et al. 2021, section 3 and figure 2) as Keras functional models.

The network is split in two so that samplers can compute the mel conditioner once per utterance:
  conditioner: mel (B, frames, n_mels) -> conditioner projections (2 * layers, B, frames * hop, C), gate and filter
               halves of each residual layer in turn
  denoiser:    audio (B, L), step (B,), [conditioner] -> predicted noise (B, L)
`Backbone.model` chains both for training. The backbone knows nothing about noise schedules.

Activations at audio rate dominate the cost, so the layers avoid copies of them: every tensor that the paper
splits in two (gate and filter, residual and skip, the conditioner's per-layer parts) is produced as separate
tensors by convolutions over slices of one kernel, never cut out of a larger tensor (TF's Split copies).
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from tf_diffwave.family import Backbone
from tf_diffwave.errors import UserError

MAX_UPSAMPLE_STRIDE = 32


def upsample_strides(hop_length):
    """Two transposed-convolution strides whose product is the hop, as equal as possible."""
    pairs = [(a, hop_length // a) for a in range(2, int(math.isqrt(hop_length)) + 1)
             if hop_length % a == 0 and hop_length // a <= MAX_UPSAMPLE_STRIDE]
    if not pairs:
        raise UserError(
            f"config key 'audio.hop_length' = {hop_length} cannot be upsampled: it must be a product of two "
            f"strides between 2 and {MAX_UPSAMPLE_STRIDE} (for example 256 = 16 x 16, 300 = 15 x 20)")
    return pairs[-1]


def upsample_mel(mel, hop_length):
    """DiffWave's mel upsampler: transposed convolutions over time (strides multiplying to the hop) with leaky
    ReLUs, (B, frames, n_mels) -> (B, frames * hop, n_mels)."""
    x = ops.expand_dims(mel, -1)
    for n, stride in enumerate(upsample_strides(hop_length), 1):
        x = layers.Conv2DTranspose(1, (2 * stride, 3), strides=(stride, 1), padding="same",
                                   name=f"mel_upsampler_{n}")(x)
        x = layers.LeakyReLU(0.4)(x)
    return ops.squeeze(x, -1)


@keras.saving.register_keras_serializable(package="tf_diffwave")
class StepEmbedding(layers.Layer):
    """Sinusoidal embedding of the diffusion step (DiffWave eq. 9 in appendix C), linearly interpolated
    between integer steps so that the fractional steps of a fast schedule are handled (appendix B).

    precision "float64" computes the table exactly; "float32" reproduces lmnt-com/diffwave's float32 table and
    interpolation, rounding for rounding (the angles reach 1e4 x step, where float32 moves the phase by up to 0.05
    rad, so a network trained on that table expects it).
    """

    def __init__(self, dim=128, precision="float64", **kwargs):
        super().__init__(**kwargs)
        self.dim, self.precision = dim, precision
        half = dim // 2
        # lmnt: 10.0 ** (dims * 4.0 / 63.0), the exponent divided in float32, the power rounded once to float32
        exponents = np.arange(half, dtype=np.float32) * np.float32(4.0) / np.float32(half - 1)
        self.float32_freqs = (10.0 ** exponents.astype(np.float64)).astype(np.float32)

    def _table(self, steps, freqs):
        angles = ops.expand_dims(steps, -1) * freqs
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def call(self, step):
        if self.precision == "float32":
            step, freqs = tf.cast(step, tf.float32), tf.constant(self.float32_freqs)
            floor = tf.floor(step)
            low, high = self._table(floor, freqs), self._table(tf.math.ceil(step), freqs)
            return low + (high - low) * tf.expand_dims(step - floor, -1)
        # float64: the angles reach 1e4 x step, where float32 loses the phase
        half = self.dim // 2
        freqs = ops.power(10.0, ops.arange(half, dtype="float64") * 4.0 / (half - 1))
        step = ops.cast(step, "float64")
        low = ops.floor(step)
        frac = ops.expand_dims(step - low, -1)
        return ops.cast(self._table(low, freqs) * (1.0 - frac) + self._table(low + 1.0, freqs) * frac, "float32")

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "precision": self.precision}


@keras.saving.register_keras_serializable(package="tf_diffwave")
class SplitConv1D(layers.Layer):
    """A 'same'-padded 1-D convolution with `parts * filters` outputs, returned as `parts` tensors of `filters`.

    The weights are those of one Conv1D (kernel (kernel_size, in, parts * filters), bias); each part is computed by
    its own convolution over its slice of the kernel. Dilation is given to Conv2D directly: tf.nn.convolution would
    rearrange the whole input with SpaceToBatchND / BatchToSpaceND around every dilated convolution on a CPU.
    """

    def __init__(self, filters, parts=2, kernel_size=1, dilation=1, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.filters, self.parts, self.kernel_size, self.dilation = filters, parts, kernel_size, dilation
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        width = self.parts * self.filters
        self.kernel = self.add_weight(name="kernel", shape=(self.kernel_size, input_shape[-1], width),
                                      initializer=self.kernel_initializer)
        self.bias = self.add_weight(name="bias", shape=(width,), initializer="zeros")

    def call(self, x):
        x = tf.expand_dims(x, 1)
        kernel = tf.expand_dims(tf.cast(self.kernel, x.dtype), 0)
        bias = tf.cast(self.bias, x.dtype)
        outputs = []
        for p in range(self.parts):
            part = slice(p * self.filters, (p + 1) * self.filters)
            y = tf.nn.conv2d(x, kernel[..., part], strides=1, padding="SAME", dilations=[1, 1, self.dilation, 1])
            outputs.append(tf.squeeze(tf.nn.bias_add(y, bias[part]), 1))
        return outputs

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "parts": self.parts,
                "kernel_size": self.kernel_size, "dilation": self.dilation,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@keras.saving.register_keras_serializable(package="tf_diffwave")
class LayerwiseProjection(layers.Layer):
    """The 1x1 conditioner projections of all residual layers at once: (B, L, n_mels) -> (2 * layers, B, L, C).

    Row 2i holds layer i's gate part, row 2i + 1 its filter part. Written layers-first by one broadcast batched
    matmul, so each row is a contiguous tensor that the denoiser unstacks without copying (a Conv1D to
    layers * 2C channels would need a transpose of the whole output to get there).
    """

    def __init__(self, num_layers, channels, **kwargs):
        super().__init__(**kwargs)
        self.num_layers, self.channels = num_layers, channels

    def build(self, input_shape):
        width = self.num_layers * 2 * self.channels
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], width), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(width,), initializer="zeros")

    def call(self, mel):
        rows, c = 2 * self.num_layers, self.channels
        kernel = tf.transpose(tf.reshape(tf.cast(self.kernel, mel.dtype), [-1, rows, c]), [1, 0, 2])
        bias = tf.reshape(tf.cast(self.bias, mel.dtype), [rows, 1, c])
        shape = tf.shape(mel)
        flat = tf.reshape(mel, [1, shape[0] * shape[1], shape[2]])
        out = tf.matmul(flat, kernel) + bias
        return tf.reshape(out, [rows, shape[0], shape[1], c])

    def get_config(self):
        return {**super().get_config(), "num_layers": self.num_layers, "channels": self.channels}


class WaveNetBackbone(Backbone):
    """The conditioner, denoiser and training models of one WaveNet, sharing their layers."""

    def __init__(self, model_config, audio_config):
        m = model_config
        self.channels = m["residual_channels"]
        self.num_layers = m["residual_layers"]
        self.dilations = [2 ** (i % m["dilation_cycle"]) for i in range(self.num_layers)]
        self.unconditional = m["unconditional"]
        self.step_embedding = m["step_embedding"]
        self.hop_length = audio_config["hop_length"]
        self.n_mels = audio_config["n_mels"]
        self.conditioner = None if self.unconditional else self._build_conditioner()
        self.denoiser = self._build_denoiser(m["embed_dim"])
        self.model = self._build_training_model()

    @classmethod
    def check_config(cls, config):
        """A vocoder's hop must be a product of two transposed-convolution strides."""
        if not config["model"]["unconditional"]:
            upsample_strides(config["audio"]["hop_length"])

    @property
    def context_frames(self):
        """Mel frames on each side that influence an output sample (receptive field of one network pass)."""
        one_side = sum(self.dilations)  # kernel 3: each layer reaches `dilation` samples to each side
        return math.ceil(one_side / self.hop_length) + 3  # + the transposed convolutions' reach

    def _build_conditioner(self):
        mel = keras.Input((None, self.n_mels), name="mel")
        x = upsample_mel(mel, self.hop_length)
        cond = LayerwiseProjection(self.num_layers, self.channels, name="conditioner_projection")(x)
        return keras.Model(mel, cond, name="conditioner")

    def _build_denoiser(self, embed_dim):
        c = self.channels
        audio = keras.Input((None,), name="audio")
        step = keras.Input((), name="step")
        inputs = [audio, step]
        if not self.unconditional:
            cond = keras.Input(batch_shape=(2 * self.num_layers, None, None, c), name="cond")
            inputs.append(cond)
            cond_parts = ops.unstack(cond, 2 * self.num_layers, axis=0)
        emb = StepEmbedding(128, self.step_embedding)(step)
        emb = layers.Dense(embed_dim, activation="swish", name="step_mlp_1")(emb)
        emb = layers.Dense(embed_dim, activation="swish", name="step_mlp_2")(emb)

        x = layers.Conv1D(c, 1, activation="relu", name="input_projection")(ops.expand_dims(audio, -1))
        skip_sum = None
        for i, dilation in enumerate(self.dilations):
            step_bias = layers.Dense(c, name=f"step_projection_{i}")(emb)
            y = x + ops.expand_dims(step_bias, 1)
            gate, filt = SplitConv1D(c, 2, 3, dilation, name=f"dilated_conv_{i}")(y)
            if not self.unconditional:
                gate, filt = gate + cond_parts[2 * i], filt + cond_parts[2 * i + 1]
            y = ops.sigmoid(gate) * ops.tanh(filt)
            residual, skip = SplitConv1D(c, 2, name=f"output_projection_{i}")(y)
            x = (x + residual) / math.sqrt(2.0)
            skip_sum = skip if skip_sum is None else skip_sum + skip
        x = skip_sum / math.sqrt(self.num_layers)
        x = layers.Conv1D(c, 1, activation="relu", name="skip_projection")(x)
        x = layers.Conv1D(1, 1, kernel_initializer="zeros", dtype="float32", name="output")(x)
        return keras.Model(inputs, ops.squeeze(x, -1), name="denoiser")

    def _build_training_model(self):
        audio = keras.Input((None,), name="audio")
        step = keras.Input((), name="step")
        if self.unconditional:
            return keras.Model([audio, step], self.denoiser([audio, step]), name="diffwave")
        mel = keras.Input((None, self.n_mels), name="mel")
        eps = self.denoiser([audio, step, self.conditioner(mel)])
        return keras.Model([audio, step, mel], eps, name="diffwave")
