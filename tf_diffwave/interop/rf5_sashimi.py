"""Model folders from RF5/DiffWave-unconditional's SaShiMi-DiffWave checkpoints (`tf-diffwave convert
rf5-sashimi-diffwave CKPT [CONFIG.json] OUT_DIR [key=value]`), and the S4 v1 layers they share with RF5's
autoregressive SaShiMi.

The architecture is read from the weight shapes (widths, tiers, pooling, feed-forward width, S4 l_max, step-MLP
widths); CONFIG.json (the repository's `config.json`, or hubconf's defaults without one) gives the schedule and
the clip length, and where its `sashimi_config` disagrees with the weights, the weights win (with a note). The
folder runs on this project's SaShiMi family with the options that reproduce the original: LayerNorms per channel,
a skip around every S4 and feed-forward layer, every S4 kernel computed at l_max from the FFT nodes the checkpoint
stores, the Transformer's step frequencies, and audio returned unclipped. Weight norms are folded into the weights
and the pooling layers' channels reordered to this project's layout. Nothing in the file is run.
"""

import logging

import numpy as np

from tf_diffwave.config import apply_overrides, validate
from tf_diffwave.errors import UserError
from tf_diffwave.interop.foreign_configs import read_json_config
from tf_diffwave.interop.formats import check_format
from tf_diffwave.interop.model_folder import StateDict, write_model_folder
from tf_diffwave.interop.rf5_diffwave import rf5_config, split_rf5_checkpoint
from tf_diffwave.interop.torch_checkpoint import read_torch_checkpoint

logger = logging.getLogger(__name__)  # printed by the commands; silenced like any library's

# hubconf's DiffWave release config.json where no config is given (T 200, beta 1e-4 .. 0.02, 1 s at 16 kHz)
HUBCONF_SOURCE = {"diffusion_config": {"T": 200, "beta_0": 1e-4, "beta_T": 0.02},
                  "trainset_config": {"segment_length": 16000, "sampling_rate": 16000}}
PREFIX = "sashimi."


def transposed_linear(state, key, out, inp, normed=False):
    """A TransposedLinear's weight [out, in] (weight-normed if `normed`) and bias [out, 1] as Keras' kernel
    [in, out] and bias."""
    weight = state.weight_normed(key, (out, inp)) if normed else state.take(f"{key}.weight", (out, inp))
    return {"kernel": weight.T, "bias": state.take(f"{key}.bias", (out, 1))[:, 0]}


def tied_state(state, key):
    """Whether the S4 v1 layer of block `key` ties its state (B [1, 1, N, 2]: one B, P and w for all channels)."""
    return state.shape(f"{key}.layer.kernel.kernel.B")[1] == 1


