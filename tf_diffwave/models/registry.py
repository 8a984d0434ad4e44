"""The model families a config can name (`model.backbone`), and what each declares about itself.

A family is a package under tf_diffwave/models/ whose `__init__` holds a `Family`: its config section (defaults,
allowed values, checks), what it is (diffusion or autoregressive, conditioned on a mel or not) and where its
network lives. Declaring a family imports no TensorFlow, so configs load and validate without it; the network is
imported only when a backbone is built. Adding a family is its package and one line in FAMILIES.
"""

import dataclasses
import importlib

FAMILIES = {  # name -> the package that declares it
    "wavenet": "tf_diffwave.models.wavenet",
    "sashimi": "tf_diffwave.models.sashimi",
    "wavegrad": "tf_diffwave.models.wavegrad",
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
      objective and sampler, see contract.Backbone);
    - conditioning: "mel" (a vocoder), "none" (generates from noise) or "either" (`model.unconditional` says);
    - noise_input: what a diffusion network is conditioned on, "step" or "level" (see contract.Backbone);
    - schedules: inference schedules it ships, by name (`infer --steps NAME`): lists of betas;
    - section: its config section `model.<name>`, {key: default} (the default's type is the key's type);
    - choices: {key of the section: allowed values};
    - check: check(config) raises errors.UserError naming the key, for what the types cannot say;
    - sampling_flags: SamplingFlags of an autoregressive family;
    - full_float32: GPU TF32 matmuls cost this network accuracy (config key `model.tf32` = "auto" turns them off);
    - legacy_keys: {(section, key): key of this family's section} that earlier config layouts kept elsewhere.
    """

    name: str
    title: str
    network: str
    kind: str = "diffusion"
    conditioning: str = "either"
    noise_input: str = "step"
    schedules: dict = dataclasses.field(default_factory=dict)
    section: dict = dataclasses.field(default_factory=dict)
    choices: dict = dataclasses.field(default_factory=dict)
    check: object = None
    sampling_flags: tuple = ()
    full_float32: bool = False
    legacy_keys: dict = dataclasses.field(default_factory=dict)

    @property
    def autoregressive(self):
        return self.kind == "autoregressive"

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
