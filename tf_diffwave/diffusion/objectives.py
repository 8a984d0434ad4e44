"""Training objectives of the diffusion core: forward noising and the noise-prediction loss, for a network
conditioned on the diffusion step (DiffWave) or on the noise level (WaveGrad)."""

import numpy as np
import tensorflow as tf

from tf_diffwave.diffusion.prior import Prior, scaled


def q_sample(alpha_bars, x0, t, noise):
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (DiffWave eq. 2 in closed form); t is an int tensor (B,)."""
    ab = tf.gather(tf.cast(alpha_bars, tf.float32), t)
    return noised(tf.sqrt(ab), x0, noise)


def noised(level, x0, noise):
    """level x_0 + sqrt(1 - level^2) eps for a noise level sqrt(alpha_bar) per example (B,) (WaveGrad eq. 6)."""
    level = tf.reshape(level, [-1] + [1] * (len(x0.shape) - 1))
    return level * x0 + tf.sqrt(1.0 - tf.square(level)) * noise


def per_example_loss(noise, prediction, kind, std=None):
    """Per-example epsilon-prediction loss: mean |eps - eps_theta| ("l1") or squared ("l2", eq. 7); with a prior's
    std (B, L), of (eps - eps_theta) / std (PriorGrad eq. 6, its `scaled_mse_loss` for "l2")."""
    err = noise - tf.cast(prediction, noise.dtype)
    if std is not None:
        err = err / tf.cast(std, err.dtype)
    err = tf.abs(err) if kind == "l1" else tf.square(err)
    return tf.reduce_mean(tf.reshape(err, [tf.shape(err)[0], -1]), axis=1)


class TrainingObjective:
    """How a training example becomes a loss, for a network conditioned on the diffusion step or on the noise
    level (Backbone.noise_input).

    - "step" (DiffWave algorithm 1): t uniform on the training steps, x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,
      and the network is given t;
    - "level" (WaveGrad algorithm 1): s uniform on 1 .. T, the level l uniform between sqrt(abar_{s-1}) and
      sqrt(abar_s) (abar_0 = 1), x = l x_0 + sqrt(1 - l^2) eps, and the network is given l.

    Either way the loss compares the network's prediction with eps (`diffusion.loss`), where eps is drawn from the
    prior (diffusion.prior: a batch's standard-normal `noise` times the std its mel gives).
    """

    def __init__(self, schedule, noise_input, loss, prior=Prior()):
        self.num_steps, self.noise_input, self.loss, self.prior = schedule.num_steps, noise_input, loss, prior
        self.alpha_bars = tf.constant(schedule.alpha_bars, tf.float32)
        self.levels = tf.constant(np.sqrt(np.concatenate([[1.0], schedule.alpha_bars])), tf.float32)

    def model_inputs(self, batch):
        """The training model's inputs for a batch (audio, noise, draws u and v, and a mel for vocoders)."""
        noise = scaled(batch["noise"], self._std(batch))
        noisy, noise_input = self.noisy_input(batch["audio"], noise, batch["u"], batch["v"])
        return [noisy, noise_input, batch["mel"]] if "mel" in batch else [noisy, noise_input]

    def noisy_input(self, x0, noise, u, v):
        """(the noisy audio, what the network is given) for uniform draws u and v in [0, 1) per example."""
        index = tf.minimum(tf.cast(u * self.num_steps, tf.int32), self.num_steps - 1)
        if self.noise_input == "step":
            return q_sample(self.alpha_bars, x0, index, noise), tf.cast(index, tf.float32)
        low, high = tf.gather(self.levels, index), tf.gather(self.levels, index + 1)
        level = low + v * (high - low)
        return noised(level, x0, noise), level

    def per_example_loss(self, batch, prediction):
        """The loss of each example of the batch, given the model's prediction of its noise."""
        std = self._std(batch)
        return per_example_loss(scaled(batch["noise"], std), prediction, self.loss, std)

    def _std(self, batch):
        return None if self.prior.standard else self.prior.std(batch["mel"])
