"""Loading trained models: `tf_diffwave.load(model_dir)` and the vocode / export calls on the result."""

import os

import numpy as np
import tensorflow as tf

from tf_diffwave.config import load_run_config
from tf_diffwave.diffusion import Sampler
from tf_diffwave.errors import UserError
from tf_diffwave.export import export_model
from tf_diffwave.synthesis import Synthesizer
from tf_diffwave.backbones import build_backbone

DEFAULT_MODEL_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "checkpoints", "demo")


def restore_ema(model, model_dir):
    """Load the EMA weights of the newest checkpoint in `model_dir` into `model`; return its step."""
    path = tf.train.latest_checkpoint(model_dir)
    if path is None:
        raise UserError(f"{model_dir}: no checkpoint found")
    stored = [k for k in tf.train.load_checkpoint(path).get_variable_to_shape_map() if k.startswith("ema/")]
    step = tf.Variable(0, dtype=tf.int64)
    try:
        if len(stored) != len(model.weights):
            raise AssertionError
        tf.train.Checkpoint(step=step, ema=model).restore(path).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError):
        raise UserError(f"{path}: the checkpoint does not match the model its config.json describes") from None
    return int(step.numpy())


class DiffWave:
    """A trained model: its config, EMA weights and samplers."""

    def __init__(self, model_dir):
        if not os.path.isdir(model_dir):
            raise UserError(f"{model_dir}: model folder not found")
        self.model_dir = model_dir
        self.config = load_run_config(model_dir)
        self.backbone = build_backbone(self.config)
        self.step = restore_ema(self.backbone.model, model_dir)
        self.sampler = Sampler.from_config(self.config["diffusion"])
        self.synthesizer = Synthesizer(self.backbone)

    @property
    def sample_rate(self):
        return self.config["audio"]["sample_rate"]

    @property
    def n_mels(self):
        return self.config["audio"]["n_mels"]

    @property
    def unconditional(self):
        return self.backbone.unconditional

    def vocode(self, mel, steps="fast", seed=0):
        """Float32 audio from a log-mel (frames, n_mels) -> (samples,), or a batch (B, frames, n_mels) -> (B, samples).

        Example b of the batch is drawn with seed `seed + b`."""
        if self.unconditional:
            raise UserError(f"{self.model_dir}: this model is unconditional; it generates audio without a mel "
                            f"(use unconditional_generate)")
        mel = np.asarray(mel, dtype=np.float32)
        single = mel.ndim == 2
        batch = mel[None] if single else mel
        if batch.ndim != 3 or batch.shape[-1] != self.n_mels or batch.shape[1] == 0:
            raise UserError(f"mel has shape {mel.shape}, expected (frames, {self.n_mels}) or a batch of them")
        if not np.all(np.isfinite(batch)):
            raise UserError("mel contains NaN or infinite values")
        betas, t = self.sampler.betas_and_steps(steps)
        audio = self.synthesizer.vocode(batch, betas, t, seed + np.arange(len(batch), dtype=np.int64)).numpy()
        return audio[0] if single else audio

    def unconditional_generate(self, n, seed=0, steps="fast", batch_size=16, on_batch=None):
        """Float32 audio (n, model.audio_length) generated from noise; clip i is drawn with seed `seed + i`, so
        the clips do not depend on `batch_size`. `on_batch(done)` is called after each batch."""
        if not self.unconditional:
            raise UserError(f"{self.model_dir}: this model is a vocoder; it needs a mel (use vocode)")
        if n < 1 or batch_size < 1:
            raise UserError(f"the number of clips ({n}) and the batch size ({batch_size}) must be at least 1")
        betas, t = self.sampler.betas_and_steps(steps)
        length = self.config["model"]["audio_length"]
        clips = []
        for start in range(0, n, batch_size):
            seeds = seed + np.arange(start, min(start + batch_size, n), dtype=np.int64)
            clips.append(self.synthesizer.generate(seeds, length, betas, t).numpy())
            if on_batch is not None:
                on_batch(start + len(seeds))
        return np.concatenate(clips)

    def export(self, export_root, version=None):
        """Write a TF Serving version folder <export_root>/<version> (default: the checkpoint's step)."""
        return export_model(self.synthesizer, self.sampler, self.config, export_root,
                            self.step if version is None else version)


def load(model_dir=None):
    """Load a trained model folder (default: the bundled demo checkpoint)."""
    return DiffWave(model_dir or DEFAULT_MODEL_DIR)
