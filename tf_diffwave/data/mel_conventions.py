"""Mels from other systems: what values a model's features can take (the checks that stop a mel made in another
convention before it is vocoded into noise), and the conversions from the scales other front ends use.

A model's features (`audio.features`) name a whole recipe: STFT, filterbank and scale (data/features.py). The
conventions below name a scale only, and are converted exactly when the mel comes from the model's own STFT and
filterbank (the common open-source recipes share HiFi-GAN's at 22.05 kHz: 1024-point FFT, hop 256, 80 Slaney
filters from 0 to 8 kHz); "lmnt" names lmnt-com/diffwave's whole recipe, whose filterbank differs from every other
model's, so it converts only to a model with lmnt's features.
"""

import collections

import numpy as np
import tensorflow as tf

from tf_diffwave.data.features import LMNT_RANGE_DB, LMNT_REF_DB
from tf_diffwave.errors import UserError

Convention = collections.namedtuple("Convention", "title formula magnitude")


def _from_log10(x, stats=None):
    if stats is not None:  # ESPnet / ParallelWaveGAN's mean-variance normalisation: (x - mean) / scale
        x = x * stats[1] + stats[0]
    return np.power(10.0, x)


def _from_db(x, max_norm=4.0, min_level_db=-100.0, ref_level_db=20.0):
    db = (x + max_norm) * -min_level_db / (2.0 * max_norm) + min_level_db + ref_level_db
    return np.power(10.0, db / 20.0)


def _from_lmnt(x):
    return np.power(10.0, (x * LMNT_RANGE_DB - LMNT_RANGE_DB + LMNT_REF_DB) / 20.0)


# name -> what the mel holds, in float64 from its values and the convention's options
CONVENTIONS = {
    "ln": Convention("natural log of the mel magnitude (HiFi-GAN, NVIDIA Tacotron 2, FastSpeech 2 recipes)",
                     "ln(max(mel, 1e-5))", lambda x: np.exp(x)),
    "log10": Convention("log10 of the mel magnitude (ESPnet, ParallelWaveGAN), optionally mean-variance normalised "
                        "with a stats file", "(log10(max(mel, 1e-10)) - mean) / scale", _from_log10),
    "db": Convention("Coqui TTS: dB normalised to [-max_norm, max_norm]",
                     "clip(2 max_norm (20 log10(max(mel, 1e-5)) - ref_level_db - min_level_db) / -min_level_db "
                     "- max_norm, +-max_norm)", _from_db),
    "lmnt": Convention("lmnt-com/diffwave: dB mapped to [0, 1] (its own filterbank)",
                       "clip((20 log10(max(mel, 1e-5)) - 20 + 100) / 100, 0, 1)", _from_lmnt),
}
OPTIONS = {"log10": ("stats",), "db": ("max_norm", "min_level_db", "ref_level_db"), "ln": (), "lmnt": ()}
# the scale of each of a model's feature recipes (data/features.py)
FEATURE_SCALES = {"hifigan": "ln(max(mel, floor))", "priorgrad": "ln(max(mel, floor))",
                  "tacotron2": "ln(max(mel, floor))",
                  "lmnt": CONVENTIONS["lmnt"].formula, "ivanvovk": "log10(mel power), 0 where the power is 0"}


def convert(mel, name, log_mel, **options):
    """`mel` (..., frames, n_mels) in convention `name` (CONVENTIONS) -> the model's features (float32), for a model
    whose features `log_mel` computes; UserError where the conversion is not exact or the options do not fit."""
    if name not in CONVENTIONS:
        raise UserError(f"unknown mel convention '{name}': use one of {', '.join(CONVENTIONS)}")
    unknown = sorted(set(options) - set(OPTIONS[name]))
    if unknown:
        raise UserError(f"mel convention '{name}' takes {', '.join(OPTIONS[name]) or 'no options'}, not "
                        f"{', '.join(unknown)}")
    if (name == "lmnt") != (log_mel.convention == "lmnt"):
        theirs, ours = ("lmnt-com/diffwave's", f"'{log_mel.convention}'") if name == "lmnt" else \
            (f"a '{name}' mel's front end", "lmnt-com/diffwave's")
        raise UserError(f"mel convention '{name}': this model's features are {ours}, and {theirs} STFT and "
                        f"filterbank differ from them (lmnt's: HTK filters without normalisation, a unit-norm "
                        f"window), so no conversion is exact; give the model audio, or a mel made with its features")
    stats = options.get("stats")
    if stats is not None and np.shape(stats) != (2, log_mel.n_mels):
        raise UserError(f"mel statistics have shape {np.shape(stats)}, expected (2, {log_mel.n_mels}): the mean and "
                        f"the scale of each mel band")
    output = CONVENTIONS[name].magnitude(np.asarray(mel, np.float64), **options) ** log_mel.power
    return log_mel.compress(tf.constant(output, tf.float64)).numpy().astype(np.float32)


