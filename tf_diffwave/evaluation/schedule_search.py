"""Searching a short inference schedule for a trained model, by grid as WaveGrad did (Chen et al., ICLR 2021,
section 3.3): betas of the form m x 10^d (m = 1 .. 9), increasing, scored by how close the vocoded audio's
log-mel comes to the recording's.
"""

import json
import os

import numpy as np

from tf_diffwave.config import SEARCHED_SCHEDULE, load_config
from tf_diffwave.data.audio import read_audio
from tf_diffwave.data.features import LogMel
from tf_diffwave.data.mel_files import crop_to_audio
from tf_diffwave.diffusion.schedules import align_steps
from tf_diffwave.errors import UserError
from tf_diffwave.evaluation.vocoder_measures import log_mel_distance

NOISY_END = 0.25  # a schedule must end in the noisiest quarter of the training range (see candidate_schedules)


def grid_betas(schedule):
    """The grid: m x 10^d for m = 1 .. 9, from the first training beta up to 0.9, increasing."""
    # exact decimals: 3e-1, not 0.30000000000000004
    values = {float(f"{m}e{d}") for d in range(-8, 0) for m in range(1, 10)}
    return sorted(v for v in values if schedule.betas[0] <= v <= 0.9)


def ends_near_white_noise(schedule, betas):
    """Whether the schedule's cumulative noise reaches the noisiest NOISY_END of the training range, measured in
    sqrt(alpha-bar): sampling starts from white noise, which only the end of the training range resembles."""
    root_end = np.sqrt(np.prod(1.0 - np.asarray(betas)))
    lo, hi = np.sqrt(schedule.alpha_bars[-1]), np.sqrt(schedule.alpha_bars[0])
    return root_end <= lo + NOISY_END * (hi - lo)


def candidate_schedules(schedule, steps, count, seed=0):
    """Up to `count` distinct increasing schedules of `steps` grid betas, drawn at random (seeded), each inside
    the training noise range (every cumulative level matches a training step) and ending near white noise."""
    grid = grid_betas(schedule)
    if len(grid) < steps:
        raise UserError(f"the beta grid has only {len(grid)} values; cannot build {steps}-step schedules")
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(1000 * count):
        if len(found) == count:
            break
        betas = sorted(rng.choice(grid, steps, replace=False).tolist())
        if betas in found or not ends_near_white_noise(schedule, betas):
            continue
        try:
            align_steps(schedule, betas)
        except UserError:
            continue
        found.append(betas)
    return found


def score_schedule(model, mels, references, betas, distance):
    """Mean distance(recording, vocoded) over the mels vocoded with `betas` (seed 0 for every candidate, so that
    they differ only in their schedule)."""
    return float(np.mean([distance(reference, model.vocode(mel, steps=betas))
                          for mel, reference in zip(mels, references)]))


def save_searched_schedule(model_dir, report):
    """Write the search report (its 'fast_schedule' is what loading the run then uses) to the run folder."""
    path = os.path.join(model_dir, SEARCHED_SCHEDULE)
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    return path


def search_schedule(model, paths, steps, count, seed=0, max_seconds=3.0, on_score=None):
    """Score `count` candidate schedules of `steps` betas (and the config's own fast schedule, when it has that
    many) by the log-mel L1 distance of the audio vocoded from the first `max_seconds` of each recording at
    `paths` to the recording; the report, best first. `on_score(done, total, best score)` follows the progress."""
    a = model.config["audio"]
    log_mel = LogMel.from_config(a)
    references = [read_audio(path, a["sample_rate"])[: int(max_seconds * a["sample_rate"])] for path in paths]
    mels = [crop_to_audio(log_mel(r).numpy(), len(r), a["hop_length"]) for r in references]
    # the config's own schedule, not one an earlier search saved
    paper = [float(b) for b in load_config(os.path.join(model.model_dir, "config.json"))["diffusion"]["fast_schedule"]]
    candidates = candidate_schedules(model.sampler.schedule, steps, count, seed)
    if len(paper) == steps and paper not in candidates:
        candidates.insert(0, paper)
    if not candidates:
        raise UserError(f"no {steps}-step schedule on the grid fits the training noise range")
    scores = []
    for n, betas in enumerate(candidates, 1):
        scores.append(score_schedule(model, mels, references, betas,
                                     lambda ref, est: log_mel_distance(ref, est, log_mel)))
        if on_score is not None:
            on_score(n, len(candidates), min(scores))
    best = int(np.argmin(scores))
    report = {"fast_schedule": candidates[best], "log_mel_l1": scores[best],
              "candidates": [{"betas": c, "log_mel_l1": s} for c, s in zip(candidates, scores)]}
    if paper in candidates:
        report["config_schedule"] = {"betas": paper, "log_mel_l1": scores[candidates.index(paper)]}
    return report
