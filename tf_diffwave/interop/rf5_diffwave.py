"""Model folders from RF5/DiffWave-unconditional's WaveNet checkpoints, philsyn's unconditional DiffWave
(`tf-diffwave convert rf5-diffwave CKPT CONFIG.json OUT_DIR [key=value]`).

The checkpoint is what philsyn's `train.py` saves (`model_state_dict`, and `optimizer_state_dict`, ignored), or the
bare state dict; CONFIG.json is the repository's `config.json` (`diffusion_config`, `wavenet_config`,
`trainset_config`). The folder runs on this project's WaveNet family with the options that reproduce philsyn's
arithmetic: the Transformer's step frequencies, the separate skip width and step-MLP widths, the step projection
kept on the residual path (its in-place `h += part_t`), its 200-step float32 schedule, and audio returned
unclipped. Its gate order (tanh on the first half of the dilated convolution) is taken care of by reordering the
weights. Nothing in the file is run (see torch_checkpoint.py).
"""

import os

import numpy as np

from tf_diffwave.config import apply_overrides, defaults, merge, validate
from tf_diffwave.errors import UserError
from tf_diffwave.interop.foreign_configs import read_json_config, typed_entry
from tf_diffwave.interop.formats import check_format
from tf_diffwave.interop.model_folder import StateDict, write_model_folder
from tf_diffwave.interop.torch_checkpoint import read_torch_checkpoint

RF5_FAST_SCHEDULE = [1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.7]  # not the original's (it samples all 200 steps): DiffWave
# appendix B's SC09 schedule, for `--steps fast`


def rf5_wavenet_config(source, path):
    """This project's config for the WaveNet a philsyn `config.json` describes; errors name its keys."""
    def get(section, key):
        return typed_entry(source[section], key, int, path, f"{section}.", "philsyn's DiffWave")

    for key, expected in (("in_channels", 1), ("out_channels", 1), ("diffusion_step_embed_dim_in", 128)):
        if get("wavenet_config", key) != expected:
            raise UserError(f"{path}: wavenet_config.{key} = {source['wavenet_config'][key]} is not supported "
                            f"(tf-diffwave's WaveNet has {expected})")
    return rf5_config(source, path, "wavenet", {
        "residual_channels": get("wavenet_config", "res_channels"),
        "skip_channels": get("wavenet_config", "skip_channels"),
        "residual_layers": get("wavenet_config", "num_res_layers"),
        "dilation_cycle": get("wavenet_config", "dilation_cycle"),
        "embed_dim": get("wavenet_config", "diffusion_step_embed_dim_mid"),
        "embed_out_dim": get("wavenet_config", "diffusion_step_embed_dim_out"),
        "step_frequencies": "transformer", "step_in_residual": True})


def rf5_config(source, path, backbone, section):
    """This project's config for a DiffWave-unconditional model: the family `backbone` with its `section`, and the
    repository's schedule (`diffusion_config`), clip length and rate (`trainset_config`) and training settings
    (`train_config`); the sampler returns its audio unclipped, as the original's does."""
    def section_of(name):
        return source.get(name) if isinstance(source.get(name), dict) else {}

    diffusion, trainset, training = (section_of(name) for name in ("diffusion_config", "trainset_config",
                                                                     "train_config"))
    for key, kind in (("T", int), ("beta_0", (int, float)), ("beta_T", (int, float))):
        typed_entry(diffusion, key, kind, path, "diffusion_config.", "DiffWave-unconditional")
    rate = trainset.get("sampling_rate", 16000)
    update = {
        "data": {"kind": "sc09", "path": "data/sc09-demo"},
        "audio": {"sample_rate": rate, "fmax": rate / 2},
        "model": {"backbone": backbone, "unconditional": True, "audio_length": trainset.get("segment_length", 16000),
                  backbone: section},
        "diffusion": {"num_steps": diffusion["T"], "beta_start": diffusion["beta_0"], "beta_end": diffusion["beta_T"],
                      "loss": "l2", "fast_schedule": RF5_FAST_SCHEDULE, "clip_output": False},
        "train": {"learning_rate": training.get("learning_rate", 2e-4),
                  "batch_size": training.get("batch_size_per_gpu", 16)},
    }
    config = defaults()
    merge(config, update, "", f"{path} (as this project's config)")
    return config


