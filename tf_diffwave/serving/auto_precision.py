"""precision="auto": the fastest reduced-precision path that this CPU has instructions for and whose audio stays
within the quality bound of float32's, found by trying each path on the model itself.

The probe vocodes one test mel (a voiced, syllable-like glide) with every candidate and float32, the same seed,
and times them in turns. The quality test is the log-mel L1 between a candidate's audio and float32's: by the
triangle inequality a candidate whose log-mel lies within L1 d of float32's on an utterance scores within d of
float32 against any reference recording of it, so d <= LOG_MEL_BOUND bounds the cost of the reduced path.
"""

import time

import numpy as np

LOG_MEL_BOUND = 0.02
# the instructions (Linux /proc/cpuinfo flags) that make a reduced precision worth trying
INSTRUCTIONS = {"bfloat16": ("avx512_bf16", "amx_bf16"), "int8": ("avx512_vnni", "avx_vnni", "amx_int8")}


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags as Linux lists them (an empty set elsewhere)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def probe_audio(sample_rate, seconds=0.5):
    """The audio the probe mel is made from: a harmonic glide from 110 to 180 Hz, 20 harmonics falling 6 dB per
    octave, in four syllables, over faint noise (deterministic)."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    phase = 2 * np.pi * (110 * t + 70 * t ** 2 / (2 * seconds))
    voiced = sum(np.sin(k * phase) / k for k in range(1, 21) if k * 180 < sample_rate / 2)
    envelope = np.sin(np.pi * 4 * t / seconds) ** 2
    noise = np.random.default_rng(0).standard_normal(len(t)) * 0.003
    return (0.3 * envelope * voiced / 3 + noise).astype(np.float32)


def choose(runners, log_mel, flags, rounds=3):
    """(precision, one line saying why) for `runners`: "float32" and each candidate precision mapped to a function
    of no arguments that returns the probe's audio (numpy) in that precision; `log_mel(audio)` -> numpy log-mel.
    A candidate runs only if `flags` holds one of its INSTRUCTIONS."""
    candidates = [p for p in runners if p != "float32"]
    tried = [p for p in candidates if flags & set(INSTRUCTIONS[p])]
    if not tried:
        wanted = sorted({flag for p in candidates for flag in INSTRUCTIONS[p]})
        return "float32", f"precision auto: float32 (this CPU has none of {', '.join(wanted)})"
    contestants = ["float32", *tried]
    audio = {p: runners[p]() for p in contestants}  # the warm-up gives the audio compared
    seconds = dict.fromkeys(contestants, float("inf"))
    for _ in range(rounds):
        for p in contestants:
            start = time.perf_counter()
            runners[p]()
            seconds[p] = min(seconds[p], time.perf_counter() - start)
    reference = log_mel(audio["float32"])
    cost = {p: float(np.mean(np.abs(log_mel(audio[p]) - reference))) for p in tried}
    speedup = {p: seconds["float32"] / seconds[p] for p in tried}
    passing = [p for p in tried if cost[p] <= LOG_MEL_BOUND and speedup[p] > 1.0]
    facts = "; ".join(f"{p}: {speedup[p]:.2f}x float32's speed, log-mel L1 {cost[p]:.4f} from its audio"
                      for p in tried)
    if not passing:
        return "float32", f"precision auto: float32 (on this CPU {facts}; a path must be faster and within " \
                          f"{LOG_MEL_BOUND})"
    best = max(passing, key=speedup.get)
    found = ", ".join(sorted(flags & set(INSTRUCTIONS[best])))
    return best, f"precision auto: {best} (this CPU has {found}; {facts}; bound {LOG_MEL_BOUND})"
