"""Checkpoints of model weights: the EMA weights a model folder holds, read and written, and the restore of the
newest checkpoint of a folder into given objects."""

import tensorflow as tf

from tf_diffwave.errors import UserError


def restore_latest(model_dir, name, model, **others):
    """Load the newest checkpoint in `model_dir` into `model` (saved under `name`) and the other trackables given,
    requiring every weight of `model` and nothing more of that name; return the checkpoint's path."""
    path = tf.train.latest_checkpoint(model_dir)
    if path is None:
        raise UserError(f"{model_dir}: no checkpoint found")
    stored = [k for k in tf.train.load_checkpoint(path).get_variable_to_shape_map() if k.startswith(f"{name}/")]
    try:
        if len(stored) != len(model.weights):
            raise AssertionError
        tf.train.Checkpoint(**{name: model}, **others).restore(path).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError):
        raise UserError(f"{path}: the checkpoint does not match the model its config.json describes") from None
    return path


def restore_ema(model, model_dir):
    """Load the EMA weights of the newest checkpoint in `model_dir` into `model`; return its step."""
    step = tf.Variable(0, dtype=tf.int64)
    restore_latest(model_dir, "ema", model, step=step)
    return int(step.numpy())


def save_ema(model, step, model_dir):
    """Write one checkpoint holding only `step` and `model`'s weights, as the EMA weights `load` reads; its path."""
    checkpoint = tf.train.Checkpoint(step=tf.Variable(step, dtype=tf.int64), ema=model)
    return tf.train.CheckpointManager(checkpoint, model_dir, max_to_keep=1).save(checkpoint_number=step)
