"""Model folders from ivanvovk/WaveGrad checkpoints (`tf-diffwave convert wavegrad-ivanvovk CKPT CONFIG OUT_DIR`).

The checkpoint is what ivanvovk's `logger.save_checkpoint` writes (`iteration`, `model`, `optimizer`) or a dict
with only `model` (its released LJSpeech checkpoint), or the bare state dict; the config is its JSON file
(`model_config`, `data_config`, `training_config`). The model folder records ivanvovk's features (log10 of HTK
mel power) and its sampler (the clipped clean-audio estimate, float32 schedule arithmetic), so that it vocodes as
ivanvovk's code does. The 10 noise-schedule buffers the state dict carries are not weights and are ignored:
ivanvovk sets its inference schedule after loading, as `infer --steps` does here.
"""

from tf_diffwave.config import apply_overrides, defaults, merge, validate
from tf_diffwave.errors import UserError
from tf_diffwave.interop.foreign_configs import read_json_config
from tf_diffwave.interop.formats import check_format
from tf_diffwave.interop.model_folder import StateDict, write_model_folder
from tf_diffwave.interop.torch_checkpoint import read_torch_checkpoint
from tf_diffwave.models.wavegrad import SCHEDULES

SCHEDULE_BUFFERS = ("betas", "alphas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                    "sqrt_recip_alphas_cumprod", "sqrt_alphas_cumprod_m1", "sqrt_recipm1_alphas_cumprod",
                    "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2")
MODEL_KEYS = ("factors", "upsampling_preconv_out_channels", "upsampling_out_channels", "upsampling_dilations",
              "downsampling_preconv_out_channels", "downsampling_out_channels", "downsampling_dilations")


def read_ivanvovk_config(path):
    """ivanvovk's JSON config as a dict, with its sections checked."""
    return read_json_config(path, ("model_config", "data_config"), "an ivanvovk/WaveGrad")


