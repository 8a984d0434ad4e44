"""Model folders from FreGrad checkpoints (`tf-diffwave convert fregrad CKPT [PARAMS] STATS_DIR OUT_DIR
[key=value]`).

FreGrad (kaistmm/fregrad, built on PriorGrad's code) saves its learner's state: the model's state dict (with the
Haar filters of every layer as buffers), and `params`, the plain dict of its params.py (the schedule computed by it
stored as a list). The converted folder runs on this project's FreGrad family with PriorGrad's features, FreGrad's
per-band prior and the training-set statistics beside the data (`stats_priorgrad/`), the stored schedule, its loss
(L2 plus 0.1 x the bands' multi-resolution STFT distance) and its output filter when the checkpoint enables it.
`params_saved.py`, the copy of params.py FreGrad keeps beside its weights, is Python: it is never run. Given as
PARAMS, its literal entries are read (with `ast`) where the checkpoint records no params, and checked against them
where it does.
"""

import ast
import logging

import numpy as np

from tf_diffwave.config import apply_overrides, defaults, merge, parse_override, validate
from tf_diffwave.diffusion.schedules import zero_terminal_snr
from tf_diffwave.errors import UserError
from tf_diffwave.interop.foreign_configs import typed_entry
from tf_diffwave.interop.formats import check_format
from tf_diffwave.interop.model_folder import StateDict, write_model_folder
from tf_diffwave.interop.priorgrad_stats_folder import STATS_FILES, statistics_for
from tf_diffwave.interop.torch_checkpoint import read_torch_checkpoint

logger = logging.getLogger(__name__)

EMBED_DIM = 512  # FreGrad's step MLP (lmnt's)
HAAR = np.float32(1 / np.sqrt(2))
# inference.py's 6-step list (used with --fast, which its code ignores: it always runs the training schedule); its
# first beta is the training schedule's first
FAST6 = [0.0215, 0.045, 0.08, 0.2, 0.5]
STFT_RESOLUTIONS = [[512, 50, 300], [1024, 120, 600], [256, 30, 128]]
REQUIRED = {"sample_rate": int, "n_mels": int, "n_fft": int, "hop_samples": int, "fmin": (int, float),
            "fmax": (int, float), "residual_layers": int, "residual_channels": int, "dilation_cycle_length": int,
            "noise_schedule": list, "use_prior": bool, "use_l2loss": bool, "std_min": float, "audio_channels": int,
            "enable_remove_cutoff_alias": bool}


def params_file_entries(path):
    """The literal keyword arguments of `params = AttrDict(...)` in a params.py, read without running it; entries
    whose value is an expression (the schedule, computed by the file) are left out."""
    try:
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
    except (OSError, SyntaxError, ValueError) as err:
        raise UserError(f"{path}: not a readable params.py ({err})") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "params" for t in node.targets) \
                and isinstance(node.value, ast.Call):
            entries = {}
            for keyword in node.value.keywords:
                try:
                    entries[keyword.arg] = ast.literal_eval(keyword.value)
                except ValueError:
                    pass
            return entries
    raise UserError(f"{path}: no 'params = AttrDict(...)' in it: not FreGrad's params.py")


def computed_schedule(params_path, checkpoint_path):
    """The training schedule params.py computes, `enforce_zero_terminal_snr(torch.linspace(a, b, n))`, recomputed
    (to 1e-6 of FreGrad's float32 values), for a checkpoint that does not record it."""
    text = open(params_path, encoding="utf-8").read() if params_path else ""
    calls = [node for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Call)
             and getattr(node.func, "attr", None) == "linspace" and len(node.args) == 3] if text else []
    if "enforce_zero_terminal_snr" not in text or len(calls) != 1:
        raise UserError(f"{checkpoint_path}: records no params.noise_schedule, and no params.py computing FreGrad's "
                        f"schedule was given to read it from")
    start, end, steps = (ast.literal_eval(arg) for arg in calls[0].args)
    logger.info(f"note: {checkpoint_path} records no schedule; {params_path}'s zero-terminal-SNR schedule from "
                f"linspace({start}, {end}, {steps}) recomputed")
    return zero_terminal_snr(np.linspace(start, end, steps)).tolist()


def fregrad_config(p, statistics, path):
    """This project's config for a FreGrad vocoder described by its params `p` and training-set `statistics`."""
    for flag in ("condition_prior", "condition_prior_global"):
        if p.get(flag):
            raise UserError(f"{path}: params.{flag} = True is not supported: FreGrad's training code for it is "
                            f"broken (target_std is undefined there), and tf-diffwave imports FreGrad vocoders whose "
                            f"network takes the mel alone (its default)")
    for key, kind in REQUIRED.items():
        typed_entry(p, key, kind, path, "params.", "FreGrad")
    if p["audio_channels"] != 2:
        raise UserError(f"{path}: params.audio_channels = {p['audio_channels']}; FreGrad's network diffuses 2 bands")
    betas = [float(b) for b in p["noise_schedule"]]
    override = p.get("max_energy_override", 4.0)
    prior = {"prior": "fregrad", "std_min": float(p["std_min"]),
             "max_energy_override": None if override is None else float(override), **statistics} \
        if p["use_prior"] else {"prior": "standard"}
    config = defaults("fregrad")
    merge(config, {
        "audio": {"sample_rate": p["sample_rate"], "n_fft": p["n_fft"], "win_length": p["n_fft"],
                  "hop_length": p["hop_samples"], "n_mels": p["n_mels"], "fmin": float(p["fmin"]),
                  "fmax": float(p["fmax"]), "features": "priorgrad"},
        "data": {"crop_frames": int(p.get("crop_mel_frames", 62))},
        "model": {"backbone": "fregrad",
                  "fregrad": {"residual_channels": p["residual_channels"], "residual_layers": p["residual_layers"],
                              "dilation_cycle": p["dilation_cycle_length"], "embed_dim": EMBED_DIM,
                              "step_embedding": "float32", "output_filter": p["enable_remove_cutoff_alias"]}},
        "diffusion": {"training_betas": betas, "num_steps": len(betas), "beta_start": min(betas),
                      "beta_end": max(betas), "fast_schedule": [betas[0], *FAST6],
                      "loss": "l2" if p["use_l2loss"] else "l1", "stft_loss_weight": 0.1,
                      "stft_loss_resolutions": STFT_RESOLUTIONS, **prior},
        "train": {"batch_size": int(p.get("batch_size", 16)), "learning_rate": float(p.get("learning_rate", 2e-4))},
    }, "", f"{path}: params")
    return config


