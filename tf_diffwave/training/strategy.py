"""Distribution set-up for training: the tf.distribute strategy a config names, the chief of a multi-worker run,
and the mixed-precision policy of this machine."""

import json
import os

import tensorflow as tf

from tf_diffwave.errors import UserError


def make_strategy(name):
    """MirroredStrategy over all visible GPUs (one CPU replica without GPUs), MultiWorkerMirroredStrategy over the
    machines named by the TF_CONFIG environment variable, or a single device."""
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0")
    if name == "multi_worker":
        check_tf_config(os.environ.get("TF_CONFIG"))
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.MirroredStrategy()


def check_tf_config(text):
    """Raise UserError unless `text` (the TF_CONFIG variable) names a cluster and this process's task in it."""
    where = "the TF_CONFIG environment variable (see the README's 'Training on several machines')"
    if not text:
        raise UserError(f"config key 'train.strategy' is 'multi_worker' but {where} is not set")
    try:
        spec = json.loads(text)
        cluster, task = spec["cluster"], spec["task"]
        members = cluster[task["type"]]
        ok = isinstance(members, list) and 0 <= task["index"] < len(members)
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise UserError(f"{where} must be JSON with 'cluster' (job name -> list of host:port) and 'task' (a 'type' "
                        f"of the cluster and an 'index' in its list); got {text!r}")


def is_chief(strategy):
    """Whether this process writes the run's files: always, except on the non-chief workers of a multi-worker run
    (the chief is task 'chief', or worker 0 when the cluster has none)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().jobs


def mixed_precision_policy():
    """The mixed policy of this machine: float16 compute on GPUs, bfloat16 on CPUs (and TPUs)."""
    return "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"
