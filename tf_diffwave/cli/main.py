"""The `tf-diffwave` command: one entry point, one subcommand per job, one style of help and errors.

Each command parses and checks its arguments before TensorFlow is imported (a mistake is reported at once), and
imports it without its start-up notices unless --verbose is given. It runs TensorFlow with oneDNN on
(TF_ENABLE_ONEDNN_OPTS=1) unless the environment says otherwise.
"""

import importlib
import os
import sys
import textwrap

COMMANDS = {
    "train": ("train", "train a model from a JSON config (resumes its run folder)"),
    "infer": ("infer", "vocode mels with a model folder, or generate clips with an unconditional one"),
    "preprocess": ("preprocess", "compute the mels of a corpus into a folder"),
    "corpus": ("corpus", "build a corpus of real recorded speech from installable recordings (Debian's Asterisk "
                         "prompts)"),
    "evaluate": ("evaluate", "quality reports: vocoder measures, SC09 metrics, likelihood, schedule search"),
    "export": ("export", "export a model for TF Serving (SavedModel) or LiteRT (.tflite)"),
    "convert": ("convert", "turn another implementation's checkpoint into a model folder; formats: {formats}"),
    "bundle": ("bundle", "copy a run's EMA weights into a small model folder"),
    "classifier": ("classifier", "train the SC09 digit classifier behind the quality metrics"),
    "bench": ("bench", "speed and memory benchmark on this machine"),
}


def usage():
    """The top-level help text."""
    from tf_diffwave.cli.convert import FORMATS

    width = max(map(len, COMMANDS))
    lines = [textwrap.fill(text.format(formats=", ".join(FORMATS)), 116, initial_indent=f"  {name:<{width}}  ",
                           subsequent_indent=" " * (width + 4), break_on_hyphens=False)  # names stay whole
             for name, (_, text) in COMMANDS.items()]
    return ("usage: tf-diffwave [--verbose] COMMAND [ARGS ...]\n\nDiffusion waveform synthesis (DiffWave, WaveGrad, "
            "SaShiMi) in TensorFlow.\n\ncommands:\n" + "\n".join(lines) + "\n\n'tf-diffwave COMMAND --help' describes "
            "each; --verbose shows TensorFlow's start-up messages.")


def main(argv=None):
    """tf-diffwave [--verbose] COMMAND [ARGS ...]"""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv
    argv = [a for a in argv if a != "--verbose"]
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command '{name}' (one of {', '.join(COMMANDS)}; see tf-diffwave --help)",
              file=sys.stderr)
        sys.exit(2)
    # TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 VNNI, BF16 or AMX; on the others these networks
    # vocode about 1.4 times faster with it (docs/benchmarks.md)
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    if verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tf_diffwave.cli.common import run

    module = importlib.import_module(f"tf_diffwave.cli.{COMMANDS[name][0]}")
    run(lambda: module.main(rest, prog=f"tf-diffwave {name}"), f"tf-diffwave {name}")


if __name__ == "__main__":
    main()
