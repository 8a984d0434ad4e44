"""The diffusion core: noise schedule, forward noising, training loss, reverse samplers.

Nothing here knows which network predicts the noise: samplers take a function eps(x_t, t) and the loss takes
the network's prediction. Equations refer to Kong et al., "DiffWave" (ICLR 2021).
"""

import numpy as np
import tensorflow as tf

from tf_diffwave.errors import UserError


class Schedule:
    """A linear beta schedule and the quantities derived from it (float64 numpy)."""

    def __init__(self, betas):
        self.betas = np.asarray(betas, dtype=np.float64)
        self.alphas = 1.0 - self.betas
        self.alpha_bars = np.cumprod(self.alphas)

    @classmethod
    def from_config(cls, diffusion_config):
        """Linear betas from the config's `diffusion` section."""
        d = diffusion_config
        return cls(np.linspace(d["beta_start"], d["beta_end"], d["num_steps"]))

    @property
    def num_steps(self):
        return len(self.betas)

    def posterior(self, x0, xt, t):
        """Mean and variance of q(x_{t-1} | x_t, x_0) (DDPM eq. 6-7), float64 numpy, for integer t >= 1."""
        ab_t, ab_prev = self.alpha_bars[t], self.alpha_bars[t - 1]
        coef_x0 = np.sqrt(ab_prev) * self.betas[t] / (1.0 - ab_t)
        coef_xt = np.sqrt(self.alphas[t]) * (1.0 - ab_prev) / (1.0 - ab_t)
        variance = (1.0 - ab_prev) / (1.0 - ab_t) * self.betas[t]
        return coef_x0 * x0 + coef_xt * xt, variance


def q_sample(alpha_bars, x0, t, noise):
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (DiffWave eq. 2 in closed form); t is an int tensor (B,)."""
    ab = tf.gather(tf.cast(alpha_bars, tf.float32), t)
    ab = tf.reshape(ab, [-1] + [1] * (x0.shape.rank - 1))
    return tf.sqrt(ab) * x0 + tf.sqrt(1.0 - ab) * noise


def per_example_loss(noise, prediction, kind):
    """Per-example epsilon-prediction loss: mean |eps - eps_theta| ("l1") or squared ("l2", eq. 7)."""
    err = noise - tf.cast(prediction, noise.dtype)
    err = tf.abs(err) if kind == "l1" else tf.square(err)
    return tf.reduce_mean(tf.reshape(err, [tf.shape(err)[0], -1]), axis=1)


def align_steps(schedule, inference_betas):
    """Fractional training steps (0-based) whose noise levels match a short inference schedule.

    DiffWave appendix B: with gamma_s the cumulative product of (1 - eta) over the inference schedule, pick t with
    sqrt(abar_{t+1}) <= sqrt(gamma_s) <= sqrt(abar_t) and interpolate linearly between t and t + 1.
    """
    eta = np.asarray(inference_betas, dtype=np.float64)
    if eta.ndim != 1 or len(eta) == 0 or np.any(eta <= 0) or np.any(eta >= 1):
        raise UserError(f"inference schedule {list(inference_betas)} must be a non-empty list of betas in (0, 1)")
    gammas = np.cumprod(1.0 - eta)
    root_ab = np.sqrt(schedule.alpha_bars)
    eps = 1e-12
    steps = []
    for s, gamma in enumerate(gammas):
        g = np.sqrt(gamma)
        if g < root_ab[-1] - eps:
            raise UserError(
                f"inference schedule {list(inference_betas)} is noisier than the training schedule at position "
                f"{s} (noise level {1 - gamma:.6g} > training's {1 - schedule.alpha_bars[-1]:.6g})")
        if g > root_ab[0] + eps:
            raise UserError(
                f"inference schedule {list(inference_betas)} is less noisy than the first training step at "
                f"position {s} (beta {eta[s]:.6g} < training's first beta {schedule.betas[0]:.6g})")
        t = int(np.clip(np.searchsorted(-root_ab, -g, side="right") - 1, 0, schedule.num_steps - 2))
        steps.append(t + (root_ab[t] - g) / (root_ab[t] - root_ab[t + 1]))
    return np.asarray(steps)


def per_example_normal(seeds, length, stream):
    """Standard normal noise (B, length) whose row b is drawn statelessly from (seeds[b], stream) alone, so an
    example's noise depends on its own seed and not on the batch it is generated in."""
    stream = tf.cast(stream, tf.int64)
    return tf.map_fn(lambda s: tf.random.stateless_normal(tf.reshape(length, [1]), seed=tf.stack([s, stream])),
                     tf.cast(seeds, tf.int64), fn_output_signature=tf.float32)


