"""The WaveGrad network (Chen et al., "WaveGrad: Estimating Gradients for Waveform Generation", ICLR 2021, section 3
and figures 3-6), laid out as ivanvovk/WaveGrad builds it, as Keras functional models.

  conditioner: mel (B, frames, n_mels) -> the first convolution of the upsampling path (B, 1, frames, C)
  denoiser:    audio (B, L), noise level (B,), conditioner output -> predicted noise (B, L)

Between the two ends every signal is laid out (B, 1, L, C), Conv2D's layout, so that no reshape separates the
convolutions (see layers.SplitConv1D). The graph has as many operations at each depth as it had in (B, L, C):
checkpoints find a layer by its position in that order.

The noisy audio goes down a stack of DBlocks (each downsampling by its factor); after each, a FiLM layer turns the
signal plus a sinusoidal encoding of the noise level into a scale and a shift; the mel goes up a stack of UBlocks
(each upsampling by its factor) modulated by the FiLM of the same rate. Resampling is linear interpolation with
PyTorch's arithmetic (`LinearResample`), so that imported ivanvovk models compute what they computed there.
"""

import contextlib
import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from tf_diffwave.models.contract import Backbone
from tf_diffwave.models.layers import SplitConv1D
from tf_diffwave.models.wavegrad import upsampling_factors

LEAKY_SLOPE = 0.2

# torch's float32 `1e-4 ** (k / h)` (the encoding's frequencies) is one float32 step below the correctly rounded
# value at these k, per width C = 2h; at every other k it is the correctly rounded value (checked for the widths of
# ivanvovk's shipped and small configs)
TORCH_POW_ONE_STEP_LOW = {64: (13,), 128: (9, 26), 256: (18, 27, 52), 512: (36, 54, 104)}


def torch_frequencies(channels):
    """The frequencies f_k = 1e-4^(k / h), h = channels / 2, of the noise-level encoding, float32, as torch computes
    them (base and exponent rounded to float32, then its float32 power)."""
    half = channels // 2
    exponents = np.arange(half, dtype=np.float32) / np.float32(half)
    freqs = (np.float64(np.float32(1e-4)) ** exponents.astype(np.float64)).astype(np.float32)
    for k in TORCH_POW_ONE_STEP_LOW.get(channels, ()):
        freqs[k] = np.nextafter(freqs[k], np.float32(0))
    return freqs


@keras.saving.register_keras_serializable(package="tf_diffwave")
class NoiseLevelEncoding(layers.Layer):
    """PE(l) = [sin(a_k)..., cos(a_k)...], a_k = (scale l) f_k (WaveGrad eq. 10 with the paper's scale 5000), float32
    whatever the dtype policy: the angles reach 5000, where a float32 step is already 5e-4."""

    def __init__(self, channels, scale=5000.0, **kwargs):
        super().__init__(dtype="float32", **{k: v for k, v in kwargs.items() if k != "dtype"})
        self.channels, self.scale = channels, scale

    def call(self, level):
        angles = ops.expand_dims(ops.cast(level, "float32") * self.scale, -1) * torch_frequencies(self.channels)
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "scale": self.scale}


