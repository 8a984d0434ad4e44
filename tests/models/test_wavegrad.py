"""WaveGrad: its pieces against independent references, ivanvovk/WaveGrad checkpoints converted without PyTorch
against that code's outputs, and a tiny model through the same commands as DiffWave.

The parity references are tests/fixtures/wavegrad/ (a checkpoint saved by ivanvovk's code with random weights,
its config and that code's outputs; see the README there).
"""

import json
import os

import librosa
import numpy as np
import pytest
import soundfile
import tensorflow as tf

from tests.helpers import (
    DEMO,
    REPO,
    WAVEGRAD_DEMO_CONFIG,
    relative_error,
    run_script,
    seeded_trainer,
)
from tests.helpers import FIXTURES as FIXTURE_ROOT
from tf_diffwave import load
from tf_diffwave.cli.convert import main as convert_main
from tf_diffwave.cli.export import main as export_main
from tf_diffwave.cli.infer import main as infer_main
from tf_diffwave.cli.train import main as train_main
from tf_diffwave.config import load_config
from tf_diffwave.data.features import LogMel
from tf_diffwave.diffusion.objectives import TrainingObjective
from tf_diffwave.diffusion.samplers import SamplingOptions, reverse_loop
from tf_diffwave.diffusion.schedules import Schedule
from tf_diffwave.errors import UserError
from tf_diffwave.models.registry import build_backbone
from tf_diffwave.models.wavegrad import SCHEDULES
from tf_diffwave.models.wavegrad.network import LinearResample, NoiseLevelEncoding, torch_frequencies

FIXTURES = os.path.join(FIXTURE_ROOT, "wavegrad")


# ---- pieces against independent references -------------------------------------------------------------------------

def torch_linear_interpolation(x, out_length):
    """float64 reference of torch's linear interpolation (align_corners=False, explicit size) over axis 1."""
    length = x.shape[1]
    source = np.maximum((np.arange(out_length) + 0.5) * length / out_length - 0.5, 0.0)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, length - 1)
    weight = (source - low)[None, :, None]
    return (1 - weight) * x[:, low] + weight * x[:, high]