def fregrad_weights(state, config, path):
    """Keras weights {layer: {weight: array}} of the FreGrad backbone from FreGrad's state dict, its Haar buffers
    checked (every layer's must hold the Haar filters, which the family computes with)."""
    m, n_mels = config["model"]["fregrad"], config["audio"]["n_mels"]
    c, layers = m["residual_channels"], m["residual_layers"]
    state = StateDict(state, path)
    weights = {"input_projection": state.conv1d("input_projection", c, 2),
               "step_mlp_1": state.linear("diffusion_embedding.projection1", EMBED_DIM, 128),
               "step_mlp_2": state.linear("diffusion_embedding.projection2", EMBED_DIM, EMBED_DIM),
               "skip_projection": state.conv1d("skip_projection", c, c),
               "output": state.conv1d("output_projection", 2, c)}
    for n, time in ((1, 32), (2, 16)):  # ConvTranspose2d [1, 1, mel 3, time] -> Keras [time, mel, out, in]
        weights[f"mel_upsampler_{n}"] = {
            "kernel": state.take(f"spectrogram_upsampler.conv{n}.weight", (1, 1, 3, time))[0, 0].T[:, :, None, None],
            "bias": state.take(f"spectrogram_upsampler.conv{n}.bias", (1,))}
    haar = {"dwt.h0": [HAAR, HAAR], "dwt.h1": [HAAR, -HAAR], "idwt.g0": [HAAR, HAAR], "idwt.g1": [HAAR, -HAAR]}
    projections = []
    for i in range(layers):
        key = f"residual_layers.{i}"
        for buffer, expected in haar.items():
            found = state.take(f"{key}.dilated_conv.{buffer}", (1, 1, 2))
            if not np.allclose(found.reshape(-1), expected, atol=1e-7):
                raise UserError(f"{path}: {key}.dilated_conv.{buffer} = {found.reshape(-1).tolist()}, not the Haar "
                                f"filter {[float(v) for v in expected]} that FreGrad's DWT (db1) holds")
        weights[f"step_projection_{i}"] = state.linear(f"{key}.diffusion_projection", c, EMBED_DIM)
        weights[f"dilated_conv_{i}/conv"] = state.conv1d(f"{key}.dilated_conv", 4 * c, 2 * c, 3)  # [low | high]
        weights[f"output_projection_{i}"] = state.conv1d(f"{key}.output_projection", 2 * c, c)
        projections.append(state.conv1d(f"{key}.conditioner_projection", 2 * c, n_mels))
    weights["conditioner_projection"] = {"kernel": np.concatenate([p["kernel"][0] for p in projections], axis=1),
                                         "bias": np.concatenate([p["bias"] for p in projections])}
    state.check_all_used()
    return weights


def convert_fregrad(checkpoint_path, stats_dir, out_dir, overrides=(), export=True, params_path=None):
    """Write a model folder for a FreGrad checkpoint, its statistics read from `stats_dir` (or given by the
    overrides `energy_min=` and `energy_max=`); return the loaded model."""
    checkpoint = read_torch_checkpoint(checkpoint_path)
    check_format(checkpoint, "fregrad", checkpoint_path)
    if not isinstance(checkpoint.get("model"), dict):
        raise UserError(f"{checkpoint_path}: no 'model' state dict: not a FreGrad learner checkpoint")
    params = checkpoint.get("params") if isinstance(checkpoint.get("params"), dict) else {}
    if params_path is not None:
        written = params_file_entries(params_path)
        differ = sorted(key for key in set(written) & set(params) if written[key] != params[key])
        if differ:
            logger.info(f"note: {params_path} disagrees with the params {checkpoint_path} records "
                        f"({', '.join(differ)}); the checkpoint's are used")
        params = {**written, **params}
    if "noise_schedule" not in params:
        params["noise_schedule"] = computed_schedule(params_path, checkpoint_path)
    statistics = statistics_for(stats_dir, overrides)
    overrides = [f"diffusion.{text}" if parse_override(text)[0] in STATS_FILES else text for text in overrides]
    config = fregrad_config(params, statistics, checkpoint_path)
    apply_overrides(config, overrides)
    validate(config)
    step = checkpoint.get("step", 0)
    return write_model_folder(config, fregrad_weights(checkpoint["model"], config, checkpoint_path),
                              step if isinstance(step, int) else 0, out_dir, checkpoint_path, export)
