"""Training objectives of the diffusion core: forward noising and the noise-prediction loss, for a network
conditioned on the diffusion step (DiffWave) or on the noise level (WaveGrad)."""

import numpy as np
import tensorflow as tf

from tf_diffwave.diffusion.prior import Prior, scaled
from tf_diffwave.diffusion.schedules import Schedule


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
    prior (diffusion.prior: a batch's standard-normal `noise` times the std its mel gives), plus, with a
    `stft_weight`, that weight times the multi-resolution STFT log-magnitude distance of the prediction to eps,
    averaged over the signal's bands (`stft_loss`: FreGrad's auxiliary loss, section 2.3).

    The diffusion runs on the backbone's signal (`encode(audio)`; the audio itself, or FreGrad's interleaved bands,
    `bands` of them).
    """

    def __init__(self, schedule, noise_input, loss, prior=Prior(), encode=None, bands=1, stft_weight=0.0,
                 stft_resolutions=()):
        self.num_steps, self.noise_input, self.loss, self.prior = schedule.num_steps, noise_input, loss, prior
        self.alpha_bars = tf.constant(schedule.alpha_bars, tf.float32)
        self.levels = tf.constant(np.sqrt(np.concatenate([[1.0], schedule.alpha_bars])), tf.float32)
        self.encode, self.bands = encode or (lambda audio: audio), bands
        self.stft_weight, self.stft_resolutions = stft_weight, [tuple(r) for r in stft_resolutions]

    def model_inputs(self, batch):
        """The training model's inputs for a batch (audio, noise, draws u and v, and a mel for vocoders)."""
        noise = scaled(batch["noise"], self._std(batch))
        noisy, noise_input = self.noisy_input(self.encode(batch["audio"]), noise, batch["u"], batch["v"])
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
        noise = scaled(batch["noise"], std)
        loss = per_example_loss(noise, prediction, self.loss, std)
        if self.stft_weight:
            prediction = tf.cast(prediction, tf.float32)
            distances = [stft_loss(band_of(noise, k, self.bands), band_of(prediction, k, self.bands),
                                   self.stft_resolutions)[1] for k in range(self.bands)]
            loss = loss + self.stft_weight * tf.add_n(distances) / self.bands
        return loss

    def _std(self, batch):
        return None if self.prior.standard else self.prior.std(batch["mel"])


def band_of(signal, k, bands):
    """Band k (B, L / bands) of a signal whose `bands` bands are interleaved sample by sample (B, L)."""
    return signal if bands == 1 else signal[:, k::bands]


def stft_magnitude(x, n_fft, hop, win):
    """|STFT| (B, frames, n_fft / 2 + 1) as torch.stft computes it with center=True: reflect padding of n_fft / 2,
    a periodic Hann window of `win` samples centred in n_fft, the magnitude sqrt(max(re^2 + im^2, 1e-7))
    (ParallelWaveGAN's stft_loss, which FreGrad uses)."""
    x = tf.pad(x, [[0, 0], [n_fft // 2, n_fft // 2]], mode="REFLECT")
    left = (n_fft - win) // 2
    window = tf.pad(tf.signal.hann_window(win, periodic=True), [[left, n_fft - win - left]])
    spectrum = tf.signal.stft(x, n_fft, hop, n_fft, window_fn=lambda *_, **__: window, pad_end=False)
    return tf.sqrt(tf.maximum(tf.square(tf.math.real(spectrum)) + tf.square(tf.math.imag(spectrum)), 1e-7))


def stft_loss(target, predicted, resolutions):
    """(spectral convergence over the batch, log-magnitude distance per example (B,)) of `predicted` against
    `target` (B, L), each averaged over the (n_fft, hop, window) `resolutions`: SC = ||Y - X||_F / ||Y||_F and
    mean |log Y - log X|, Y predicted and X the target (Yamamoto et al., Parallel WaveGAN, eq. 4-6)."""
    convergence, distance = [], []
    for n_fft, hop, win in resolutions:
        x, y = stft_magnitude(target, n_fft, hop, win), stft_magnitude(predicted, n_fft, hop, win)
        convergence.append(tf.norm(y - x) / tf.norm(y))
        distance.append(tf.reduce_mean(tf.abs(tf.math.log(y) - tf.math.log(x)), axis=[1, 2]))
    return tf.add_n(convergence) / len(resolutions), tf.add_n(distance) / len(resolutions)


def for_backbone(backbone, config):
    """How a training batch becomes the loss of `backbone`'s model: the objective its family brings
    (Backbone.training_objective), else the diffusion core's for a network given what its family's `noise_input`
    names."""
    own = backbone.training_objective(config)
    if own is not None:
        return own
    d = config["diffusion"]
    return TrainingObjective(Schedule.from_config(d), backbone.family.noise_input, d["loss"], Prior.from_config(config),
                             backbone.audio_to_signal, backbone.signal_bands, d["stft_loss_weight"],
                             d["stft_loss_resolutions"])


def evaluation_loss(backbone, config, batch):
    """The training objective's loss per example (B,) of `backbone`'s model on a batch, in inference mode (for
    likelihood models: the NLL of held-out clips)."""
    objective = for_backbone(backbone, config)
    return objective.per_example_loss(batch, backbone.model(objective.model_inputs(batch), training=False))