def rf5_wavenet_weights(state, config, path):
    """Keras weights {layer: {weight: array}} of the WaveNet backbone from philsyn's state dict; every key must be
    used once."""
    m = config["model"]["wavenet"]
    c, s, mid, out = m["residual_channels"], m["skip_channels"], m["embed_dim"], m["embed_out_dim"]
    state = StateDict(state, path)
    weights = {"input_projection": state.conv1d("init_conv.0.conv", c, 1, normed=True),
               "step_mlp_1": state.linear("residual_layer.fc_t1", mid, 128),
               "step_mlp_2": state.linear("residual_layer.fc_t2", out, mid),
               "skip_projection": state.conv1d("final_conv.0.conv", s, s, normed=True),
               "output": state.conv1d("final_conv.2.conv", 1, s)}
    for i in range(m["residual_layers"]):
        key = f"residual_layer.residual_blocks.{i}"
        weights[f"step_projection_{i}"] = state.linear(f"{key}.fc_t", c, out)
        dilated = state.conv1d(f"{key}.dilated_conv_layer.conv", 2 * c, c, 3, normed=True)
        # philsyn: tanh of the first C outputs, sigmoid of the last C; SplitConv1D's first part is the sigmoid's
        weights[f"dilated_conv_{i}"] = {"kernel": dilated["kernel"][..., list(range(c, 2 * c)) + list(range(c))],
                                        "bias": dilated["bias"][list(range(c, 2 * c)) + list(range(c))]}
        residual = state.conv1d(f"{key}.res_conv", c, c, normed=True)
        skip = state.conv1d(f"{key}.skip_conv", s, c, normed=True)
        weights[f"output_projection_{i}"] = {name: np.concatenate([residual[name], skip[name]], axis=-1)
                                             for name in ("kernel", "bias")}
    state.check_all_used()
    return weights


def split_rf5_checkpoint(checkpoint, path):
    """(state dict, step) of philsyn's training checkpoint or a bare state dict; the step is the checkpoint's
    `steps`, else the file's name when it is a number (philsyn saves `<iteration>.pkl`), else 0."""
    if not isinstance(checkpoint, dict):
        raise UserError(f"{path}: holds a {type(checkpoint).__name__}, not a DiffWave-unconditional checkpoint")
    state = checkpoint.get("model_state_dict", checkpoint)
    if not isinstance(state, dict):
        raise UserError(f"{path}: 'model_state_dict' must be a state dict")
    step = checkpoint.get("steps")
    if not isinstance(step, int):
        stem = os.path.splitext(os.path.basename(path))[0]
        step = int(stem) if stem.isdigit() else 0
    return state, step


def convert_philsyn_layout(checkpoint_path, expected, make_config, make_weights, out_dir, overrides, export):
    """What the converters of philsyn's checkpoint layout share: read the checkpoint, check it is of format
    `expected`, take its state dict and step, build the config (`make_config()`, after the checkpoint passed),
    apply the overrides and write the folder with `make_weights(state, config, checkpoint_path)`; return the loaded
    model."""
    checkpoint = read_torch_checkpoint(checkpoint_path)
    check_format(checkpoint, expected, checkpoint_path)
    state, step = split_rf5_checkpoint(checkpoint, checkpoint_path)
    config = make_config()
    apply_overrides(config, overrides)
    validate(config)
    return write_model_folder(config, make_weights(state, config, checkpoint_path), step, out_dir, checkpoint_path,
                              export)


def convert_rf5_diffwave(checkpoint_path, config_path, out_dir, overrides=(), export=True):
    """Write a model folder for a philsyn/RF5 WaveNet DiffWave checkpoint and its config.json; return the loaded
    model (tf_diffwave.load)."""
    def make_config():
        if config_path.lower().endswith((".yaml", ".yml")):
            raise UserError(f"{config_path}: a YAML config: albertfgu/diffwave-sashimi's runs keep their WaveNet's "
                            f"settings in a Hydra config; convert them with 'tf-diffwave convert albertfgu-diffwave "
                            f"CKPT {config_path} OUT_DIR'")
        source = read_json_config(config_path, ("diffusion_config", "wavenet_config"),
                                  "a DiffWave-unconditional (philsyn) WaveNet")
        return rf5_wavenet_config(source, config_path)

    return convert_philsyn_layout(checkpoint_path, "rf5-diffwave", make_config, rf5_wavenet_weights, out_dir,
                                  overrides, export)
