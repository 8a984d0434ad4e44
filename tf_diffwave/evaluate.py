"""Quality reports for trained models.

usage: tf-diffwave evaluate sc09 --generated DIR --classifier DIR [--real DIR] [--json FILE]
prints, for a folder of generated 1 s clips, the SC09 metrics of the DiffWave paper: FID on the digit
classifier's penultimate features against real training clips, IS, modified IS, AM score, and the classifier's
label distribution.

usage: tf-diffwave evaluate vocoder [--model-dir DIR] [--data DIR] [--steps fast|full|BETAS] [--limit N] [--report F]
vocodes every utterance of the run's held-out split from its ground-truth mel and prints log-mel L1, MR-STFT,
PESQ (wideband), STOI and the real-time factor, beside Griffin-Lim from the same mel and the recording itself;
the report is also written to F (default: evaluation-vocoder-<steps>.json in the current folder).

usage: tf-diffwave evaluate search-schedule --model-dir DIR --steps 6 [--candidates N] [--utterances K]
searches a schedule of that many steps (see schedule_search.py) and saves the best in DIR, where infer.py
--steps fast and later exports pick it up.

usage: tf-diffwave evaluate nll --model-dir DIR [--data DIR] [--split test|valid|train] [--limit N] [--json F]
prints the negative log-likelihood, in bits per sample, of an autoregressive model on a split of its corpus.
"""

import argparse
import glob
import json
import os
import time

import numpy as np

from tf_diffwave.audio import fit_length, read_audio
from tf_diffwave.classifier import DigitClassifier, read_clips
from tf_diffwave.cli import parse_steps, start_run
from tf_diffwave.config import load_config
from tf_diffwave.corpora import DIGITS, read_corpus, read_sc09
from tf_diffwave.errors import UserError, run_cli
from tf_diffwave.features import LogMel
from tf_diffwave.model_io import PRECISION_POLICIES, load
from tf_diffwave.progress import progress_bar
from tf_diffwave.quality import griffin_lim, log_mel_distance, quality_metrics
from tf_diffwave.schedule_search import candidate_schedules, save_searched_schedule, score_schedule
from tf_diffwave.metrics import (am_score, frechet_distance, inception_score, label_distribution,
                                 modified_inception_score)


def read_wav_folder(folder, sample_rate, length):
    """Every .wav below `folder` (sorted), each padded or cropped to `length`, as an array (N, length)."""
    if not os.path.isdir(folder):
        raise UserError(f"{folder}: folder not found")
    paths = sorted(glob.glob(os.path.join(folder, "**", "*.wav"), recursive=True))
    if not paths:
        raise UserError(f"{folder}: no .wav files")
    return np.stack([fit_length(read_audio(p, sample_rate), length) for p in paths])


def real_training_clips(classifier, real_dir=None):
    """The reference clips for FID and AM: the training split of an SC09-layout folder (by default the corpus
    the classifier was trained on), or every WAV of a plain folder."""
    folder = real_dir or classifier.config["data"]["path"]
    if not os.path.isdir(folder):
        raise UserError(f"{folder}: the classifier's training corpus is not here; give --real DIR")
    if any(os.path.isdir(os.path.join(folder, d)) for d in DIGITS):
        d = classifier.config["data"]
        corpus = read_sc09(folder, d["valid_percent"], d["test_percent"])
        return read_clips(corpus, corpus.train_ids, classifier.sample_rate, classifier.length)[0]
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


def print_sc09_report(report):
    """The report as a Markdown table."""
    print(f"{report['clips']} generated clips against {report['reference_clips']} real training clips\n")
    print("| FID (lower is better) | IS (higher) | mIS (higher) | AM (lower) |")
    print("| --- | --- | --- | --- |")
    print(f"| {report['FID']:.3f} | {report['IS']:.3f} | {report['mIS']:.3f} | {report['AM']:.3f} |\n")
    print("| " + " | ".join(DIGITS) + " |")
    print("|" + " --- |" * len(DIGITS))
    print("| " + " | ".join(f"{v:.2f}" for v in report["labels"].values()) + " |")


