"""PriorGrad's prior in the diffusion core: the std from the mel's energy (against float64 numpy), the training
noise and loss it implies, and sampling from it."""

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import DEMO_CONFIG, tiny_overrides
from tf_diffwave.config import load_config
from tf_diffwave.data.features import LogMel
from tf_diffwave.diffusion.objectives import TrainingObjective
from tf_diffwave.diffusion.prior import Prior, energy_statistics, frame_energy
from tf_diffwave.diffusion.samplers import Sampler, SamplingOptions
from tf_diffwave.diffusion.schedules import Schedule
from tf_diffwave.diffusion.synthesizer import Synthesizer
from tf_diffwave.errors import UserError
from tf_diffwave.models.registry import build_backbone

AUDIO = {"sample_rate": 22050, "n_fft": 1024, "win_length": 1024, "hop_length": 256, "n_mels": 80, "fmin": 0.0,
         "fmax": 8000.0, "log_floor": 1e-5}


def numpy_energy(mel, convention):
    """sqrt(sum of the mel amplitudes) per frame, in float64, from each convention's definition."""
    mel = np.asarray(mel, np.float64)
    if convention == "lmnt":  # (20 log10(m) - 20 + 100) / 100
        amplitude = 10.0 ** ((100.0 * mel - 80.0) / 20.0)
    elif convention == "ivanvovk":  # log10 of the mel power
        amplitude = np.sqrt(10.0 ** mel)
    else:  # natural log of the magnitude
        amplitude = np.exp(mel)
    return np.sqrt(amplitude.sum(-1))


@pytest.mark.parametrize("convention", ["hifigan", "priorgrad", "lmnt", "ivanvovk"])
def test_frame_energy_follows_each_conventions_definition(convention):
    log_mel = LogMel(**AUDIO, features=convention)
    audio = 0.3 * np.sin(2 * np.pi * 440 * np.arange(6000) / 22050).astype(np.float32)
    quiet = 1e-4 * np.random.default_rng(0).normal(size=2048).astype(np.float32)
    mel = log_mel(np.concatenate([quiet, audio])).numpy()
    energy = frame_energy(log_mel, mel).numpy()
    np.testing.assert_allclose(energy, numpy_energy(mel, convention), rtol=1e-5)
    assert energy[-5] > 10 * energy[0]  # a tone has more energy than silence


def prior(**kw):
    return Prior("priorgrad", LogMel(**AUDIO), **{"energy_min": 0.5, "energy_max": 3.0, "std_min": 0.1,
                                                   "max_energy": 2.5, **kw})


def test_std_is_the_normalised_energy_held_for_each_frames_samples():
    rng = np.random.default_rng(0)
    mel = rng.normal(-3, 2, (2, 7, 80)).astype(np.float32)
    mel[0, 2] = np.log(1e-5)  # a silent frame
    energy = numpy_energy(mel, "hifigan")
    expected = np.maximum((np.minimum(energy, 2.5) - 0.5) / (2.5 - 0.5), 0.1)  # the override replaces the max
    std = prior().std(tf.constant(mel)).numpy()
    assert std.shape == (2, 7 * 256)
    np.testing.assert_allclose(std.reshape(2, 7, 256), np.repeat(expected[..., None], 256, -1), rtol=1e-6)
    assert std[0, 2 * 256: 3 * 256].tolist() == [np.float32(0.1)] * 256  # silence: std_min exactly
    without = prior(max_energy=None).frame_std(tf.constant(mel)).numpy()
    np.testing.assert_allclose(without, np.maximum((energy - 0.5) / 2.5, 0.1), rtol=1e-6)
    assert Prior().std(tf.constant(mel)) is None  # the standard prior adds nothing


def test_energy_statistics_are_the_range_over_every_frame():
    log_mel = LogMel(**AUDIO)
    mels = [np.full((3, 80), np.log(1e-5), np.float32), np.full((2, 80), 0.5, np.float32)]
    low, high = energy_statistics(mels, log_mel)
    assert low == pytest.approx(np.sqrt(80e-5), rel=1e-6) and high == pytest.approx(np.sqrt(80 * np.exp(0.5)),
                                                                                   rel=1e-6)
    with pytest.raises(UserError, match="no energy range"):
        energy_statistics(mels[:1], log_mel)


