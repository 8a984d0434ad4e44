"""Layers shared by families: the diffusion-step embedding, the split convolution and DiffWave's mel upsampler."""

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from tf_diffwave.models.strides import upsample_strides


def upsample_mel(mel, hop_length, policy="float32", strides=None):
    """DiffWave's mel upsampler: transposed convolutions over time (`strides`, by default upsample_strides', whose
    product is the hop) with leaky ReLUs, (B, frames, n_mels) -> (B, frames * hop, n_mels), computing under the
    Keras dtype policy `policy`."""
    x = ops.expand_dims(mel, -1)
    for n, stride in enumerate(strides or upsample_strides(hop_length), 1):
        x = layers.Conv2DTranspose(1, (2 * stride, 3), strides=(stride, 1), padding="same",
                                   name=f"mel_upsampler_{n}", dtype=policy)(x)
        x = layers.LeakyReLU(0.4, dtype=policy)(x)
    return ops.squeeze(x, -1)


@keras.saving.register_keras_serializable(package="tf_diffwave")
class StepEmbedding(layers.Layer):
    """Sinusoidal embedding of the diffusion step, [sin(t f_j), cos(t f_j)] for j < dim / 2, linearly interpolated
    between integer steps so that the fractional steps of a fast schedule are handled (DiffWave appendix B).

    frequencies "diffwave": f_j = 10^(4j / 63) (DiffWave eq. 9 in appendix C, lmnt-com/diffwave); "transformer":
    f_j = 10^(-4j / 63) as philsyn/DiffWave-unconditional's float32 table holds them (the Transformer's
    positional encoding; that code's checkpoints learned these rounded values).
    precision "float64" computes the angles and their sines exactly; "float32" reproduces the originals' float32
    arithmetic, rounding for rounding (with "diffwave" frequencies the angles reach 1e4 x step, where float32 moves
    the phase by up to 0.05 rad, so a network trained on that table expects it).
    """

    def __init__(self, dim=128, precision="float64", frequencies="diffwave", **kwargs):
        super().__init__(**kwargs)
        self.dim, self.precision, self.frequencies = dim, precision, frequencies
        j = np.arange(dim // 2, dtype=np.float32)
        if frequencies == "transformer":
            # philsyn: exp(j * -ln(10000) / 63), the product in float32, the exponential rounded once
            exponent = j * np.float32(-np.log(10000.0) / (dim // 2 - 1))
            self.float32_freqs = np.exp(exponent.astype(np.float64)).astype(np.float32)
            self.float64_freqs = self.float32_freqs.astype(np.float64)
        else:
            # lmnt: 10.0 ** (dims * 4.0 / 63.0), the exponent divided in float32, the power rounded once to float32
            exponent = j * np.float32(4.0) / np.float32(dim // 2 - 1)
            self.float32_freqs = (10.0 ** exponent.astype(np.float64)).astype(np.float32)
            self.float64_freqs = 10.0 ** (np.arange(dim // 2) * 4.0 / (dim // 2 - 1))

    def _table(self, steps, freqs):
        angles = ops.expand_dims(steps, -1) * freqs
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def call(self, step):
        if self.precision == "float32":
            step, freqs = tf.cast(step, tf.float32), tf.constant(self.float32_freqs)
            floor = tf.floor(step)
            low, high = self._table(floor, freqs), self._table(tf.math.ceil(step), freqs)
            return low + (high - low) * tf.expand_dims(step - floor, -1)
        freqs = tf.constant(self.float64_freqs)
        step = ops.cast(step, "float64")
        low = ops.floor(step)
        frac = ops.expand_dims(step - low, -1)
        return ops.cast(self._table(low, freqs) * (1.0 - frac) + self._table(low + 1.0, freqs) * frac, "float32")

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "precision": self.precision,
                "frequencies": self.frequencies}


@keras.saving.register_keras_serializable(package="tf_diffwave")
class SplitConv1D(layers.Layer):
    """A 'same'-padded 1-D convolution whose outputs are returned as `parts` tensors of `filters` channels each, or,
    when `filters` is a list of widths, as one tensor of each width.

    The weights are those of one Conv1D (kernel (kernel_size, in, total width), bias); each part is computed by
    its own convolution over its slice of the kernel, and cast to `output_dtype` if given. For inference, dilation
    is given to Conv2D directly: tf.nn.convolution would rearrange the whole input with SpaceToBatchND /
    BatchToSpaceND around every dilated convolution on a CPU.

    Inputs are (B, L, in) or, for a stack of such layers, (B, 1, L, in) (Conv2D's layout, kept between layers):
    the outputs have the input's rank, or are (B, 1, L, width) whatever it is with `rows_out`. LiteRT's XNNPACK
    runs no Squeeze of a tensor whose batch and length are both dynamic, so a 3-D layer in a LiteRT model runs
    outside it (a quarter of an int8 vocoder's time).
    """

    def __init__(self, filters, parts=2, kernel_size=1, dilation=1, output_dtype=None,
                 kernel_initializer="glorot_uniform", rows_out=False, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.parts, self.kernel_size, self.dilation = filters, parts, kernel_size, dilation
        self.rows_out = rows_out
        self.widths = [filters] * parts if isinstance(filters, int) else list(filters)
        self.output_dtype = output_dtype
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        width = sum(self.widths)
        self.kernel = self.add_weight(name="kernel", shape=(self.kernel_size, input_shape[-1], width),
                                      initializer=self.kernel_initializer)
        self.bias = self.add_weight(name="bias", shape=(width,), initializer="zeros")

    def call(self, x, training=False):
        flat = x.shape.rank == 3 and not self.rows_out
        if x.shape.rank == 3:
            x = tf.expand_dims(x, 1)
        kernel = tf.expand_dims(tf.cast(self.kernel, x.dtype), 0)
        bias = tf.cast(self.bias, x.dtype)
        # TensorFlow's own CPU kernels, used where oneDNN is off (CPUs without AVX-512 VNNI, BF16 or AMX), have no
        # gradient for a dilated Conv2D; tf.nn.convolution's SpaceToBatchND form has one everywhere
        differentiable = training and self.dilation > 1
        outputs = []
        ends = np.cumsum(self.widths)
        for start, end in zip(ends - self.widths, ends):
            part = slice(int(start), int(end))
            if differentiable:
                y = tf.nn.convolution(x, kernel[..., part], padding="SAME", dilations=[1, self.dilation])
            else:
                y = tf.nn.conv2d(x, kernel[..., part], strides=1, padding="SAME",
                                 dilations=[1, 1, self.dilation, 1])
            y = tf.nn.bias_add(y, bias[part])
            outputs.append(tf.squeeze(y, 1) if flat else y)
        return [tf.cast(y, self.output_dtype or y.dtype) for y in outputs]

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "parts": self.parts,
                "kernel_size": self.kernel_size, "dilation": self.dilation, "output_dtype": self.output_dtype,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "rows_out": self.rows_out}


@keras.saving.register_keras_serializable(package="tf_diffwave")
class Conv1DOnRows(layers.Conv1D):
    """A Conv1D (the same weights and arithmetic) over inputs laid out (B, 1, L, in), Conv2D's layout, giving (B, 1,
    L, filters): for networks that keep that layout between layers (see SplitConv1D).

    The bias and activation follow the convolution's squeezed output, as in Conv1D: TensorFlow fuses a Conv2D
    directly followed by its bias and a relu into one kernel, whose relu turns NaN into 0, so that a NaN input
    would give a finite output (and a NaN training example a finite loss)."""

    def call(self, inputs):
        kernel = tf.expand_dims(tf.cast(self.kernel, inputs.dtype), 0)
        y = tf.squeeze(tf.nn.conv2d(inputs, kernel, strides=1, padding=self.padding.upper(),
                                    dilations=[1, 1, self.dilation_rate[0], 1]), 1)
        if self.use_bias:
            y = y + tf.cast(self.bias, y.dtype)
        return tf.expand_dims(self.activation(y), 1)

    def compute_output_shape(self, input_shape):
        length = input_shape[2]
        if length is not None and self.padding == "valid":
            length -= self.dilation_rate[0] * (self.kernel_size[0] - 1)
        return (*input_shape[:2], length, self.filters)


def rowwise_dense(layer, x):
    """A built Dense `layer` applied to x (B, in) as B matrix-vector products (a batched matmul of (B, 1, in) by the
    kernel): each example's sums then run in the same order for any batch size, with oneDNN and with TensorFlow's
    own kernels, so an example's result does not depend on the rest of its batch (one matmul over the batch changes
    its blocking, and its rounding, with the batch size, and an autoregressive sampler follows any draw that
    flips)."""
    y = tf.matmul(x[:, None, :], tf.cast(layer.kernel, x.dtype)[None])[:, 0]
    return layer.activation(y + tf.cast(layer.bias, x.dtype))


HAAR = np.float32(1 / np.sqrt(2))  # the Haar filters' tap, float32 as FreGrad's stored filters hold it


def haar_bands(x):
    """One level of the Haar DWT along axis 1 of x (B, L, C) (L even): (low, high), each (B, L / 2, C), low[n] =
    (x[2n] + x[2n + 1]) / sqrt 2 and high[n] = (x[2n] - x[2n + 1]) / sqrt 2 (pytorch_wavelets' DWT1DForward with
    'db1', which FreGrad uses)."""
    pairs = tf.reshape(x, tf.concat([tf.shape(x)[:1], [-1, 2], tf.shape(x)[2:]], 0))
    even, odd = pairs[:, :, 0], pairs[:, :, 1]
    return HAAR * even + HAAR * odd, HAAR * even - HAAR * odd


def haar_inverse(low, high):
    """The inverse of haar_bands: x (B, 2 x L, C) from its bands (B, L, C) each."""
    pairs = tf.stack([HAAR * low + HAAR * high, HAAR * low - HAAR * high], axis=2)
    return tf.reshape(pairs, tf.concat([tf.shape(low)[:1], [-1], tf.shape(low)[2:]], 0))


@keras.saving.register_keras_serializable(package="tf_diffwave")
class FrequencyAwareConv(layers.Layer):
    """FreGrad's Freq-DConv (Nguyen et al. 2024, section 2.1): the input (B, L, C) split into its Haar bands, the
    two stacked as 2C channels at half the rate, a dilated 'same' convolution of kernel 3, and the inverse DWT of
    each output part's low and high halves: one tensor (B, L, width) per width of `widths`. Its weights are one
    Conv1D's (3, 2C, 2 x sum(widths)), the bands ordered [low | high] in and out (FreGrad's layout); each part is
    computed by its own convolution (SplitConv1D), so that no activation is sliced (a slice's gradient is a
    zero-padded copy of the whole)."""

    def __init__(self, widths, dilation=1, **kwargs):
        super().__init__(**kwargs)
        self.widths, self.dilation = list(widths), dilation
        self.conv = SplitConv1D(self.widths * 2, kernel_size=3, dilation=dilation, dtype=self.dtype_policy,
                                name="conv")

    def build(self, input_shape):
        self.conv.build((None, None, 2 * input_shape[-1]))

    def call(self, x, training=False):
        parts = self.conv(tf.concat(haar_bands(x), axis=-1), training=training)
        n = len(self.widths)
        return [haar_inverse(low, high) for low, high in zip(parts[:n], parts[n:])]

    def get_config(self):
        return {**super().get_config(), "widths": self.widths, "dilation": self.dilation}
