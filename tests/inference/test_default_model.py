"""The bundled default vocoder: which model it is, that it is small, and that it vocodes speech."""

import os
import re

import librosa
import numpy as np
import pytest
import soundfile

from tests.helpers import DEMO, REPO

BUNDLE = os.path.join(REPO, "checkpoints", "fregrad-allison-16k")


def bundled_step():
    """The step of the bundle's checkpoint, read from TensorFlow's `checkpoint` file."""
    with open(os.path.join(BUNDLE, "checkpoint")) as f:
        return int(re.search(r'model_checkpoint_path: "ckpt-(\d+)"', f.read()).group(1))


def librosa_log_mel(y):
    """Log-mel magnitudes at 16 kHz by librosa, independent of the project's features."""
    return np.log(np.maximum(librosa.feature.melspectrogram(y=y, sr=16000, n_fft=1024, hop_length=256, n_mels=80,
                                                            fmin=80, fmax=7600, power=1.0), 1e-5))


@pytest.fixture(scope="module")
def model():
    import tf_diffwave

    return tf_diffwave.load()


def test_the_default_model_is_the_fregrad_vocoder_of_the_recorded_voice_and_the_docs_name_its_step(model):
    assert os.path.samefile(model.model_dir, BUNDLE)
    assert model.config["model"]["backbone"] == "fregrad" and model.sample_rate == 16000
    assert model.step == bundled_step()
    files = os.listdir(BUNDLE)
    assert sum(os.path.getsize(os.path.join(BUNDLE, name)) for name in files) <= 20e6
    assert not any(name.startswith("events") for name in files)
    with open(os.path.join(REPO, "README.md")) as f:
        assert f"{model.step:,} steps" in f.read(), "the README describes another step"


def test_the_default_model_vocodes_a_sentence_of_another_voice_and_keeps_silence_quiet(model):
    recording, rate = soundfile.read(os.path.join(DEMO, "wavs", "LJ001-0001.wav"), dtype="float32")
    recording = recording[: rate * 3 // 2]  # 1.5 s at 22.05 kHz
    truth = librosa.resample(recording, orig_sr=rate, target_sr=16000, res_type="soxr_hq")
    mel = model.features(truth)
    np.testing.assert_allclose(model.features(recording, sample_rate=rate), mel, atol=1e-3)  # resampled alike
    audio = model.vocode(mel, seed=0)
    assert audio.shape == (len(mel) * 256,) and np.isfinite(audio).all()
    distance = np.mean(np.abs(librosa_log_mel(audio[: len(truth)]) - librosa_log_mel(truth)))
    # mean |log-mel difference| to the recording: white noise of the same loudness scores 2.6, silence 7.2
    assert distance < 1.6
    quiet = model.vocode(np.full((32, model.n_mels), model.log_mel.silence, np.float32), seed=0)
    assert np.sqrt(np.mean(np.square(quiet))) < 0.1 * np.sqrt(np.mean(np.square(truth)))

