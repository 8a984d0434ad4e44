"""The log-mel against librosa on real speech (the HiFi-GAN / Tacotron 2 convention)."""

import librosa
import numpy as np
import pytest
import soundfile

from conftest import DEMO
from tf_diffwave.features import LogMel, mel_filterbank


def librosa_log_mel(y, sr, n_fft, hop, win, n_mels, fmin, fmax):
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop, win_length=win,
                                         n_mels=n_mels, fmin=fmin, fmax=fmax, power=1.0)
    return np.log(np.maximum(mel, 1e-5)).T


@pytest.mark.parametrize("n_fft,hop,win,n_mels,fmax", [(1024, 256, 1024, 80, 8000.0), (1024, 300, 800, 80, 8000.0),
                                                     (2048, 512, 2048, 128, 11025.0)])
def test_log_mel_matches_librosa_on_speech(n_fft, hop, win, n_mels, fmax):
    y, sr = soundfile.read(f"{DEMO}/wavs/LJ001-0001.wav", dtype="float32")
    ours = LogMel(sr, n_fft, win, hop, n_mels, 0.0, fmax, 1e-5)(y).numpy()
    ref = librosa_log_mel(y, sr, n_fft, hop, win, n_mels, 0.0, fmax)
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) < 1e-3


def test_filterbank_matches_librosa_slaney():
    ours = mel_filterbank(22050, 1024, 80, 0.0, 8000.0).T
    ref = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80, fmin=0.0, fmax=8000.0)
    np.testing.assert_allclose(ours, ref, atol=1e-7)


def test_batched_log_mel_equals_per_utterance():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((3, 4096)).astype(np.float32) * 0.1
    log_mel = LogMel(22050, 1024, 1024, 256, 80, 0.0, 8000.0, 1e-5)
    batch = log_mel(y).numpy()
    ref = np.stack([librosa_log_mel(row, 22050, 1024, 256, 1024, 80, 0.0, 8000.0) for row in y])
    assert np.max(np.abs(batch - ref)) < 1e-3
