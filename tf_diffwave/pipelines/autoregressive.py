"""The autoregressive generator's pipeline: a family that samples with a loop of its own (the autoregressive
SaShiMi's recurrence), and whose likelihood is exact."""

import numpy as np
import tensorflow as tf

from tf_diffwave.data.audio import read_clips
from tf_diffwave.diffusion.objectives import evaluation_loss
from tf_diffwave.errors import UserError
from tf_diffwave.pipelines.base import Pipeline, generate_in_batches
from tf_diffwave.pipelines.tensorboard import GeneratedSamples
from tf_diffwave.serving.savedmodel import GeneratorExport


class AutoregressiveGenerator(Pipeline):
    """Generation with the family's own sampler (Backbone.own_sampler), the NLL of clips and the next-sample
    logits."""

    kind_name = "autoregressive generator"

    @property
    def length(self):
        return self.config["model"]["audio_length"]

    def generate(self, n, seed=0, steps=None, batch_size=16, on_batch=None, **options):
        """Float32 audio (n, model.audio_length); clip i is drawn with seed `seed + i`, so the clips do not depend on
        `batch_size`. `on_batch(done)` is called after each batch. `options` are the family's sampling options
        (for the autoregressive SaShiMi: temperature, top_p, prompt: float audio (samples,) that begins every clip)
        and `on_sample(done)`, progress within a batch; `steps` (a diffusion schedule) does not apply."""
        known = {flag.name for flag in self.family.sampling_flags} | {"on_sample"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise UserError(f"{', '.join(unknown)}: not sampling options of {self.family.title} models (they take "
                            f"{', '.join(sorted(known))})")
        own = self.backbone.own_sampler(self.config)
        return generate_in_batches(lambda seeds: own.generate(seeds, self.length, **options).numpy(), n, seed,
                                   batch_size, self.length, on_batch)

    def _check_sequence(self, values, what, dtype):
        """`values` as a (n, samples) array of `dtype`: samples a multiple of the network's period, at most the
        config's audio_length."""
        values = np.asarray(values, dtype)
        period = self.backbone.period
        if values.ndim != 2 or values.shape[1] > self.length or values.shape[1] % period:
            raise UserError(f"{what}: shape {values.shape}, expected (n, samples) with samples a multiple of "
                            f"{period} up to {self.length}")
        return values

    def logits(self, tokens):
        """The logits (float32 [n, samples, classes]) of each next token given input tokens (int [n, samples],
        0 .. classes - 1; for the autoregressive SaShiMi the mu-law classes, the first the class before the clip),
        in convolution mode."""
        tokens = self._check_sequence(tokens, "tokens", np.int32)
        top = self.backbone.classes - 1
        if tokens.size and (tokens.min() < 0 or tokens.max() > top):
            raise UserError(f"tokens: values from {tokens.min()} to {tokens.max()}, expected classes 0 .. {top}")
        return self.backbone.model(tf.constant(tokens)).numpy()

    def nll(self, clips, batch_size=8):
        """Negative log-likelihood in bits per sample of each clip (n, samples) (samples as for `logits`): the
        training objective of the weights, in convolution mode."""
        clips = self._check_sequence(clips, "clips", np.float32)
        return np.concatenate([self._loss(clips[start: start + batch_size]).numpy()
                               for start in range(0, len(clips), batch_size)])

    def _loss(self, clips):
        return evaluation_loss(self.backbone, self.config, {"audio": tf.constant(clips)})

    def savedmodel_module(self):
        """seed (int64 [batch]) -> audio (batch, audio_length), with the config's sampling options."""
        own = self.backbone.own_sampler(self.config)
        return GeneratorExport(own.frozen(), self.length, own)

    def tensorboard_samples(self, corpus, count=4):
        """A few clips generated from fixed seeds, and the NLL of a few held-out clips."""
        frozen = self.backbone.own_sampler(self.config).frozen
        held_out = read_clips([corpus.wav_paths[i] for i in corpus.valid_ids[:count]], self.sample_rate,
                              self.length) if corpus.valid_ids else None
        # `frozen` is taken at each write: the sampler's recurrences are computed from the weights at that step
        return GeneratedSamples(self.config, lambda seeds: frozen()(tf.constant(seeds), self.length).numpy(), count,
                                held_out, self._loss)
