"""Unconditional DiffWave on SC09: the reader, the paper's model, training, seeded generation, exports, CLI."""

import glob
import os

import numpy as np
import pytest
import soundfile

import tf_diffwave
from tests.helpers import (
    REPO,
    SC09_DEMO,
    SC09_DEMO_CONFIG,
    SC09_SPEAKERS,
    make_sc09_corpus,
    overfit_losses,
    read_summaries,
    run_script,
    tiny_sc09_overrides,
)
from tf_diffwave.cli.common import run as run_cli
from tf_diffwave.cli.infer import main as infer_main
from tf_diffwave.cli.train import main as train_main
from tf_diffwave.config import load_config
from tf_diffwave.data.corpora import DIGITS, read_sc09, speaker_of
from tf_diffwave.data.pipelines import training_examples
from tf_diffwave.diffusion.samplers import Sampler
from tf_diffwave.errors import UserError
from tf_diffwave.models.registry import build_backbone

SC09_CONFIG = os.path.join(REPO, "configs", "sc09.json")


def speakers(corpus, split):
    return {speaker_of(i) for i in corpus.split(split)}


def test_bundled_subset_splits_by_speaker_from_the_list_files():
    corpus = read_sc09(SC09_DEMO, 10.0, 10.0)
    assert len(corpus.ids) == 60
    assert speakers(corpus, "valid") == {"espeak_enus_m1"}
    assert speakers(corpus, "test") == {"espeak_en029_f1", "espeak_engb_m3"}
    assert speakers(corpus, "train") == {"espeak_engb_m1", "espeak_enus_f2", "flite_slt"}
    assert sorted(corpus.labels[i] for i in corpus.test_ids) == sorted(list(range(10)) * 2)
    assert all(corpus.labels[i] == DIGITS.index(i.split("/")[0]) for i in corpus.ids)


def test_hashed_splits_never_share_a_speaker_and_do_not_depend_on_other_files(tmp_path):
    def corpus(folder, names):
        for digit in ("zero", "one"):
            os.makedirs(tmp_path / folder / digit, exist_ok=True)
            for name in names:
                soundfile.write(str(tmp_path / folder / digit / f"{name}.wav"), np.zeros(10), 16000)
        return read_sc09(str(tmp_path / folder), 30.0, 20.0)

    names = [f"spk{i}_nohash_{k}" for i in range(200) for k in range(2)]
    full, part = corpus("full", names), corpus("part", names[::3])
    splits = {s: speakers(full, s) for s in ("train", "valid", "test")}
    assert set.union(*splits.values()) == {f"spk{i}" for i in range(200)}
    assert sum(len(s) for s in splits.values()) == 200  # no speaker in two splits
    assert 40 <= len(splits["valid"]) <= 80 and 20 <= len(splits["test"]) <= 60  # about 30% and 20%
    for split in splits:  # a speaker lands in the same split whatever else the folder holds
        assert speakers(part, split) == splits[split] & {n.split("_nohash_")[0] for n in names[::3]}


def test_list_files_that_share_a_speaker_are_an_error(tmp_path):
    corpus = make_sc09_corpus(str(tmp_path / "c"))
    (tmp_path / "c" / "validation_list.txt").write_text("zero/flite_slt_nohash_0.wav\n")
    (tmp_path / "c" / "testing_list.txt").write_text("one/flite_slt_nohash_0.wav\n")
    with pytest.raises(UserError, match="testing_list.txt: speaker 'flite_slt' is also listed"):
        read_sc09(corpus, 10.0, 10.0)


