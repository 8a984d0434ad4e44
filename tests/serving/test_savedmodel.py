"""Exports load in a TensorFlow-only process; infer.py and the Python API vocode; bad input gives one line."""

import os
import re
import shutil
import subprocess
import sys

import librosa
import numpy as np
import pytest
import soundfile

import tf_diffwave
from tests.helpers import CLEAN_LOAD, REPO, random_log_mel, run_script
from tf_diffwave.cli.common import run as run_cli
from tf_diffwave.cli.infer import main as infer_main
from tf_diffwave.errors import UserError


def latest_export(run):
    root = os.path.join(run, "export")
    return os.path.join(root, max(os.listdir(root), key=int))


@pytest.mark.slow
def test_export_runs_in_a_clean_tensorflow_process(tiny_run):
    assert "OK (2, 2304)" in run_script(CLEAN_LOAD, latest_export(tiny_run))


@pytest.mark.slow
def test_saved_model_cli_show_and_scan(tiny_run):
    cli = shutil.which("saved_model_cli") or pytest.fail("saved_model_cli not installed with tensorflow")
    path = latest_export(tiny_run)
    show = subprocess.run([cli, "show", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default"],
                          capture_output=True, text=True, timeout=300)
    assert show.returncode == 0, show.stderr[-2000:]
    assert "inputs['mel']" in show.stdout and "outputs['audio']" in show.stdout
    assert "(-1, -1, 80)" in show.stdout and "(-1, -1)" in show.stdout
    scan = subprocess.run([cli, "scan", "--dir", path, "--tag_set", "serve",
                           "--op_denylist", "PyFunc,PyFuncStateless,EagerPyFunc,ReadFile,WriteFile,PrintV2"],
                          capture_output=True, text=True, timeout=300)
    assert scan.returncode == 0, scan.stderr[-2000:]
    assert "does not contain" in scan.stdout and "contains the following" not in scan.stdout


def test_export_vocodes_as_the_python_api_does_with_the_prior_inside(tiny_run, tmp_path):
    """The tiny run samples from PriorGrad's prior (configs/demo.json): the export computes its std from the mel in
    the graph, and request example b is drawn with seed b."""
    import tensorflow as tf

    model = tf_diffwave.load(tiny_run)
    assert model.config["diffusion"]["prior"] == "priorgrad"
    mel = random_log_mel(4, (2, 9, 80))
    mel[:, :3] = np.log(1e-5)  # silent frames: std_min there
    served = tf.saved_model.load(latest_export(tiny_run)).signatures["serving_default"]
    audio = served(mel=tf.constant(mel))["audio"].numpy()
    np.testing.assert_allclose(audio, model.vocode(mel, seed=0), atol=1e-5)
    assert np.all(model.prior_std(mel)[:, :3 * 256] == np.float32(model.config["diffusion"]["std_min"]))


def test_export_is_a_numbered_version_folder(tiny_run):
    assert os.listdir(os.path.join(tiny_run, "export")) == ["2"]
    assert os.path.isfile(os.path.join(tiny_run, "export", "2", "saved_model.pb"))


def test_python_api_vocodes_single_and_batch(tiny_run):
    model = tf_diffwave.load(tiny_run)
    mel = random_log_mel(1, (7, 80))
    one = model.vocode(mel)
    assert one.shape == (7 * 256,) and one.dtype == np.float32
    two = model.vocode(np.stack([mel, mel]), steps="full", seed=3)
    assert two.shape == (2, 7 * 256)
    np.testing.assert_array_equal(model.vocode(mel, seed=5), model.vocode(mel, seed=5))


def test_infer_cli_writes_wavs_from_id_npy_and_wav(tiny_run, tiny_corpus, tmp_path):
    mel = random_log_mel(1, (11, 80))
    np.save(tmp_path / "m.npy", mel)
    wav = os.path.join(tiny_corpus, "wavs", "LJ001-0002.wav")
    infer_main(["--mel", "LJ001-0001", str(tmp_path / "m.npy"), wav, "--model-dir", tiny_run,
                "--out-dir", str(tmp_path / "out")])
    model = f"{os.path.basename(tiny_run)}-2"  # outputs are named <input>_<model folder>-<step>.wav
    info = soundfile.info(str(tmp_path / "out" / f"m_{model}.wav"))
    assert info.samplerate == 22050 and info.subtype == "PCM_16" and info.frames == 11 * 256
    ref = soundfile.info(wav)
    out = soundfile.info(str(tmp_path / "out" / f"LJ001-0002_{model}.wav"))
    assert abs(out.frames - ref.frames) <= 256
    assert os.path.isfile(tmp_path / "out" / f"LJ001-0001_{model}.wav")


def one_line_error(capsys, main, argv):
    with pytest.raises(SystemExit) as exc:
        run_cli(lambda: main(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_mel_inputs_give_one_line_errors(tiny_run, tmp_path, capsys):
    np.save(tmp_path / "nan.npy", np.full((5, 80), np.nan, np.float32))
    np.save(tmp_path / "bins.npy", np.zeros((5, 64), np.float32))
    (tmp_path / "text.wav").write_text("this is not audio")
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 22050)
    with open(tmp_path / "corrupt.wav", "wb") as f:
        f.write(b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(40))
    cases = {"nan.npy": "NaN", "bins.npy": "expected (frames, 80)", "text.wav": "not a readable audio file",
             "empty.wav": "empty", "corrupt.wav": "not a readable audio file"}
    for name, problem in cases.items():
        err = one_line_error(capsys, infer_main, ["--mel", str(tmp_path / name), "--model-dir", tiny_run])
        assert name in err and problem in err, err
    err = one_line_error(capsys, infer_main, ["--mel", "LJ999-0001", "--model-dir", tiny_run])
    assert "LJ999-0001" in err and "not found" in err
    err = one_line_error(capsys, infer_main, ["--mel", "x.npy", "--model-dir", str(tmp_path / "nowhere")])
    assert "nowhere" in err


def test_api_rejects_bad_mels(tiny_run):
    model = tf_diffwave.load(tiny_run)
    with pytest.raises(UserError, match="expected"):
        model.vocode(np.zeros((4, 81), np.float32))
    with pytest.raises(UserError, match="NaN"):
        model.vocode(np.full((4, 80), np.inf, np.float32))


@pytest.mark.slow
def test_infer_script_on_a_fresh_clone_layout_uses_bundled_model(tmp_path):
    """`python infer.py --mel LJ001-0001` with no other flag: the bundled vocoder (16 kHz) vocodes the demo
    corpus's recording (22.05 kHz, resampled), from any folder."""
    out = subprocess.run([sys.executable, os.path.join(REPO, "infer.py"), "--mel", "LJ001-0001"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    (written,) = os.listdir(tmp_path)
    assert re.fullmatch(r"LJ001-0001_fregrad-allison-16k-\d+\.wav", written)
    audio, rate = soundfile.read(tmp_path / written, dtype="float32")
    truth, truth_rate = soundfile.read(os.path.join(REPO, "data", "ljspeech-demo", "wavs", "LJ001-0001.wav"),
                                       dtype="float32")
    truth = librosa.resample(truth, orig_sr=truth_rate, target_sr=16000)
    assert rate == 16000 and abs(len(audio) - len(truth)) <= 256

    def log_mel(y):  # librosa, independent of the project's features
        return np.log(np.maximum(librosa.feature.melspectrogram(
            y=y[: len(truth)], sr=16000, n_fft=1024, hop_length=256, n_mels=80, fmin=80, fmax=7600, power=1.0),
            1e-5))

    # mean |log-mel difference| to the recording: white noise of the same loudness scores 2.6, silence 7.2
    assert np.mean(np.abs(log_mel(audio) - log_mel(truth))) < 1.6


@pytest.mark.slow
def test_api_export_writes_a_version_folder(tiny_run, tmp_path):
    path = tf_diffwave.load(tiny_run).export(str(tmp_path / "exports"))
    assert path == str(tmp_path / "exports" / "2")
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert not [n for n in os.listdir(tmp_path / "exports") if n.startswith(".")]
