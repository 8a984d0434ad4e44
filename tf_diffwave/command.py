"""The `tf-diffwave` command: one entry point, one subcommand per job, one style of help and errors.

It runs TensorFlow with oneDNN on (TF_ENABLE_ONEDNN_OPTS=1) unless the environment says otherwise. TensorFlow
prints start-up notices when it is first imported (absl, oneDNN, CUDA probing on machines without a GPU) that
read like failures; they are silenced here, before that import, unless --verbose is given.
"""

import importlib
import os
import sys

COMMANDS = {
    "train": ("tf_diffwave.cli", "train_main", "train a model from a JSON config (resumes its run folder)"),
    "infer": ("tf_diffwave.cli", "infer_main", "vocode mels with a model folder, or generate clips"),
    "preprocess": ("tf_diffwave.cli", "preprocess_main", "compute the mels of a corpus into data.mel_dir"),
    "evaluate": ("tf_diffwave.evaluate", "main", "quality reports: vocoder measures, SC09 metrics, schedule search"),
    "export": ("tf_diffwave.export_command", "main", "export a model for TF Serving (SavedModel) or LiteRT (.tflite)"),
    "bench": ("tf_diffwave.bench", "main", "speed and memory benchmark on this machine"),
    "classifier": ("tf_diffwave.classifier", "main", "train the SC09 digit classifier behind the quality metrics"),
    "bundle": ("tf_diffwave.bundle", "main", "copy a run's EMA weights into a small model folder"),
    "convert": ("tf_diffwave.convert", "main", "turn an lmnt-com/diffwave checkpoint into a model folder"),
}


def usage():
    """The top-level help text."""
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, (_, _, text) in COMMANDS.items()]
    return ("usage: tf-diffwave [--verbose] COMMAND [ARGS ...]\n\nDiffWave waveform synthesis in TensorFlow.\n\n"
            "commands:\n" + "\n".join(lines) + "\n\n'tf-diffwave COMMAND --help' describes each; --verbose shows "
            "TensorFlow's start-up messages.")


def import_tensorflow_quietly():
    """Import TensorFlow with its C++ start-up logging sent to /dev/null (it writes to file descriptor 2 before
    any Python logging setting applies) and its later notices limited to fatal errors."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        importlib.import_module("tensorflow")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def main(argv=None):
    """tf-diffwave [--verbose] COMMAND [ARGS ...]"""
    from tf_diffwave.errors import run_cli

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
    if not verbose:
        import_tensorflow_quietly()
    module, function, _ = COMMANDS[name]
    run_cli(lambda: getattr(importlib.import_module(module), function)(rest, prog=f"tf-diffwave {name}"))


if __name__ == "__main__":
    main()