def sc09_main(args):
    classifier = DigitClassifier(args.classifier)
    generated = read_wav_folder(args.generated, classifier.sample_rate, classifier.length)
    report = sc09_report(classifier, generated, real_training_clips(classifier, args.real))
    print_sc09_report(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


SYSTEMS = ("model", "griffin_lim", "ground_truth")
METRICS = (("log_mel_l1", "log-mel L1 (lower is better)", 3), ("mr_stft", "MR-STFT (lower)", 3),
           ("pesq_wb", "PESQ wb (higher)", 2), ("stoi", "STOI (higher)", 3), ("rtf", "RTF (lower)", 2))


def held_out_utterances(model, data_dir, limit):
    """(corpus, ids) of the held-out split of the run's corpus layout, read from `data_dir` (default: the run's
    data.path), at most `limit` of them."""
    data = dict(model.config["data"], path=data_dir or model.config["data"]["path"])
    corpus = read_corpus(data)
    ids = corpus.valid_ids[:limit] if limit else corpus.valid_ids
    if not ids:
        raise UserError(f"{data['path']}: the held-out split is empty (config key 'data.valid_count')")
    return corpus, ids


def vocoder_report(model, corpus, ids, steps, progress=None, seed=0):
    """Per-utterance and mean quality of the model (its audio drawn with `seed`), Griffin-Lim and the recording
    itself, as a dict."""
    a = model.config["audio"]
    rate, log_mel = a["sample_rate"], LogMel.from_config(a)
    for frames in (8, 9):  # trace the vocoder for variable lengths, and warm Griffin-Lim, before any timing
        model.vocode(np.zeros((frames, model.n_mels), np.float32), steps=steps)
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
        if progress is not None:
            progress.update(n)
    mean = {system: {key: _mean([row[system][key] for row in rows.values()]) for key, _, _ in METRICS}
            for system in SYSTEMS}
    return {"model_dir": model.model_dir, "step": model.step, "steps": steps if isinstance(steps, str) else
            [float(b) for b in steps], "precision": model.precision, "seed": seed, "utterances": rows, "mean": mean}


def _mean(values):
    values = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(values)) if values else None


