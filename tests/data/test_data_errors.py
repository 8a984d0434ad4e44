"""Bad training data gives a one-line error naming the file; short clips are padded, never NaN."""

import os

import numpy as np
import pytest
import soundfile

from tests.helpers import DEMO_CONFIG, make_corpus, seeded_trainer, tiny_overrides
from tf_diffwave.cli.common import run as run_cli
from tf_diffwave.cli.preprocess import main as preprocess_main
from tf_diffwave.cli.train import main as train_main
from tf_diffwave.config import load_config
from tf_diffwave.errors import UserError


def run_train(capsys, overrides):
    with pytest.raises(SystemExit):
        run_cli(lambda: train_main(["--config", DEMO_CONFIG, *overrides]))
    *warnings, err = capsys.readouterr().err.strip().splitlines()
    assert err.startswith("error: ") and "Traceback" not in err
    assert all(line.startswith("warning: ") for line in warnings)
    return err


def test_missing_data_path(tmp_path, capsys):
    err = run_train(capsys, tiny_overrides(str(tmp_path / "missing"), str(tmp_path / "run")))
    assert "missing" in err and "data folder not found" in err


def _break(path, how):
    if how == "missing":
        os.remove(path)
    elif how == "empty":
        soundfile.write(path, np.zeros(0, np.float32), 22050)
    else:
        with open(path, "wb") as f:
            f.write({"no bytes": b"", "not audio": b"hello, not audio at all"}[how])


@pytest.mark.parametrize("how,problem", [("not audio", "not a readable audio file"), *(
    pytest.param(*case, marks=pytest.mark.slow) for case in (("no bytes", "not a readable audio file"),
                                                               ("empty", "empty"), ("missing", "not found")))])
def test_an_unreadable_wav_is_skipped_with_a_warning(tmp_path, capsys, how, problem):
    corpus = make_corpus(str(tmp_path / "c"), ids=("LJ001-0001", "LJ001-0002", "LJ001-0003", "LJ001-0004"))
    _break(os.path.join(corpus, "wavs", "LJ001-0002.wav"), how)
    trainer = seeded_trainer(load_config(DEMO_CONFIG, tiny_overrides(corpus, str(tmp_path / "run"))))
    batches = iter(trainer.dataset(0))
    for _ in range(4):
        assert np.all(np.isfinite(next(batches)["audio"].numpy()))
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: skipping")]
    assert len(warnings) == 1 and "LJ001-0002.wav" in warnings[0] and problem in warnings[0]
    assert "1 of 3 training files skipped" in warnings[0] and trainer.files.count == 1


def test_a_corpus_whose_files_mostly_fail_is_an_error(tmp_path, capsys):
    corpus = make_corpus(str(tmp_path / "c"))
    _break(os.path.join(corpus, "wavs", "LJ001-0001.wav"), "not audio")
    _break(os.path.join(corpus, "wavs", "LJ001-0002.wav"), "missing")
    err = run_train(capsys, tiny_overrides(corpus, str(tmp_path / "run")))
    assert "2 of the 2 training files are unreadable" in err and "LJ001-0002.wav" in err


@pytest.mark.slow
def test_short_clips_are_padded_and_the_loss_is_finite(tmp_path):
    corpus = make_corpus(str(tmp_path / "c"))
    for i in ("LJ001-0001", "LJ001-0002"):
        soundfile.write(os.path.join(corpus, "wavs", f"{i}.wav"), np.full(300, 0.1, np.float32), 22050)
    trainer = seeded_trainer(load_config(DEMO_CONFIG, tiny_overrides(corpus, str(tmp_path / "run"))))
    batch = next(iter(trainer.dataset(0)))
    assert batch["audio"].shape == (2, 8 * 256) and batch["mel"].shape == (2, 8, 80)
    assert np.all(np.isfinite(batch["mel"].numpy()))
    assert np.all(batch["audio"].numpy()[:, 300:] == 0)
    loss, norm, _, _ = trainer.train_step(iter(trainer.dataset(0)))
    assert np.isfinite(loss.numpy()) and np.isfinite(norm.numpy())


def test_preprocess_writes_mels_that_training_reads(tmp_path, tiny_corpus):
    mel_dir = str(tmp_path / "mels")
    overrides = tiny_overrides(tiny_corpus, str(tmp_path / "run")) + [f"data.mel_dir={mel_dir}"]
    preprocess_main(["--config", DEMO_CONFIG, *overrides])
    mel = np.load(os.path.join(mel_dir, "LJ001-0001.npy"))
    frames = soundfile.info(os.path.join(tiny_corpus, "wavs", "LJ001-0001.wav")).frames // 256 + 1
    assert mel.shape == (frames, 80) and mel.dtype == np.float32
    trainer = seeded_trainer(load_config(DEMO_CONFIG, overrides))
    batch = next(iter(trainer.dataset(0)))
    assert batch["mel"].shape == (2, 8, 80)