def test_clips_are_padded_and_cropped_to_the_model_length(tmp_path):
    corpus = str(tmp_path / "c")
    os.makedirs(os.path.join(corpus, "zero"))
    short, long = np.linspace(-0.5, 0.5, 7000), np.linspace(0.5, -0.5, 21000)
    soundfile.write(os.path.join(corpus, "zero", "a_nohash_0.wav"), short, 16000, "FLOAT")
    soundfile.write(os.path.join(corpus, "zero", "b_nohash_0.wav"), long, 16000, "FLOAT")
    cfg = load_config(SC09_DEMO_CONFIG, [f"data.path={corpus}", "data.valid_percent=0", "data.test_percent=0"])
    seen = {}
    for example in training_examples(cfg, read_sc09(corpus, 0.0, 0.0), seed=[0, 0], examples="clips").take(20):
        audio = example["audio"].numpy()
        assert audio.shape == (16000,)
        seen[round(float(audio[0]), 3)] = audio
    np.testing.assert_allclose(seen[-0.5], np.pad(short, (0, 9000)), atol=1e-6)
    np.testing.assert_allclose(seen[0.5], long[:16000], atol=1e-6)


def test_bad_sc09_folders(tmp_path, capsys):
    corpus = make_sc09_corpus(str(tmp_path / "c"), digits=("zero", "one", "two"))
    for name in os.listdir(tmp_path / "c" / "two"):  # an empty digit folder: a warning, the rest trains
        os.remove(tmp_path / "c" / "two" / name)
    stereo = np.stack([np.full(16000, 0.2), np.full(16000, 0.4)], axis=1)
    soundfile.write(str(tmp_path / "c" / "one" / "stereo_nohash_0.wav"), stereo, 16000)
    cfg = load_config(SC09_DEMO_CONFIG, tiny_sc09_overrides(corpus, str(tmp_path / "run")))
    example = next(iter(training_examples(cfg, read_sc09(corpus, 0.0, 0.0), seed=[0, 0], examples="clips")))
    assert example["audio"].shape == (2000,)
    assert "no audio files (.wav, .flac) for the digit 'two'" in capsys.readouterr().err
    mixed = [a for a in training_examples(cfg, read_sc09(corpus, 0.0, 0.0), seed=[0, 1], examples="clips").take(40)
             if np.allclose(a["audio"].numpy(), 0.3, atol=1e-4)]
    assert mixed, "the stereo clip is read as the mean of its channels"

    for speaker in SC09_SPEAKERS[:3]:  # most of the clips unreadable: an error naming one
        (tmp_path / "c" / "zero" / f"{speaker}_nohash_0.wav").write_bytes(b"RIFF but not really a wav")
        os.remove(glob.glob(str(tmp_path / "c" / "zero" / f"{speaker}_nohash_0.flac"))[0])
    (tmp_path / "c" / "one" / "stereo_nohash_0.wav").write_bytes(b"")
    with pytest.raises(SystemExit):
        run_cli(lambda: train_main(["--config", SC09_DEMO_CONFIG, *tiny_sc09_overrides(corpus, str(tmp_path / "r"))]))
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "_nohash_0.wav" in err and "not a readable audio file" in err
    assert "4 of the 7 training files are unreadable" in err

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match=r"no audio files \(\.wav, \.flac\) in the digit folders"):
        read_sc09(str(empty), 10.0, 10.0)


@pytest.mark.slow
def test_paper_sc09_model_has_24_1m_parameters():
    cfg = load_config(SC09_CONFIG)
    count = build_backbone(cfg).model.count_params()
    assert abs(count - 24.1e6) / 24.1e6 < 0.01, count
    assert build_backbone(cfg).conditioner is None


def test_sc09_config_fast_schedule_is_the_large_one_aligned():
    sampler = Sampler.from_config(load_config(SC09_CONFIG)["diffusion"])
    betas, steps = sampler.betas_and_steps("fast")
    np.testing.assert_allclose(betas, [1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.7], rtol=1e-6)
    np.testing.assert_allclose(steps, [0, 3.2007, 13.4303, 33.8203, 73.9825, 170.6051], atol=1e-4)
    assert sampler.betas_and_steps("full")[0].shape == (200,)


