"""Model folders from albertfgu/diffwave-sashimi's SC09 checkpoints (branch `checkpoints`, the code its released
models were trained with): `tf-diffwave convert albertfgu-diffwave CKPT CONFIG.yaml OUT_DIR [key=value]`.

The checkpoint is `train.py`'s (`model_state_dict`, and `optimizer_state_dict`, ignored); it stores no
hyperparameters, so CONFIG.yaml is the run's composed Hydra config (as `train.py` prints it, or
`outputs/<date>/<time>/.hydra/config.yaml`). Its WaveNet is philsyn's (rf5_diffwave.py computes it, with the same
options). With `diffusion.beta` a list, the original samples with that short schedule and gives the network the
step indices T'-1 .. 0 of the short schedule itself: that schedule becomes the fast one, with those steps
(`diffusion.fast_steps`). Nothing in the file is run (see torch_checkpoint.py).
"""

from tf_diffwave.errors import UserError
from tf_diffwave.interop.foreign_configs import read_hydra_config
from tf_diffwave.interop.rf5_diffwave import convert_philsyn_layout, rf5_wavenet_config, rf5_wavenet_weights

WAVENET_KEYS = ("in_channels", "out_channels", "res_channels", "skip_channels", "num_res_layers", "dilation_cycle",
                "diffusion_step_embed_dim_in", "diffusion_step_embed_dim_mid", "diffusion_step_embed_dim_out")


def albertfgu_config(cfg, path):
    """This project's config for the model a composed albertfgu config describes; errors name its keys."""
    model, diffusion, dataset = cfg["model"], cfg["diffusion"], cfg.get("dataset") or {}
    if model.get("_name_") == "sashimi":
        raise UserError(f"{path}: a SaShiMi-DiffWave of albertfgu/diffwave-sashimi, whose S4 (January 2022: two "
                        f"kernels per layer, trained low-rank term) does not convert yet; its WaveNet models do")
    if model.get("_name_") != "wavenet":
        raise UserError(f"{path}: model._name_ = {model.get('_name_')!r}; albertfgu/diffwave-sashimi's models are "
                        f"'wavenet' and 'sashimi'")
    if model.get("unconditional") is not True:
        raise UserError(f"{path}: model.unconditional = {model.get('unconditional')!r}: only the unconditional SC09 "
                        f"models (every release) convert")
    train = cfg.get("train") or {}
    source = {"diffusion_config": {key: diffusion.get(key) for key in ("T", "beta_0", "beta_T")},
              "wavenet_config": {key: model.get(key) for key in WAVENET_KEYS},
              "trainset_config": {key: dataset[key] for key in ("segment_length", "sampling_rate") if key in dataset},
              "train_config": {key: train[key] for key in ("learning_rate", "batch_size_per_gpu") if key in train}}
    config = rf5_wavenet_config(source, path)
    beta = diffusion.get("beta")
    if beta is not None:
        if not (isinstance(beta, list) and beta and all(isinstance(b, (int, float)) and 0 < b < 1 for b in beta)):
            raise UserError(f"{path}: diffusion.beta = {beta!r} is not null or a list of betas in (0, 1)")
        config["diffusion"]["fast_schedule"] = [float(b) for b in beta]
        config["diffusion"]["fast_steps"] = [float(n) for n in range(len(beta))]
    return config


def convert_albertfgu(checkpoint_path, config_path, out_dir, overrides=(), export=True):
    """Write a model folder for an albertfgu/diffwave-sashimi checkpoint and its composed Hydra config; return the
    loaded model (tf_diffwave.load)."""
    config = albertfgu_config(read_hydra_config(config_path, ("model", "diffusion"),
                                                "an albertfgu/diffwave-sashimi (Hydra)"), config_path)
    # its WaveNet's keys are philsyn's
    return convert_philsyn_layout(checkpoint_path, "rf5-diffwave", lambda: config, rf5_wavenet_weights, out_dir,
                                  overrides, export)
