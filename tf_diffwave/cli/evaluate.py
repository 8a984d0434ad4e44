"""tf-diffwave evaluate MODE ...: quality reports (vocoder measures, SC09 metrics, likelihood) and the schedule
search; this module parses and prints, evaluation/ measures."""

import argparse
import json
import os

from tf_diffwave.cli.common import (
    add_model_dir,
    add_precision,
    apply_model_settings,
    parse_steps,
    say_precision,
    writable_file,
)
from tf_diffwave.config import load_run_config
from tf_diffwave.errors import UserError
from tf_diffwave.pipelines import require
from tf_diffwave.shipped import is_shipped_model
from tf_diffwave.tensorflow_import import import_tensorflow


def print_sc09_report(report):
    """The report as a Markdown table."""
    from tf_diffwave.data.corpora import DIGITS

    print(f"{report['clips']} generated clips against {report['reference_clips']} real training clips\n")
    print("| FID (lower is better) | IS (higher) | mIS (higher) | AM (lower) |")
    print("| --- | --- | --- | --- |")
    print(f"| {report['FID']:.3f} | {report['IS']:.3f} | {report['mIS']:.3f} | {report['AM']:.3f} |\n")
    print("| " + " | ".join(DIGITS) + " |")
    print("|" + " --- |" * len(DIGITS))
    print("| " + " | ".join(f"{v:.2f}" for v in report["labels"].values()) + " |")


def sc09_main(args):
    """evaluate sc09: the SC09 metrics of a folder of generated clips."""
    from tf_diffwave.evaluation.classifier import DigitClassifier
    from tf_diffwave.evaluation.reports import read_wav_folder, real_training_clips, sc09_report

    classifier = DigitClassifier(args.classifier)
    generated = read_wav_folder(args.generated, classifier.sample_rate, classifier.length)
    report = sc09_report(classifier, generated, real_training_clips(classifier, args.real))
    print_sc09_report(report)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


def _cell(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"


def print_vocoder_report(report):
    """The mean table, then one row per utterance and system, in Markdown."""
    from tf_diffwave.evaluation.reports import METRICS, SYSTEMS

    header = "| " + " | ".join(title for _, title, _ in METRICS) + " |"
    rule = "|" + " --- |" * (len(METRICS) + 1)
    from tf_diffwave.data.mel_conventions import FEATURE_SCALES

    print(f"\n{len(report['utterances'])} held-out utterances, step {report['step']}, schedule {report['steps']}, "
          f"{report['precision']}, seed {report['seed']}; log-mel L1 in this model's features ('{report['features']}': "
          f"{FEATURE_SCALES[report['features']]}), comparable only between models of the same features\n")
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
    """evaluate vocoder: the quality of a vocoder on its held-out utterances, beside Griffin-Lim."""
    from tf_diffwave.evaluation.pictures import matplotlib_classes, spectrogram_png
    from tf_diffwave.evaluation.reports import held_out_utterances, vocoder_report
    from tf_diffwave.inference.model import load
    from tf_diffwave.progress import progress_bar

    matplotlib_classes()  # before any work

    model = load(args.model_dir, args.precision)
    say_precision(model)
    apply_model_settings(model.config)
    steps = parse_steps(args.steps, model.sampler.names)
    corpus, ids = held_out_utterances(model, args.data, args.limit)
    label = steps if isinstance(steps, str) else "betas-" + "-".join(f"{b:g}" for b in steps)
    if model.precision != "float32":
        label += f"-{model.precision}"
    path = args.out or f"evaluation-vocoder-{label}.json"
    pictures = []

    def picture(utterance, mels):  # beside the report: <report name>-<utterance>.png
        name = f"{os.path.splitext(path)[0]}-{utterance}.png"
        with open(name, "wb") as f:
            f.write(spectrogram_png(mels, model.config["audio"]["hop_length"], model.sample_rate,
                                    f"{utterance}: {os.path.basename(model.model_dir.rstrip('/'))}, step "
                                    f"{model.step}, steps {label}"))
        pictures.append(name)

    report = vocoder_report(model, corpus, ids, steps, progress_bar(len(ids), "utterance"), args.seed, picture)
    print_vocoder_report(report)
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    print(f"\nwrote {path} and {len(pictures)} spectrogram pictures ({os.path.basename(pictures[0])} ...)")


def search_schedule_main(args):
    """evaluate search-schedule: the best fast schedule of a given length, saved in the model folder."""
    from tf_diffwave.evaluation.reports import held_out_utterances
    from tf_diffwave.evaluation.schedule_search import save_searched_schedule, search_schedule
    from tf_diffwave.inference.model import load
    from tf_diffwave.progress import progress_bar

    model = load(args.model_dir)
    apply_model_settings(model.config)
    corpus, ids = held_out_utterances(model, args.data, args.utterances)
    progress = None

    def on_score(done, total, best):
        nonlocal progress
        progress = progress or progress_bar(total, "schedule", stateful_metrics=["best"])
        progress.update(done, [("best", best)])

    report = search_schedule(model, [corpus.wav_paths[i] for i in ids], args.steps, args.candidates, args.seed,
                             args.max_seconds, on_score)
    report["utterances"] = ids
    path = save_searched_schedule(model.model_dir, report)
    print(f"\nbest of {len(report['candidates'])}: {report['fast_schedule']} (log-mel L1 {report['log_mel_l1']:.4f}"
          + (f"; the config's schedule: {report['config_schedule']['log_mel_l1']:.4f}" if "config_schedule" in report
             else "") + f")\nwrote {path}")


def nll_main(args):
    """evaluate nll: an autoregressive model's likelihood of a split of its corpus."""
    from tf_diffwave.evaluation.reports import nll_report
    from tf_diffwave.inference.model import load

    model = load(args.model_dir)
    apply_model_settings(model.config)
    report = nll_report(model, args.data, args.split, args.limit)
    print(f"{args.split} split of {report['corpus']}: {report['clips']} clips, NLL "
          f"{report['nll_bits_per_sample']:.4f} bits per sample")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.out}")


