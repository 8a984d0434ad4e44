"""Model folders from lmnt-com/diffwave checkpoints (`tf-diffwave convert lmnt CHECKPOINT.pt OUT_DIR [key=value]`).

A checkpoint of lmnt-com/diffwave (its learner's `torch.save`: `model`, `params`, `step`, plus `optimizer` and
`scaler`, which are ignored; or a bare state dict) becomes a model folder: config.json (lmnt's `params` as this
project's config, with lmnt's mel features, step-embedding arithmetic and per-step clipping), a checkpoint of the
weights, and export/<step>/ for TF Serving. Dotted overrides fill or change config keys (a bare state dict does
not record the sample rate, the dilation cycle or the noise schedule: lmnt's defaults are assumed and printed).
No PyTorch is needed, and nothing in the file is run (see torch_checkpoint.py).
"""

import logging

import numpy as np

from tf_diffwave.config import apply_overrides, defaults, merge, validate
from tf_diffwave.errors import UserError
from tf_diffwave.interop.foreign_configs import typed_entry
from tf_diffwave.interop.formats import check_format
from tf_diffwave.interop.model_folder import StateDict, write_model_folder
from tf_diffwave.interop.torch_checkpoint import read_torch_checkpoint

logger = logging.getLogger(__name__)  # printed by the commands; silenced like any library's

# lmnt-com/diffwave's params.py where a checkpoint does not say (its LJSpeech model's values)
LMNT_DEFAULTS = {"sample_rate": 22050, "n_mels": 80, "n_fft": 1024, "hop_samples": 256, "crop_mel_frames": 62,
                 "residual_layers": 30, "residual_channels": 64, "dilation_cycle_length": 10, "unconditional": False,
                 "noise_schedule": np.linspace(1e-4, 0.05, 50).tolist(),
                 "inference_noise_schedule": [1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5], "audio_len": 22050 * 5,
                 "batch_size": 16, "learning_rate": 2e-4, "max_grad_norm": None}
LMNT_HOP = 256  # lmnt's spectrogram upsampler is two transposed convolutions of stride 16, kernel 32
LMNT_EMBED_DIM = 512


def lmnt_config(params, path):
    """This project's config for an lmnt model described by its `params` (missing keys: lmnt's defaults)."""
    p = {**LMNT_DEFAULTS, **params}

    def param(key, kind):
        value = typed_entry(p, key, kind, path, "params.", "lmnt-com/diffwave")
        if kind is list and not (value and all(isinstance(v, (int, float)) for v in value)):
            raise UserError(f"{path}: params.{key} = {value!r} is not what lmnt-com/diffwave stores there")
        return value

    if param("hop_samples", int) != LMNT_HOP:
        raise UserError(f"{path}: params.hop_samples = {p['hop_samples']}, but lmnt's mel upsampler (16 x 16) "
                        f"only makes hop {LMNT_HOP}")
    betas = np.asarray(param("noise_schedule", list), np.float64)
    linear = np.linspace(betas[0], betas[-1], len(betas))
    if len(betas) < 2 or np.max(np.abs(betas - linear)) > 1e-12 * betas[-1]:
        raise UserError(f"{path}: params.noise_schedule is not linear (from {betas[0]} to {betas[-1]} in "
                        f"{len(betas)} steps); only linear schedules are supported")
    rate, n_fft = param("sample_rate", int), param("n_fft", int)
    grad_clip = p["max_grad_norm"]
    update = {
        "data": {"crop_frames": param("crop_mel_frames", int)},
        "audio": {"sample_rate": rate, "n_fft": n_fft, "win_length": n_fft, "hop_length": LMNT_HOP,
                  "n_mels": param("n_mels", int), "fmin": 20.0, "fmax": rate / 2, "log_floor": 1e-5,
                  "features": "lmnt"},
        "model": {"backbone": "wavenet", "unconditional": param("unconditional", bool),
                  "audio_length": param("audio_len", int),
                  "wavenet": {"residual_channels": param("residual_channels", int),
                              "residual_layers": param("residual_layers", int),
                              "dilation_cycle": param("dilation_cycle_length", int), "embed_dim": LMNT_EMBED_DIM,
                              "step_embedding": "float32"}},
        "diffusion": {"num_steps": len(betas), "beta_start": float(betas[0]), "beta_end": float(betas[-1]),
                      "loss": "l1", "fast_schedule": [float(b) for b in param("inference_noise_schedule", list)],
                      "clip_each_step": True},
        "train": {"batch_size": param("batch_size", int), "learning_rate": float(param("learning_rate", float)),
                  **({} if grad_clip is None else {"grad_clip_norm": float(grad_clip)})},
    }
    if update["model"]["unconditional"]:
        update["data"].update(kind="sc09", path="data/sc09-demo")
    config = defaults()
    merge(config, update, "", f"{path}: params")
    return config


