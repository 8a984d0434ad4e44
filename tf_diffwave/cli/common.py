"""What every command shares: its parser's common options, the one-line error handling, the checks of outputs made
before any work, and the process settings a command (never library code) makes."""

import json
import logging
import os
import signal
import sys
import tempfile
import threading

from tf_diffwave.errors import UserError
from tf_diffwave.models.registry import PRECISION_POLICIES
from tf_diffwave.shipped import DEFAULT_MODEL_DIR


class PrintedMessages(logging.Handler):
    """The package's log messages as the commands print theirs: warnings on stderr as "warning: ...", the rest on
    stdout (the streams looked up at each message)."""

    def emit(self, record):
        warning = record.levelno >= logging.WARNING
        print(("warning: " if warning else "") + record.getMessage(), file=sys.stderr if warning else sys.stdout,
              flush=True)


def print_package_messages():
    """Print the `tf_diffwave` logger's messages (INFO and above) as the commands print theirs: a setting of the
    command's process, made once; library code only logs."""
    logger = logging.getLogger("tf_diffwave")
    if not any(isinstance(handler, PrintedMessages) for handler in logger.handlers):
        logger.addHandler(PrintedMessages())
        logger.setLevel(logging.INFO)
        logger.propagate = False


print_package_messages()  # every command imports this module


def add_config(parser):
    """--config CFG and the dotted overrides after it."""
    parser.add_argument("--config", required=True, help="JSON config file (see configs/)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")


def add_model_dir(parser, help_text="model folder: a training run, a bundle or a conversion (default: the bundled "
                                    "vocoder, checkpoints/fregrad-allison-16k)"):
    """--model-dir DIR, the model every command reads, the bundled vocoder by default."""
    parser.add_argument("--model-dir", default=DEFAULT_MODEL_DIR, help=help_text)


def add_precision(parser):
    """--precision, what the networks compute in."""
    parser.add_argument("--precision", choices=[*PRECISION_POLICIES, "auto"], default="float32",
                        help="what the networks compute in: float32 (default), bfloat16 (CPUs with AVX-512 BF16 or "
                             "AMX), float16 (GPUs), auto (the fastest this CPU runs within the quality bound, "
                             "tried on the model; prints its choice); the sampler stays float32")


def say_precision(model):
    """Print the one line of what precision auto chose, if it was asked for."""
    if model.precision_choice:
        print(model.precision_choice, flush=True)


class Interrupted(BaseException):
    """SIGTERM, raised where the command is, as Ctrl-C raises KeyboardInterrupt."""


def _raise_interrupted(signum, frame):
    raise Interrupted()


def run(main, name="the command"):
    """Run a command, turning UserError into one line on stderr and exit code 2, and Ctrl-C or SIGTERM into one
    line and exit code 130 or 143 (its outputs are written whole or not at all: tf_diffwave.atomic); a command that
    fails leaves none of the folders it made for its outputs empty behind it."""
    main_thread = threading.current_thread() is threading.main_thread()  # where signal handlers can be set
    previous = signal.signal(signal.SIGTERM, _raise_interrupted) if main_thread else None
    MADE_FOLDERS.clear()
    try:
        main()
    except UserError as err:
        remove_empty_made_folders()
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, Interrupted) as stop:
        remove_empty_made_folders()
        what = "Ctrl-C" if isinstance(stop, KeyboardInterrupt) else "SIGTERM"
        print(f"\ninterrupted ({what}): {name} stopped; what it had finished is kept, nothing half-written is left",
              file=sys.stderr)
        sys.exit(130 if isinstance(stop, KeyboardInterrupt) else 143)
    except BaseException:
        remove_empty_made_folders()
        raise
    finally:
        MADE_FOLDERS.clear()
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def parse_steps(text, names):
    """A schedule named in `names` ('fast', 'full', a family's named ones), or a JSON list of betas."""
    if text in names:
        return text
    try:
        betas = json.loads(text)
    except json.JSONDecodeError:
        betas = None
    if isinstance(betas, int) and not isinstance(betas, bool) and not any(name.isdigit() for name in names):
        raise UserError(f"--steps {text}: numbered schedules are WaveGrad's; this model takes "
                        f"{', '.join(names)} or a JSON list of betas")
    if not isinstance(betas, list) or not all(isinstance(b, (int, float)) for b in betas):
        raise UserError(f"--steps must be {', '.join(names)} or a JSON list of betas, got {text!r}")
    return betas


MADE_FOLDERS = []  # the folders the running command made for its outputs: removed if it fails and they stay empty


def remove_empty_made_folders():
    """Remove the folders the command made that it left empty, innermost first."""
    while MADE_FOLDERS:
        folder = MADE_FOLDERS.pop()
        if os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)


def writable_folder(path, flag):
    """Raise UserError, before any work, unless `path` is a folder this process can write in (made if missing);
    `flag` names where the path came from (an option or a config key)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{path}: {flag} names a file, not a folder")
    missing, folder = [], os.path.abspath(path)
    while not os.path.exists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    try:
        os.makedirs(path, exist_ok=True)
        MADE_FOLDERS.extend(reversed(missing))
        tempfile.TemporaryFile(dir=path).close()
    except OSError as err:
        raise UserError(f"{path}: {flag} is not writable ({err.strerror or err})") from None


def writable_file(path, flag, extension=None):
    """Raise UserError, before any work, unless a file can be written at `path` (with `extension`, if given)."""
    if os.path.isdir(path):
        raise UserError(f"{path}: {flag} names a folder; it takes a file")
    if extension and not path.lower().endswith(extension):
        raise UserError(f"{path}: {flag} takes a {extension} file name")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        writable_folder(folder, flag)
    except UserError:
        raise UserError(f"{path}: {flag} is not writable (its folder {folder} cannot be made or written in)") from None
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UserError(f"{path}: {flag} is not writable")


def apply_model_settings(config):
    """The process-wide settings a command takes from the config of its model, set where the command starts (not
    by library code): whether GPU matmuls may use TF32 (config key `model.tf32`)."""
    import tensorflow as tf

    from tf_diffwave.models.registry import tf32_allowed

    tf.config.experimental.enable_tensor_float_32_execution(tf32_allowed(config))
