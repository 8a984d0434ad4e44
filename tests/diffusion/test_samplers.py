"""The diffusion core against float64 numpy computations and the paper's golden values."""

import numpy as np
import pytest
import tensorflow as tf

from tf_diffwave.diffusion.objectives import per_example_loss, q_sample
from tf_diffwave.diffusion.samplers import reverse_coefficients, reverse_process
from tf_diffwave.diffusion.schedules import Schedule, align_steps
from tf_diffwave.errors import UserError

BASE_FAST = [1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5]


def test_fast_schedule_alignment_golden_values():
    steps = align_steps(Schedule(np.linspace(1e-4, 0.05, 50)), BASE_FAST)
    np.testing.assert_allclose(steps, [0, 0.8941, 4.0867, 10.4518, 22.9925, 42.9186], atol=1e-4)


def test_large_schedule_alignment_for_sc09():
    steps = align_steps(Schedule(np.linspace(1e-4, 0.02, 200)), [1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.7])
    np.testing.assert_allclose(steps, [0, 3.2007, 13.4303, 33.8203, 73.9825, 170.6051], atol=1e-4)


def test_alignment_matches_noise_levels():
    """At the aligned step, linearly interpolated sqrt(abar) equals sqrt(gamma_s) of the short schedule."""
    sched = Schedule(np.linspace(1e-4, 0.05, 50))
    root_ab = np.sqrt(np.cumprod(1 - np.linspace(1e-4, 0.05, 50)))
    steps = align_steps(sched, BASE_FAST)
    interp = np.interp(steps, np.arange(50), root_ab)
    np.testing.assert_allclose(interp, np.sqrt(np.cumprod(1 - np.array(BASE_FAST))), rtol=1e-12)


def test_noisier_schedule_is_an_error():
    with pytest.raises(UserError, match="noisier than the training schedule"):
        align_steps(Schedule(np.linspace(1e-4, 0.05, 50)), [1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.9, 0.9])


def test_q_sample_matches_float64():
    betas = np.linspace(1e-4, 0.05, 50)
    rng = np.random.default_rng(1)
    x0, noise = rng.uniform(-1, 1, (4, 300)), rng.standard_normal((4, 300))
    t = np.array([0, 7, 31, 49])
    ab = np.cumprod(1.0 - betas)  # float64 reference
    ref = np.sqrt(ab[t])[:, None] * x0 + np.sqrt(1 - ab[t])[:, None] * noise
    ours = q_sample(ab, tf.constant(x0, tf.float32), tf.constant(t), tf.constant(noise, tf.float32)).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def bayes_posterior(betas, x0, xt, t):
    """Mean and variance of q(x_{t-1} | x_t, x_0), from the product of q(x_{t-1} | x_0) and q(x_t | x_{t-1}),
    computed directly in float64."""
    alphas, ab = 1 - betas, np.cumprod(1 - betas)
    var = 1 / (1 / (1 - ab[t - 1]) + alphas[t] / betas[t])
    return var * (np.sqrt(ab[t - 1]) * x0 / (1 - ab[t - 1]) + np.sqrt(alphas[t]) * xt / betas[t]), var


def test_the_sampler_steps_to_the_posterior_of_bayes_rule():
    betas = np.linspace(1e-4, 0.05, 50)
    c = {name: value.numpy().astype(np.float64) for name, value in reverse_coefficients(betas).items()}
    x0, xt = 0.3, -0.7
    for t in (1, 10, 49):
        mean, var = bayes_posterior(betas, x0, xt, t)
        assert c["coef_x0"][t] * x0 + c["coef_xt"][t] * xt == pytest.approx(mean, rel=1e-6)
        assert c["sigma"][t] ** 2 == pytest.approx(var, rel=1e-6)


def test_reverse_process_with_oracle_noise_recovers_x0():
    betas = np.linspace(1e-4, 0.05, 50)
    ab = tf.constant(np.cumprod(1 - betas), tf.float32)
    x0 = tf.constant(np.random.default_rng(2).uniform(-0.9, 0.9, (2, 500)), tf.float32)

    def oracle(x, t):
        a = tf.gather(ab, tf.cast(t, tf.int32))[:, None]
        return (x - tf.sqrt(a) * x0) / tf.sqrt(1 - a)

    out = reverse_process(oracle, betas, np.arange(50), tf.constant([5, 6], tf.int64), 500)
    np.testing.assert_allclose(out.numpy(), x0.numpy(), atol=1e-4)


def test_reverse_step_noise_has_posterior_variance():
    """Two steps: an eps that sends the mean of x_{t-1} to 0 at t = 1, then eps = 0.
    Then x_0 = sigma_1 z / sqrt(alpha_0),
    and the variance of its samples gives sigma_1^2."""
    betas = np.array([0.01, 0.3])
    ab1 = (1 - betas[0]) * (1 - betas[1])

    def eps(x, t):
        return tf.where(t[:, None] > 0.5, x * np.sqrt(1 - ab1) / betas[1], 0.0)

    out = reverse_process(eps, betas, [0.0, 1.0], tf.constant([7], tf.int64), 200000).numpy()
    _, var = bayes_posterior(betas, 0.0, 0.0, 1)
    assert np.var(out) * (1 - betas[0]) == pytest.approx(var, rel=0.02)


def test_reverse_process_is_reproducible_per_seed_whatever_the_batch():
    args = (lambda x, t: 0.1 * x, [0.01, 0.2], [0.0, 1.0])
    a = reverse_process(*args, tf.constant([1, 2], tf.int64), 64).numpy()
    b = reverse_process(*args, tf.constant([2], tf.int64), 64).numpy()
    c = reverse_process(*args, tf.constant([3, 1], tf.int64), 64).numpy()
    np.testing.assert_array_equal(a[1], b[0])
    np.testing.assert_array_equal(a[0], c[1])
    assert np.max(np.abs(a[0] - a[1])) > 1e-3


def test_losses_against_numpy():
    rng = np.random.default_rng(3)
    noise, pred = rng.standard_normal((3, 10)), rng.standard_normal((3, 10))
    l1 = per_example_loss(tf.constant(noise, tf.float32), tf.constant(pred, tf.float32), "l1").numpy()
    l2 = per_example_loss(tf.constant(noise, tf.float32), tf.constant(pred, tf.float32), "l2").numpy()
    np.testing.assert_allclose(l1, np.abs(noise - pred).mean(1), rtol=1e-5)
    np.testing.assert_allclose(l2, ((noise - pred) ** 2).mean(1), rtol=1e-5)
