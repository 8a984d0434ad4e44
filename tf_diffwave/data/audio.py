"""Reading and writing WAV files, with one-line errors that name the file."""

import os
import struct

import numpy as np
import soundfile
import soxr

from tf_diffwave.atomic import whole_file
from tf_diffwave.errors import UserError

READABLE_EXTENSIONS = {f".{name.lower()}" for name in soundfile.available_formats()}  # what read_audio reads

MIN_SAMPLES = 1024  # below this a truncated file is not used: less than one FFT frame of the features


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


def wav_shortfall(path):
    """(samples the header of a WAV file announces, samples the file holds), or None when it holds them all or is
    not a WAV file. libsndfile reads a truncated WAV without a word; the header's data size tells."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block = None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"fmt ":
                fmt = f.read(size + size % 2)
                block = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
            elif name == b"data":
                held = os.path.getsize(path) - f.tell()
                if not block or size in (0, 0xFFFFFFFF) or held >= size:  # sizes 0 and ~0 mean "streamed"
                    return None
                return size // block, held // block
            else:
                f.seek(size + size % 2, os.SEEK_CUR)


def read_audio(path, sample_rate, on_truncated=None):
    """Mono float32 audio in [-1, 1] at `sample_rate`: channels are averaged, other rates resampled (soxr HQ).

    A WAV file that holds less than its header announces is an error, unless `on_truncated` is given: then it is
    called with a one-line message and the part the file holds is used (if it is at least MIN_SAMPLES long)."""
    check_audio_file(path)
    shortfall = wav_shortfall(path)
    if shortfall is not None:
        announced, held = shortfall
        message = f"{path}: truncated: the header announces {announced} samples, the file holds {held}"
        if on_truncated is None or held < MIN_SAMPLES:
            raise UserError(message + ("" if on_truncated is None else f", less than {MIN_SAMPLES}"))
        on_truncated(f"{message}; using those {held}")
    try:
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as err:
        raise UserError(f"{path}: cannot decode audio ({err})") from None
    audio = data.mean(axis=1)
    if not np.all(np.isfinite(audio)):
        raise UserError(f"{path}: the audio contains NaN or infinite samples")
    return resample(audio, rate, sample_rate)


def resample(audio, rate, sample_rate):
    """float32 `audio` at `rate` resampled to `sample_rate` (soxr HQ; unchanged when the rates agree)."""
    if rate != sample_rate:
        audio = soxr.resample(audio, rate, sample_rate, quality="HQ")
    return np.asarray(audio, dtype=np.float32)


def fit_length(audio, length):
    """`audio` cut to its first `length` samples, or padded with silence at the end up to it."""
    return np.pad(audio[:length], (0, max(length - len(audio), 0)))


def read_clips(paths, sample_rate, length):
    """The audio files at `paths` as fixed-length clips (N, length): each padded with zeros or cut to `length`."""
    return np.stack([fit_length(read_audio(path, sample_rate), length) for path in paths])


def write_wav(path, audio, sample_rate):
    """Write mono float audio as 16-bit PCM WAV."""
    with WavWriter(path, sample_rate) as wav:
        wav.write(audio)


class WavWriter:
    """A mono 16-bit PCM WAV file written chunk by chunk (a context manager). It grows under a temporary name
    beside `path` (x.partial.wav; its header up to date after each chunk, so that it plays while it grows) and
    takes its name when the writer closes without error; an error or an interruption removes it."""

    def __init__(self, path, sample_rate):
        self.place = whole_file(path)
        self.file = soundfile.SoundFile(self.place.__enter__(), "w", samplerate=sample_rate, channels=1,
                                        subtype="PCM_16")

    def write(self, audio):
        """Append float audio (samples,), clipped to [-1, 1]."""
        self.file.write(np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0))
        self.file.flush()

    def __enter__(self):
        return self

    def __exit__(self, *error):
        self.file.close()
        self.place.__exit__(*error)