def main(argv=None, prog=None):
    """tf-diffwave evaluate sc09|vocoder|search-schedule|nll ..."""
    parser = argparse.ArgumentParser(prog=prog, description="Measure the quality of generated audio.")
    commands = parser.add_subparsers(dest="command", required=True)
    sc09 = commands.add_parser("sc09", help="FID, IS, mIS, AM and labels of generated SC09 digits")
    sc09.add_argument("--generated", required=True, help="folder of generated WAV clips")
    sc09.add_argument("--classifier", required=True, help="digit classifier folder (the bundled "
                      "checkpoints/sc09-classifier, or one from tf-diffwave classifier)")
    sc09.add_argument("--real", help="real clips: an SC09-layout corpus (its training split) or a folder of WAVs; "
                                     "default: the classifier's training corpus")
    sc09.add_argument("--out", help="also write the report to this JSON file")
    vocoder = commands.add_parser("vocoder", help="objective quality of a vocoder against Griffin-Lim")
    add_model_dir(vocoder)
    vocoder.add_argument("--data", help="corpus folder (default: the run's data.path)")
    vocoder.add_argument("--steps", default="fast", help="the inference schedule: fast (default), full, one the "
                                                         "model ships by name (infer --help --model-dir DIR lists "
                                                         "them), or a JSON list of betas")
    vocoder.add_argument("--limit", type=int, default=0, help="at most this many utterances (0: all)")
    add_precision(vocoder)
    vocoder.add_argument("--seed", type=int, default=0, help="seed of the model's noise (another seed shows the "
                                                             "measures' run-to-run spread)")
    vocoder.add_argument("--out", help="the JSON report to write (default: evaluation-vocoder-<steps>.json in the "
                                       "current folder); beside it <report>-<utterance>.png, the spectrograms of "
                                       "the recording, the model and Griffin-Lim")
    search = commands.add_parser("search-schedule", help="search a fast schedule for a vocoder")
    add_model_dir(search, "model folder of your own (a run or a conversion): the best schedule is saved in it, "
                          "where infer --steps fast and exports pick it up")
    search.add_argument("--data", help="corpus folder (default: the run's data.path)")
    search.add_argument("--steps", type=int, default=6, help="schedule length")
    search.add_argument("--candidates", type=int, default=40, help="schedules to score (besides the config's)")
    search.add_argument("--utterances", type=int, default=3, help="held-out utterances to score them on")
    search.add_argument("--max-seconds", type=float, default=3.0, help="the first seconds of each utterance")
    search.add_argument("--seed", type=int, default=0, help="seed of the candidate draw")
    nll = commands.add_parser("nll", help="negative log-likelihood of held-out clips (autoregressive models)")
    add_model_dir(nll, "model folder of an autoregressive model")
    nll.add_argument("--data", help="corpus folder (default: the run's data.path)")
    nll.add_argument("--split", choices=("valid", "test", "train"), default="test", help="which split (default test)")
    nll.add_argument("--limit", type=int, default=0, help="at most this many clips (0: all)")
    nll.add_argument("--out", help="also write the report to this JSON file")
    args = parser.parse_args(argv)
    if getattr(args, "out", None):
        writable_file(args.out, "--out", ".json")
    if args.command == "search-schedule" and is_shipped_model(args.model_dir):
        raise UserError("search-schedule saves its schedule in the model folder: give --model-dir of a run or a "
                        "conversion of your own, not a bundled model")
    if args.command != "sc09":
        offer = {"vocoder": "vocode", "search-schedule": "vocode", "nll": "nll"}[args.command]
        require(load_run_config(args.model_dir), offer, args.model_dir)
    import_tensorflow()
    {"sc09": sc09_main, "vocoder": vocoder_main, "search-schedule": search_schedule_main,
     "nll": nll_main}[args.command](args)
