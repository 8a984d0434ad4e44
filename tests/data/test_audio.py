"""Reading audio: other sample rates are resampled, channels averaged."""

import numpy as np
import soundfile

from tf_diffwave.data.audio import read_audio


def test_other_rate_is_resampled(tmp_path):
    t = np.arange(16000) / 16000.0
    soundfile.write(tmp_path / "a.wav", 0.5 * np.sin(2 * np.pi * 440.0 * t), 16000, subtype="PCM_24")
    audio = read_audio(str(tmp_path / "a.wav"), 22050)
    assert abs(len(audio) - 22050) <= 1
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    assert abs(np.argmax(spectrum) * 22050 / len(audio) - 440.0) < 2.0
    ref = 0.5 * np.sin(2 * np.pi * 440.0 * np.arange(len(audio)) / 22050.0)
    assert np.max(np.abs(audio[500:-500] - ref[500:-500])) < 1e-2


def test_stereo_is_averaged(tmp_path):
    left, right = np.full(100, 0.2), np.full(100, -0.6)
    soundfile.write(tmp_path / "s.wav", np.stack([left, right], 1), 22050, subtype="FLOAT")
    np.testing.assert_allclose(read_audio(str(tmp_path / "s.wav"), 22050), -0.2, atol=1e-6)
