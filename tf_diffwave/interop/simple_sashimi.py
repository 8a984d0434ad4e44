"""Model folders from RF5/simple-sashimi's autoregressive SaShiMi checkpoints (`tf-diffwave convert simple-sashimi
CKPT OUT_DIR [key=value]`).

The checkpoint is what simple-sashimi's `train.py` saves: `model_state_dict` and `cfg_yaml`, the whole training
config as YAML (read with a safe loader: plain values only, nothing constructed or run), plus optimizer, scheduler
and scaler states, which are ignored. The folder runs on this project's autoregressive SaShiMi family with every S4
kernel computed at the checkpoint's l_max from the exact FFT nodes: the system its parameters define, which the
original's recurrent mode (its generation and NLL) computes; the complex64 nodes it stores are off by up to 1e-4
and are dropped. A tied S4 state is repeated per channel (fine-tuning then unties it).
"""

import yaml

from tf_diffwave.config import apply_overrides, defaults, merge, validate
from tf_diffwave.errors import UserError
from tf_diffwave.interop.foreign_configs import typed_entry
from tf_diffwave.interop.formats import check_format
from tf_diffwave.interop.model_folder import StateDict, write_model_folder
from tf_diffwave.interop.rf5_sashimi import (
    feed_forward_block,
    layer_norm,
    pooling_order,
    s4_v1_block,
    tied_state,
    transposed_linear,
)
from tf_diffwave.interop.torch_checkpoint import read_torch_checkpoint
from tf_diffwave.models.ar_sashimi.network import MU

PREFIX = "sashimi."


def read_training_config(checkpoint, path):
    """The checkpoint's `cfg_yaml` as a dict (a YAML mapping of plain values)."""
    text = checkpoint.get("cfg_yaml")
    if not isinstance(text, str):
        raise UserError(f"{path}: no 'cfg_yaml' string: not a simple-sashimi training checkpoint")
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise UserError(f"{path}: cfg_yaml is not plain YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model_cfg"), dict):
        raise UserError(f"{path}: cfg_yaml has no 'model_cfg' section")
    return cfg


def simple_sashimi_config(cfg, tied, path):
    """This project's config for the SashimiAR that a simple-sashimi training config describes (`tied`: its S4
    layers tie their state, which the weights show); errors name its keys."""
    model = cfg["model_cfg"]

    def get(key, kind=int):
        return typed_entry(model, key, kind, path, "cfg_yaml model_cfg.", "simple-sashimi")

    for key, expected in (("mu_levels", MU + 1), ("glu", True), ("bidirectional", False), ("unet", False),
                          ("diffwave", False)):
        if get(key, bool if isinstance(expected, bool) else int) != expected:
            raise UserError(f"{path}: cfg_yaml model_cfg.{key} = {model[key]!r} is not supported (the "
                            f"autoregressive SaShiMi imported here has {expected})")
    pool = get("pool", list)
    if not pool or not all(isinstance(p, int) and p > 0 for p in pool):
        raise UserError(f"{path}: cfg_yaml model_cfg.pool = {pool!r} must be a list of positive integers")
    rate = cfg.get("sample_rate", 16000)
    update = {
        "data": {"kind": "sc09", "path": "data/sc09-demo"},
        "audio": {"sample_rate": rate, "fmax": rate / 2},
        "model": {"backbone": "ar_sashimi", "unconditional": True, "audio_length": cfg.get("seq_len", 16000),
                  "ar_sashimi": {"d_model": get("d_model"), "n_layers": get("n_layers"), "pool": pool,
                                 "expand": get("expand"), "ff": get("ff"), "ssm": "s4", "state_size": 64,
                                 "s4_variant": "glu", "s4_length": get("l_max"), "tie_state": tied,
                                 "ssm_learning_rate": float(model.get("lr", 1e-3))}},
        "train": {"learning_rate": float(cfg.get("start_lr", 4e-3)), "batch_size": cfg.get("batch_size", 8)},
    }
    config = defaults()
    merge(config, update, "", f"{path}: cfg_yaml (as this project's config)")
    return config


def simple_sashimi_weights(state, config, path):
    """Keras weights {layer: {weight: array}} of the autoregressive SaShiMi from simple-sashimi's state dict;
    every key must be used once."""
    m = config["model"]["ar_sashimi"]
    n, d, l_max = m["n_layers"], m["d_model"], m["s4_length"]
    state = StateDict(state, path)
    weights = {"embedding": {"embeddings": state.take("mu_embedder.weight", (MU + 1, d))},
               "logits": state.linear("head", MU + 1, d), "output_norm": layer_norm(state, f"{PREFIX}norm", d)}

    def blocks(name, key, index, h):
        """Tier blocks name_0.. from `key`.<index(i)> (S4) and `key`.<index(i) + 1> (feed-forward)."""
        for i in range(n):
            weights.update(s4_v1_block(state, f"{key}.{index(i)}", f"{name}_{i}", h, 1, l_max, "exact",
                                       m["tie_state"]))
            weights.update(feed_forward_block(state, f"{key}.{index(i) + 1}", f"{name}_{i}", h, m["ff"]))

    widths = [d * m["expand"] ** t for t in range(len(m["pool"]) + 1)]
    for tier, factor in enumerate(m["pool"]):
        h = widths[tier]
        pool = transposed_linear(state, f"{PREFIX}d_layers.{tier}.linear", widths[tier + 1], factor * h, normed=True)
        pool["kernel"] = pool["kernel"][pooling_order(h, factor)]
        weights[f"tier{tier}_down_pool"] = pool
        j = len(m["pool"]) - 1 - tier  # u_layers run from the deepest tier up
        up = transposed_linear(state, f"{PREFIX}u_layers.{j}.0.linear", factor * h, widths[tier + 1], normed=True)
        order = pooling_order(h, factor)
        weights[f"tier{tier}_up_pool"] = {"kernel": up["kernel"][:, order], "bias": up["bias"][order]}
        blocks(f"tier{tier}", f"{PREFIX}u_layers.{j}", lambda i: 1 + 2 * i, h)
    blocks("center", f"{PREFIX}c_layers", lambda i: 2 * i, widths[-1])
    state.check_all_used()
    return weights


def convert_simple_sashimi(checkpoint_path, out_dir, overrides=(), export=True):
    """Write a model folder for a simple-sashimi checkpoint; return the loaded model (tf_diffwave.load)."""
    checkpoint = read_torch_checkpoint(checkpoint_path)
    check_format(checkpoint, "simple-sashimi", checkpoint_path)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model_state_dict"), dict):
        raise UserError(f"{checkpoint_path}: no 'model_state_dict': not a simple-sashimi training checkpoint")
    tied = tied_state(StateDict(checkpoint["model_state_dict"], checkpoint_path), f"{PREFIX}c_layers.0")
    config = simple_sashimi_config(read_training_config(checkpoint, checkpoint_path), tied, checkpoint_path)
    apply_overrides(config, overrides)
    validate(config)
    step = checkpoint.get("steps") if isinstance(checkpoint.get("steps"), int) else 0
    return write_model_folder(config, simple_sashimi_weights(checkpoint["model_state_dict"], config, checkpoint_path),
                              step, out_dir, checkpoint_path, export)
