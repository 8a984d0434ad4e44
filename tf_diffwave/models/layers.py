"""Layers shared by families: the diffusion-step embedding, the split convolution, DiffWave's mel upsampler and
conditioner projections, and the Haar transforms with FreGrad's frequency-aware convolution."""

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from tf_diffwave.models.strides import upsample_strides


def upsample_mel(mel, hop_length, policy="float32", strides=None, prefix=""):
    """DiffWave's mel upsampler: transposed convolutions over time (`strides`, by default upsample_strides', whose
    product is the hop) with leaky ReLUs, (B, frames, n_mels) -> (B, frames * hop, n_mels), computing under the
    Keras dtype policy `policy`; its layers are named `prefix`mel_upsampler_1, ... ."""
    x = ops.expand_dims(mel, -1)
    for n, stride in enumerate(strides or upsample_strides(hop_length), 1):
        x = FrameRateTransposeConv(1, (2 * stride, 3), strides=(stride, 1), padding="same",
                                   name=f"{prefix}mel_upsampler_{n}", dtype=policy)(x)
        x = layers.LeakyReLU(0.4, dtype=policy)(x)
    return ops.squeeze(x, -1)


@keras.saving.register_keras_serializable(package="tf_diffwave")
class FrameRateTransposeConv(layers.Conv2DTranspose):
    """DiffWave's upsampling step, a Conv2DTranspose of one filter, kernel (2s, 3), strides (s, 1) and 'same'
    padding over a mel (B, T, F, 1), with its weights, computed at the input's frame rate: output sample s m + r is
    a sum over input frames m - 1, m and m + 1, so the whole step is one convolution of kernel 3 over the frames,
    from F channels to s x F (phase r's F bins in each output frame's r-th block), whose weights are the 2s x 3
    kernel's placed in a banded matrix, and a reshape that lays the phases out in time. A transposed convolution of
    one channel runs on a CPU at a small fraction of a matrix product's rate (a sixth of an int8 LiteRT FreGrad's
    time was its two upsampling steps)."""

    def _taps(self, bins):
        """For the frame-rate kernel (3, F, s F): the index of each entry in the flattened (2s, 3) kernel, or 6s
        (a zero) where no tap reaches. conv_transpose gives out[j] = sum of in[i] w[k] over j = i s + k - s // 2
        (TensorFlow's 'same' padding before the first sample) in time, and out[f] = sum of in[f + 1 - k] w[k] over
        the bins; input frame m + t - 1 is tap t of the frame-rate convolution."""
        s = self.strides[0]
        t, f_in, r, f = np.meshgrid(np.arange(3), np.arange(bins), np.arange(s), np.arange(bins), indexing="ij")
        time_tap, bin_tap = r + s // 2 - s * (t - 1), f - f_in + 1
        valid = (time_tap >= 0) & (time_tap < 2 * s) & (bin_tap >= 0) & (bin_tap < 3)
        return np.where(valid, time_tap * 3 + bin_tap, 6 * s).reshape(3, bins, s * bins)

    def call(self, inputs):
        bins, shape = inputs.shape[2], tf.shape(inputs)
        weights = tf.concat([tf.reshape(tf.cast(self.kernel, inputs.dtype), [-1]), tf.zeros([1], inputs.dtype)], 0)
        kernel = tf.gather(weights, self._taps(bins))
        frames = tf.expand_dims(tf.squeeze(inputs, -1), 1)  # (B, 1, T, F)
        y = tf.nn.conv2d(frames, kernel[None], strides=1, padding="SAME") + tf.cast(self.bias, inputs.dtype)
        return tf.reshape(y, [shape[0], -1, bins, 1])


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


def conv_rows(x, kernel, bias, dilation=1, training=False):
    """A 'same'-padded 1-D convolution of x (B, 1, L, in) (Conv2D's layout) with kernel (kernel_size, in, out) and
    bias (out,): (B, 1, L, out). For inference, dilation is given to Conv2D directly: tf.nn.convolution would
    rearrange the whole input with SpaceToBatchND / BatchToSpaceND around every dilated convolution on a CPU.
    When training, TensorFlow's own CPU kernels, used where oneDNN is off (CPUs without AVX-512 VNNI, BF16 or
    AMX), have no gradient for a dilated Conv2D; tf.nn.convolution's SpaceToBatchND form has one everywhere."""
    kernel = tf.expand_dims(kernel, 0)
    if training and dilation > 1:
        y = tf.nn.convolution(x, kernel, padding="SAME", dilations=[1, dilation])
    else:
        y = tf.nn.conv2d(x, kernel, strides=1, padding="SAME", dilations=[1, 1, dilation, 1])
    return tf.nn.bias_add(y, bias)


