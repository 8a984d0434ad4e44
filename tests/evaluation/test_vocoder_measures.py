"""Vocoder quality measures on cases whose answer is known by hand."""

import math
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import DEMO, REPO
from tf_diffwave.config import defaults
from tf_diffwave.data.audio import read_audio
from tf_diffwave.data.features import LogMel
from tf_diffwave.evaluation.vocoder_measures import (
    griffin_lim,
    log_mel_distance,
    mr_stft_distance,
    pesq_wideband,
    quality_metrics,
    short_time_intelligibility,
)

RATE = 22050


@pytest.fixture(scope="module")
def speech():
    return read_audio(os.path.join(DEMO, "wavs", "LJ001-0001.wav"), RATE)


@pytest.fixture(scope="module")
def log_mel():
    return LogMel.from_config(defaults()["audio"])


def test_identical_signals_score_perfectly(speech, log_mel):
    scores = quality_metrics(speech, speech.copy(), RATE, log_mel)
    assert scores["log_mel_l1"] == 0 and scores["mr_stft"] == 0
    assert scores["stoi"] > 0.999
    assert scores["pesq_wb"] > 4.6  # the top of the wideband MOS-LQO scale is 4.64


def test_a_negated_signal_has_the_same_magnitudes(speech, log_mel):
    assert log_mel_distance(speech, -speech, log_mel) < 1e-6
    assert mr_stft_distance(speech, -speech) < 1e-9


def test_half_amplitude_noise_gives_the_hand_computed_distances(log_mel):
    """|E| = |R| / 2 everywhere: spectral convergence 1/2, log-magnitude and log-mel L1 both ln 2."""
    noise = np.random.default_rng(0).normal(0, 0.1, RATE).astype(np.float32)
    assert mr_stft_distance(noise, noise / 2) == pytest.approx(0.5 + math.log(2), abs=1e-9)
    assert log_mel_distance(noise, noise / 2, log_mel) == pytest.approx(math.log(2), abs=1e-5)


def test_a_delayed_copy_keeps_pesq_high_while_white_noise_scores_low(speech, log_mel):
    delayed = np.concatenate([np.zeros(100, np.float32), speech[:-100]])
    noise = np.random.default_rng(1).normal(0, np.std(speech), len(speech)).astype(np.float32)
    copy, bad = (quality_metrics(speech, x, RATE, log_mel) for x in (delayed, noise))
    assert copy["pesq_wb"] > 4.0  # PESQ aligns the two signals in time first
    assert 0 < copy["mr_stft"] < bad["mr_stft"] and copy["log_mel_l1"] < bad["log_mel_l1"]
    assert bad["pesq_wb"] < 1.5 and bad["stoi"] < 0.5 < copy["stoi"]
    assert pesq_wideband(speech, noise, RATE) == bad["pesq_wb"]
    assert short_time_intelligibility(speech, delayed, RATE) == copy["stoi"]


@pytest.mark.parametrize("features", ["hifigan", "lmnt", "ivanvovk"])  # ivanvovk's: power mels
def test_griffin_lim_rebuilds_audio_close_to_the_recording(speech, features):
    log_mel = LogMel.from_config({**defaults()["audio"], "features": features})
    rebuilt = griffin_lim(log_mel(speech).numpy(), log_mel, length=len(speech))
    assert rebuilt.shape == speech.shape and rebuilt.dtype == np.float32
    noise = np.random.default_rng(2).normal(0, np.std(speech), len(speech)).astype(np.float32)
    assert log_mel_distance(speech, rebuilt, log_mel) < 0.5 * log_mel_distance(speech, noise, log_mel)
    assert short_time_intelligibility(speech, rebuilt, RATE) > 0.8


def test_candidate_schedules_increase_inside_the_training_range():
    from tf_diffwave.diffusion.schedules import Schedule, align_steps
    from tf_diffwave.evaluation.schedule_search import candidate_schedules, grid_betas

    schedule = Schedule.from_config(defaults()["diffusion"])  # BASE: 50 steps, betas 1e-4 .. 0.05
    grid = grid_betas(schedule)
    assert grid[0] == pytest.approx(1e-4) and grid[-1] == pytest.approx(0.9) and len(grid) == 4 * 9  # 1e-4 .. 9e-1
    found = candidate_schedules(schedule, 6, 30, seed=3)
    assert 0 < len(found) <= 30 and len({tuple(c) for c in found}) == len(found)
    root_end = np.sqrt(schedule.alpha_bars[-1])
    for betas in found:
        assert len(betas) == 6 and all(a < b for a, b in zip(betas, betas[1:]))
        assert all(any(b == pytest.approx(g) for g in grid) for b in betas)
        steps = align_steps(schedule, betas)  # every cumulative level matches a training step
        assert np.all((steps >= 0) & (steps <= 49))
        gamma = np.prod(1 - np.asarray(betas, np.float64))  # ends in the noisiest quarter of the range
        assert np.sqrt(gamma) <= root_end + 0.25 * (np.sqrt(schedule.alpha_bars[0]) - root_end) + 1e-12