def reverse_process(eps_fn, betas, steps, seeds, length, clip_each_step=False):
    """Ancestral sampling x_T -> x_0 (DiffWave algorithm 2, appendix B for short schedules) from seeded noise.

    eps_fn(x, t) predicts the noise in x (B, length) for a float step t of shape (B,). `betas` (S,) is the
    inference schedule and `steps` (S,) the (possibly fractional) training steps fed to the network. Example b
    starts from noise drawn from seeds[b] (stream -1) and gets fresh noise from seeds[b] at each step (stream n),
    so a given seed always gives the same audio.
    """
    return _reverse(eps_fn, betas, steps, per_example_normal(seeds, length, -1),
                    lambda n: per_example_normal(seeds, length, n), clip_each_step)


def reverse_process_from_noise(eps_fn, betas, steps, noise, clip_each_step=False):
    """Ancestral sampling as `reverse_process`, with every noise draw given: `noise` (S, B, length) holds the start
    x_T in noise[S - 1] and the draw added after step n >= 1 in noise[n - 1] (the order of lmnt-com/diffwave)."""
    noise = tf.convert_to_tensor(noise, tf.float32)
    return _reverse(eps_fn, betas, steps, noise[-1], lambda n: noise[n - 1], clip_each_step)


def _reverse(eps_fn, betas, steps, x_T, noise_at, clip_each_step):
    """The reverse loop in one tf.while_loop; noise_at(n) is the draw added after step n. The coefficients are
    computed in float64 and rounded once, as lmnt-com/diffwave computes them in numpy."""
    betas = tf.cast(betas, tf.float64)
    steps = tf.cast(steps, tf.float32)
    alphas = 1.0 - betas
    alpha_bars = tf.math.cumprod(alphas)
    prev_alpha_bars = tf.concat([[1.0], alpha_bars[:-1]], 0)
    x_scale = tf.cast(1.0 / tf.sqrt(alphas), tf.float32)
    eps_scale = tf.cast(betas / tf.sqrt(1.0 - alpha_bars), tf.float32)
    sigmas = tf.cast(tf.sqrt((1.0 - prev_alpha_bars) / (1.0 - alpha_bars) * betas), tf.float32)
    batch = tf.shape(x_T)[0]

    def body(n, x):
        t = tf.fill([batch], steps[n])
        x = x_scale[n] * (x - eps_scale[n] * eps_fn(x, t))
        x = tf.cond(n > 0, lambda: x + sigmas[n] * noise_at(n), lambda: x)
        if clip_each_step:
            x = tf.clip_by_value(x, -1.0, 1.0)
        return n - 1, x

    n0 = tf.shape(betas)[0] - 1
    _, x0 = tf.while_loop(lambda n, x: n >= 0, body, (n0, x_T), maximum_iterations=tf.shape(betas)[0],
                          shape_invariants=(n0.shape, tf.TensorShape([None, None])))
    return tf.clip_by_value(x0, -1.0, 1.0)


class Sampler:
    """The two inference schedules of a trained model: 'full' (every training step) and 'fast' (aligned)."""

    def __init__(self, schedule, fast_betas):
        self.schedule = schedule
        self.fast_betas = np.asarray(fast_betas, dtype=np.float64)
        self.fast_steps = align_steps(schedule, fast_betas)

    @classmethod
    def from_config(cls, diffusion_config):
        """Schedules from the config's `diffusion` section."""
        return cls(Schedule.from_config(diffusion_config), diffusion_config["fast_schedule"])

    def betas_and_steps(self, which):
        """(betas float64, steps float32) for `which` in {'fast', 'full'} or a list of betas (aligned)."""
        if not isinstance(which, str):
            return np.asarray(which, np.float64), align_steps(self.schedule, which).astype(np.float32)
        if which == "fast":
            return self.fast_betas, self.fast_steps.astype(np.float32)
        if which == "full":
            s = self.schedule
            return s.betas, np.arange(s.num_steps, dtype=np.float32)
        raise UserError(f"unknown schedule '{which}': use 'fast' or 'full'")
