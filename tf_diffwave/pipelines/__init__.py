"""One pipeline per kind of model: what a model folder's networks are sampled with, and every answer that depends
on what kind of model it is.

A family's declaration names its kind (registry.Family.pipeline): a diffusion vocoder (mel in, audio out), a
diffusion generator (seed in, audio out) or an autoregressive generator (its family's own sampling loop). Each kind
has a pipeline class (in its module here, importing TensorFlow) that owns its sampling loop and answers for it:
vocoding or generating, streaming, the SavedModel module, the LiteRT model, TensorBoard samples. What the commands
need before TensorFlow is imported (the inputs a kind takes, its sampling options, its refusals) is declared here
in a `Kind`. Outside this package and the registry nothing asks what kind a model is.
"""

import dataclasses
import importlib

from tf_diffwave.diffusion.schedules import named_schedules, schedule_names
from tf_diffwave.errors import UserError
from tf_diffwave.models import registry

# what a model may be asked; a kind answers some, and refuses the others with one sentence
OFFERS = ("vocode", "stream", "prior_std", "generate", "denoise", "reverse_process", "logits", "nll", "litert")

_NO_MEL = "this model is unconditional; it generates audio without a mel (use generate)"
_NO_LIKELIHOOD = "a diffusion model has no exact likelihood; logits and nll are for autoregressive models"
_OWN_LOOP = "samples with a loop of its own, not a reverse diffusion process"


@dataclasses.dataclass(frozen=True)
class Kind:
    """A kind of model, known without TensorFlow: its pipeline class ("module:Class"), what a request gives it
    (`input`: "mel" or "seed"), what it trains on (`examples`: "crops" with their mels, or whole "clips"; see
    data.pipelines.training_examples), whether it samples with a diffusion schedule (`schedules`), and for each of
    OFFERS it does not answer, the sentence that refuses it ({offer: sentence}; "{title}" is the family's
    title)."""

    name: str
    pipeline: str
    input: str
    examples: str
    schedules: bool
    refusals: dict

    def refusal(self, offer, family):
        """The sentence refusing `offer` for a model of `family`, or None if this kind answers it."""
        sentence = self.refusals.get(offer)
        return None if sentence is None else sentence.format(title=family.title)

    def require(self, offer, family, where):
        """Raise the UserError refusing `offer` (naming `where`, the model folder) unless this kind answers it."""
        sentence = self.refusal(offer, family)
        if sentence is not None:
            raise UserError(f"{where}: {sentence}")

    def schedule_names(self, config, family):
        """The schedules `--steps` takes by name for this model ([] for a kind that has none)."""
        return schedule_names(named_schedules(config["diffusion"], family)) if self.schedules else []

    def check_infer_inputs(self, mel_given, where):
        """`infer`'s inputs: --mel for a vocoder, none for a generator."""
        if self.input == "mel" and not mel_given:
            raise UserError(f"{where}: this model is a vocoder; give --mel with utterance ids, .npy or .wav files")
        if self.input == "seed" and mel_given:
            raise UserError(f"{where}: this model is unconditional; it takes no --mel (use --n-samples)")


KINDS = {kind.name: kind for kind in (
    Kind("diffusion vocoder", "tf_diffwave.pipelines.diffusion_vocoder:DiffusionVocoder", "mel", "crops", True,
         {"generate": "this model is a vocoder; it needs a mel (use vocode)",
          "logits": _NO_LIKELIHOOD, "nll": _NO_LIKELIHOOD}),
    Kind("diffusion generator", "tf_diffwave.pipelines.diffusion_generator:DiffusionGenerator", "seed", "clips",
         True,
         {"vocode": _NO_MEL, "stream": _NO_MEL, "prior_std": _NO_MEL + "; its prior is the standard normal",
          "logits": _NO_LIKELIHOOD, "nll": _NO_LIKELIHOOD}),
    Kind("autoregressive generator", "tf_diffwave.pipelines.autoregressive:AutoregressiveGenerator", "seed", "clips",
         False,
         {"vocode": _NO_MEL, "stream": _NO_MEL, "prior_std": _NO_MEL,
          "denoise": "{title} " + _OWN_LOOP, "reverse_process": "{title} " + _OWN_LOOP,
          "litert": "{title} models sample with a loop of their own; only diffusion models export to LiteRT (use "
                    "'export savedmodel')"}),
)}


def kind_of(config):
    """The Kind of the model a config describes."""
    return KINDS[registry.family_of(config).pipeline(config["model"]["unconditional"])]


def require(config, offer, where):
    """Raise the one-line UserError (naming `where`, the model folder) unless the model a config describes answers
    `offer` (one of OFFERS): for commands, before any work."""
    kind_of(config).require(offer, registry.family_of(config), where)


def pipeline_for(backbone, config, where=""):
    """The pipeline that samples `backbone` (built from `config`; `where` names the model in messages)."""
    module, name = kind_of(config).pipeline.split(":")
    return getattr(importlib.import_module(module), name)(backbone, config, where)
