"""The model families a config can name (`model.backbone`), and what each declares about itself.

A family is a package under tf_diffwave/models/ whose `__init__` holds a `Family`: its config section (defaults,
allowed values, checks), what it is (diffusion or autoregressive, conditioned on a mel or not) and where its
network lives. Declaring a family imports no TensorFlow, so configs load and validate without it; a family's
package is imported when a config names it, its network only when a backbone is built. This module registers the
families with tf_diffwave.config as the source of the `model.<name>` sections. Adding a family is its package and
one line in FAMILIES.
"""

import dataclasses
import importlib
import sys

from tf_diffwave import config as _config
from tf_diffwave.errors import UserError

FAMILIES = {  # name -> the package that declares it
    "wavenet": "tf_diffwave.models.wavenet",
    "sashimi": "tf_diffwave.models.sashimi",
    "wavegrad": "tf_diffwave.models.wavegrad",
    "fregrad": "tf_diffwave.models.fregrad",
    "ar_sashimi": "tf_diffwave.models.ar_sashimi",
}


@dataclasses.dataclass(frozen=True)
class SamplingFlag:
    """A generation option of an autoregressive family, offered by `infer` as --<name with dashes> and passed to
    its sampler's `generate` as `name`: `kind` is float, or "audio" (a file whose samples are passed)."""

    name: str
    kind: object
    help: str


@dataclasses.dataclass(frozen=True)
class Family:
    """What a model family declares.

    - name: its `model.backbone` value; title: how messages and help texts call it;
    - network: "module:Class" of its `contract.Backbone` subclass (imported when a backbone is built);
    - kind: "diffusion" (the diffusion core trains and samples it) or "autoregressive" (it brings its own
      objective and sampler, see contract.Backbone); with the conditioning it names the pipeline that samples the
      family's models (`pipeline`);
    - conditioning: "mel" (a vocoder), "none" (generates from noise) or "either" (`model.unconditional` says);
    - noise_input: what a diffusion network is conditioned on, "step" or "level" (see contract.Backbone); None
      for an autoregressive family;
    - schedules: inference schedules it ships, by name (`infer --steps NAME`): lists of betas;
    - section: its config section `model.<name>`, {key: default} (the default's type is the key's type);
    - choices: {key of the section: allowed values};
    - check: check(config) raises errors.UserError naming the key, for what the types cannot say;
    - sampling_flags: SamplingFlags of an autoregressive family;
    - full_float32: GPU TF32 matmuls cost this network accuracy (config key `model.tf32` = "auto" turns them off);
    - bands: how many bands its signal interleaves (1: the audio; FreGrad: 2, its Haar bands; see
      contract.Backbone.signal_bands), which FreGrad's per-band prior needs;
    - legacy_keys: {(section, key): key of this family's section} that earlier config layouts kept elsewhere.
    """

    name: str
    title: str
    network: str
    kind: str = "diffusion"
    conditioning: str = "either"
    noise_input: str | None = "step"
    schedules: dict = dataclasses.field(default_factory=dict)
    section: dict = dataclasses.field(default_factory=dict)
    choices: dict = dataclasses.field(default_factory=dict)
    check: object = None
    sampling_flags: tuple = ()
    full_float32: bool = False
    bands: int = 1
    legacy_keys: dict = dataclasses.field(default_factory=dict)

    def pipeline(self, unconditional):
        """The name of the pipeline (tf_diffwave.pipelines.KINDS) that samples this family's models, vocoders or
        (`unconditional`) generators: the one place that asks what kind of model a family makes."""
        if self.kind == "autoregressive":
            return "autoregressive generator"
        return "diffusion generator" if unconditional else "diffusion vocoder"

    def validate(self, config):
        """Raise errors.UserError naming the key where `config` does not fit this family: its conditioning, the
        prior a model without a mel can have, and the family's own `check`."""
        unconditional = config["model"]["unconditional"]
        if self.conditioning != "either" and unconditional != (self.conditioning == "none"):
            needed = "true" if self.conditioning == "none" else "false"
            what = "generates audio without a mel" if self.conditioning == "none" else "is a vocoder (it needs a mel)"
            raise UserError(f"config key 'model.unconditional' must be {needed} for '{self.name}': {self.title} "
                            f"{what}")
        prior = config["diffusion"]["prior"]
        if unconditional and prior != "standard":
            raise UserError("config key 'diffusion.prior' must be 'standard' for a model that generates without a "
                            "mel: the PriorGrad prior is taken from the mel")
        if prior == "fregrad" and self.bands != 2:
            raise UserError(f"config key 'diffusion.prior' = 'fregrad' is a prior per band of a two-band signal; "
                            f"{self.title} models diffuse the audio itself (use 'priorgrad')")
        if self.check is not None:
            self.check(config)

    def network_class(self):
        """The family's Backbone subclass (imports TensorFlow)."""
        module, name = self.network.split(":")
        return getattr(importlib.import_module(module), name)


# what the networks compute in (`precision` everywhere: load, infer, export), and the Keras dtype policy that gives
# it: weights and the reverse process stay float32 either way
PRECISION_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}

_added = {}  # families registered at run time (from outside the package): name -> Family


def register(family):
    """Make `family` nameable by configs in this process (a family that lives outside the package)."""
    _added[family.name] = family


def unregister(name):
    """Forget a family `register` added."""
    _added.pop(name, None)


def names():
    """Every family name a config may give as `model.backbone`."""
    return [*FAMILIES, *(name for name in _added if name not in FAMILIES)]


def family(name):
    """The Family called `name`."""
    if name in _added:
        return _added[name]
    return importlib.import_module(FAMILIES[name]).FAMILY


def family_of(config):
    """The Family of a config."""
    return family(config["model"]["backbone"])


_config.register_families(sys.modules[__name__])


def backbone_config(config):
    """The model keys the configured family reads: the common `model.*` keys and its own `model.<name>.*`."""
    model = config["model"]
    common = {key: value for key, value in model.items() if not isinstance(value, dict)}
    return {**common, **model[model["backbone"]]}


def build_backbone(config, policy="float32"):
    """The backbone of the configured family, its layers computing under the Keras dtype policy `policy`
    ("float32", or "mixed_bfloat16" / "mixed_float16": float32 weights, reduced-precision arithmetic)."""
    spec = family_of(config)
    backbone = spec.network_class()(backbone_config(config), config["audio"], policy)
    backbone.family = spec
    return backbone


def tf32_allowed(config):
    """Whether GPU matmuls may use TF32, by config key `model.tf32`: "on", "off", or "auto" (off for families that
    lose accuracy to it)."""
    setting = config["model"]["tf32"]
    return setting == "on" or (setting == "auto" and not family_of(config).full_float32)