def s4_v1_block(state, key, name, h, channels, l_max, nodes, tied):
    """The weights {layer: {weight: array}} of the pre-norm S4 block `key` (its `norm` and its S4 v1 `layer`: `D`,
    `output_linear.0` and `kernel.kernel.*`, of width h with `channels` kernels, 2 if bidirectional; `tied`: one
    B, P and w for all channels) for this project's `<name>_norm1` and `<name>_s4` (S4Layer). The FFT nodes the
    layer stores (`omega`, and `z` = 2 (1 - omega) / (1 + omega), which S4Layer derives) become its `omega` with
    nodes "stored" and are dropped with "exact"."""
    ssm = f"{key}.layer.kernel.kernel"
    n = state.shape(f"{ssm}.w_imag")[-1]
    copies = 1 if tied else h  # of Lambda, B and P

    def stored(weight, shape, lead=0):
        """`weight` of `shape`, stored after `lead` leading axes of 1."""
        return state.take(f"{ssm}.{weight}", (1,) * lead + shape).reshape(shape)

    omega = state.take(f"{ssm}.omega", (l_max // 2 + 1, 2))
    state.take(f"{ssm}.z", (l_max // 2 + 1, 2))
    s4 = {"log_dt": state.take(f"{ssm}.log_dt", (h,)),
          "lambda_log_re": stored("log_w_real", (copies, n)), "lambda_im": stored("w_imag", (copies, n)),
          "b": stored("B", (copies, n, 2), 1), "p": stored("P", (copies, n, 2), 1),
          "c": state.take(f"{ssm}.C", (channels, h, n, 2)), "d": state.take(f"{key}.layer.D", (1, h))[0],
          **({"omega": omega} if nodes == "stored" else {})}
    return {f"{name}_norm1": layer_norm(state, f"{key}.norm", h), f"{name}_s4": s4,
            f"{name}_s4/output_linear": transposed_linear(state, f"{key}.layer.output_linear.0", 2 * h, h)}


def feed_forward_block(state, key, name, h, ff):
    """The weights of the pre-norm feed-forward block `key` (`norm`, `layer.ff.0.0`, `layer.ff.2`) for this
    project's `<name>_norm2`, `<name>_ff1` and `<name>_ff2`."""
    return {f"{name}_norm2": layer_norm(state, f"{key}.norm", h),
            f"{name}_ff1": transposed_linear(state, f"{key}.layer.ff.0.0", ff * h, h),
            f"{name}_ff2": transposed_linear(state, f"{key}.layer.ff.2", h, ff * h)}


def pooling_order(channels, factor):
    """The index in the original's (h s) channel order (channel h at offset s of a pooled step, h * factor + s) of
    each channel of this project's order (s * channels + h)."""
    return np.arange(channels * factor).reshape(channels, factor).T.reshape(-1)


def architecture(state, path):
    """The SaShiMi section that the weight shapes of a SaShiMi-DiffWave state dict (without its prefix) show."""
    def count(name):
        return len({k.split(".")[1] for k in state.unused if k.startswith(f"{name}.")})

    d_model = state.shape("init_conv.0.conv.weight_v")[0]
    tiers, centre = count("u_layers"), count("c_layers")
    if tiers == 0 or centre == 0 or centre % 2:
        raise UserError(f"{path}: not a U-Net SaShiMi-DiffWave state dict ({tiers} up tiers, {centre} centre layers)")
    n_layers = centre // 2
    pool, width = [], d_model
    for tier in range(tiers):
        rows, cols = state.shape(f"d_layers.{tier * (2 * n_layers + 1) + 2 * n_layers}.linear.weight_v")
        pool.append(cols // width)
        expand, width = rows // width, rows
    nodes = state.shape("d_layers.0.layer.kernel.kernel.omega")[0]
    return {"d_model": d_model, "n_layers": n_layers, "pool": pool, "expand": expand,
            "ff": state.shape("d_layers.1.layer.ff.0.0.weight")[0] // d_model, "unet": True, "bidirectional": True,
            "ssm": "s4", "state_size": 2 * state.shape("d_layers.0.layer.kernel.kernel.w_imag")[-1],
            "s4_variant": "glu", "embed_dim": state.shape("fc_t1.weight")[0],
            "embed_out_dim": state.shape("fc_t2.weight")[0], "step_frequencies": "transformer", "norm": "channel",
            "skips": "layer", "s4_length": 2 * (nodes - 1), "s4_nodes": "stored",
            "tie_state": tied_state(state, "d_layers.0")}


def rf5_sashimi_weights(state, config, path):
    """Keras weights {layer: {weight: array}} of the SaShiMi backbone from RF5's state dict (prefix removed);
    every key must be used once."""
    m = config["model"]["sashimi"]
    n, h0 = m["n_layers"], m["d_model"]
    state = StateDict(state, path)
    mid, out = m["embed_dim"], m["embed_out_dim"] or m["embed_dim"]
    init = state.weight_normed("init_conv.0.conv", (h0, 1, 1))
    final = state.weight_normed("final_conv.0.conv", (h0, h0, 1))
    weights = {"input_projection": {"kernel": init[:, :, 0].T, "bias": state.take("init_conv.0.conv.bias", (h0,))},
               "step_mlp_1": state.linear("fc_t1", mid, 128), "step_mlp_2": state.linear("fc_t2", out, mid),
               "output_norm": layer_norm(state, "norm", h0),
               "skip_projection": {"kernel": final[:, :, 0].T, "bias": state.take("final_conv.0.conv.bias", (h0,))},
               "output": state.conv1d("final_conv.2.conv", 1, h0)}
    weights["output"]["kernel"] = weights["output"]["kernel"][0]

    def block(name, s4_key, ff_key, h):
        weights[f"{name}_step"] = state.linear(f"{s4_key}.fc_t", h, out)
        weights.update(s4_v1_block(state, s4_key, name, h, 2, m["s4_length"], "stored", m["tie_state"]))
        weights.update(feed_forward_block(state, ff_key, name, h, m["ff"]))

    h, widths = h0, []
    for tier, factor in enumerate(m["pool"]):
        base = tier * (2 * n + 1)
        for i in range(n):
            block(f"down{tier}_{i}", f"d_layers.{base + 2 * i}", f"d_layers.{base + 2 * i + 1}", h)
        pool = transposed_linear(state, f"d_layers.{base + 2 * n}.linear", m["expand"] * h, factor * h, normed=True)
        pool["kernel"] = pool["kernel"][pooling_order(h, factor)]
        weights[f"down{tier}_pool"] = pool
        widths.append(h)
        h *= m["expand"]
    for i in range(n):
        block(f"center_{i}", f"c_layers.{2 * i}", f"c_layers.{2 * i + 1}", h)
    for j, tier in enumerate(reversed(range(len(m["pool"])))):
        factor, h = m["pool"][tier], widths[tier]
        pool = transposed_linear(state, f"u_layers.{j}.0.linear", factor * h, m["expand"] * h, normed=True)
        order = pooling_order(h, factor)
        weights[f"up{tier}_pool"] = {"kernel": pool["kernel"][:, order], "bias": pool["bias"][order]}
        for i in range(n):
            block(f"up{tier}_{i}", f"u_layers.{j}.{1 + 2 * i}", f"u_layers.{j}.{2 + 2 * i}", h)
    state.check_all_used()
    return weights


def layer_norm(state, key, h):
    """A LayerNorm's weight and bias as Keras' gamma and beta."""
    return {"gamma": state.take(f"{key}.weight", (h,)), "beta": state.take(f"{key}.bias", (h,))}


def convert_rf5_sashimi(checkpoint_path, config_path, out_dir, overrides=(), export=True):
    """Write a model folder for an RF5 SaShiMi-DiffWave checkpoint (and the repository's config.json, or None for
    hubconf's defaults); return the loaded model (tf_diffwave.load)."""
    checkpoint = read_torch_checkpoint(checkpoint_path)
    check_format(checkpoint, "rf5-sashimi-diffwave", checkpoint_path)
    state, step = split_rf5_checkpoint(checkpoint, checkpoint_path)
    state = {k[len(PREFIX):] if k.startswith(PREFIX) else k: v for k, v in state.items()}
    section = architecture(StateDict(state, checkpoint_path), checkpoint_path)
    source = HUBCONF_SOURCE if config_path is None else \
        read_json_config(config_path, ("diffusion_config",), "a DiffWave-unconditional")
    given = source.get("sashimi_config") if isinstance(source.get("sashimi_config"), dict) else {}
    differ = [f"{key} {given[key]!r} -> {section[key]!r}" for key in ("d_model", "n_layers", "pool", "expand", "ff")
              if key in given and given[key] != section[key]]
    if "l_max" in given and given["l_max"] != section["s4_length"]:
        differ.append(f"l_max {given['l_max']!r} -> {section['s4_length']!r}")
    if differ:
        logger.info(f"note: {config_path}: sashimi_config disagrees with the weights of {checkpoint_path}; the "
                    f"weights' shapes are used ({', '.join(differ)})")
    config = rf5_config(source, config_path or "hubconf defaults", "sashimi", section)
    apply_overrides(config, overrides)
    validate(config)
    return write_model_folder(config, rf5_sashimi_weights(state, config, checkpoint_path), step, out_dir,
                              checkpoint_path, export)