def test_training_noise_is_drawn_from_the_prior_and_the_loss_weighted_by_it():
    schedule = Schedule(np.linspace(1e-4, 0.05, 50))
    rng = np.random.default_rng(1)
    mel = rng.normal(-3, 2, (2, 4, 80)).astype(np.float32)
    batch = {"audio": rng.uniform(-0.5, 0.5, (2, 1024)).astype(np.float32),
             "noise": rng.normal(size=(2, 1024)).astype(np.float32), "mel": mel,
             "u": np.array([0.1, 0.9], np.float32), "v": np.zeros(2, np.float32)}
    batch = {k: tf.constant(v) for k, v in batch.items()}
    p = prior()
    std = p.std(batch["mel"]).numpy()
    for loss in ("l1", "l2"):
        objective = TrainingObjective(schedule, "step", loss, p)
        noisy, t, _ = (x.numpy() for x in objective.model_inputs(batch))
        abar = schedule.alpha_bars[t.astype(int)][:, None]
        eps = batch["noise"].numpy() * std
        np.testing.assert_allclose(noisy, np.sqrt(abar) * batch["audio"].numpy() + np.sqrt(1 - abar) * eps,
                                   atol=1e-6)
        prediction = rng.normal(size=(2, 1024)).astype(np.float32)
        err = (eps.astype(np.float64) - prediction) / std
        expected = np.mean(np.abs(err) if loss == "l1" else err ** 2, axis=1)
        np.testing.assert_allclose(objective.per_example_loss(batch, tf.constant(prediction)).numpy(), expected,
                                   rtol=1e-5)


def tiny_config(*overrides):
    return load_config(DEMO_CONFIG, tiny_overrides("unused", "unused") + list(overrides))


def test_with_the_output_layer_at_zero_the_prior_scales_the_audio_by_std():
    """eps = 0: every reverse step is linear in the draws, so the audio sampled with the prior is std x the audio
    sampled with the standard prior from the same draws (small draws, so that no step clamps)."""
    config = tiny_config("diffusion.energy_min=0.03", "diffusion.energy_max=4.0")
    backbone = build_backbone(config)
    for weight in backbone.denoiser.get_layer("output").weights:
        weight.assign(tf.zeros_like(weight))
    mel = np.random.default_rng(2).normal(-4, 2, (1, 6, 80)).astype(np.float32)
    mel[0, :2] = np.log(1e-5)  # silent frames
    sampler = Sampler.from_config(config["diffusion"])
    betas, steps = sampler.betas_and_steps("fast")
    noise = 0.05 * np.random.default_rng(3).normal(size=(len(betas), 1, 6 * 256)).astype(np.float32)
    with_prior = Synthesizer.from_config(backbone, config)
    standard = Synthesizer(backbone, options=SamplingOptions(clip_each_step=True))
    assert with_prior.options.clip_each_step  # PriorGrad clamps after every step
    a = with_prior.vocode_from_noise(mel, betas, steps, noise).numpy()
    b = standard.vocode_from_noise(mel, betas, steps, noise).numpy()
    std = with_prior.prior.std(tf.constant(mel)).numpy()
    assert np.abs(b).max() < 1
    np.testing.assert_allclose(a, std * b, rtol=1e-5, atol=1e-7)
    assert np.all(std[0, :512] == np.float32(0.1))


def test_prior_config_errors_name_the_key():
    with pytest.raises(UserError, match="'diffusion.prior' must be 'standard' for a model that generates without a "
                                        "mel"):
        tiny_config("model.unconditional=true")
    with pytest.raises(UserError, match="'diffusion.energy_min' and 'diffusion.energy_max' must both"):
        tiny_config("diffusion.energy_min=0.1")
    with pytest.raises(UserError, match="'diffusion.energy_min' = 5.0 must be at least 0 and below"):
        tiny_config("diffusion.energy_min=5", "diffusion.energy_max=6")
    with pytest.raises(UserError, match="'diffusion.std_min' must lie in"):
        tiny_config("diffusion.std_min=0")
    with pytest.raises(UserError, match="'diffusion.prior' must be one of standard, priorgrad"):
        tiny_config("diffusion.prior=gaussian")
    with pytest.raises(UserError, match="'diffusion.energy_max' must be a number or null"):
        tiny_config("diffusion.energy_min=0.1", "diffusion.energy_max=high")
    with pytest.raises(UserError, match="needs the training set's energy statistics"):
        Prior.from_config(tiny_config())
