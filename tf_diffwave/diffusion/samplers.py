"""Reverse samplers of the diffusion core, and the inference schedules of a trained model.

Nothing here knows which network predicts the noise: samplers take a function eps(x_t, t). Equations refer to
Kong et al., "DiffWave" (ICLR 2021).
"""

import collections

import numpy as np
import tensorflow as tf

from tf_diffwave.diffusion.prior import scaled
from tf_diffwave.diffusion.schedules import (
    Schedule,
    align_steps,
    checked_betas,
    named_schedules,
    noise_levels,
    plain,
    schedule_names,
)
from tf_diffwave.errors import UserError


def per_example_normal(seeds, length, stream, start=0):
    """Standard normal noise (B, length) whose row b is samples [start, start + length) of the sequence drawn
    statelessly from (seeds[b], stream) alone: an example's noise depends on its own seed and not on the batch it is
    generated in, and each draw on its sample position, so a window of an utterance gets the draws of the whole.
    (tf.random.stateless_normal's Philox counter advances once per 4 draws: the window starts `start // 4`
    counters on.)"""
    stream = tf.cast(stream, tf.int64)
    start = tf.cast(start, tf.int64)
    skip = start % 4

    def draw(seed):
        key, counter, alg = tf.raw_ops.StatelessRandomGetKeyCounterAlg(seed=tf.stack([seed, stream]))
        counter = counter + tf.stack([tf.cast(start // 4, tf.uint64), tf.constant(0, tf.uint64)])
        shape = tf.reshape(tf.cast(length, tf.int64) + skip, [1])
        return tf.raw_ops.StatelessRandomNormalV2(shape=shape, key=key, counter=counter, alg=alg)[skip:]

    return tf.map_fn(draw, tf.cast(seeds, tf.int64), fn_output_signature=tf.float32)


class SamplingOptions(collections.namedtuple("SamplingOptions", "clip_each_step clip_x0 precision clip_output",
                                             defaults=(False, False, "float64", True))):
    """How the reverse process steps (config keys `diffusion.clip_each_step`, `clip_x0`, `schedule_precision`,
    `clip_output`):

    - clip_each_step: clip the audio to [-1, 1] after every step (lmnt-com/diffwave, and PriorGrad and FreGrad:
      always with their priors), not only at the end;
    - clip_x0: step to the posterior mean given the clean-audio estimate clipped to [-1, 1] (ivanvovk/WaveGrad),
      instead of DiffWave's eq. 5 (the same step without the clip);
    - precision: "float64" computes the per-step coefficients exactly and rounds them once (lmnt-com/diffwave's
      numpy); "float32" computes them in float32 throughout (ivanvovk/WaveGrad's torch buffers);
    - clip_output: clip the result to [-1, 1] (philsyn/DiffWave-unconditional returns it unclipped).
    """

    @classmethod
    def from_config(cls, diffusion_config):
        """The options of the config's `diffusion` section."""
        d = diffusion_config
        return cls(d["clip_each_step"] or d["prior"] != "standard", d["clip_x0"], d["schedule_precision"],
                   d["clip_output"])


def reverse_coefficients(betas, precision="float64"):
    """The per-step coefficients of the reverse process (float32 tensors (S,)) for an inference schedule:
    x_scale = 1 / sqrt(alpha), eps_scale = beta / sqrt(1 - abar) (DiffWave eq. 5); recip = sqrt(1 / abar),
    recip_m1 = sqrt(1 - abar) recip (the clean-audio estimate recip x - recip_m1 eps), coef_x0 and coef_xt (the
    posterior mean, DDPM eq. 7); sigma, the standard deviation of the added noise (DDPM eq. 7 and DiffWave eq. 5)."""
    dtype = tf.float32 if precision == "float32" else tf.float64
    betas = tf.cast(betas, dtype)
    alphas = 1.0 - betas
    alpha_bars = tf.math.cumprod(alphas)
    prev = tf.concat([tf.ones([1], dtype), alpha_bars[:-1]], 0)
    recip = tf.sqrt(1.0 / alpha_bars)
    coefficients = {
        "x_scale": 1.0 / tf.sqrt(alphas),
        "eps_scale": betas / tf.sqrt(1.0 - alpha_bars),
        "recip": recip,
        "recip_m1": tf.sqrt(1.0 - alpha_bars) * recip,
        "coef_x0": betas * tf.sqrt(prev) / (1.0 - alpha_bars),
        "coef_xt": (1.0 - prev) * tf.sqrt(alphas) / (1.0 - alpha_bars),
        "sigma": tf.sqrt((1.0 - prev) / (1.0 - alpha_bars) * betas),
    }
    return {name: tf.cast(value, tf.float32) for name, value in coefficients.items()}


def reverse_process(eps_fn, betas, inputs, seeds, length, options=SamplingOptions(), std=None):
    """Ancestral sampling x_T -> x_0 (DiffWave algorithm 2, WaveGrad algorithm 2) from seeded noise.

    eps_fn(x, c) predicts the noise in x (B, length) given the network's noise input c (B,). `betas` (S,) is the
    inference schedule and `inputs` (S,) what the network is given at each step (the possibly fractional
    training step, or the noise level). Example b starts from noise drawn from seeds[b] (stream -1) and gets
    fresh noise from seeds[b] at each step (stream n), so a given seed always gives the same audio. With a prior's
    std (B, length) (diffusion.prior), the start and every draw are scaled by it (PriorGrad algorithm 2).
    """
    return reverse_loop(eps_fn, reverse_coefficients(betas, options.precision), inputs,
                        scaled(per_example_normal(seeds, length, -1), std),
                        lambda n: scaled(per_example_normal(seeds, length, n), std), options)


def reverse_process_from_noise(eps_fn, betas, inputs, noise, options=SamplingOptions(), unroll=False, std=None):
    """Ancestral sampling as `reverse_process`, with every standard-normal draw given: `noise` (S, B, length) holds
    the start x_T in noise[S - 1] and the draw added after step n >= 1 in noise[n - 1] (the order of
    lmnt-com/diffwave); each is scaled by the prior's std when one is given."""
    noise = tf.convert_to_tensor(noise, tf.float32)
    return reverse_loop(eps_fn, reverse_coefficients(betas, options.precision), inputs, scaled(noise[-1], std),
                        lambda n: scaled(noise[n - 1], std), options, unroll)


def reverse_loop(eps_fn, coefficients, inputs, x_T, noise_at, options=SamplingOptions(), unroll=False):
    """The reverse loop from x_T in one tf.while_loop, or unrolled into one graph per step if `unroll` (for
    converters that cannot take the loop; `inputs` must then have a static length), with the coefficients of
    `reverse_coefficients` (or recorded ones); noise_at(n) is the draw added after step n."""
    c = {name: tf.convert_to_tensor(value, tf.float32) for name, value in coefficients.items()}
    inputs = tf.cast(inputs, tf.float32)
    batch = tf.shape(x_T)[0]

    def body(n, x):
        # unrolled, the network's input is a constant (1,), broadcast over the batch, so that what it computes from
        # it (a step embedding) folds into constants
        eps = eps_fn(x, inputs[n][None] if unroll else tf.fill([batch], inputs[n]))
        x = step_mean(c, n, x, eps, options)
        if unroll:
            x = x + c["sigma"][n] * noise_at(n) if n > 0 else x
        else:
            x = tf.cond(n > 0, lambda: x + c["sigma"][n] * noise_at(n), lambda: x)
        return n - 1, step_clip(x, options)

    if unroll:
        x0 = x_T
        for n in reversed(range(inputs.shape[0])):
            _, x0 = body(n, x0)
    else:
        n0 = tf.shape(inputs)[0] - 1
        _, x0 = tf.while_loop(lambda n, x: n >= 0, body, (n0, x_T), maximum_iterations=tf.shape(inputs)[0],
                              shape_invariants=(n0.shape, tf.TensorShape([None, None])))
    return output_clip(x0, options)


def step_mean(c, n, x, eps, options):
    """The mean of x_{n-1} given x_n and the noise estimate eps at step n (0-based): DiffWave eq. 5, or with
    `clip_x0` the posterior mean (DDPM eq. 7) of the clipped clean-audio estimate."""
    if options.clip_x0:
        x0 = tf.clip_by_value(c["recip"][n] * x - c["recip_m1"][n] * eps, -1.0, 1.0)
        return c["coef_x0"][n] * x0 + c["coef_xt"][n] * x
    return c["x_scale"][n] * (x - c["eps_scale"][n] * eps)


def step_clip(x, options):
    """The audio after a step (its noise added), clipped to [-1, 1] if the options clip each step."""
    return tf.clip_by_value(x, -1.0, 1.0) if options.clip_each_step else x


def output_clip(x0, options):
    """The sampled audio, clipped to [-1, 1] unless the options return it unclipped."""
    return tf.clip_by_value(x0, -1.0, 1.0) if options.clip_output else x0


class Sampler:
    """The inference schedules of a trained model: 'full' (every training step), 'fast' (the config's), the
    schedules its family ships by name, or any list of betas; with what the network is given at each step.

    A network conditioned on the step (DiffWave) is given, for a schedule other than the training one, the
    fractional steps aligned with its noise levels (appendix B); one conditioned on the noise level (WaveGrad) is
    given the levels themselves, so that it takes any schedule."""

    def __init__(self, schedule, fast_betas, noise_input="step", named=None, precision="float64", fast_steps=()):
        self.schedule = schedule
        self.fast_betas = np.asarray(fast_betas, dtype=np.float64)
        self.noise_input, self.named, self.precision = noise_input, dict(named or {}), precision
        self.fast_steps = self._inputs(self.fast_betas)  # checks the fast schedule when the model is loaded
        if len(fast_steps):  # given: the steps the network was trained or imported with for this schedule
            if noise_input != "step" or len(fast_steps) != len(self.fast_betas):
                raise UserError(f"diffusion.fast_steps {plain(fast_steps)}: a network given the step takes one per "
                                f"beta of the fast schedule {plain(self.fast_betas)}")
            self.fast_steps = np.asarray(fast_steps, dtype=np.float32)

    @classmethod
    def from_config(cls, diffusion_config, family=None):
        """Schedules from the config's `diffusion` section, for a network of `family` (a registry.Family; None:
        conditioned on the step, no named schedules of a family). With PriorGrad's prior, a network conditioned on
        the step also takes PriorGrad's fast schedules by name."""
        d = diffusion_config
        noise_input = "step" if family is None else family.noise_input
        return cls(Schedule.from_config(d), d["fast_schedule"], noise_input, named_schedules(d, family),
                   d["schedule_precision"], d["fast_steps"])

    @property
    def names(self):
        """The schedules that can be asked for by name."""
        return schedule_names(self.named)

    def _inputs(self, betas):
        if self.noise_input == "level":
            return noise_levels(betas, self.precision)
        return align_steps(self.schedule, betas).astype(np.float32)

    def betas_and_steps(self, which):
        """(betas float64, the network's inputs float32) for `which`: a name (see `names`) or a list of betas."""
        if not isinstance(which, str):
            betas = checked_betas(which)
            return betas, self._inputs(betas)
        if which == "fast":
            return self.fast_betas, self.fast_steps
        if which == "full":
            s = self.schedule
            if self.noise_input == "level":
                return s.betas, self._inputs(s.betas)
            return s.betas, np.arange(s.num_steps, dtype=np.float32)
        if which in self.named:
            return self.betas_and_steps(self.named[which])
        raise UserError(f"unknown schedule '{which}': use one of {', '.join(self.names)}")
