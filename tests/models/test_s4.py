"""The S4 layer against float64 numpy computations: kernel, Cauchy gradients, causality, convolution."""

import numpy as np
import pytest
import tensorflow as tf

import tf_diffwave.models.s4 as s4
from tf_diffwave.models.s4 import S4Layer, hippo_legs_dplr


def reference_kernel(ssm, length):
    """K[c, h, l] = Re(C Abar^l Bbar) by repeated float64 matrix-vector products, from dense_ssm()."""
    a, b, c, dt = ssm["A"], ssm["B"], ssm["C"], ssm["dt"]
    a = np.broadcast_to(a, c.shape[:1] + a.shape[-3:])  # one A per channel (the jan2022 variant) or shared
    out = np.zeros(c.shape[:2] + (length,))
    eye = np.eye(a.shape[-1])
    for channel in range(c.shape[0]):
        for h in range(c.shape[1]):
            a_h = a[channel, h]
            abar = np.linalg.solve(eye - dt[h] / 2 * a_h, eye + dt[h] / 2 * a_h)
            x = np.linalg.solve(eye - dt[h] / 2 * a_h, dt[h] * b[h])
            for step in range(length):
                out[channel, h, step] = np.real(c[channel, h] @ x)
                x = abar @ x
    return out


def test_hippo_legs_dplr_is_unitarily_equivalent_to_legs():
    n = 8
    lam, p, b = hippo_legs_dplr(n)
    k = np.arange(n)
    legs = -np.tril(np.sqrt(np.outer(2 * k + 1, 2 * k + 1)), -1) - np.diag(k + 1)
    full = lambda z: np.concatenate([z, z.conj()])  # noqa: E731
    dplr = np.diag(full(lam)) - np.outer(full(p), full(p).conj())
    np.testing.assert_allclose(np.sort_complex(np.linalg.eigvals(dplr)), np.sort_complex(np.linalg.eigvals(legs)),
                               atol=1e-8)
    np.testing.assert_allclose(lam.real, -0.5)
    assert np.all(lam.imag < 0)
    np.testing.assert_allclose(np.linalg.norm(full(b)), np.linalg.norm(np.sqrt(2 * k + 1)))


