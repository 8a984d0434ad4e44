"""tf-diffwave export: a model folder as a TF Serving SavedModel or a LiteRT (.tflite) model."""

import argparse
import os

from tf_diffwave.errors import UserError
from tf_diffwave.litert import litert_model
from tf_diffwave.model_io import DEFAULT_MODEL_DIR, PRECISION_POLICIES, load


def export_litert(model, path):
    """Write `model` (float32) with its fast schedule as a .tflite file at `path`; the path."""
    betas, steps = model.sampler.betas_and_steps("fast")
    content = litert_model(model.synthesizer_in("float32"), betas, steps, model.config)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".partial", "wb") as f:
        f.write(content)
    os.replace(path + ".partial", path)
    return path


def main(argv=None, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description="Export a model folder with its fast schedule: a "
                                                            "SavedModel version folder for TF Serving, or a .tflite "
                                                            "file for the LiteRT interpreter.")
    parser.add_argument("--model-dir", default=DEFAULT_MODEL_DIR, help="run folder (default: bundled demo)")
    parser.add_argument("--out", required=True, help="savedmodel: the export root (a version folder is written "
                                                     "in it); litert: the .tflite file")
    parser.add_argument("--format", choices=["savedmodel", "litert"], default="savedmodel")
    parser.add_argument("--precision", choices=list(PRECISION_POLICIES), default="float32",
                        help="what the networks compute in (savedmodel; inputs and outputs stay float32)")
    parser.add_argument("--version", type=int, help="savedmodel: the version folder (default: the checkpoint's step)")
    args = parser.parse_args(argv)
    model = load(args.model_dir)
    if args.format == "litert":
        if args.precision != "float32" or args.version is not None:
            raise UserError("--precision and --version are for --format savedmodel; a LiteRT model is float32")
        print(f"wrote {export_litert(model, args.out)}")
    else:
        print(f"wrote {model.export(args.out, args.version, args.precision)}")