def test_on_the_fly_crops_match_the_whole_utterance_mel(tmp_path, tiny_corpus):
    """A crop's mel computed on the fly equals the same frames of the whole utterance's mel."""
    from tf_diffwave.data.corpora import read_corpus
    from tf_diffwave.data.features import LogMel
    from tf_diffwave.data.pipelines import training_examples

    cfg = load_config(DEMO_CONFIG, tiny_overrides(tiny_corpus, str(tmp_path / "run")))
    corpus = read_corpus(cfg["data"])
    log_mel = LogMel.from_config(cfg["audio"])
    wholes = {}
    for i in corpus.train_ids:
        audio, _ = soundfile.read(corpus.wav_paths[i], dtype="float32")
        wholes[i] = (audio, log_mel(audio).numpy())
    for example in training_examples(cfg, corpus, seed=[1, 2], examples="crops").take(6):
        crop, mel = example["audio"].numpy(), example["mel"].numpy()
        found = False
        for audio, whole in wholes.values():
            for start in range(len(whole) - 8 + 1):
                if np.array_equal(audio[start * 256: start * 256 + len(crop)], crop):
                    assert np.max(np.abs(whole[start: start + 8] - mel)) < 1e-4
                    found = True
                    break
        assert found


def test_on_the_fly_crops_in_lmnts_convention_match_the_whole_utterance(tmp_path, tiny_corpus):
    """lmnt's features pad an utterance by reflection: so do the training crops that start at its first sample
    (a crop longer than every utterance starts there)."""
    from tf_diffwave.data.corpora import read_corpus
    from tf_diffwave.data.features import LogMel
    from tf_diffwave.data.pipelines import training_examples

    cfg = load_config(DEMO_CONFIG, [*tiny_overrides(tiny_corpus, str(tmp_path / "run")), "audio.features=lmnt",
                                    "audio.fmin=20", "audio.fmax=11025", "data.crop_frames=600"])
    corpus = read_corpus(cfg["data"])
    log_mel = LogMel.from_config(cfg["audio"])
    audios = [soundfile.read(corpus.wav_paths[i], dtype="float32")[0] for i in corpus.train_ids]
    for example in training_examples(cfg, corpus, seed=[1, 2], examples="crops").take(3):
        crop, mel = example["audio"].numpy(), example["mel"].numpy()
        audio = next(a for a in audios if np.array_equal(crop[: len(a)], a))
        whole = log_mel(audio).numpy()
        assert np.max(np.abs(whole - mel[: len(whole)])) < 1e-4


def test_silence_padding_adds_digital_silence_around_each_utterance(tmp_path, tiny_corpus):
    """With data.silence_pad, crops come from the utterance with that much silence added at each end (numpy's pad),
    and a crop of silence has the silent mel."""
    from tf_diffwave.data.corpora import read_corpus
    from tf_diffwave.data.features import LogMel
    from tf_diffwave.data.pipelines import training_examples

    pad = 4096  # samples: 16 hops; the crops (16 hops) are longer than the 2,205 silent samples each utterance has
    cfg = load_config(DEMO_CONFIG, [*tiny_overrides(tiny_corpus, str(tmp_path / "run")), "data.crop_frames=16",
                                    f"data.silence_pad={pad / 22050}"])
    corpus = read_corpus(cfg["data"])
    padded = [np.pad(soundfile.read(corpus.wav_paths[i], dtype="float32")[0], pad) for i in corpus.train_ids]
    silence = LogMel.from_config(cfg["audio"]).silence
    silent_crops = 0
    for example in training_examples(cfg, corpus, seed=[3, 4], examples="crops").take(60):
        crop, mel = example["audio"].numpy(), example["mel"].numpy()
        assert any(np.array_equal(audio[start: start + len(crop)], crop)
                   for audio in padded for start in range(0, len(audio) - len(crop) + 1, 256))
        if not crop.any():
            silent_crops += 1
            assert np.allclose(mel[2:-2], silence)  # the outer frames' windows (n_fft / 2 = 2 hops) reach further
    assert silent_crops > 0
    with pytest.raises(UserError, match="silence_pad"):
        training_examples(load_config(DEMO_CONFIG, [*tiny_overrides(tiny_corpus, str(tmp_path / "run")),
                                                    "data.silence_pad=-1"]), corpus, seed=[0, 0], examples="crops")
