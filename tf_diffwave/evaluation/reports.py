"""Quality reports of trained models, as dicts (the evaluate command prints and writes them):
- SC09 metrics of generated clips (DiffWave paper): FID on the digit classifier's penultimate features against
  real training clips, IS, modified IS, AM score and the label distribution;
- a vocoder's held-out utterances vocoded from their ground-truth mels: log-mel L1, MR-STFT, PESQ (wideband), STOI
  and the real-time factor, beside Griffin-Lim from the same mel and the recording itself;
- an autoregressive model's negative log-likelihood, in bits per sample, on a split of its corpus.
"""

import glob
import os
import time

import numpy as np

from tf_diffwave.data.audio import read_audio, read_clips
from tf_diffwave.data.corpora import DIGITS, read_corpus, read_sc09
from tf_diffwave.data.features import LogMel
from tf_diffwave.errors import UserError
from tf_diffwave.evaluation.classifier import labelled_clips
from tf_diffwave.evaluation.sc09_metrics import (
    am_score,
    frechet_distance,
    inception_score,
    label_distribution,
    modified_inception_score,
)
from tf_diffwave.evaluation.vocoder_measures import griffin_lim, quality_metrics
from tf_diffwave.shipped import existing_path


def read_wav_folder(folder, sample_rate, length):
    """Every .wav below `folder` (sorted), each padded or cropped to `length`, as an array (N, length)."""
    if not os.path.isdir(folder):
        raise UserError(f"{folder}: folder not found")
    paths = sorted(glob.glob(os.path.join(folder, "**", "*.wav"), recursive=True))
    if not paths:
        raise UserError(f"{folder}: no .wav files")
    return read_clips(paths, sample_rate, length)


def real_training_clips(classifier, real_dir=None):
    """The reference clips for FID and AM: the training split of an SC09-layout folder (by default the corpus
    the classifier was trained on), or every WAV of a plain folder."""
    folder = real_dir or classifier.config["data"]["path"]
    if not os.path.isdir(folder):
        raise UserError(f"{folder}: the classifier's training corpus is not here; give --real DIR")
    if any(os.path.isdir(os.path.join(folder, d)) for d in DIGITS):
        d = classifier.config["data"]
        corpus = read_sc09(folder, d["valid_percent"], d["test_percent"])
        return labelled_clips(corpus, corpus.train_ids, classifier.sample_rate, classifier.length)[0]
    return read_wav_folder(folder, classifier.sample_rate, classifier.length)


def sc09_report(classifier, generated, real):
    """The SC09 metrics of clips `generated` (N, length) against `real` (M, length), as a dict."""
    if len(generated) < 2 or len(real) < 2:
        raise UserError(f"the metrics need at least 2 generated and 2 real clips ({len(generated)} and {len(real)} "
                        f"given)")
    probs, features = classifier.predict(generated)
    real_probs, real_features = classifier.predict(real)
    return {"clips": len(generated), "reference_clips": len(real),
            "FID": frechet_distance(real_features, features), "IS": inception_score(probs),
            "mIS": modified_inception_score(probs), "AM": am_score(probs, real_probs.mean(axis=0)),
            "labels": dict(zip(DIGITS, label_distribution(probs).round(4).tolist()))}



SYSTEMS = ("model", "griffin_lim", "ground_truth")
METRICS = (("log_mel_l1", "log-mel L1 (lower is better)", 3), ("mr_stft", "MR-STFT (lower)", 3),
           ("pesq_wb", "PESQ wb (higher)", 2), ("stoi", "STOI (higher)", 3), ("rtf", "RTF (lower)", 2))


def corpus_data(model, data_dir=None):
    """The model's `data` section reading the corpus in `data_dir`, by default its own data.path (found in the
    shipped files when it is a relative path of the clone, as for the bundled model)."""
    path = model.config["data"]["path"]
    return dict(model.config["data"], path=data_dir or existing_path(path) or path)


def held_out_utterances(model, data_dir, limit):
    """(corpus, ids) of the held-out split of the run's corpus layout, read from `data_dir` (default: the run's
    data.path), at most `limit` of them."""
    data = corpus_data(model, data_dir)
    corpus = read_corpus(data)
    ids = corpus.valid_ids[:limit] if limit else corpus.valid_ids
    if not ids:
        raise UserError(f"{data['path']}: the held-out split is empty (config key 'data.valid_count')")
    return corpus, ids


def vocoder_report(model, corpus, ids, steps, progress=None, seed=0, on_utterance=None):
    """Per-utterance and mean quality of the model (its audio drawn with `seed`), Griffin-Lim and the recording
    itself, as a dict. `on_utterance(id, mels)` is given each utterance's log-mels {"recording", "model",
    "Griffin-Lim": (frames, n_mels)}, for pictures."""
    a = model.config["audio"]
    rate, log_mel = a["sample_rate"], LogMel.from_config(a)
    for frames in (8, 9):  # trace the vocoder for variable lengths, and warm Griffin-Lim, before any timing
        model.vocode(np.full((frames, model.n_mels), log_mel.silence, np.float32), steps=steps)
        griffin_lim(np.zeros((frames, model.n_mels), np.float32), log_mel)
    rows = {}
    for n, utterance in enumerate(ids, 1):
        audio = read_audio(corpus.wav_paths[utterance], rate)
        mel = log_mel(audio).numpy()
        seconds = len(audio) / rate
        start = time.perf_counter()
        vocoded = model.vocode(mel, steps=steps, seed=seed)
        vocode_time = time.perf_counter() - start
        start = time.perf_counter()
        rebuilt = griffin_lim(mel, log_mel, length=len(audio))
        rebuild_time = time.perf_counter() - start
        rows[utterance] = {
            "model": {**quality_metrics(audio, vocoded, rate, log_mel), "rtf": vocode_time / seconds},
            "griffin_lim": {**quality_metrics(audio, rebuilt, rate, log_mel), "rtf": rebuild_time / seconds},
            "ground_truth": {**quality_metrics(audio, audio, rate, log_mel), "rtf": None}}
        if on_utterance is not None:
            on_utterance(utterance, {"recording": mel, "model": log_mel(vocoded).numpy(),
                                     "Griffin-Lim": log_mel(rebuilt).numpy()})
        if progress is not None:
            progress.update(n)
    mean = {system: {key: _mean([row[system][key] for row in rows.values()]) for key, _, _ in METRICS}
            for system in SYSTEMS}
    return {"model_dir": model.model_dir, "step": model.step, "features": model.log_mel.convention,
            "steps": steps if isinstance(steps, str) else
            [float(b) for b in steps], "precision": model.precision, "seed": seed, "utterances": rows, "mean": mean}


def _mean(values):
    values = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(values)) if values else None


def nll_report(model, data_dir, split, limit):
    """The NLL of an autoregressive model on `split` ("train", "valid" or "test") of its corpus layout read from
    `data_dir` (default: the run's data.path), at most `limit` clips (0: all)."""
    data = corpus_data(model, data_dir)
    corpus = read_corpus(data)
    ids = getattr(corpus, f"{split}_ids")[: limit or None]
    if not ids:
        raise UserError(f"{data['path']}: the {split} split is empty")
    bits = model.nll(read_clips([corpus.wav_paths[i] for i in ids], model.sample_rate,
                                model.config["model"]["audio_length"]))
    return {"corpus": data["path"], "split": split, "clips": len(ids), "nll_bits_per_sample": float(np.mean(bits)),
            "per_clip": dict(zip(ids, map(float, bits)))}
