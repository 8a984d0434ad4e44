"""Objective vocoder quality: how far a rebuilt waveform is from the recording it was rebuilt from.

The distances compare magnitude spectra (blind to phase, as listeners mostly are); PESQ (ITU-T P.862.2,
wideband) and STOI predict perceived quality and intelligibility. Griffin-Lim from the same mel is the floor a
neural vocoder must clear.
"""

import importlib

import librosa
import numpy as np
import soxr

from tf_diffwave.data.mel_refit import implied_spectrum
from tf_diffwave.errors import UserError

MAG_FLOOR = 1e-7  # magnitudes below this count as silence in the log-magnitude distance
PESQ_RATE = 16000  # PESQ wideband is defined at 16 kHz


def log_mel_distance(reference, estimate, log_mel):
    """Mean absolute difference of the two signals' log-mels (the model's own features) over their common frames."""
    length = min(len(reference), len(estimate))
    ref, est = (log_mel(np.asarray(x[:length], np.float32)).numpy() for x in (reference, estimate))
    return float(np.mean(np.abs(ref.astype(np.float64) - est)))


def stft_magnitude(audio, n_fft):
    """|STFT| (float64) with a Hann window of n_fft samples and hop n_fft / 4, frames centred."""
    return np.abs(librosa.stft(np.asarray(audio, np.float64), n_fft=n_fft, hop_length=n_fft // 4, window="hann"))


def mr_stft_distance(reference, estimate, fft_sizes=(512, 1024, 2048)):
    """Multi-resolution STFT distance: the mean over FFT sizes of spectral convergence ||R - E|| / ||R|| (Frobenius)
    plus the mean absolute difference of log magnitudes (natural log, floored at MAG_FLOOR)."""
    length = min(len(reference), len(estimate))
    total = 0.0
    for n_fft in fft_sizes:
        ref, est = stft_magnitude(reference[:length], n_fft), stft_magnitude(estimate[:length], n_fft)
        convergence = np.linalg.norm(ref - est) / max(np.linalg.norm(ref), MAG_FLOOR)
        log_l1 = np.mean(np.abs(np.log(np.maximum(ref, MAG_FLOOR)) - np.log(np.maximum(est, MAG_FLOOR))))
        total += convergence + log_l1
    return float(total / len(fft_sizes))


def pesq_wideband(reference, estimate, sample_rate):
    """PESQ wideband MOS-LQO (about 1.0 to 4.64) after resampling both signals to 16 kHz; NaN when PESQ finds no
    speech in the reference."""
    pesq, no_speech = _optional("pesq", "pesq", "NoUtterancesError")
    length = min(len(reference), len(estimate))
    ref, est = (soxr.resample(np.asarray(x[:length], np.float64), sample_rate, PESQ_RATE)
                for x in (reference, estimate))
    try:
        return float(pesq(PESQ_RATE, ref, est, "wb"))
    except no_speech:
        return float("nan")


def short_time_intelligibility(reference, estimate, sample_rate):
    """STOI (0 to 1, pystoi; it resamples to 10 kHz itself)."""
    (stoi,) = _optional("pystoi", "stoi")
    length = min(len(reference), len(estimate))
    return float(stoi(np.asarray(reference[:length], np.float64), np.asarray(estimate[:length], np.float64),
                      sample_rate, extended=False))


def _optional(module, *names):
    """Names from a package of the `eval` extra, or a one-line error saying how to install it."""
    try:
        imported = importlib.import_module(module)
    except ImportError:
        raise UserError(f"PESQ and STOI need the '{module}' package: pip install 'tf-diffwave[eval]'") from None
    return [getattr(imported, name) for name in names]


def griffin_lim(log_mel_frames, log_mel, iterations=32, length=None):
    """Audio rebuilt from mel features (frames, n_mels) by librosa: the least-squares inverse of the features' mel
    filters (data.mel_refit.implied_spectrum), then Griffin-Lim phase recovery from a fixed random start. `log_mel`
    is the features.LogMel."""
    f = log_mel
    filters = librosa.filters.mel(sr=f.sample_rate, n_fft=f.n_fft, n_mels=f.n_mels, fmin=f.fmin, fmax=f.fmax,
                                  htk=f.htk, norm=f.norm, dtype=np.float64)
    magnitude = implied_spectrum(f.magnitude(log_mel_frames), filters, f.power)
    # librosa's centred STFT of `length` samples has 1 + length // hop frames: features with fewer (a convention
    # that drops the last frame, a mel cut to the audio it covers) repeat their last frame, longer ones are cut
    frames = magnitude.shape[1] + int(f.drop_last) if length is None else 1 + length // f.hop_length
    magnitude = np.pad(magnitude, ((0, 0), (0, max(frames - magnitude.shape[1], 0))), mode="edge")[:, :frames]
    return librosa.griffinlim(magnitude, n_iter=iterations, hop_length=f.hop_length, win_length=f.win_length,
                              window="hann", center=True, length=length, random_state=0).astype(np.float32)


def quality_metrics(reference, estimate, sample_rate, log_mel):
    """All four measures of `estimate` against `reference`, as a dict."""
    return {"log_mel_l1": log_mel_distance(reference, estimate, log_mel),
            "mr_stft": mr_stft_distance(reference, estimate),
            "pesq_wb": pesq_wideband(reference, estimate, sample_rate),
            "stoi": short_time_intelligibility(reference, estimate, sample_rate)}