@pytest.mark.parametrize("ssm", ["s4", "s4d", "s4 jan2022"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("length", [2048, 1001])
def test_kernel_matches_matrix_powers_of_dense_ssm(ssm, bidirectional, length):
    ssm, variant = (ssm.split() + ["glu"])[:2]
    layer = S4Layer(3, length, state_size=64, bidirectional=bidirectional, ssm=ssm, variant=variant)
    layer.build((None, None, 3))
    if variant == "jan2022":  # give each channel's Q its own value, away from P
        layer.q.assign(layer.q + tf.random.normal(layer.q.shape, stddev=0.3, seed=4))
    kernel = layer.kernel(length).numpy()
    expected = reference_kernel(layer.dense_ssm(), length)
    assert kernel.shape == expected.shape == (2 if bidirectional else 1, 3, length)
    assert np.max(np.abs(kernel - expected)) / np.max(np.abs(expected)) < 1e-4


def test_chunked_kernel_spectrum_and_gradients_match_autodiff_of_the_plain_formula():
    rng = np.random.default_rng(0)
    cplx = lambda *shape: tf.constant(rng.normal(size=shape) + 1j * rng.normal(size=shape), tf.complex64)  # noqa
    v, w = cplx(2, 6, 6), cplx(2, 6) - 1.0  # H = 2, two kernel channels (6 = 2 x 3 products), 6 poles
    omega = s4.roots_of_unity(32, chunk=5)  # 17 frequencies in 4 chunks of 5 (3 of padding)
    flat = tf.reshape(omega, [-1])
    weights = cplx(2, 2, 20)

    def plain(v, w):
        s = tf.reduce_sum(v[..., None] * 2.0 / (2.0 * (1.0 - flat) - (1.0 + flat) * w[:, None, :, None]), -2)
        s = tf.reshape(s, [2, 2, 3, 20])
        h = (1.0 + flat) / 2.0
        return s[:, 0, :2] - h * s[:, 0, 2:] * s[:, 1, :2] / (1.0 + h * s[:, 1, 2:])

    def chunked(v, w, differentiate_w=True):
        spectrum = s4.kernel_spectrum(v, w, omega, differentiate_w)
        return tf.reshape(tf.transpose(spectrum, [1, 2, 0, 3]), [2, 2, 20])

    results = []
    for fn in (plain, chunked, lambda v, w: chunked(v, w, differentiate_w=False)):
        with tf.GradientTape() as tape:
            tape.watch([v, w])
            out = fn(v, w)
            loss = tf.reduce_sum(tf.math.real(weights * out))
        results.append([out, *tape.gradient(loss, [v, w])])
    for ours, reference in zip(results[1], results[0]):
        np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-4, atol=1e-4)
    frozen_out, frozen_grad_v, frozen_grad_w = results[2]  # poles frozen: the same values, no gradient to w
    np.testing.assert_allclose(frozen_out.numpy(), results[0][0].numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(frozen_grad_v.numpy(), results[0][1].numpy(), rtol=1e-4, atol=1e-4)
    assert frozen_grad_w is None


def test_layer_gradients_reach_every_ssm_parameter():
    layer = S4Layer(4, 64, state_size=8, bidirectional=True)
    u = tf.random.normal([2, 64, 4])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(u) ** 2)
    grads = tape.gradient(loss, layer.trainable_variables)
    assert all(g is not None and np.all(np.isfinite(g.numpy())) and np.any(g.numpy() != 0) for g in grads)
    assert {v.name for v in layer.trainable_variables} >= {"log_dt", "lambda_log_re", "lambda_im", "b", "p", "c", "d"}
    frozen = S4Layer(4, 64, state_size=8, trainable_ssm=False)
    frozen.build((None, None, 4))
    assert {v.name for v in frozen.trainable_variables} == {"c", "d", "kernel", "bias"}


@pytest.mark.parametrize("variant", ["glu", "jan2022"])
def test_frozen_ssm_gradients_equal_those_of_the_same_layer_trained_whole(variant):
    """With the SSM frozen the poles get no gradient inside the Cauchy routine; what does train (C, D, Q, the
    linear layer) must get exactly the gradients the fully trainable layer gives it."""
    u = tf.random.normal([2, 64, 4], seed=2)
    grads = []
    for trainable_ssm in (True, False):
        layer = S4Layer(4, 64, state_size=8, bidirectional=True, trainable_ssm=trainable_ssm, variant=variant,
                        name="s4")
        layer.build((None, None, 4))
        if trainable_ssm:
            weights = {v.path: v.numpy() for v in layer.weights}
        else:  # the same weights (their order differs: Keras lists trainable ones first)
            for v in layer.weights:
                v.assign(weights[v.path])
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(u) ** 2)
        found = tape.gradient(loss, layer.trainable_variables)
        grads.append({v.name: g.numpy() for v, g in zip(layer.trainable_variables, found)
                      if v.name in ("c", "d", "q", "kernel", "bias")})
    assert grads[1].keys() == grads[0].keys() >= {"c", "d", "kernel"}
    for name, reference in grads[0].items():
        np.testing.assert_allclose(grads[1][name], reference, rtol=1e-4, atol=1e-5 * np.abs(reference).max())