def _cell(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"


def print_vocoder_report(report):
    """The mean table, then one row per utterance and system, in Markdown."""
    header = "| " + " | ".join(title for _, title, _ in METRICS) + " |"
    rule = "|" + " --- |" * (len(METRICS) + 1)
    print(f"\n{len(report['utterances'])} held-out utterances, step {report['step']}, schedule {report['steps']}, "
          f"{report['precision']}, seed {report['seed']}\n")
    print("| system " + header)
    print(rule)
    for system in SYSTEMS:
        print(f"| {system} | " + " | ".join(_cell(report["mean"][system][k], d) for k, _, d in METRICS) + " |")
    print("\n| utterance, system " + header)
    print(rule)
    for utterance, row in report["utterances"].items():
        for system in SYSTEMS[:2]:
            print(f"| {utterance} {system} | " + " | ".join(_cell(row[system][k], d) for k, _, d in METRICS) + " |")


def vocoder_main(args):
    model = load(args.model_dir, args.precision)
    start_run(model.config)
    if model.unconditional:
        raise UserError(f"{args.model_dir}: an unconditional model; use 'evaluate sc09'")
    steps = parse_steps(args.steps, model.sampler.names)
    corpus, ids = held_out_utterances(model, args.data, args.limit)
    report = vocoder_report(model, corpus, ids, steps, progress_bar(len(ids), "utterance"), args.seed)
    print_vocoder_report(report)
    label = steps if isinstance(steps, str) else "betas-" + "-".join(f"{b:g}" for b in steps)
    if args.precision != "float32":
        label += f"-{args.precision}"
    path = args.report or f"evaluation-vocoder-{label}.json"
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    print(f"\nwrote {path}")


def search_schedule_main(args):
    model = load(args.model_dir)
    start_run(model.config)
    if model.unconditional:
        raise UserError(f"{args.model_dir}: the schedule search scores vocoded audio; this model is unconditional")
    corpus, ids = held_out_utterances(model, args.data, args.utterances)
    a = model.config["audio"]
    log_mel = LogMel.from_config(a)
    references = [read_audio(corpus.wav_paths[i], a["sample_rate"])[: int(args.max_seconds * a["sample_rate"])]
                  for i in ids]
    mels = [log_mel(r).numpy()[: len(r) // a["hop_length"]] for r in references]
    # the config's own schedule, not one an earlier search saved
    paper = [float(b) for b in load_config(os.path.join(model.model_dir, "config.json"))["diffusion"]["fast_schedule"]]
    candidates = candidate_schedules(model.sampler.schedule, args.steps, args.candidates, args.seed)
    if len(paper) == args.steps and paper not in candidates:
        candidates.insert(0, paper)
    if not candidates:
        raise UserError(f"no {args.steps}-step schedule on the grid fits the training noise range")
    progress = progress_bar(len(candidates), "schedule", stateful_metrics=["best"])
    scores = []
    for n, betas in enumerate(candidates, 1):
        scores.append(score_schedule(model, mels, references,
                                     betas, lambda ref, est: log_mel_distance(ref, est, log_mel)))
        progress.update(n, [("best", min(scores))])
    best = int(np.argmin(scores))
    report = {"fast_schedule": candidates[best], "log_mel_l1": scores[best], "utterances": ids,
              "candidates": [{"betas": c, "log_mel_l1": s} for c, s in zip(candidates, scores)]}
    if paper in candidates:
        report["config_schedule"] = {"betas": paper, "log_mel_l1": scores[candidates.index(paper)]}
    path = save_searched_schedule(model.model_dir, report)
    print(f"\nbest of {len(candidates)}: {candidates[best]} (log-mel L1 {scores[best]:.4f}"
          + (f"; the config's schedule: {report['config_schedule']['log_mel_l1']:.4f}" if "config_schedule" in report
             else "") + f")\nwrote {path}")


def nll_main(args):
    model = load(args.model_dir)
    start_run(model.config)
    data = dict(model.config["data"], path=args.data or model.config["data"]["path"])
    corpus = read_corpus(data)
    ids = getattr(corpus, f"{args.split}_ids")[: args.limit or None]
    if not ids:
        raise UserError(f"{data['path']}: the {args.split} split is empty")
    length = model.config["model"]["audio_length"]
    clips = np.stack([fit_length(read_audio(corpus.wav_paths[i], model.sample_rate), length) for i in ids])
    bits = model.nll(clips)
    report = {"split": args.split, "clips": len(ids), "nll_bits_per_sample": float(np.mean(bits)),
              "per_clip": dict(zip(ids, map(float, bits)))}
    print(f"{args.split} split of {data['path']}: {len(ids)} clips, NLL {report['nll_bits_per_sample']:.4f} bits "
          f"per sample")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")


def main(argv=None, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description="Measure the quality of generated audio.")
    commands = parser.add_subparsers(dest="command", required=True)
    sc09 = commands.add_parser("sc09", help="FID, IS, mIS, AM and labels of generated SC09 digits")
    sc09.add_argument("--generated", required=True, help="folder of generated WAV clips")
    sc09.add_argument("--classifier", required=True, help="digit classifier folder (python -m tf_diffwave.classifier)")
    sc09.add_argument("--real", help="real clips: an SC09-layout corpus (its training split) or a folder of WAVs; "
                                     "default: the classifier's training corpus")
    sc09.add_argument("--json", help="also write the report to this JSON file")
    vocoder = commands.add_parser("vocoder", help="objective quality of a vocoder against Griffin-Lim")
    vocoder.add_argument("--model-dir", help="run folder (default: the bundled demo checkpoint)")
    vocoder.add_argument("--data", help="corpus folder (default: the run's data.path)")
    vocoder.add_argument("--steps", default="fast", help="fast, full, a schedule the model's family ships by name "
                                                         "(WaveGrad: 6, 12, 25, 50, 100, 1000), or a JSON list of "
                                                         "betas")
    vocoder.add_argument("--limit", type=int, default=0, help="at most this many utterances (0: all)")
    vocoder.add_argument("--precision", choices=list(PRECISION_POLICIES), default="float32",
                         help="what the networks compute in (see infer --precision)")
    vocoder.add_argument("--seed", type=int, default=0, help="seed of the model's noise (another seed shows the "
                                                             "measures' run-to-run spread)")
    vocoder.add_argument("--report", help="the JSON report to write (default: evaluation-vocoder-<steps>.json in "
                                          "the current folder)")
    search = commands.add_parser("search-schedule", help="search a fast schedule for a vocoder")
    search.add_argument("--model-dir", required=True, help="run folder; the best schedule is saved in it")
    search.add_argument("--data", help="corpus folder (default: the run's data.path)")
    search.add_argument("--steps", type=int, default=6, help="schedule length")
    search.add_argument("--candidates", type=int, default=40, help="schedules to score (besides the config's)")
    search.add_argument("--utterances", type=int, default=3, help="held-out utterances to score them on")
    search.add_argument("--max-seconds", type=float, default=3.0, help="the first seconds of each utterance")
    search.add_argument("--seed", type=int, default=0, help="seed of the candidate draw")
    nll = commands.add_parser("nll", help="negative log-likelihood of held-out clips (autoregressive models)")
    nll.add_argument("--model-dir", required=True, help="run folder")
    nll.add_argument("--data", help="corpus folder (default: the run's data.path)")
    nll.add_argument("--split", choices=("valid", "test", "train"), default="test", help="which split (default test)")
    nll.add_argument("--limit", type=int, default=0, help="at most this many clips (0: all)")
    nll.add_argument("--json", help="also write the report to this JSON file")
    args = parser.parse_args(argv)
    {"sc09": sc09_main, "vocoder": vocoder_main, "search-schedule": search_schedule_main,
     "nll": nll_main}[args.command](args)


if __name__ == "__main__":
    run_cli(main)