@pytest.mark.slow
def test_tiny_unconditional_model_overfits_one_clip(tmp_path):
    corpus = make_sc09_corpus(str(tmp_path / "c"), digits=("seven",), speakers=SC09_SPEAKERS[:1])
    cfg = load_config(SC09_DEMO_CONFIG, tiny_sc09_overrides(corpus, str(tmp_path / "run")) + [
        "train.learning_rate=0.003", "diffusion.loss=l2", "model.residual_channels=16", "train.batch_size=8",
        "model.audio_length=16000", "diffusion.num_steps=50", "diffusion.beta_end=0.05",
        "diffusion.fast_schedule=[1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5]"])
    first, last = overfit_losses(cfg)
    assert first > 0.8  # untrained: the output layer is zero, so the L2 loss is E[eps^2] = 1
    assert last < 0.5 * first


def test_seeded_generation_is_reproducible_and_independent_of_the_batch(tiny_sc09_run):
    model = tf_diffwave.load(tiny_sc09_run)
    a = model.generate(3, seed=10, batch_size=2)
    b = model.generate(3, seed=10, batch_size=3)
    c = model.generate(1, seed=11)
    assert a.shape == (3, 2000) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(a[1], c[0], atol=1e-6)
    assert np.max(np.abs(a[0] - a[1])) > 1e-2
    with pytest.raises(UserError, match="unconditional"):
        model.vocode(np.zeros((4, 80), np.float32))


def test_training_writes_generated_clips_to_tensorboard(tiny_sc09_run):
    assert {"generated", "generated_mel", "loss"} <= set(read_summaries(os.path.join(tiny_sc09_run, "logs")))


def test_vocoder_refuses_unconditional_generation(tiny_run):
    with pytest.raises(UserError, match="vocoder"):
        tf_diffwave.load(tiny_run).generate(2)


CLEAN_GENERATE = """
import sys, numpy as np, tensorflow as tf
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
a = fn(seed=tf.constant([4, 7], tf.int64))["audio"].numpy()
b = fn(seed=tf.constant([7], tf.int64))["audio"].numpy()
assert a.shape == (2, 2000) and a.dtype == np.float32 and np.all(np.isfinite(a)), a.shape
assert np.max(np.abs(a[1] - b[0])) < 1e-5 and np.max(np.abs(a[0] - a[1])) > 1e-2
assert not any(m.startswith("tf_diffwave") for m in sys.modules)
np.save(sys.argv[2], a)
print("OK")
"""


@pytest.mark.slow
def test_generator_export_runs_in_a_clean_tensorflow_process(tiny_sc09_run, tmp_path):
    root = os.path.join(tiny_sc09_run, "export")
    assert os.listdir(root) == ["2"]
    assert "OK" in run_script(CLEAN_GENERATE, os.path.join(root, "2"), tmp_path / "a.npy")
    served = np.load(tmp_path / "a.npy")
    api = tf_diffwave.load(tiny_sc09_run).generate(1, seed=4)
    np.testing.assert_allclose(served[0], api[0], atol=1e-5)


def test_infer_generates_numbered_wavs_from_seeds(tiny_sc09_run, tmp_path):
    infer_main(["--model-dir", tiny_sc09_run, "--n-samples", "3", "--batch-size", "2", "--seed", "5",
                "--out-dir", str(tmp_path / "out")])
    tag = f"{os.path.basename(tiny_sc09_run)}-2"  # the model folder and its step: two models' clips never collide
    assert sorted(os.listdir(tmp_path / "out")) == [f"seed_{s}_{tag}.wav" for s in (5, 6, 7)]
    audio, rate = soundfile.read(str(tmp_path / "out" / f"seed_6_{tag}.wav"), dtype="float32")
    assert rate == 16000 and audio.shape == (2000,)
    expected = tf_diffwave.load(tiny_sc09_run).generate(1, seed=6)[0]
    np.testing.assert_allclose(audio, expected, atol=1.0 / 32767)
    with pytest.raises(UserError, match="takes no --mel"):
        infer_main(["--model-dir", tiny_sc09_run, "--mel", "LJ001-0001"])
