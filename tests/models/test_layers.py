"""Shared layers against float64 references of their definitions."""

import keras
import numpy as np
import pytest

from tf_diffwave.models.layers import FrameRateTransposeConv


def transposed_conv_float64(x, w, bias, stride):
    """Conv2DTranspose's definition with 'same' padding (TensorFlow's: s // 2 dropped before the first output in
    time, 1 bin in frequency): out[j, f] = bias + sum of x[i, g] w[k, l] over j = i s + k - s // 2, f = g + l - 1."""
    frames, bins = x.shape
    out = np.full((frames * stride, bins), bias, np.float64)
    for i in range(frames):
        for g in range(bins):
            for k in range(w.shape[0]):
                for n in range(3):
                    j, f = i * stride + k - stride // 2, g + n - 1
                    if 0 <= j < frames * stride and 0 <= f < bins:
                        out[j, f] += x[i, g] * w[k, n]
    return out


@pytest.mark.parametrize("stride", [16, 15, 5, 2])
def test_the_frame_rate_upsampler_is_the_transposed_convolution(stride):
    rng = np.random.default_rng(stride)
    x = rng.normal(size=(2, 7, 10, 1)).astype(np.float32)
    w = rng.normal(size=(2 * stride, 3, 1, 1)).astype(np.float32)
    ours = FrameRateTransposeConv(1, (2 * stride, 3), strides=(stride, 1), padding="same")
    keras_own = keras.layers.Conv2DTranspose(1, (2 * stride, 3), strides=(stride, 1), padding="same")
    for layer in (ours, keras_own):
        layer.build(x.shape)
        layer.kernel.assign(w)
        layer.bias.assign([0.25])
    out = ours(x).numpy()
    assert out.shape == (2, 7 * stride, 10, 1)
    for b in range(2):
        reference = transposed_conv_float64(x[b, :, :, 0].astype(np.float64), w[:, :, 0, 0].astype(np.float64),
                                            0.25, stride)
        np.testing.assert_allclose(out[b, :, :, 0], reference, atol=1e-5)
    np.testing.assert_allclose(out, keras_own(x).numpy(), atol=1e-5)
