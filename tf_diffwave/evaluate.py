"""Quality reports for trained models.

usage: python -m tf_diffwave.evaluate sc09 --generated DIR --classifier DIR [--real DIR] [--json FILE]
prints, for a folder of generated 1 s clips, the SC09 metrics of the DiffWave paper: FID on the digit
classifier's penultimate features against real training clips, IS, modified IS, AM score, and the classifier's
label distribution.
"""

import argparse
import glob
import json
import os

import numpy as np

from tf_diffwave.audio import fit_length, read_audio
from tf_diffwave.classifier import DigitClassifier, read_clips
from tf_diffwave.corpora import DIGITS, read_sc09
from tf_diffwave.errors import UserError, run_cli
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


def main(argv=None):
    parser = argparse.ArgumentParser(description="Measure the quality of generated audio.")
    commands = parser.add_subparsers(dest="command", required=True)
    sc09 = commands.add_parser("sc09", help="FID, IS, mIS, AM and labels of generated SC09 digits")
    sc09.add_argument("--generated", required=True, help="folder of generated WAV clips")
    sc09.add_argument("--classifier", required=True, help="digit classifier folder (python -m tf_diffwave.classifier)")
    sc09.add_argument("--real", help="real clips: an SC09-layout corpus (its training split) or a folder of WAVs; "
                                     "default: the classifier's training corpus")
    sc09.add_argument("--json", help="also write the report to this JSON file")
    args = parser.parse_args(argv)
    sc09_main(args)


if __name__ == "__main__":
    run_cli(main)