@pytest.mark.parametrize("portable", [False, True], ids=["float64 positions", "float32 positions (LiteRT)"])
@pytest.mark.parametrize("factor,up", [(5, True), (3, True), (2, True), (2, False), (3, False), (5, False)])
def test_linear_resampling_equals_torchs_formula(factor, up, portable):
    x = np.random.default_rng(factor).normal(size=(2, 37, 3))
    layer = LinearResample(factor, up)
    layer.portable = portable
    out = layer(tf.constant(x, tf.float32)).numpy()
    expected = torch_linear_interpolation(x, 37 * factor if up else 37 // factor)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=1e-5)
    if not up and factor > 2:  # on whole blocks, down by 3 and 5 pick x_{3j+1} and x_{5j+2} (no anti-aliasing)
        whole = x[:, : 30].astype(np.float32)
        np.testing.assert_array_equal(LinearResample(factor, up)(whole).numpy(), whole[:, factor // 2::factor])


def test_noise_level_encoding_follows_the_paper():
    levels = np.array([0.3, 0.9999], np.float32)
    encoding = NoiseLevelEncoding(16)(levels).numpy()
    k = np.arange(8)
    angles = 5000.0 * levels.astype(np.float64)[:, None] * 10.0 ** (-4.0 * k / 8)
    np.testing.assert_allclose(encoding, np.concatenate([np.sin(angles), np.cos(angles)], 1), atol=2e-3)


def test_ivanvovk_features_match_librosa():
    """log10 of the HTK mel power with reflect-padded centred frames, the last frame dropped (ivanvovk's data.py)."""
    audio, rate = soundfile.read(os.path.join(DEMO, "wavs", "LJ001-0001.wav"), dtype="float32")
    config = load_config(WAVEGRAD_DEMO_CONFIG)["audio"]
    ours = LogMel.from_config(config)(audio).numpy()
    power = librosa.feature.melspectrogram(y=audio.astype(np.float64), sr=rate, n_fft=1024, hop_length=300,
                                           win_length=1024, window="hann", center=True, pad_mode="reflect",
                                           power=2.0, n_mels=80, fmin=80.0, fmax=8000.0, htk=True, norm=None)
    expected = np.where(power > 0, np.log10(np.maximum(power, 1e-300)), 0.0).T[:-1]
    assert ours.shape == (len(audio) // 300, 80) == expected.shape
    np.testing.assert_allclose(ours, expected, atol=2e-3)


def test_shipped_schedules():
    fibonacci = SCHEDULES["25"]
    assert fibonacci[:4] == [1e-6, 9e-6, 1e-5, 1.9e-5]
    assert all(c == pytest.approx(a + b, rel=1e-12) for a, b, c in zip(fibonacci, fibonacci[1:], fibonacci[2:]))
    assert [len(SCHEDULES[n]) for n in ("6", "12", "25", "50", "100", "1000")] == [6, 12, 25, 50, 100, 1000]
    np.testing.assert_allclose(SCHEDULES["1000"], np.linspace(1e-6, 0.01, 1000), rtol=1e-12)
    assert all(np.all(np.diff(SCHEDULES[n]) >= 0) for n in SCHEDULES)


def test_the_paper_base_model_has_ivanvovks_parameter_count():
    backbone = build_backbone(load_config(os.path.join(REPO, "configs", "wavegrad_ljspeech.json")))
    assert backbone.model.count_params() == 15_810_401  # ivanvovk's README and notebook


def test_training_draws_a_level_between_adjacent_levels_of_the_schedule():
    """WaveGrad algorithm 1: s uniform on 1..T, then l uniform between sqrt(abar_{s-1}) and sqrt(abar_s)."""
    schedule = Schedule(np.linspace(1e-6, 0.01, 1000))
    objective = TrainingObjective(schedule, "level", "l1")
    table = np.sqrt(np.concatenate([[1.0], np.cumprod(1 - np.linspace(1e-6, 0.01, 1000))]))
    u, v = np.array([0.0, 0.5004, 0.9999], np.float32), np.array([0.25, 0.5, 0.999], np.float32)
    x0, eps = np.full((3, 4), 0.5, np.float32), np.ones((3, 4), np.float32)
    noisy, level = (t.numpy() for t in objective.noisy_input(x0, eps, u, v))
    s = np.floor(u * 1000).astype(int)
    expected = table[s] + v * (table[s + 1] - table[s])
    np.testing.assert_allclose(level, expected, rtol=1e-6)
    np.testing.assert_allclose(noisy, (expected * 0.5 + np.sqrt(1 - expected ** 2))[:, None] * np.ones(4),
                               rtol=1e-4)


# ---- ivanvovk/WaveGrad parity -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """(model folder converted through the command, ivanvovk's arrays)."""
    out = str(tmp_path_factory.mktemp("ivanvovk") / "model")
    convert_main(["wavegrad-ivanvovk", os.path.join(FIXTURES, "ivanvovk-small.pt"),
                  os.path.join(FIXTURES, "ivanvovk-small.json"), out])
    return out, dict(np.load(os.path.join(FIXTURES, "ivanvovk-small.npz")))


def test_frequency_tables_equal_torchs():
    ref = np.load(os.path.join(FIXTURES, "ivanvovk-small.npz"))
    for channels in (16, 32, 64, 128, 256, 512):
        np.testing.assert_array_equal(torch_frequencies(channels), ref[f"pos_enc_freqs_{channels}"])


def test_network_output_equals_ivanvovks(converted):
    folder, ref = converted
    model = load(folder)
    assert model.step == 1001 and model.backbone.model.count_params() == 276_785 and model.noise_input == "level"
    eps = model.denoise(ref["train_y_noisy"], ref["train_noise_level"], ref["mel"])
    assert relative_error(eps, ref["eps"]) < 1e-5
    loss = np.mean(np.abs(eps - ref["train_eps"]))
    assert loss == pytest.approx(float(ref["train_loss"]), rel=1e-5)


def test_the_training_table_equals_ivanvovks(converted):
    """Ours is exact (float64, rounded once); ivanvovk's is a float32 running product over 1000 steps, whose
    rounding accumulates to about 2e-7 relative at the end."""
    folder, ref = converted
    model = load(folder)
    objective = TrainingObjective(model.sampler.schedule, "level", "l1")
    np.testing.assert_allclose(objective.levels.numpy(), ref["train_sqrt_alphas_cumprod_prev"], rtol=3e-7)


def test_reverse_process_with_the_recorded_schedule_equals_ivanvovks_audio(converted):
    """Fed ivanvovk's own schedule arrays, the reverse loop (clipped clean-audio estimate, posterior mean) is
    ivanvovk's sampler: only the network's float32 rounding differs."""
    folder, ref = converted
    model = load(folder)
    coefficients = {"recip": ref["sched_sqrt_recip_alphas_cumprod"], "recip_m1": ref["sched_sqrt_alphas_cumprod_m1"],
                    "coef_x0": ref["sched_posterior_mean_coef1"], "coef_xt": ref["sched_posterior_mean_coef2"],
                    "sigma": np.exp(0.5 * ref["sched_posterior_log_variance_clipped"]).astype(np.float32)}
    noise = tf.constant(np.concatenate([ref["rev_z"][1:], ref["rev_y_init"][None]]))
    cond = model.backbone.conditioner(ref["mel"])
    audio = reverse_loop(lambda x, level: model.backbone.denoiser([x, level, cond]), coefficients,
                         ref["sched_noise_level"], noise[-1], lambda n: noise[n - 1],
                         SamplingOptions(clip_x0=True, precision="float32")).numpy()
    assert np.max(np.abs(audio - ref["rev_audio"])) < 1e-4


@pytest.mark.slow
def test_reverse_process_with_our_float32_schedule_equals_ivanvovks_audio(converted):
    """With the schedule computed by our own float32 code: torch's float32 sqrt is not correctly rounded here, so
    our noise levels l_0 .. l_4 are one float32 step from ivanvovk's, which moves the network's estimates by up
    to 1e-3 along the way and the audio by about 1e-4 (README of the fixtures): hence 1e-3, not 1e-4."""
    folder, ref = converted
    model = load(folder)
    assert model.config["diffusion"]["clip_x0"] and model.config["diffusion"]["schedule_precision"] == "float32"
    betas, levels = model.sampler.betas_and_steps("6")
    np.testing.assert_array_equal(betas.astype(np.float32), ref["sched_betas"])
    np.testing.assert_allclose(levels, ref["sched_noise_level"], rtol=2e-7)
    noise = np.concatenate([ref["rev_z"][1:], ref["rev_y_init"][None]])
    audio = model.reverse_process(noise, ref["mel"], "6")
    assert np.max(np.abs(audio - ref["rev_audio"])) < 1e-3
    # a float64 schedule moves the end by about 1.5e-2 (float32's 1 - abar_0 is 1.0133e-6, not 1e-6)
    exact = load(folder)
    exact.synthesizer.options = SamplingOptions(clip_x0=True, precision="float64")
    assert np.max(np.abs(exact.reverse_process(noise, ref["mel"], "6") - ref["rev_audio"])) > 1e-3


@pytest.mark.slow
def test_the_export_vocodes_an_ivanvovk_mel_in_a_tensorflow_only_process(converted):
    folder, ref = converted
    export = os.path.join(folder, "export", "1001")
    script = ("import sys, numpy as np, tensorflow as tf\n"
              "fn = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
              "np.save(sys.argv[3], fn(mel=tf.constant(np.load(sys.argv[2])))['audio'].numpy())\n")
    np.save(os.path.join(folder, "mel.npy"), ref["mel"])
    run_script(script, export, os.path.join(folder, "mel.npy"), os.path.join(folder, "audio.npy"))
    served = np.load(os.path.join(folder, "audio.npy"))
    assert served.shape == (2, 3000)
    np.testing.assert_allclose(served, load(folder).vocode(ref["mel"]), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_the_litert_export_gives_the_reverse_process_audio_without_tensorflow(converted, tmp_path, precision):
    """float32 within LiteRT's float32 tolerance of the reverse process with the same draws; int8 near it, and not
    equal (its weights are int8)."""
    pytest.importorskip("ai_edge_litert")
    from tests.helpers import LITERT_TOLERANCE as TOLERANCE
    from tests.helpers import run_litert

    folder, ref = converted
    path = str(tmp_path / "wavegrad.tflite")
    export_main(["litert", "--model-dir", folder, "--out", path, "--precision", precision])
    model = load(folder)
    steps = len(model.sampler.betas_and_steps("fast")[0])
    noise = np.random.default_rng(3).standard_normal((steps, 2, 3000)).astype(np.float32)
    expected = model.reverse_process(noise, ref["mel"])
    audio = run_litert(path, tmp_path, noise=noise, mel=ref["mel"])
    error = np.max(np.abs(audio - expected))
    assert error < TOLERANCE if precision == "float32" else 0 < relative_error(audio, expected) < 0.05, error


def test_converter_errors_name_the_file_and_the_key(converted, tmp_path):
    folder, _ = converted
    config = json.loads(open(os.path.join(FIXTURES, "ivanvovk-small.json")).read())
    del config["model_config"]["factors"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"bad\.json: model_config\.factors is missing"):
        convert_main(["wavegrad-ivanvovk", os.path.join(FIXTURES, "ivanvovk-small.pt"), str(bad), str(tmp_path / "o")])
    config = json.loads(open(os.path.join(FIXTURES, "ivanvovk-small.json")).read())
    config["model_config"]["upsampling_out_channels"][0] = 32
    bad.write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"ivanvovk-small\.pt: 'nn\.films\.4\.scale_conv\.conv1d\.weight' has shape"):
        convert_main(["wavegrad-ivanvovk", os.path.join(FIXTURES, "ivanvovk-small.pt"), str(bad), str(tmp_path / "o")])
    with pytest.raises(UserError, match="already holds a model"):
        convert_main(["wavegrad-ivanvovk", os.path.join(FIXTURES, "ivanvovk-small.pt"),
                      os.path.join(FIXTURES, "ivanvovk-small.json"), folder])


# ---- a tiny WaveGrad through the same commands as DiffWave ---------------------------------------------------------

@pytest.mark.slow
def test_tiny_wavegrad_resumes_vocodes_and_infers(tiny_wavegrad_run, tmp_path, capsys):
    corpus, model_dir, overrides = tiny_wavegrad_run
    saved = json.loads(open(os.path.join(model_dir, "config.json")).read())
    assert set(saved["model"]) == {"backbone", "tf32", "unconditional", "audio_length", "wavegrad"}
    train_main(["--config", WAVEGRAD_DEMO_CONFIG, *overrides, "train.max_steps=4"])
    assert "resumed from" in capsys.readouterr().out
    model = load(model_dir)
    assert model.step == 4 and model.noise_input == "level"
    mel = np.random.default_rng(0).normal(-3, 1, (7, 80)).astype(np.float32)
    for steps in ("fast", "12", [1e-4, 1e-2, 0.2]):
        audio = model.vocode(mel, steps=steps)
        assert audio.shape == (7 * 300,) and np.all(np.abs(audio) <= 1)
    infer_main(["--model-dir", model_dir, "--mel", "LJ001-0001", "--steps", "6", "--out-dir", str(tmp_path)])
    written, rate = soundfile.read(str(tmp_path / f"LJ001-0001_{os.path.basename(model_dir)}-4.wav"))
    assert rate == 22050 and len(written) == 300 * (len(soundfile.read(os.path.join(corpus, "wavs",
                                                                                     "LJ001-0001.wav"))[0]) // 300)
    with pytest.raises(UserError, match="--steps must be fast, full, 6, 12"):
        infer_main(["--model-dir", model_dir, "--mel", "LJ001-0001", "--steps", "7"])
    with pytest.raises(UserError, match="noise level"):
        model.denoise(np.zeros((1, 300), np.float32), 1.5, mel[None, :1])


@pytest.mark.slow
def test_tiny_wavegrad_is_evaluated_and_its_schedule_searched(tiny_wavegrad_run, tmp_path, capsys, monkeypatch):
    import shutil

    from tests.helpers import read_summaries
    from tf_diffwave.cli.evaluate import main as evaluate_main

    found = read_summaries(os.path.join(tiny_wavegrad_run[1], "logs"))
    assert set(found["valid/log_mel_l1"]) == {2} and np.isfinite(found["valid/log_mel_l1"][2])
    run = str(tmp_path / "run")
    shutil.copytree(tiny_wavegrad_run[1], run)
    monkeypatch.chdir(tmp_path)
    evaluate_main(["vocoder", "--model-dir", run, "--limit", "1", "--steps", "12"])
    with open(tmp_path / "evaluation-vocoder-12.json") as f:
        assert set(json.load(f)["mean"]) == {"model", "griffin_lim", "ground_truth"}
    evaluate_main(["search-schedule", "--model-dir", run, "--candidates", "2", "--utterances", "1",
                   "--max-seconds", "0.5"])
    with open(os.path.join(run, "fast_schedule.json")) as f:
        searched = json.load(f)["fast_schedule"]
    np.testing.assert_allclose(load(run).sampler.fast_betas, searched)


@pytest.mark.slow
def test_tiny_wavegrad_mixed_precision_step_is_finite(tiny_wavegrad_run, tmp_path):

    corpus, _, overrides = tiny_wavegrad_run
    trainer = seeded_trainer(load_config(WAVEGRAD_DEMO_CONFIG, [*overrides, f"train.model_dir={tmp_path}",
                                                         "train.mixed_precision=true"]))
    loss, norm, applied, _ = tf.function(trainer.train_step)(iter(trainer.dataset(0)))
    assert np.isfinite(loss.numpy()) and np.isfinite(norm.numpy()) and bool(applied)