@pytest.mark.parametrize("portable", [False, True])
@pytest.mark.parametrize("length", [50, 37])
@pytest.mark.parametrize("variant", ["glu", "jan2022"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_convolution_is_linear_not_circular(bidirectional, variant, length, portable):
    """convolve() against a direct float64 convolution with the layer's own kernel: no wrap-around, for inputs up
    to the layer's length, and in the portable form (real arithmetic and forward FFTs, for LiteRT) too. The jan2022
    variant keeps the two directions apart, each with D x."""
    layer = S4Layer(2, 50, state_size=16, bidirectional=bidirectional, variant=variant)
    layer.build((None, None, 2))
    if portable:
        layer.portable_spectrum = layer.portable_spectrum_of(layer.kernel())
    x = np.random.default_rng(1).normal(size=(1, 2, length))
    y = layer.convolve(tf.constant(x, tf.float32)).numpy()
    k, d = layer.kernel().numpy().astype(np.float64), layer.d.numpy()
    forward, backward = np.zeros_like(x), np.zeros_like(x)
    for h in range(2):
        for t in range(length):
            forward[0, h, t] = sum(k[0, h, i] * x[0, h, t - i] for i in range(t + 1)) + d[h] * x[0, h, t]
            if bidirectional:
                backward[0, h, t] = sum(k[1, h, i - 1] * x[0, h, t + i] for i in range(1, length - t))
    if variant == "glu":
        expected = forward + backward
    else:
        expected = np.concatenate([forward, backward + d[None, :, None] * x], axis=1) if bidirectional else forward
    np.testing.assert_allclose(y, expected, atol=1e-4 * np.abs(expected).max())


def test_causal_layer_output_before_t0_ignores_input_at_t0():
    layer = S4Layer(4, 128, state_size=16)
    u = tf.random.normal([1, 128, 4], seed=1)
    changed = tf.tensor_scatter_nd_add(u, [[0, 70, 1]], [5.0])
    a, b = layer(u).numpy(), layer(changed).numpy()
    np.testing.assert_allclose(a[:, :70], b[:, :70], atol=1e-5)  # FFT round-off only
    assert np.max(np.abs(a[:, 70:] - b[:, 70:])) > 1e-3
    both = S4Layer(4, 128, state_size=16, bidirectional=True)
    assert np.max(np.abs(both(u).numpy()[:, :70] - both(changed).numpy()[:, :70])) > 1e-3


@pytest.mark.parametrize("ssm,variant", [("s4d", "glu"), ("s4", "jan2022")])
def test_get_config_round_trips(ssm, variant):
    layer = S4Layer(8, 256, state_size=32, bidirectional=True, ssm=ssm, trainable_ssm=False, variant=variant,
                    name="s4x")
    clone = S4Layer.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone(tf.zeros([1, 256, 8])).shape == (1, 256, 8)


def trained_looking(layer, seed):
    """Move every weight of a built layer away from its initial value, by amounts a training run could."""
    rng = np.random.default_rng(seed)
    for v in layer.weights:
        x = v.numpy()
        name = v.path.rsplit("/", 1)[-1]
        if name == "log_dt":
            x = rng.uniform(np.log(1e-3), np.log(1e-1), x.shape)
        elif name == "lambda_log_re":
            x = x + rng.normal(0, 0.3, x.shape)
        elif name in ("lambda_im", "b", "p", "q"):
            x = x * (1 + rng.normal(0, 0.1, x.shape))
        else:
            x = x + rng.normal(0, 0.1, x.shape)
        v.assign(x.astype(np.float32))


def stepped(layer, u, mode):
    """The layer's output for u (B, L, H), one step at a time from its initial state."""
    length = u.shape[1]

    def body(t, state, outputs):
        y, state = layer.step(u[:, t], state)
        return t + 1, state, outputs.write(t, y)

    run = tf.function(lambda u, state: tf.while_loop(
        lambda t, *_: t < length, body, (0, state, tf.TensorArray(tf.float32, length)))[2].stack(), autograph=False)
    return np.transpose(run(u, layer.initial_state(u.shape[0], mode)).numpy(), (1, 0, 2))


@pytest.mark.parametrize("ssm,variant", [("s4", "glu"), ("s4", "jan2022"), ("s4d", "glu")])
@pytest.mark.parametrize("mode", ["dense", "diagonal"])
def test_stepping_through_a_sequence_equals_the_convolution(ssm, variant, mode):
    """The recurrent mode (bilinear system, C corrected for the kernel's length) against `call`, float32, 2048
    samples, weights moved away from their initialisation."""
    layer = S4Layer(16, 2048, ssm=ssm, variant=variant)
    layer.build((None, None, 16))
    trained_looking(layer, 1)
    u = tf.constant(np.random.default_rng(0).normal(size=(2, 2048, 16)), tf.float32)
    reference = layer(u).numpy()
    assert np.max(np.abs(stepped(layer, u, mode) - reference)) / np.max(np.abs(reference)) < 1e-4


def test_the_diagonal_step_is_unusable_at_the_legs_initialisation_and_the_dense_one_is_not():
    """HiPPO-LegS is far from normal: the eigenbasis of its discretisation is ill-conditioned (why "dense" is the
    default)."""
    layer = S4Layer(16, 2048)
    layer.build((None, None, 16))
    u = tf.constant(np.random.default_rng(0).normal(size=(1, 2048, 16)), tf.float32)
    reference = layer(u).numpy()
    errors = {mode: np.max(np.abs(stepped(layer, u, mode) - reference)) / np.max(np.abs(reference))
              for mode in ("dense", "diagonal")}
    assert errors["dense"] < 1e-4 and errors["diagonal"] > 1e-2


def test_bidirectional_layers_have_no_recurrent_mode():
    layer = S4Layer(4, 64, bidirectional=True)
    layer.build((None, None, 4))
    with pytest.raises(ValueError, match="causal"):
        layer.initial_state(1)


def test_one_model_samples_in_two_threads_without_sharing_its_sampling_state():
    import threading

    import keras

    inputs = keras.Input((64, 4))
    model = keras.Model(inputs, S4Layer(4, 64, state_size=8)(inputs))
    layer = next(s4.s4_layers(model))
    entered, looked = threading.Event(), threading.Event()

    def sample_elsewhere():
        with s4.kernels_computed_once(model):
            layer.use_step_system(("dense",))
            entered.set()
            looked.wait(30)

    other = threading.Thread(target=sample_elsewhere)
    other.start()
    assert entered.wait(30)
    seen = (layer.fixed_kernel, layer.portable_spectrum, layer._step_system)
    looked.set()
    other.join()
    assert seen == (None, None, None)  # this thread computes its own kernels, not those another thread fixed
