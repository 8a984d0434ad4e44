"""The arithmetic side of a speed figure: the floating-point operations a vocoder needs for an input, counted from
its graph, and this CPU's attainable rate, measured by a large matmul in the same run, so that a benchmark prints
each contestant's GFLOP/s and its share of that rate on whatever machine it runs."""

import time

import tensorflow as tf

PEAK_SIZE = 3072  # square matmul operands: large enough to reach the CPU's rate, 58 GFLOP per product
_product = tf.function(tf.matmul)  # one graph per precision, however often the rate is measured


def graph_flops(function):
    """Floating-point operations of one call of a concrete function traced with fully known shapes, as TensorFlow's
    profiler counts them on its graph (a multiply-add counts two)."""
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(function.graph, options=options).total_float_ops


def vocoding_flops(backbone, frames, steps):
    """Operations of vocoding `frames` mel frames (batch 1) with `steps` denoising steps: the conditioner once, the
    denoiser once per step (what the sampler computes; the schedule's elementwise updates are negligible)."""
    conditioner = tf.function(lambda m: backbone.conditioner(m, training=False)).get_concrete_function(
        tf.TensorSpec([1, frames, backbone.n_mels]))
    cond = conditioner.outputs[0]
    denoiser = tf.function(lambda x, t, c: backbone.denoiser([x, t, c], training=False)).get_concrete_function(
        tf.TensorSpec([1, frames * backbone.hop_length]), tf.TensorSpec([1]), tf.TensorSpec(cond.shape, cond.dtype))
    return graph_flops(conditioner) + steps * graph_flops(denoiser)


def matmul_rate(precision, rounds=5, size=PEAK_SIZE):
    """GFLOP/s of a (size x size) by (size x size) matmul in `precision` ("float32" or "bfloat16"), best of
    `rounds`, with TensorFlow's threads as they are: the rate this CPU attains in that precision."""
    dtype = tf.as_dtype(precision)
    a, b = (tf.cast(tf.random.stateless_normal([size, size], seed=[s, 0]), dtype) for s in (1, 2))
    _product(a, b).numpy()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        _product(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size ** 3 / best / 1e9


def rate_cell(flops, seconds, peak):
    """'G GFLOP/s (P% of peak)' for `flops` done in `seconds`, against `peak` GFLOP/s."""
    rate = flops / seconds / 1e9
    return f"{rate:.0f} ({100 * rate / peak:.0f}%)"
