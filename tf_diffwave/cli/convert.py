"""tf-diffwave convert FORMAT ... (also python -m tf_diffwave.convert): model folders from checkpoints of other
implementations, one subcommand per format. No PyTorch is needed, and nothing in a checkpoint is run."""

import argparse
import importlib
import os

from tf_diffwave.cli.common import writable_folder
from tf_diffwave.errors import UserError
from tf_diffwave.interop.priorgrad_stats_folder import statistics_for
from tf_diffwave.tensorflow_import import import_tensorflow

# format -> (help, the files before OUT_DIR, the description of each)
FORMATS = {
    "lmnt": ("an lmnt-com/diffwave checkpoint (vocoder or unconditional)", ("CHECKPOINT",),
             ("its .pt checkpoint (the learner's torch.save, or a bare state dict)",)),
    "wavegrad-ivanvovk": ("an ivanvovk/WaveGrad checkpoint and its JSON config", ("CHECKPOINT", "CONFIG"),
                          ("its .pt checkpoint", "its JSON config (model_config, data_config, training_config)")),
    "priorgrad": ("a PriorGrad (microsoft/NeuralSpeech) vocoder checkpoint and its training-set statistics",
                  ("CHECKPOINT", "STATS_DIR"),
                  ("its .pt checkpoint (the learner's torch.save)",
                   "the folder holding PriorGrad's stats_priorgrad/ (or that folder); energy_min=X energy_max=Y "
                   "replace it")),
    "fregrad": ("a FreGrad (kaistmm/fregrad) vocoder checkpoint and its training-set statistics",
                ("CHECKPOINT", "STATS_DIR"),
                ("its weights-STEP.pt (the learner's torch.save); its params_saved.py may follow it, read as text "
                 "(never run) where the checkpoint records no params",
                 "the folder holding stats_priorgrad/ (or that folder); energy_min=X energy_max=Y replace it")),
    "rf5-diffwave": ("an RF5/DiffWave-unconditional (philsyn) WaveNet DiffWave checkpoint and its config.json",
                     ("CHECKPOINT", "CONFIG"),
                     ("its .pkl/.pt checkpoint (model_state_dict, with or without the optimizer's state)",
                      "the repository's config.json (diffusion_config, wavenet_config, trainset_config)")),
    "philsyn-vocoder": ("a philsyn/DiffWave-Vocoder conditional LJSpeech checkpoint and its config JSON",
                        ("CHECKPOINT", "CONFIG"),
                        ("its .pkl checkpoint (model_state_dict, with or without the optimizer's state; zip or "
                         "PyTorch's legacy format)", "the repository's config_64.json or config_128.json "
                                                    "(diffusion_config, wavenet_config, trainset_config)")),
    "albertfgu-diffwave": ("an albertfgu/diffwave-sashimi SC09 WaveNet checkpoint and its Hydra config",
                           ("CHECKPOINT", "CONFIG"),
                           ("its .pkl checkpoint (model_state_dict, with or without the optimizer's state)",
                            "the run's composed Hydra config.yaml (as train.py prints it, or "
                            "outputs/<date>/<time>/.hydra/config.yaml)")),
    "rf5-sashimi-diffwave": ("an RF5/DiffWave-unconditional SaShiMi-DiffWave checkpoint (and its config.json)",
                             ("CHECKPOINT",),
                             ("its .pt checkpoint (model_state_dict, with or without the optimizer's state); an "
                              "optional config.json (diffusion_config, trainset_config, sashimi_config) may follow "
                              "it, else hubconf's defaults are used; the weights' shapes decide the architecture",)),
    "simple-sashimi": ("an RF5/simple-sashimi autoregressive SaShiMi checkpoint", ("CHECKPOINT",),
                       ("its .pt checkpoint (train.py's, with its config in cfg_yaml)",)),
}
OPTIONAL_CONFIG = {"rf5-sashimi-diffwave"}  # formats whose CONFIG may come between CHECKPOINT and OUT_DIR
OPTIONAL_PARAMS = {"fregrad"}  # formats whose PARAMS (params.py) may come right after CHECKPOINT
# format -> its converter, called with the files, OUT_DIR, the overrides and `export`
CONVERTERS = {"lmnt": "tf_diffwave.interop.lmnt:convert_lmnt",
              "wavegrad-ivanvovk": "tf_diffwave.interop.wavegrad_ivanvovk:convert_ivanvovk",
              "priorgrad": "tf_diffwave.interop.priorgrad:convert_priorgrad",
              "fregrad": "tf_diffwave.interop.fregrad:convert_fregrad",
              "rf5-diffwave": "tf_diffwave.interop.rf5_diffwave:convert_rf5_diffwave",
              "philsyn-vocoder": "tf_diffwave.interop.philsyn_vocoder:convert_philsyn_vocoder",
              "albertfgu-diffwave": "tf_diffwave.interop.albertfgu:convert_albertfgu",
              "rf5-sashimi-diffwave": "tf_diffwave.interop.rf5_sashimi:convert_rf5_sashimi",
              "simple-sashimi": "tf_diffwave.interop.simple_sashimi:convert_simple_sashimi"}


