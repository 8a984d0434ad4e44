"""tf-diffwave classifier: train the SC09 digit classifier behind the quality metrics."""

import argparse

from tf_diffwave.cli.common import add_config, writable_folder
from tf_diffwave.config import load_config
from tf_diffwave.tensorflow_import import import_tensorflow


def main(argv=None, prog=None):
    """tf-diffwave classifier --config CFG [key=value ...]"""
    parser = argparse.ArgumentParser(prog=prog,
                                     description="Train the SC09 digit classifier used by the quality metrics.")
    add_config(parser)
    args = parser.parse_args(argv)
    config = load_config(args.config, args.overrides)
    writable_folder(config["train"]["model_dir"], "config key 'train.model_dir'")
    import_tensorflow()
    import keras

    from tf_diffwave.evaluation.classifier import train_classifier

    keras.utils.set_random_seed(config["train"]["seed"])
    accuracy = train_classifier(config)
    where = config["train"]["model_dir"]
    print(f"saved {where}" + ("" if accuracy is None else f"; test accuracy {accuracy:.4f} on held-out speakers"))
