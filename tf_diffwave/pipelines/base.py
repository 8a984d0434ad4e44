"""What every pipeline shares: the model it samples, its features, and the refusals of what its kind does not do."""

import logging

import numpy as np

from tf_diffwave.data.features import LogMel
from tf_diffwave.errors import UserError
from tf_diffwave.pipelines import KINDS, OFFERS

logger = logging.getLogger(__name__)
# audio samples one network call holds at most (about 2 minutes at 16 kHz): larger batches are run in groups, so
# that a huge batch costs time, not all the memory there is
MAX_BATCH_SAMPLES = 2 ** 21


def group_size(samples_each):
    """How many examples of `samples_each` samples one network call takes (at least one)."""
    return max(1, MAX_BATCH_SAMPLES // max(samples_each, 1))


class Pipeline:
    """Samples one backbone (its networks with their current weights) as its kind does. Subclasses set `kind_name`
    and answer the OFFERS their kind answers; the others raise the kind's one-line refusal. Every pipeline answers
    `savedmodel_module()` (what `export` writes for TF Serving) and `tensorboard_samples(corpus)` (what training
    writes to TensorBoard)."""

    kind_name = None

    def __init__(self, backbone, config, where=""):
        self.backbone, self.config, self.where = backbone, config, where or "this model"
        self.family = backbone.family
        self.kind = KINDS[self.kind_name]
        self.log_mel = LogMel.from_config(config["audio"])

    @property
    def sample_rate(self):
        return self.config["audio"]["sample_rate"]

    def savedmodel_module(self):
        """A tf.Module whose `serve` tf.function is the export's `serving_default` signature."""
        raise NotImplementedError

    def tensorboard_samples(self, corpus):
        """An object whose `write_summaries()` writes this model's samples into the default summary writer."""
        raise NotImplementedError

    def precision_probe(self):
        """A function of the pipeline that returns audio (numpy) for a fixed probe input, for comparing precisions
        (serving.auto_precision), or None when the kind has no reduced-precision path to compare."""
        return None

    def _require(self, offer):
        self.kind.require(offer, self.family, self.where)


def generate_in_batches(generate, n, seed, batch_size, samples_each, on_batch=None):
    """Clips (n, samples) from `generate(seeds (B,))` -> audio (B, samples), `batch_size` seeds at a time from
    `seed` on (clip i drawn with seed + i, whatever the batching), fewer where `batch_size` clips of
    `samples_each` samples would pass MAX_BATCH_SAMPLES; `on_batch(done)` after each batch."""
    if n < 1 or batch_size < 1:
        raise UserError(f"the number of clips ({n}) and the batch size ({batch_size}) must be at least 1")
    if batch_size > group_size(samples_each):
        logger.info(f"batch size {batch_size}: {group_size(samples_each)} clips at a time ({MAX_BATCH_SAMPLES:,} "
                    f"samples in all at most, to bound memory)")
        batch_size = group_size(samples_each)
    clips = []
    for start in range(0, n, batch_size):
        seeds = seed + np.arange(start, min(start + batch_size, n), dtype=np.int64)
        clips.append(generate(seeds))
        if on_batch is not None:
            on_batch(start + len(seeds))
    return np.concatenate(clips)


def _refusing(offer):
    def refuse(self, *args, **kwargs):
        self._require(offer)
        raise NotImplementedError(f"{type(self).__name__} answers {offer} but does not implement it")

    refuse.__name__ = offer
    refuse.__doc__ = "Refused for this kind of model (tf_diffwave.pipelines.KINDS says why)."
    return refuse


for _offer in OFFERS:
    if _offer != "litert":
        setattr(Pipeline, _offer, _refusing(_offer))
setattr(Pipeline, "litert_function", _refusing("litert"))
