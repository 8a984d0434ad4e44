"""tf-diffwave train (also python train.py): train a model from a JSON config, resuming its run folder."""

import argparse
import sys

from tf_diffwave.cli.common import add_config, apply_model_settings, writable_folder
from tf_diffwave.config import load_config, with_model_of
from tf_diffwave.tensorflow_import import import_tensorflow


def main(argv=None, prog=None):
    """tf-diffwave train --config CFG [key=value ...]"""
    parser = argparse.ArgumentParser(prog=prog, description="Train a model (any family: DiffWave, WaveGrad, "
                                                            "SaShiMi) from a JSON config; run again to resume.")
    add_config(parser)
    args = parser.parse_args(argv)
    config = load_config(args.config, args.overrides)
    writable_folder(config["train"]["model_dir"], "config key 'train.model_dir'")
    import_tensorflow()
    import keras

    from tf_diffwave.training.trainer import Trainer

    config = with_model_of(config, args.overrides)
    apply_model_settings(config)
    keras.utils.set_random_seed(config["train"]["seed"])  # the same initial weights on every run and replica count
    trainer = Trainer(config)
    stopped_by = trainer.train()
    if stopped_by is not None:  # Ctrl-C or a preemption: saved, but not done, so `train && infer` stops here
        print(f"interrupted at step {int(trainer.step.numpy())}; run the same command to resume", file=sys.stderr)
        sys.exit(128 + stopped_by)
