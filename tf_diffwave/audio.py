"""Reading and writing WAV files, with one-line errors that name the file."""

import os

import numpy as np
import soundfile
import soxr

from tf_diffwave.errors import UserError


def check_audio_file(path):
    """Raise UserError unless `path` is a readable audio file with at least one sample; return its info."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: audio file not found")
    try:
        info = soundfile.info(path)
    except Exception as err:  # soundfile raises several types, all meaning "not audio we can read"
        reason = str(err).split(":")[-1].strip() or type(err).__name__
        raise UserError(f"{path}: not a readable audio file ({reason})") from None
    if info.frames == 0:
        raise UserError(f"{path}: the audio file is empty (no samples)")
    return info


def read_audio(path, sample_rate):
    """Mono float32 audio in [-1, 1] at `sample_rate`: channels are averaged, other rates resampled (soxr HQ)."""
    check_audio_file(path)
    try:
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as err:
        raise UserError(f"{path}: cannot decode audio ({err})") from None
    audio = data.mean(axis=1)
    if not np.all(np.isfinite(audio)):
        raise UserError(f"{path}: the audio contains NaN or infinite samples")
    if rate != sample_rate:
        audio = soxr.resample(audio, rate, sample_rate, quality="HQ")
    return np.asarray(audio, dtype=np.float32)


def fit_length(audio, length):
    """`audio` cut to its first `length` samples, or padded with silence at the end up to it."""
    return np.pad(audio[:length], (0, max(length - len(audio), 0)))


def write_wav(path, audio, sample_rate):
    """Write mono float audio as 16-bit PCM WAV."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    soundfile.write(path, np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0), sample_rate, subtype="PCM_16")
