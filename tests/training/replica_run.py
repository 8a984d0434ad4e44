"""Train a tiny model for one step on N logical CPU devices, save and export it, print its loss and gradient norm
(run as a subprocess: devices must be set first).

usage: python replica_run.py N_REPLICAS CORPUS MODEL_DIR wavenet|wavegrad [key=value ...]
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # the tests package
import tensorflow as tf  # noqa: E402

replicas, corpus, model_dir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)

import keras  # noqa: E402

from tests.helpers import DEMO_CONFIG, WAVEGRAD_DEMO_CONFIG, tiny_overrides, tiny_wavegrad_overrides  # noqa: E402
from tf_diffwave.config import load_config  # noqa: E402
from tf_diffwave.training.trainer import Trainer  # noqa: E402

config, overrides = (WAVEGRAD_DEMO_CONFIG, tiny_wavegrad_overrides) if sys.argv[4] == "wavegrad" else \
    (DEMO_CONFIG, tiny_overrides)
keras.utils.set_random_seed(0)  # the same initial weights in every process (the train command does this)
trainer = Trainer(load_config(config, overrides(corpus, model_dir) + [
    "train.batch_size=4", "train.grad_clip_norm=0.05", "train.export=true", *sys.argv[5:]]))
assert trainer.strategy.num_replicas_in_sync == replicas
loss, norm, _, _ = tf.function(trainer.train_step)(iter(trainer.dataset(0)))
trainer.save()
print(f"loss={loss.numpy():.8f} norm={norm.numpy():.8f}")
