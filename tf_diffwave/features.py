"""The log-mel spectrogram: one tf.signal function used in preprocessing, training, inference and exports.

Convention (HiFi-GAN / Tacotron 2 front ends): magnitude STFT with a periodic Hann window, Slaney mel
filters, natural log of max(mel, floor), frames centred as librosa's `center=True` (zero padding).
"""

import numpy as np
import tensorflow as tf


def _hz_to_mel(hz):
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3.0)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * (200.0 / 3.0)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


def mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax):
    """Slaney-normalised triangular mel filters, shape (n_fft // 2 + 1, n_mels), float64."""
    fft_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (fft_hz[None, :] - lower) / (centre - lower)
    falling = (upper - fft_hz[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (upper - lower))  # equal area per filter (Slaney's norm)
    return weights.T


class LogMel:
    """Callable turning audio (..., samples) into log-mel frames (..., frames, n_mels) with tf.signal."""

    def __init__(self, sample_rate, n_fft, win_length, hop_length, n_mels, fmin, fmax, log_floor):
        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        self.log_floor = log_floor
        self.basis = tf.constant(mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax), tf.float32)

    @classmethod
    def from_config(cls, audio_config):
        """Build from the config's `audio` section."""
        return cls(**audio_config)

    def __call__(self, audio, center=True):
        """Log-mel of `audio`; with center=False the caller has already padded n_fft // 2 on each side."""
        audio = tf.convert_to_tensor(audio, tf.float32)
        if center:
            pad = self.n_fft // 2
            paddings = [[0, 0]] * (audio.shape.rank - 1) + [[pad, pad]]
            audio = tf.pad(audio, paddings, mode="CONSTANT")
        stft = tf.signal.stft(audio, frame_length=self.n_fft, frame_step=self.hop_length,
                              fft_length=self.n_fft, window_fn=self._window, pad_end=False)
        mel = tf.tensordot(tf.abs(stft), self.basis, axes=1)
        return tf.math.log(tf.maximum(mel, self.log_floor))

    def _window(self, frame_length, dtype):
        # librosa centres a window shorter than n_fft inside the n_fft-sample frame, zeros around it
        window = tf.signal.hann_window(self.win_length, periodic=True, dtype=dtype)
        left = (frame_length - self.win_length) // 2
        return tf.pad(window, [[left, frame_length - self.win_length - left]])