def lmnt_weights(state, config, path):
    """Keras weights {layer: {weight: array}} of the WaveNet backbone from lmnt's state dict (PyTorch layouts:
    Conv1d [out, in, k], Linear [out, in], ConvTranspose2d [in, out, mel, time]); every key must be used once."""
    m = config["model"]["wavenet"]
    layers, c, n_mels = m["residual_layers"], m["residual_channels"], config["audio"]["n_mels"]
    state = StateDict({k: v for k, v in state.items() if k != "diffusion_embedding.embedding"}, path)  # the step
    # table: a buffer older lmnt versions saved
    d = LMNT_EMBED_DIM
    weights = {"input_projection": state.conv1d("input_projection", c, 1),
               "step_mlp_1": state.linear("diffusion_embedding.projection1", d, 128),
               "step_mlp_2": state.linear("diffusion_embedding.projection2", d, d),
               "skip_projection": state.conv1d("skip_projection", c, c),
               "output": state.conv1d("output_projection", 1, c)}
    for i in range(layers):
        key = f"residual_layers.{i}"
        weights[f"step_projection_{i}"] = state.linear(f"{key}.diffusion_projection", c, d)
        weights[f"dilated_conv_{i}"] = state.conv1d(f"{key}.dilated_conv", 2 * c, c, 3)
        weights[f"output_projection_{i}"] = state.conv1d(f"{key}.output_projection", 2 * c, c)
    if not config["model"]["unconditional"]:
        for n in (1, 2):  # [1, 1, mel 3, time 32] -> Keras [time, mel, out, in]
            weights[f"mel_upsampler_{n}"] = {
                "kernel": state.take(f"spectrogram_upsampler.conv{n}.weight", (1, 1, 3, 32))[0, 0].T[:, :, None, None],
                "bias": state.take(f"spectrogram_upsampler.conv{n}.bias", (1,))}
        # every layer's 2C projection side by side, gate half first (wavenet.LayerwiseProjection's layout)
        parts = [state.conv1d(f"residual_layers.{i}.conditioner_projection", 2 * c, n_mels) for i in range(layers)]
        weights["conditioner_projection"] = {"kernel": np.concatenate([p["kernel"][0] for p in parts], axis=1),
                                             "bias": np.concatenate([p["bias"] for p in parts])}
    state.check_all_used()
    return weights


def split_lmnt_checkpoint(checkpoint, path):
    """(state dict, params, step) of a learner checkpoint, or of a bare state dict (params {}, step 0)."""
    if not isinstance(checkpoint, dict):
        raise UserError(f"{path}: holds a {type(checkpoint).__name__}, not an lmnt checkpoint (a dict)")
    if "model" not in checkpoint:
        if "input_projection.weight" not in checkpoint:
            raise UserError(f"{path}: neither an lmnt learner checkpoint (no 'model') nor a DiffWave state dict "
                            f"(no 'input_projection.weight')")
        return checkpoint, {}, 0
    params, step = checkpoint.get("params", {}), checkpoint.get("step", 0)
    if not isinstance(checkpoint["model"], dict) or not isinstance(params, dict) or not isinstance(step, int):
        raise UserError(f"{path}: 'model' must be a state dict, 'params' a dict and 'step' an integer")
    return checkpoint["model"], params, step


def infer_params(state, params):
    """The params that a state dict shows by its shapes (used where the checkpoint has no params)."""
    found = {}
    if "input_projection.weight" in state:
        found["residual_channels"] = int(np.shape(state["input_projection.weight"])[0])
    found["residual_layers"] = len({k.split(".")[1] for k in state if k.startswith("residual_layers.")})
    found["unconditional"] = not any(k.startswith("spectrogram_upsampler.") for k in state)
    if "residual_layers.0.conditioner_projection.weight" in state:
        found["n_mels"] = int(np.shape(state["residual_layers.0.conditioner_projection.weight"])[1])
    return {**found, **params}


def convert_lmnt(checkpoint_path, out_dir, overrides=(), export=True):
    """Write a model folder for an lmnt-com/diffwave checkpoint; return the loaded model (tf_diffwave.load)."""
    checkpoint = read_torch_checkpoint(checkpoint_path)
    check_format(checkpoint, "lmnt", checkpoint_path)
    state, params, step = split_lmnt_checkpoint(checkpoint, checkpoint_path)
    params = infer_params(state, params)
    unused = {"batch_size", "learning_rate", "max_grad_norm"} | (set() if params["unconditional"] else {"audio_len"})
    assumed = {k: v for k, v in LMNT_DEFAULTS.items() if k not in params and k not in unused}
    if assumed:
        shown = ", ".join(f"{k}={'linspace(1e-4, 0.05, 50)' if k == 'noise_schedule' else v}"
                          for k, v in assumed.items())
        logger.info(f"note: {checkpoint_path} does not record params {', '.join(assumed)}; assumed lmnt's defaults "
                    f"({shown}) before the overrides")
    config = lmnt_config(params, checkpoint_path)
    apply_overrides(config, overrides)
    validate(config)
    return write_model_folder(config, lmnt_weights(state, config, checkpoint_path), step, out_dir, checkpoint_path,
                              export)