@keras.saving.register_keras_serializable(package="tf_diffwave")
class LinearResample(layers.Layer):
    """Linear interpolation over time (B, [1,] L, C) -> (B, [1,] L f, C) (up) or (B, [1,] floor(L / f), C) (down),
    as torch's `F.interpolate(mode="linear", align_corners=False)` with an output size: output j reads the input at
    s_j = max(0, (j + 1/2) L / L_out - 1/2), between its neighbours. torch rounds s_j to float32 once from
    float32(L / L_out); so does this layer (the product is exact in float64). `portable` (set while a LiteRT model
    is made, which has no float64 arithmetic) computes s_j in float32: a rounding more, within 1 ulp.

    For a window of a longer signal, `origin` (set while it is computed) is the mel frame the window starts at and
    `rate` the input's samples per mel frame: j and s_j count from the whole signal's start, so that the window
    reads its input where the whole signal's computation reads it, float32 rounding of s_j included."""

    def __init__(self, factor, up=True, rate=1, **kwargs):
        super().__init__(**kwargs)
        self.factor, self.up, self.rate = factor, up, rate
        self.portable = False
        self.origin = 0

    def call(self, x):
        axis = x.shape.rank - 2  # time
        length = tf.shape(x)[axis]
        out = length * self.factor if self.up else length // self.factor
        exact = tf.float32 if self.portable else tf.float64
        scale = tf.cast(tf.cast(length, tf.float32) / tf.cast(out, tf.float32), exact)
        first = tf.cast(self.origin, tf.int32) * self.rate  # input samples before the window
        first_out = first * self.factor if self.up else first // self.factor
        source = tf.cast(scale * (tf.cast(tf.range(out) + first_out, exact) + 0.5) - 0.5, tf.float32)
        source = tf.maximum(source, 0.0)
        whole_low = tf.cast(source, tf.int32)  # floor: the source is not negative
        weight = tf.cast(source - tf.cast(whole_low, tf.float32), x.dtype)[:, None]
        low = tf.clip_by_value(whole_low - first, 0, length - 1)
        high = tf.minimum(low + 1, length - 1)
        return (1.0 - weight) * tf.gather(x, low, axis=axis) + weight * tf.gather(x, high, axis=axis)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "up": self.up, "rate": self.rate}


def _lrelu(x):
    return ops.leaky_relu(x, LEAKY_SLOPE)


