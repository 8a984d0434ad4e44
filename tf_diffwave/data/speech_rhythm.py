"""Whether a mel's frames last as long as the model's: speech's loudness rises and falls with its syllables, a few
times a second in every language; read at the wrong frame period, a mel's rhythm is that much faster or slower.

The rate is the power-weighted geometric mean frequency of the loudness envelope's modulation spectrum from 0.5
to 25 Hz. Per utterance it varies widely (syllables, pauses), so only mels far from speech's range are flagged:
docs/vocoding.md has how often, measured on recorded speech of four languages.
"""

import logging

import numpy as np

from tf_diffwave.data.front_ends import FRONT_ENDS

logger = logging.getLogger(__name__)
SPEECH_RATE = (2.4, 8.8)  # Hz: 0.25th and 99.75th percentiles of 1,038 utterances (docs/vocoding.md)
TYPICAL_RATE = 5.7  # Hz: their median
SHORTEST = 1.5  # seconds: shorter mels say too little about their rhythm


def loudness_rate(magnitude, frame_seconds):
    """The modulation rate (Hz) of the loudness of mel magnitudes (frames, n_mels) whose frames last
    `frame_seconds`; None for mels shorter than SHORTEST seconds."""
    if len(magnitude) * frame_seconds < SHORTEST:
        return None
    loudness = np.log(np.sum(magnitude, axis=1) + 1e-5)
    loudness = (loudness - loudness.mean()) * np.hanning(len(loudness))
    power = np.abs(np.fft.rfft(loudness, 16384)) ** 2
    rates = np.fft.rfftfreq(16384, frame_seconds)
    band = (rates >= 0.5) & (rates <= min(25.0, 0.45 / frame_seconds))
    weight = power[band] * rates[band]  # power per unit of log frequency
    return float(np.exp(np.sum(np.log(rates[band]) * weight) / max(np.sum(weight), 1e-30)))


def warn_if_not_speech_rhythm(features, log_mel, what="mel"):
    """Log a warning when the rhythm of `features` (frames, n_mels), read at the model's frame period, is not
    speech's: the mel was likely made at another rate or hop. Returns the measured rate (Hz) or None."""
    frame_seconds = log_mel.hop_length / log_mel.sample_rate
    magnitude = log_mel.decompressed(np.asarray(features, np.float64)).numpy()
    rate = loudness_rate(magnitude, frame_seconds)
    if rate is None or SPEECH_RATE[0] <= rate <= SPEECH_RATE[1]:
        return rate
    likely = frame_seconds * rate / TYPICAL_RATE
    near = [f"{name}'s {1000 * f.hop / f.rate:.1f} ms" for name, f in FRONT_ENDS.items()
            if abs(f.hop / f.rate / likely - 1.0) < 0.15 and abs(f.hop / f.rate - frame_seconds) > 1e-6]
    logger.warning(f"{what}: its loudness rises and falls {rate:.1f} times a second read at this model's "
                   f"{1000 * frame_seconds:.1f} ms frames, where speech's comes {SPEECH_RATE[0]:g}-{SPEECH_RATE[1]:g} "
                   f"times: it was likely made with frames of about {1000 * likely:.0f} ms"
                   f"{' (' + ', '.join(near) + ')' if near else ''} and will sound "
                   f"{'slowed' if rate < SPEECH_RATE[0] else 'hurried'}; say its front end (infer --front-end, or "
                   f"--mel-rate and --mel-hop, then --refit-mel)")
    return rate