@pytest.mark.slow
def test_searched_schedule_is_saved_and_used_by_infer_and_evaluate(tiny_run, tmp_path, capsys, monkeypatch):
    import json
    import shutil

    import tf_diffwave
    from tf_diffwave.cli.evaluate import main as evaluate_main
    from tf_diffwave.cli.infer import main as infer_main

    run = str(tmp_path / "run")
    shutil.copytree(tiny_run, run)
    evaluate_main(["search-schedule", "--model-dir", run, "--candidates", "3", "--utterances", "1",
                   "--max-seconds", "0.5"])
    with open(os.path.join(run, "fast_schedule.json")) as f:
        saved = json.load(f)
    betas = saved["fast_schedule"]
    assert len(saved["candidates"]) == 4
    assert saved["config_schedule"]["betas"] == defaults()["diffusion"]["fast_schedule"]
    assert saved["log_mel_l1"] == min(c["log_mel_l1"] for c in saved["candidates"])
    assert all(a < b for a, b in zip(betas, betas[1:]))
    np.testing.assert_allclose(tf_diffwave.load(run).sampler.fast_betas, betas)

    # a saved schedule other than the paper's: infer.py --steps fast must vocode with it
    paper = defaults()["diffusion"]["fast_schedule"]
    other = next(c["betas"] for c in saved["candidates"] if c["betas"] != paper)
    with open(os.path.join(run, "fast_schedule.json"), "w") as f:
        json.dump({**saved, "fast_schedule": other}, f)
    out = str(tmp_path / "a.wav")
    infer_main(["--mel", "LJ001-0001", "--model-dir", run, "--out", out])
    model = tf_diffwave.load(run)
    mel = LogMel.from_config(model.config["audio"])(read_audio(os.path.join(DEMO, "wavs", "LJ001-0001.wav"),
                                                                RATE)).numpy()
    written = read_audio(out, RATE)[: 256 * len(mel)]
    np.testing.assert_allclose(written, model.vocode(mel, steps=other), atol=2 / 32768)
    assert np.max(np.abs(written - model.vocode(mel, steps=paper))) > 1e-2

    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    evaluate_main(["vocoder", "--model-dir", run, "--limit", "1"])
    printed = capsys.readouterr().out
    assert "| ground_truth | 0.000 | 0.000 | 4.64 | 1.000 | - |" in printed
    assert "log-mel L1 in this model's features ('hifigan': ln(max(mel, floor)))" in printed  # not lmnt's dB scale
    assert not os.path.exists(os.path.join(run, "evaluation-vocoder-fast.json"))  # the model folder is left alone
    with open(tmp_path / "evaluation-vocoder-fast.json") as f:
        report = json.load(f)
    assert report["steps"] == "fast" and len(report["utterances"]) == 1
    assert set(report["mean"]) == {"model", "griffin_lim", "ground_truth"}
    assert report["precision"] == "float32" and report["seed"] == 0 and report["features"] == "hifigan"
    utterance = next(iter(report["utterances"]))
    picture = tf.io.decode_png((tmp_path / f"evaluation-vocoder-fast-{utterance}.png").read_bytes()).numpy()
    assert picture.shape[0] == 630 and picture.shape[2] == 4  # three stacked panels
    assert "and 1 spectrogram pictures" in printed
    evaluate_main(["vocoder", "--model-dir", run, "--limit", "1", "--precision", "bfloat16", "--seed", "3"])
    with open(tmp_path / "evaluation-vocoder-fast-bfloat16.json") as f:
        reduced = json.load(f)
    assert reduced["precision"] == "bfloat16" and reduced["seed"] == 3
    assert reduced["mean"]["ground_truth"] == report["mean"]["ground_truth"]
    assert reduced["mean"]["model"]["mr_stft"] != report["mean"]["model"]["mr_stft"]  # other noise, other audio


@pytest.mark.slow
def test_training_writes_the_held_out_distances_to_tensorboard(tmp_path, tiny_corpus):
    from tests.helpers import DEMO_CONFIG, read_summaries, tiny_overrides
    from tf_diffwave.cli.train import main as train_main

    model_dir = str(tmp_path / "run")
    train_main(["--config", DEMO_CONFIG, *tiny_overrides(tiny_corpus, model_dir), "train.max_steps=2",
                "train.sample_every=2"])
    found = read_summaries(os.path.join(model_dir, "logs"))
    assert set(found["valid/log_mel_l1"]) == set(found["valid/mr_stft"]) == set(found["valid/spectrograms"]) == {2}
    # an untrained model's output is near-silent noise: far from the recording, by either measure
    assert found["valid/log_mel_l1"][2] > 1 and found["valid/mr_stft"][2] > 1


def test_the_held_out_utterances_of_the_espeak_demo_model_are_found_from_any_folder(tmp_path, monkeypatch):
    """The espeak demo model's config names its corpus relative to the clone ("data/ljspeech-demo"); from another
    folder the evaluation finds the shipped corpus, as infer does."""
    import tf_diffwave
    from tf_diffwave.evaluation.reports import held_out_utterances

    model = tf_diffwave.load(os.path.join(REPO, "checkpoints", "demo"))
    monkeypatch.chdir(tmp_path)
    assert not os.path.exists(model.config["data"]["path"])
    corpus, ids = held_out_utterances(model, None, 2)
    assert ids == ["LJ001-0046", "LJ001-0047"] and all(os.path.isfile(corpus.wav_paths[i]) for i in ids)