def ivanvovk_config(source, path):
    """This project's config for the model an ivanvovk config describes; errors name its keys."""
    model, data = source["model_config"], source["data_config"]
    training = source.get("training_config", {}) if isinstance(source.get("training_config"), dict) else {}

    def get(section, name, key, default=None):
        if key not in section:
            if default is None:
                raise UserError(f"{path}: {name}.{key} is missing")
            return default
        return section[key]

    noise = get(training, "training_config", "training_noise_schedule", {"n_iter": 1000, "betas_range": [1e-6, 0.01]})
    try:
        (beta_start, beta_end), num_steps = noise["betas_range"], noise["n_iter"]
    except (TypeError, KeyError, ValueError):
        raise UserError(f"{path}: training_config.training_noise_schedule must hold n_iter and betas_range") from None
    hop = get(data, "data_config", "hop_length")
    update = {
        "audio": {"sample_rate": get(data, "data_config", "sample_rate"), "n_fft": get(data, "data_config", "n_fft"),
                  "win_length": get(data, "data_config", "win_length"), "hop_length": hop,
                  "n_mels": get(data, "data_config", "n_mels"), "fmin": get(data, "data_config", "f_min"),
                  "fmax": get(data, "data_config", "f_max"), "features": "ivanvovk"},
        "model": {"backbone": "wavegrad", "wavegrad": {key: get(model, "model_config", key) for key in MODEL_KEYS}},
        "diffusion": {"num_steps": num_steps, "beta_start": beta_start, "beta_end": beta_end, "loss": "l1",
                      "fast_schedule": SCHEDULES["6"], "clip_x0": True, "schedule_precision": "float32"},
        "train": {"learning_rate": get(training, "training_config", "lr", 1e-3),
                  "batch_size": get(training, "training_config", "batch_size", 96),
                  "grad_clip_norm": get(training, "training_config", "grad_clip_threshold", 1.0)},
    }
    segment = get(training, "training_config", "segment_length", 7200)
    if isinstance(segment, int) and isinstance(hop, int) and hop > 0:
        update["data"] = {"crop_frames": max(segment // hop, 1)}
    config = defaults()
    merge(config, update, "", f"{path} (as this project's config)")
    return config


def split_ivanvovk_checkpoint(checkpoint, path):
    """(state dict without the schedule buffers, iteration) of a checkpoint in any of ivanvovk's layouts."""
    if not isinstance(checkpoint, dict):
        raise UserError(f"{path}: holds a {type(checkpoint).__name__}, not an ivanvovk/WaveGrad checkpoint (a dict)")
    state, step = checkpoint, 0
    if "model" in checkpoint:
        state, step = checkpoint["model"], checkpoint.get("iteration", 0)
    if not isinstance(state, dict) or not any(str(k).startswith("nn.") for k in state):
        raise UserError(f"{path}: neither an ivanvovk/WaveGrad checkpoint nor its state dict (no 'nn.' weights)")
    if not isinstance(step, int):
        raise UserError(f"{path}: 'iteration' must be an integer")
    return {k: v for k, v in state.items() if k not in SCHEDULE_BUFFERS}, step


def ivanvovk_weights(state, config, path):
    """Keras weights {layer: {weight: array}} of the WaveGrad backbone from ivanvovk's state dict; every key must
    be used once."""
    w, n_mels = config["model"]["wavegrad"], config["audio"]["n_mels"]
    state = StateDict(state, path)

    def conv(key, out, inp, k):
        return state.conv1d(f"nn.{key}.conv1d", out, inp, k)

    down_in = [w["downsampling_preconv_out_channels"], *w["downsampling_out_channels"]]
    up_in = [w["upsampling_preconv_out_channels"], *w["upsampling_out_channels"]]
    weights = {"dblock_preconv": conv("dblock_preconv", down_in[0], 1, 5),
               "ublock_preconv": conv("ublock_preconv", up_in[0], n_mels, 3),
               "ublock_postconv": conv("ublock_postconv", 1, up_in[-1], 3)}
    for i, out in enumerate(w["downsampling_out_channels"]):
        weights[f"dblock_{i}_residual"] = conv(f"dblocks.{i}.residual_branch.0", out, down_in[i], 1)
        for j in range(3):
            weights[f"dblock_{i}_conv_{j}"] = conv(f"dblocks.{i}.main_branch.{j + 1}.convolution", out,
                                                   down_in[i] if j == 0 else out, 3)
    for i, out in enumerate(w["upsampling_out_channels"][::-1]):
        weights[f"film_{i}_signal"] = conv(f"films.{i}.signal_conv.0", down_in[i], down_in[i], 3)
        weights[f"film_{i}_scale"] = conv(f"films.{i}.scale_conv", out, down_in[i], 3)
        weights[f"film_{i}_shift"] = conv(f"films.{i}.shift_conv", out, down_in[i], 3)
    for i, out in enumerate(w["upsampling_out_channels"]):
        block = f"ublocks.{i}"
        weights[f"ublock_{i}_upsampling"] = conv(f"{block}.first_block_main_branch.upsampling.2", out, up_in[i], 3)
        weights[f"ublock_{i}_modulation"] = conv(f"{block}.first_block_main_branch.modulation.convolution", out,
                                                 out, 3)
        weights[f"ublock_{i}_residual"] = conv(f"{block}.first_block_residual_branch.0", out, up_in[i], 1)
        for j in (0, 1):
            weights[f"ublock_{i}_modulation_{j}"] = conv(
                f"{block}.second_block_main_branch.modulation_{j}.convolution", out, out, 3)
    state.check_all_used()
    return weights


def convert_ivanvovk(checkpoint_path, config_path, out_dir, overrides=(), export=True):
    """Write a model folder for an ivanvovk/WaveGrad checkpoint and its JSON config; return the loaded model."""
    config = ivanvovk_config(read_ivanvovk_config(config_path), config_path)
    apply_overrides(config, overrides)
    validate(config)
    checkpoint = read_torch_checkpoint(checkpoint_path)
    check_format(checkpoint, "wavegrad-ivanvovk", checkpoint_path)
    state, step = split_ivanvovk_checkpoint(checkpoint, checkpoint_path)
    return write_model_folder(config, ivanvovk_weights(state, config, checkpoint_path), step, out_dir,
                              checkpoint_path, export)