class WaveGradBackbone(Backbone):
    """The conditioner, denoiser and training model of one WaveGrad network (config section `model.wavegrad`)."""

    @contextlib.contextmanager
    def sampling(self, portable=False):
        """For LiteRT (`portable`), the resampling positions in float32."""
        with self._resamplers_set("portable", portable, False):
            yield

    def window(self, origin):
        """Resampling positions counted from the utterance's start (LinearResample)."""
        return self._resamplers_set("origin", origin, 0)

    @contextlib.contextmanager
    def _resamplers_set(self, name, value, default):
        resamplers = [layer for layer in self.model._flatten_layers() if isinstance(layer, LinearResample)]
        for layer in resamplers:
            setattr(layer, name, value)
        try:
            yield
        finally:
            for layer in resamplers:
                setattr(layer, name, default)

    def __init__(self, model_config, audio_config, policy="float32"):
        m = model_config
        self.policy = policy
        self.unconditional = False
        self.hop_length, self.n_mels = audio_config["hop_length"], audio_config["n_mels"]
        self.factors = upsampling_factors(m, self.hop_length)
        self.up_channels = [int(c) for c in m["upsampling_out_channels"]]
        self.up_dilations = [[int(d) for d in ds] for ds in m["upsampling_dilations"]]
        self.down_channels = [int(c) for c in m["downsampling_out_channels"]]
        self.down_dilations = [[int(d) for d in ds] for ds in m["downsampling_dilations"]]
        self.down_factors = self.factors[1:][::-1]
        self.preconv_up = m["upsampling_preconv_out_channels"]
        self.preconv_down = m["downsampling_preconv_out_channels"]
        self.scale = m["noise_level_scale"]
        self.conditioner = self._build_conditioner()
        self.denoiser = self._build_denoiser()
        self.model = self._build_training_model()

    @property
    def context_frames(self):
        """Mel frames on each side that can influence an output sample: the reach of every convolution and
        interpolation on the way down, through the FiLM layers and on the way up, added up (an upper bound)."""
        reach, rate = 2, 1  # samples; the down-path preconvolution (kernel 5), at the audio rate
        for factor, dilations in zip(self.down_factors, self.down_dilations):
            rate *= factor
            reach += rate * (sum(dilations) + 2) + 2 * rate  # interpolation, convolutions, FiLM convolutions
        rate = self.hop_length
        reach += rate  # the up-path preconvolution (kernel 3), at the frame rate
        for factor, dilations in zip(self.factors, self.up_dilations):
            reach += rate  # interpolation reaches one input sample
            rate //= factor
            reach += rate * sum(dilations)
        return math.ceil((reach + 1) / self.hop_length) + 1

    def _conv(self, x, filters, kernel_size, dilation, name, dtype=None):
        """A 'same'-padded convolution (ivanvovk's padding dilation (k - 1) / 2 for odd k), (B, 1, L, filters)."""
        return SplitConv1D(filters, 1, kernel_size, dilation, name=name, dtype=dtype or self.policy,
                           rows_out=True)(x)[0]

    def _build_conditioner(self):
        mel = keras.Input((None, self.n_mels), name="mel")
        return keras.Model(mel, self._conv(mel, self.preconv_up, 3, 1, "ublock_preconv"), name="conditioner")

    def _film(self, h, level, out_channels, i):
        """FiLM i: gamma, beta (B, 1, L_i, out) from the down-path signal h and the noise level."""
        s = _lrelu(self._conv(h, h.shape[-1], 3, 1, f"film_{i}_signal"))
        s = s + ops.reshape(NoiseLevelEncoding(h.shape[-1], self.scale, name=f"film_{i}_encoding")(level),
                            (-1, 1, 1, h.shape[-1]))
        return (self._conv(s, out_channels, 3, 1, f"film_{i}_scale"),
                self._conv(s, out_channels, 3, 1, f"film_{i}_shift"))

    def _dblock(self, x, factor, out_channels, dilations, i, rate):
        """DBlock i, its input `rate` samples per mel frame."""
        residual = self._conv(x, out_channels, 1, 1, f"dblock_{i}_residual")
        residual = LinearResample(factor, up=False, rate=rate, dtype=self.policy)(residual)
        h = LinearResample(factor, up=False, rate=rate, dtype=self.policy)(x)
        for j, dilation in enumerate(dilations):
            h = self._conv(_lrelu(h), out_channels, 3, dilation, f"dblock_{i}_conv_{j}")
        return h + residual

    def _ublock(self, x, gamma, beta, factor, out_channels, dilations, i, rate):
        """UBlock i, its input `rate` samples per mel frame."""
        def modulated(h, dilation, name):
            return self._conv(_lrelu(gamma * h + beta), out_channels, 3, dilation, f"ublock_{i}_{name}")

        a = LinearResample(factor, rate=rate, dtype=self.policy)(_lrelu(x))
        a = self._conv(a, out_channels, 3, dilations[0], f"ublock_{i}_upsampling")
        a = modulated(a, dilations[1], "modulation")
        residual = self._conv(x, out_channels, 1, 1, f"ublock_{i}_residual")
        o = a + LinearResample(factor, rate=rate, dtype=self.policy)(residual)
        b = modulated(o, dilations[2], "modulation_0")
        return o + modulated(b, dilations[3], "modulation_1")

    def _build_denoiser(self):
        audio = keras.Input((None,), name="audio")
        level = keras.Input((), name="level")
        cond = keras.Input((1, None, self.preconv_up), name="cond",
                           dtype=keras.DTypePolicy(self.policy).compute_dtype)
        h = self._conv(ops.expand_dims(audio, -1), self.preconv_down, 5, 1, "dblock_preconv")
        signals, rate = [h], self.hop_length
        for i, (factor, channels, dilations) in enumerate(zip(self.down_factors, self.down_channels,
                                                              self.down_dilations)):
            h = self._dblock(h, factor, channels, dilations, i, rate)
            signals.append(h)
            rate //= factor
        films = [self._film(h, level, channels, i) for i, (h, channels) in
                 enumerate(zip(signals, self.up_channels[::-1]))]
        x, rate = cond, 1
        for i, (factor, channels, dilations) in enumerate(zip(self.factors, self.up_channels, self.up_dilations)):
            gamma, beta = films[len(films) - 1 - i]
            x = self._ublock(x, gamma, beta, factor, channels, dilations, i, rate)
            rate *= factor
        eps = self._conv(x, 1, 3, 1, "ublock_postconv", dtype="float32")
        return keras.Model([audio, level, cond], ops.squeeze(eps, (1, -1)), name="denoiser")

    def _build_training_model(self):
        audio = keras.Input((None,), name="audio")
        level = keras.Input((), name="level")
        mel = keras.Input((None, self.n_mels), name="mel")
        return keras.Model([audio, level, mel], self.denoiser([audio, level, self.conditioner(mel)]),
                           name="wavegrad")