@keras.saving.register_keras_serializable(package="tf_diffwave")
class SplitConv1D(layers.Layer):
    """A 'same'-padded 1-D convolution whose outputs are returned as `parts` tensors of `filters` channels each, or,
    when `filters` is a list of widths, as one tensor of each width.

    The weights are those of one Conv1D (kernel (kernel_size, in, total width), bias); each part is computed by
    its own convolution over its slice of the kernel (conv_rows), and cast to `output_dtype` if given.

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
        kernel, bias = tf.cast(self.kernel, x.dtype), tf.cast(self.bias, x.dtype)
        outputs = []
        ends = np.cumsum(self.widths)
        for start, end in zip(ends - self.widths, ends):
            part = slice(int(start), int(end))
            y = conv_rows(x, kernel[..., part], bias[part], self.dilation, training)
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


@keras.saving.register_keras_serializable(package="tf_diffwave")
class LayerwiseProjection(layers.Layer):
    """The 1x1 conditioner projections of all residual layers at once: (B, L, n_mels) -> (2 * layers, B, 1, L, C).

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
        return tf.reshape(out, [rows, shape[0], 1, shape[1], c])

    def get_config(self):
        return {**super().get_config(), "num_layers": self.num_layers, "channels": self.channels}


class ConditionedGate(layers.Layer):
    """Residual layer `index`'s gate and filter (B, 1, L, C) plus its conditioning, projected from the upsampled mel
    (B, L, n_mels) with its columns of a LayerwiseProjection's weights (the layer owns none of its own)."""

    def __init__(self, projection, index, **kwargs):
        # autocast off: Keras would cast the float32 gate and filter to a mixed policy's bfloat16 (the layer has no
        # variables of its own, so nothing else changes)
        super().__init__(autocast=False, **kwargs)
        self.projection, self.index = projection, index

    def call(self, mel, gate, filt):
        c = self.projection.channels
        columns = slice(2 * self.index * c, 2 * (self.index + 1) * c)
        # not before the layer needs it: with no data dependency on the layer's input, the executor would run every
        # layer's projection at once and hold them all (layers x 2C values per sample, what chunking avoids)
        with tf.control_dependencies([gate]):
            out = tf.matmul(mel, tf.cast(self.projection.kernel[:, columns], mel.dtype))
        out = tf.expand_dims(out + tf.cast(self.projection.bias[columns], mel.dtype), 1)
        return gate + tf.cast(out[..., :c], gate.dtype), filt + tf.cast(out[..., c:], filt.dtype)


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
    """FreGrad's Freq-DConv (Nguyen et al. 2024, section 2.1) on x (B, 1, L, C) (Conv2D's layout, L even): x's Haar
    bands stacked as 2C channels at half the rate, a dilated 'same' convolution of kernel 3, and the inverse DWT of
    each output part's low and high halves: one tensor (B, 1, L, width) per width of `widths`. The weights are one
    Conv1D's (3, 2C, 2 x sum(widths)), the bands ordered [low | high] in and out (FreGrad's layout).

    Both transforms are linear, so they are folded into the weights: a reshape makes the sample pairs (x[2n],
    x[2n + 1]) 2C channels, the kernel's low and high input rows become rows for the even and odd samples, each
    part's low and high columns become the columns of the even and odd samples it gives, and a reshape interleaves
    those. One convolution per part, and no activation is copied, sliced or stacked."""

    def __init__(self, widths, dilation=1, **kwargs):
        super().__init__(**kwargs)
        self.widths, self.dilation = list(widths), dilation
        self.conv = SplitConv1D(self.widths * 2, kernel_size=3, dilation=dilation, dtype=self.dtype_policy,
                                name="conv")

    def build(self, input_shape):
        self.conv.build((None, None, 2 * input_shape[-1]))

    def call(self, x, training=False):
        c, shape = x.shape[-1], tf.shape(x)
        kernel, bias, total = self.conv.kernel, self.conv.bias, sum(self.widths)
        # low = h (even + odd), high = h (even - odd): the rows that multiply even and odd samples
        kernel = tf.concat([HAAR * (kernel[:, :c] + kernel[:, c:]), HAAR * (kernel[:, :c] - kernel[:, c:])], axis=1)
        pairs = tf.reshape(x, [shape[0], 1, shape[2] // 2, 2 * c])
        outputs, start = [], 0
        for width in self.widths:
            low, high = slice(start, start + width), slice(total + start, total + start + width)
            # even = h (low + high), odd = h (low - high)
            part_kernel = tf.concat([HAAR * (kernel[..., low] + kernel[..., high]),
                                     HAAR * (kernel[..., low] - kernel[..., high])], axis=-1)
            part_bias = tf.concat([HAAR * (bias[low] + bias[high]), HAAR * (bias[low] - bias[high])], axis=-1)
            y = conv_rows(pairs, tf.cast(part_kernel, x.dtype), tf.cast(part_bias, x.dtype), self.dilation, training)
            outputs.append(tf.reshape(y, [shape[0], 1, shape[2], width]))
            start += width
        return outputs

    def get_config(self):
        return {**super().get_config(), "widths": self.widths, "dilation": self.dilation}
