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
    its own convolution over its slice of the kernel, and cast to `output_dtype` if given. For inference, dilation
    is given to Conv2D directly: tf.nn.convolution would rearrange the whole input with SpaceToBatchND /
    BatchToSpaceND around every dilated convolution on a CPU.
    """

    def __init__(self, filters, parts=2, kernel_size=1, dilation=1, output_dtype=None,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.filters, self.parts, self.kernel_size, self.dilation = filters, parts, kernel_size, dilation
        self.output_dtype = output_dtype
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        width = self.parts * self.filters
        self.kernel = self.add_weight(name="kernel", shape=(self.kernel_size, input_shape[-1], width),
                                      initializer=self.kernel_initializer)
        self.bias = self.add_weight(name="bias", shape=(width,), initializer="zeros")

    def call(self, x, training=False):
        x = tf.expand_dims(x, 1)
        kernel = tf.expand_dims(tf.cast(self.kernel, x.dtype), 0)
        bias = tf.cast(self.bias, x.dtype)
        # TensorFlow's own CPU kernels, used where oneDNN is off (CPUs without AVX-512 VNNI, BF16 or AMX), have no
        # gradient for a dilated Conv2D; tf.nn.convolution's SpaceToBatchND form has one everywhere
        differentiable = training and self.dilation > 1
        outputs = []
        for p in range(self.parts):
            part = slice(p * self.filters, (p + 1) * self.filters)
            if differentiable:
                y = tf.nn.convolution(x, kernel[..., part], padding="SAME", dilations=[1, self.dilation])
            else:
                y = tf.nn.conv2d(x, kernel[..., part], strides=1, padding="SAME",
                                 dilations=[1, 1, self.dilation, 1])
            outputs.append(tf.squeeze(tf.nn.bias_add(y, bias[part]), 1))
        return [tf.cast(y, self.output_dtype or y.dtype) for y in outputs]

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "parts": self.parts,
                "kernel_size": self.kernel_size, "dilation": self.dilation, "output_dtype": self.output_dtype,
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


class ConditionedGate(layers.Layer):
    """Residual layer `index`'s gate and filter plus its conditioning, projected from the upsampled mel (B, L,
    n_mels) with its columns of a LayerwiseProjection's weights (the layer owns none of its own)."""

    def __init__(self, projection, index, **kwargs):
        super().__init__(**kwargs)
        self.projection, self.index = projection, index
        self._convert_input_args = False  # Keras would cast the float32 gate and filter to a mixed policy's bfloat16

    def call(self, mel, gate, filt):
        c = self.projection.channels
        columns = slice(2 * self.index * c, 2 * (self.index + 1) * c)
        # not before the layer needs it: with no data dependency on the layer's input, the executor would run every
        # layer's projection at once and hold them all (layers x 2C values per sample, what chunking avoids)
        with tf.control_dependencies([gate]):
            out = tf.matmul(mel, tf.cast(self.projection.kernel[:, columns], mel.dtype))
        out = out + tf.cast(self.projection.bias[columns], mel.dtype)
        return gate + tf.cast(out[..., :c], gate.dtype), filt + tf.cast(out[..., c:], filt.dtype)


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
        self._layers = {}  # the denoiser's, by name, shared with the chunk denoiser
        self.conditioner = upsampler = None
        if not self.unconditional:
            self.conditioner, upsampler = self._build_conditioners()
        self.denoiser = self._build_denoiser(m["embed_dim"])
        self.model = self._build_training_model()
        self._chunk_networks = (upsampler, None if self.unconditional else self._build_chunk_denoiser())

    def chunk_networks(self):
        """The upsampler alone as the conditioner, and a denoiser (the same weights) that projects the upsampled
        mel inside each residual layer: n_mels values per sample held between the two, not 2 x layers x
        channels."""
        return self._chunk_networks

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

    def _build_conditioners(self):
        """The conditioner, and its upsampler alone (the chunk conditioner)."""
        mel = keras.Input((None, self.n_mels), name="mel")
        x = upsample_mel(mel, self.hop_length)
        cond = LayerwiseProjection(self.num_layers, self.channels, name="conditioner_projection")(x)
        return keras.Model(mel, cond, name="conditioner"), keras.Model(mel, x, name="chunk_conditioner")

    def _build_denoiser(self, embed_dim):
        """The denoiser taking the conditioner's output: every layer's projection of the upsampled mel."""
        audio, step = keras.Input((None,), name="audio"), keras.Input((), name="step")
        if self.unconditional:
            return keras.Model([audio, step], self._denoise(audio, step, None, embed_dim), name="denoiser")
        cond = keras.Input(batch_shape=(2 * self.num_layers, None, None, self.channels), name="cond",
                           dtype=keras.config.dtype_policy().compute_dtype)
        parts = ops.unstack(cond, 2 * self.num_layers, axis=0)
        eps = self._denoise(audio, step, lambda i, gate, filt: (gate + parts[2 * i], filt + parts[2 * i + 1]),
                            embed_dim)
        return keras.Model([audio, step, cond], eps, name="denoiser")

    def _build_chunk_denoiser(self):
        """The denoiser, its weights shared, taking the upsampled mel and projecting it in each residual layer."""
        audio, step = keras.Input((None,), name="audio"), keras.Input((), name="step")
        upsampled = keras.Input((None, self.n_mels), name="upsampled_mel",
                                dtype=keras.config.dtype_policy().compute_dtype)
        projection = self.conditioner.get_layer("conditioner_projection")
        eps = self._denoise(audio, step, lambda i, gate, filt: ConditionedGate(projection, i)(upsampled, gate, filt),
                            None)
        return keras.Model([audio, step, upsampled], eps, name="chunk_denoiser")

    def _denoise(self, audio, step, condition, embed_dim):
        """The denoiser's graph; condition(i, gate, filter) gives layer i's conditioned gate and filter (None:
        unconditional). Its layers are made on the first call and reused by the next (embed_dim is read then)."""
        def layer(name, make):
            if name not in self._layers:
                self._layers[name] = make(name=name)
            return self._layers[name]

        c = self.channels
        emb = layer("step_embedding", lambda name: StepEmbedding(128, self.step_embedding, name=name))(step)
        emb = layer("step_mlp_1", lambda name: layers.Dense(embed_dim, activation="swish", name=name))(emb)
        emb = layer("step_mlp_2", lambda name: layers.Dense(embed_dim, activation="swish", name=name))(emb)
        x = layer("input_projection", lambda name: layers.Conv1D(c, 1, activation="relu", name=name))(
            ops.expand_dims(audio, -1))
        skip_sum = None
        for i, dilation in enumerate(self.dilations):
            step_bias = layer(f"step_projection_{i}", lambda name: layers.Dense(c, name=name))(emb)
            y = x + ops.expand_dims(step_bias, 1)
            # the gate in float32 under any policy: TensorFlow's CPU sigmoid and tanh of bfloat16 take twice as long
            gate, filt = layer(f"dilated_conv_{i}", lambda name: SplitConv1D(c, 2, 3, dilation, "float32",
                                                                              name=name))(y)
            if condition is not None:
                gate, filt = condition(i, gate, filt)
            y = ops.sigmoid(gate) * ops.tanh(filt)
            residual, skip = layer(f"output_projection_{i}", lambda name: SplitConv1D(c, 2, name=name))(y)
            x = (x + residual) / math.sqrt(2.0)
            skip_sum = skip if skip_sum is None else skip_sum + skip
        x = skip_sum / math.sqrt(self.num_layers)
        x = layer("skip_projection", lambda name: layers.Conv1D(c, 1, activation="relu", name=name))(x)
        x = layer("output", lambda name: layers.Conv1D(1, 1, kernel_initializer="zeros", dtype="float32",
                                                       name=name))(x)
        return ops.squeeze(x, -1)

    def _build_training_model(self):
        audio = keras.Input((None,), name="audio")
        step = keras.Input((), name="step")
        if self.unconditional:
            return keras.Model([audio, step], self.denoiser([audio, step]), name="diffwave")
        mel = keras.Input((None, self.n_mels), name="mel")
        eps = self.denoiser([audio, step, self.conditioner(mel)])
        return keras.Model([audio, step, mel], eps, name="diffwave")
