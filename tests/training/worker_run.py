"""Train a tiny model for 3 steps as one process of a run and write its weights to OUT.npz (run as a subprocess;
a worker of a multi-worker run when TF_CONFIG is set, with strategy multi_worker).

usage: python worker_run.py STRATEGY CORPUS MODEL_DIR OUT
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # the tests package
import keras  # noqa: E402
import numpy as np  # noqa: E402

from tests.helpers import DEMO_CONFIG, tiny_overrides  # noqa: E402
from tf_diffwave.config import load_config  # noqa: E402
from tf_diffwave.training.trainer import Trainer  # noqa: E402

strategy, corpus, model_dir, out = sys.argv[1:5]
keras.utils.set_random_seed(0)  # the same initial weights in every process (the train command does this)
trainer = Trainer(load_config(DEMO_CONFIG, tiny_overrides(corpus, model_dir) + [
    f"train.strategy={strategy}", "train.batch_size=4", "train.max_steps=3", "train.save_every=2",
    "train.export=true"]))
initial = [v.numpy() for v in trainer.backbone.model.weights]
trainer.train()
final = [v.numpy() for v in trainer.backbone.model.weights]
np.savez(out, *final)
changed = sum(not np.array_equal(a, b) for a, b in zip(initial, final))
print(f"chief={trainer.chief} replicas={trainer.strategy.num_replicas_in_sync} changed={changed}/{len(final)}")