def make_parser(prog):
    """The parser: one subcommand per format, each with its own --help."""
    parser = argparse.ArgumentParser(prog=prog, description="Convert a checkpoint of another implementation into a "
                                                            "tf-diffwave model folder.")
    formats = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    for name, (text, inputs, helps) in FORMATS.items():
        sub = formats.add_parser(name, help=text, description=f"Convert {text} into a model folder: config.json, "
                                                              f"the weights as EMA weights and export/<step>/.")
        for metavar, help_text in zip(inputs, helps):
            sub.add_argument(metavar.lower(), metavar=metavar, help=help_text)
        if name in OPTIONAL_PARAMS:
            sub.usage = f"{prog or 'convert'} {name} CHECKPOINT [PARAMS] STATS_DIR OUT_DIR [key=value ...]"
        sub.add_argument("out_dir", metavar="[CONFIG] OUT_DIR" if name in OPTIONAL_CONFIG else "OUT_DIR",
                         help="the model folder to write (new or empty)")
        sub.add_argument("overrides", nargs="*", metavar="key=value",
                         help="dotted config overrides (keys the checkpoint does not record)")
        sub.add_argument("--no-export", action="store_true", help="skip the TF Serving export")
    return parser


def check_path_count(argv):
    """One line naming the paths a format takes when fewer are given (argparse would name the wrong ones)."""
    if not argv or argv[0] not in FORMATS or any(a in ("-h", "--help") for a in argv):
        return
    _, inputs, helps = FORMATS[argv[0]]
    given = [a for a in argv[1:] if not a.startswith("-") and "=" not in a]
    if len(given) < len(inputs) + 1:
        described = "; ".join(f"{name}: {text}" for name, text in zip(inputs, helps))
        raise UserError(f"convert {argv[0]} takes {' '.join(inputs)} OUT_DIR ({described}); {len(given)} "
                        f"given: {' '.join(given) or 'none'}")


def main(argv=None, prog=None):
    """tf-diffwave convert lmnt CKPT OUT_DIR [key=value ...] | convert wavegrad-ivanvovk CKPT CONFIG OUT_DIR [...] |
    convert priorgrad CKPT STATS_DIR OUT_DIR [...] | convert fregrad CKPT [PARAMS] STATS_DIR OUT_DIR [...] |
    convert rf5-diffwave CKPT CONFIG OUT_DIR [...] | convert philsyn-vocoder CKPT CONFIG OUT_DIR [...] |
    convert albertfgu-diffwave CKPT CONFIG.yaml OUT_DIR [...] |
    convert rf5-sashimi-diffwave CKPT [CONFIG] OUT_DIR [...] | convert simple-sashimi CKPT OUT_DIR [...]"""
    check_path_count(list(argv) if argv is not None else [])
    args = make_parser(prog).parse_args(argv)
    if args.format in OPTIONAL_CONFIG:
        args.config = None
        if args.overrides and "=" not in args.overrides[0]:  # CKPT CONFIG OUT_DIR
            args.config, args.out_dir = args.out_dir, args.overrides.pop(0)
    extra = {}
    if args.format in OPTIONAL_PARAMS and args.overrides and "=" not in args.overrides[0]:  # CKPT PARAMS STATS OUT
        extra["params_path"], args.stats_dir, args.out_dir = args.stats_dir, args.out_dir, args.overrides.pop(0)
    for path in [args.checkpoint, *extra.values()] + ([args.config] if getattr(args, "config", None) else []):
        if not os.path.isfile(path):
            raise UserError(f"{path}: file not found")
    if hasattr(args, "stats_dir"):
        statistics_for(args.stats_dir, args.overrides)  # checked before TensorFlow is imported
    writable_folder(args.out_dir, "OUT_DIR")
    import_tensorflow()
    module, function = CONVERTERS[args.format].split(":")
    inputs = [getattr(args, name.lower()) for name in FORMATS[args.format][1]]
    inputs += [args.config] if args.format in OPTIONAL_CONFIG else []
    model = getattr(importlib.import_module(module), function)(*inputs, args.out_dir, args.overrides,
                                                               export=not args.no_export, **extra)
    print(f"wrote {args.out_dir}: {model.family.title} ({model.pipeline.kind.name}) at step {model.step}, "
          f"{model.backbone.model.count_params():,} parameters"
          + ("" if args.no_export else f", exported to {os.path.join(args.out_dir, 'export', str(model.step))}"))
