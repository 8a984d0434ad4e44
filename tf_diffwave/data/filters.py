"""Biquad filters as torchaudio runs them, in TensorFlow: FreGrad smooths its prior's std and cleans its output
bands with them, and its checkpoints expect their float32 arithmetic."""

import numpy as np
import tensorflow as tf


def biquad(kind, sample_rate, cutoff, q=0.707):
    """(b, a) float32 (3,) of torchaudio's `highpass_biquad` / `lowpass_biquad` (the RBJ cookbook's), computed in
    float32 as torchaudio computes them for a float32 signal and divided by a0."""
    f32 = np.float32
    w0 = f32(f32(2 * np.pi) * f32(cutoff)) / f32(sample_rate)
    cos, sin = f32(np.cos(np.float64(w0))), f32(np.sin(np.float64(w0)))
    alpha = sin / f32(2.0) / f32(q)
    b = [(f32(1) + cos) / f32(2), -f32(1) - cos] if kind == "highpass" else [(f32(1) - cos) / f32(2), f32(1) - cos]
    b = np.array([b[0], b[1], b[0]], np.float32)
    a = np.array([f32(1) + alpha, f32(-2) * cos, f32(1) - alpha], np.float32)
    return b / a[0], a / a[0]


def filtered(x, b, a, portable=True):
    """x (B, T) float32 filtered along T by the biquad (b, a) from zero state, then clamped to [-1, 1]: torchaudio's
    `lfilter(clamp=True)`, its float32 operation order kept (the poles sit near 1, where float32 rounding moves the
    result by 1e-5 relative): y1 = (b2 x[n-2] + b1 x[n-1]) + b0 x[n], y[n] = y1 - (a2 y[n-2] + a1 y[n-1]).

    The recursion runs one sample per loop iteration. `portable` writes each into a tensor of fixed shape by adding
    it at its position (a loop of LiteRT's built-in operators, whose shapes XNNPACK can plan once; its cost is
    quadratic in T: for the frames of an utterance); otherwise into a TensorArray (linear, for long sequences;
    TensorFlow only)."""
    x = tf.convert_to_tensor(x, tf.float32)
    padded = tf.pad(x, [[0, 0], [2, 0]])
    fir = (b[2] * padded[:, :-2] + b[1] * padded[:, 1:-1]) + b[0] * padded[:, 2:]
    if portable:
        zeros = tf.zeros_like(x[:, 0])
        positions = tf.range(tf.shape(x)[1])

        def body(n, y2, y1, out):
            y = fir[:, n] - (a[2] * y2 + a[1] * y1)
            at_n = tf.expand_dims(tf.cast(tf.equal(positions, n), tf.float32), 0)
            return n + 1, y1, y, out + tf.expand_dims(y, 1) * at_n

        _, _, _, y = tf.while_loop(lambda n, *_: n < tf.shape(x)[1], body, (0, zeros, zeros, tf.zeros_like(x)))
        return tf.clip_by_value(y, -1.0, 1.0)

    return tf.clip_by_value(_recursion(fir, tf.constant(a, tf.float32)), -1.0, 1.0)


@tf.function(reduce_retracing=True)
def _recursion(fir, a):
    """y[n] = fir[n] - (a[2] y[n-2] + a[1] y[n-1]) along axis 1, from zero state: compiled once, since the scan
    run eagerly costs a Python step per sample (14 s for 8,192 samples)."""
    zeros = tf.zeros_like(fir[:, 0])

    def step(state, value):
        y2, y1 = state
        return y1, value - (a[2] * y2 + a[1] * y1)

    _, y = tf.scan(step, tf.transpose(fir), initializer=(zeros, zeros))
    return tf.transpose(y)
