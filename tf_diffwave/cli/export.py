"""tf-diffwave export savedmodel|litert: a model folder as a TF Serving SavedModel or a LiteRT (.tflite) model."""

import argparse

from tf_diffwave.cli.common import add_model_dir, add_precision, writable_file, writable_folder
from tf_diffwave.config import load_run_config
from tf_diffwave.pipelines import require
from tf_diffwave.tensorflow_import import import_tensorflow


def main(argv=None, prog=None):
    """tf-diffwave export savedmodel --out-dir ROOT [...] | export litert --out FILE.tflite [...]"""
    parser = argparse.ArgumentParser(prog=prog, description="Export a model folder with its fast schedule.")
    formats = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    saved = formats.add_parser("savedmodel", help="a SavedModel version folder for TF Serving",
                               description="Write <out-dir>/<version>/, a SavedModel that TF Serving loads "
                                           "(float32 in and out).")
    add_model_dir(saved)
    saved.add_argument("--out-dir", required=True, help="the export root: the version folder is written in it")
    add_precision(saved)
    saved.add_argument("--version", type=int, help="the version folder (default: the checkpoint's step)")
    lite = formats.add_parser("litert", help="a .tflite file for the LiteRT interpreter (diffusion models)",
                              description="Write a .tflite model of the fast schedule, noise as an input.")
    add_model_dir(lite)
    lite.add_argument("--out", required=True, help="the .tflite file to write")
    lite.add_argument("--precision", choices=["float32", "int8", "auto"], default="float32",
                      help="float32 (default), int8 (int8 weights and dot products, float32 between them) or auto "
                           "(int8 where this CPU has int8 dot products and the model's int8 audio is faster "
                           "within the quality bound; prints its choice)")
    args = parser.parse_args(argv)
    if args.format == "litert":
        writable_file(args.out, "--out", ".tflite")
        require(load_run_config(args.model_dir), "litert", args.model_dir)
    else:
        writable_folder(args.out_dir, "--out-dir")
        load_run_config(args.model_dir)
    import_tensorflow()
    from tf_diffwave.inference.model import load
    from tf_diffwave.serving.litert import export_litert

    if args.format == "litert":
        path, choice = export_litert(load(args.model_dir), args.out, args.precision)
    else:
        model = load(args.model_dir, args.precision)
        path, choice = model.export(args.out_dir, args.version), model.precision_choice
    if choice:
        print(choice)
    print(f"wrote {path}")
