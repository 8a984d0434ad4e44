"""Model folders from PriorGrad vocoder checkpoints (`tf-diffwave convert priorgrad CKPT.pt STATS_DIR OUT_DIR
[key=value]`).

PriorGrad's vocoder (microsoft/NeuralSpeech, `PriorGrad-vocoder/`) is lmnt-com/diffwave's network and sampler with a
data-dependent prior: its learner checkpoint holds lmnt's state dict and lmnt's `params` plus the prior's. The
converted folder uses PriorGrad's features ("priorgrad": HiFi-GAN's STFT), its prior with the training-set
statistics PriorGrad stores in `stats_priorgrad/` (`energy_min_train.npy`, `energy_max_train.npy`), its loss, and
its fast schedules by name (`priorgrad6`, `priorgrad12`). Nothing in the file is run (see torch_checkpoint.py).
"""

from tf_diffwave.config import apply_overrides, merge, parse_override, validate
from tf_diffwave.errors import UserError
from tf_diffwave.interop.foreign_configs import typed_entry
from tf_diffwave.interop.formats import check_format
from tf_diffwave.interop.lmnt import infer_params, lmnt_config, lmnt_weights, split_lmnt_checkpoint
from tf_diffwave.interop.model_folder import write_model_folder
from tf_diffwave.interop.priorgrad_stats_folder import STATS_FILES, statistics_for
from tf_diffwave.interop.torch_checkpoint import read_torch_checkpoint

# PriorGrad's params.py where a checkpoint does not say
PRIORGRAD_DEFAULTS = {"use_prior": True, "condition_prior": False, "condition_prior_global": False, "std_min": 0.1,
                      "max_energy_override": 4.0, "use_l2loss": True, "n_fft": 1024, "fmin": 0, "fmax": 8000}


def priorgrad_config(params, statistics, path):
    """This project's config for a PriorGrad vocoder described by its `params` and training-set `statistics`."""
    p = {**PRIORGRAD_DEFAULTS, **params}
    for flag in ("condition_prior", "condition_prior_global"):
        if p[flag]:
            raise UserError(f"{path}: params.{flag} = True is not supported: tf-diffwave imports PriorGrad vocoders "
                            f"whose network takes the mel alone (PriorGrad's default)")
    if p.get("unconditional", False):
        raise UserError(f"{path}: params.unconditional = True: PriorGrad's prior needs a mel")
    for key, kind in (("use_prior", bool), ("use_l2loss", bool), ("std_min", float), ("fmin", (int, float)),
                      ("fmax", (int, float))):
        typed_entry(p, key, kind, path, "params.", "PriorGrad")
    override = p["max_energy_override"]
    if override is not None and (isinstance(override, bool) or not isinstance(override, (int, float))):
        raise UserError(f"{path}: params.max_energy_override = {override!r} is not a number or None")
    config = lmnt_config({k: v for k, v in p.items() if k != "unconditional"}, path)
    prior = {"prior": "priorgrad", "std_min": float(p["std_min"]),
             "max_energy_override": None if override is None else float(override), **statistics} \
        if p["use_prior"] else {"prior": "standard"}
    merge(config, {"audio": {"fmin": float(p["fmin"]), "fmax": float(p["fmax"]), "features": "priorgrad"},
                   "diffusion": {"loss": "l2" if p["use_l2loss"] else "l1", **prior}}, "", f"{path}: params")
    return config


def convert_priorgrad(checkpoint_path, stats_dir, out_dir, overrides=(), export=True):
    """Write a model folder for a PriorGrad vocoder checkpoint, its statistics read from `stats_dir` (or given by
    the overrides `energy_min=` and `energy_max=`, also spelt `diffusion.energy_min=`); return the loaded model."""
    checkpoint = read_torch_checkpoint(checkpoint_path)
    check_format(checkpoint, "priorgrad", checkpoint_path)
    state, params, step = split_lmnt_checkpoint(checkpoint, checkpoint_path)
    params = infer_params(state, params)
    statistics = statistics_for(stats_dir, overrides)
    overrides = [f"diffusion.{text}" if parse_override(text)[0] in STATS_FILES else text for text in overrides]
    config = priorgrad_config(params, statistics, checkpoint_path)
    apply_overrides(config, overrides)
    validate(config)
    if config["diffusion"]["prior"] == "priorgrad" and config["diffusion"]["energy_min"] is None:
        raise UserError("energy_min= and energy_max= must be numbers")
    return write_model_folder(config, lmnt_weights(state, config, checkpoint_path), step, out_dir, checkpoint_path,
                              export)