def value_range(log_mel):
    """(lowest, highest) value the model's features can take: the silence floor (None where there is no floor)
    and the largest filter output of full-scale audio, compressed."""
    low = None if log_mel.convention == "ivanvovk" else log_mel.silence
    return low, float(log_mel.compress(tf.constant(log_mel.largest_output, tf.float64)).numpy())


def repeated_floor(mel):
    """The mel's smallest value if it repeats as a silence floor does (at least 1% of the values and 10 of them)
    below values at least 1 higher, else None."""
    smallest = float(mel.min())
    count = int(np.sum(np.abs(mel - smallest) < 1e-5))
    return smallest if count >= max(10, mel.size // 100) and float(mel.max()) > smallest + 1.0 else None


def passed(name):
    """How convention `name` is given: to the commands and to the Python API."""
    return f'--mel-convention {name}, or convention="{name}" in Python'


def likely_convention(mel):
    """A phrase saying which convention `mel` most likely has, and how to pass it, judged by its range and its
    silence floor; None when nothing fits."""
    low, high, floor = float(mel.min()), float(mel.max()), repeated_floor(mel)
    if low >= 0.0 and high <= 1.0:
        return f"lmnt-com/diffwave's [0, 1] mel ({passed('lmnt')}, for a model with lmnt's features)"
    if high > 20.0:
        return f"an unnormalised dB mel: normalise it as Coqui TTS does and pass {passed('db')}"
    if floor is not None and abs(floor - round(floor)) < 1e-4:
        db = f" or a Coqui dB mel with max_norm {-floor:g} ({passed('db')})" if high <= -floor + 1e-4 else ""
        return f"a log10 mel with floor 1e{round(floor)} ({passed('log10')}){db}"
    tens = floor / np.log(10.0) if floor is not None else None
    if tens is not None and abs(tens - round(tens)) < 1e-4:
        return f"a natural-log mel with floor 1e{round(tens)} ({passed('ln')})"
    return None


def own_scale(guess, floor, log_mel):
    """Whether the convention `likely_convention` guessed is the scale the model's features already have."""
    if log_mel.convention == "lmnt":
        return "--mel-convention lmnt" in guess
    return ("--mel-convention ln" in guess and log_mel.convention in ("hifigan", "priorgrad", "tacotron2")
            and floor is not None and abs(floor - log_mel.silence) < 1e-3)


def check_mel(mel, log_mel, what="mel"):
    """Stop with one line (UserError) unless `mel` (frames, n_mels) or (B, frames, n_mels) can be the model's
    features: the number of mels, a transposed array, values outside the features' range, a [0, 1] mel for a
    log-magnitude model, a silence floor at a round number (log10's) that is not the features' own."""
    mel = np.asarray(mel)
    n_mels = log_mel.n_mels
    if mel.ndim in (2, 3) and mel.shape[-1] != n_mels:
        if mel.shape[-2] == n_mels:
            raise UserError(f"{what} has shape {mel.shape}: it looks transposed (mels before frames); this model "
                            f"takes (frames, {n_mels}): pass its transpose")
        raise UserError(f"{what} has {mel.shape[-1]} mels per frame, expected (frames, {n_mels})")
    if mel.size == 0 or not np.all(np.isfinite(mel)):
        return  # the shape and finiteness checks that follow say it
    low, high = value_range(log_mel)
    floor = repeated_floor(mel)
    reason = None
    if float(mel.max()) > high + 1e-3:
        reason = f"values up to {float(mel.max()):.2f}, above the largest these features take ({high:.2f})"
    elif low is not None and float(mel.min()) < low - 1e-3:
        reason = f"values down to {float(mel.min()):.2f}, below their silence floor ({low:.2f})"
    elif log_mel.convention != "lmnt" and float(mel.min()) >= 0.0 and float(mel.max()) <= 1.0 and \
            not np.all(mel == log_mel.silence):  # ivanvovk's features give digital silence 0
        reason = "every value in [0, 1], as no log-magnitude mel of speech is"
    elif low is not None and floor is not None and abs(floor - low) > 1e-3 and abs(floor - round(floor)) < 1e-4:
        # a floor at a round number is a log10 (or normalised dB) floor; a natural-log floor of another front end
        # (ln 1e-4, a converted Coqui mel's) is a mel in this scale and vocodes as one
        reason = f"a silence floor at {floor:.2f}, where these features' is {low:.2f}"
    if reason:
        guess = likely_convention(mel)
        if guess is None:
            hint = "make it with the model's features (infer takes audio too)"
        elif own_scale(guess, floor, log_mel):  # naming it would send the user round in a circle
            hint = ("its scale is this model's own, so its STFT, filterbank or power differ (a power mel, HTK "
                    "filters, another rate or hop): make it with the model's features (infer takes audio too)")
        else:
            hint = f"it looks like {guess}"
        raise UserError(f"{what}: {reason}: not a mel in this model's features ('{log_mel.convention}': "
                        f"{FEATURE_SCALES[log_mel.convention]}); {hint}")
