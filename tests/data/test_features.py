"""The mel features against librosa on real speech, in both conventions (HiFi-GAN / Tacotron 2; lmnt-com/diffwave)."""

import librosa
import numpy as np
import pytest
import soundfile

from tests.helpers import DEMO, lmnt_features
from tf_diffwave.data.features import LogMel


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



def test_lmnt_features_match_librosa_on_speech():
    y, sr = soundfile.read(f"{DEMO}/wavs/LJ001-0001.wav", dtype="float32")
    log_mel = LogMel(sr, 1024, 1024, 256, 80, 20.0, sr / 2, 1e-5, features="lmnt")
    ours = log_mel(y).numpy()
    ref = lmnt_features(y, sr)
    assert ours.shape == ref.shape == (len(y) // 256 + 1, 80)
    assert 0.2 < ref.mean() < 0.8  # speech, not the floor or the ceiling
    assert np.max(np.abs(ours - ref)) < 1e-4  # 0.01 dB
    assert log_mel.silence == 0.0 and log_mel(np.zeros(2048, np.float32)).numpy().max() == 0.0


def test_batched_log_mel_equals_per_utterance():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((3, 4096)).astype(np.float32) * 0.1
    log_mel = LogMel(22050, 1024, 1024, 256, 80, 0.0, 8000.0, 1e-5)
    batch = log_mel(y).numpy()
    ref = np.stack([librosa_log_mel(row, 22050, 1024, 256, 1024, 80, 0.0, 8000.0) for row in y])
    assert np.max(np.abs(batch - ref)) < 1e-3
