"""Configs: plain JSON on top of the defaults below, with dotted `key=value` overrides, checked on load."""

import copy
import difflib
import json
import os

from tf_diffwave.errors import UserError
from tf_diffwave.models import registry

# Every key a config may set, with its default, but for the families' sections (`model.<family>`), which each family
# declares (models/registry.py). The type of each default is the type the key must have (an int is accepted where a
# float is expected). DiffWave BASE (Kong et al. 2021) for LJSpeech.
COMMON_DEFAULTS = {
    "data": {
        "kind": "ljspeech",           # corpus layout: "ljspeech" (metadata.csv + wavs/) or "sc09" (zero/ ... nine/)
        "path": "data/ljspeech-demo",  # corpus folder
        "mel_dir": "",                # folder of precomputed <id>.npy log-mels; "" computes them on the fly
        "crop_frames": 62,            # training segment in mel frames (62 x 256 = 15872 samples)
        "valid_count": 5,             # ljspeech: utterances held out (the last ones of metadata.csv)
        "valid_percent": 10.0,        # sc09 without Speech Commands' list files: share of speakers held out
        "test_percent": 10.0,         # ... and kept for testing
    },
    "audio": {
        "sample_rate": 22050,
        "n_fft": 1024,
        "win_length": 1024,
        "hop_length": 256,
        "n_mels": 80,
        "fmin": 0.0,
        "fmax": 8000.0,
        "log_floor": 1e-5,
        "features": "hifigan",        # mel convention: "hifigan" (ln of Slaney mels), "lmnt" (lmnt-com/diffwave's
                                      # HTK mels in dB scaled to [0, 1]) or "ivanvovk" (ivanvovk/WaveGrad's log10
                                      # of HTK mel power); see data/features.py
    },
    "model": {                        # keys every family reads
        "backbone": "wavenet",        # the model family: one of models.registry.names()
        "tf32": "auto",               # GPU TF32 matmuls: "on", "off", or "auto" (off for families that lose accuracy)
        "unconditional": False,       # True: no mel conditioner (generation from noise)
        "audio_length": 16000,        # unconditional models: samples per clip, trained and generated
    },                                # + one section per family, `model.<name>`, from models/registry.py
    "diffusion": {
        "num_steps": 50,
        "beta_start": 1e-4,
        "beta_end": 0.05,
        "loss": "l1",                 # "l1" (lmnt-com/diffwave) or "l2" (the paper, eq. 7)
        "fast_schedule": [1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5],  # DiffWave appendix B, BASE
        "clip_each_step": False,      # clip the audio to [-1, 1] after every reverse step (lmnt-com/diffwave), not
                                      # only at the end
        "clip_x0": False,             # take each reverse step from the estimate of the clean audio clipped to [-1, 1]
                                      # (ivanvovk/WaveGrad's sampler), not from the noise estimate (DiffWave eq. 5)
        "clip_output": True,          # clip the sampled audio to [-1, 1] at the end (false: return it as
                                      # philsyn/DiffWave-unconditional's sampler does, unclipped)
        "schedule_precision": "float64",  # reverse-step coefficients: "float64" (exact, rounded once) or "float32"
                                          # (computed in float32, as ivanvovk/WaveGrad does)
        "prior": "standard",          # "standard": noise N(0, I); "priorgrad" (vocoders): N(0, diag(std^2)), std from
                                      # each mel frame's energy (PriorGrad); see diffusion/prior.py
        "std_min": 0.1,               # priorgrad: the smallest std (silent frames)
        "max_energy_override": 4.0,   # priorgrad: frame energies clamped to this, which replaces energy_max (null: no
                                      # clamp), as PriorGrad's max_energy_override
        "energy_min": None,           # priorgrad: the training set's smallest and largest frame energy; null: computed
        "energy_max": None,           # from the training split when training starts, then stored in the run's config
    },
    "classifier": {                   # the SC09 digit classifier used by the quality metrics
        "channels": 32,               # convolution channels of the first block (doubled in each of 3 blocks)
        "features": 128,              # width of the penultimate layer (the features FID is computed on)
        "dropout": 0.3,
        "max_shift": 0.1,             # training augmentation: random circular time shift, in seconds
    },
    "train": {
        "model_dir": "runs/ljspeech",
        "init_from": "",              # a model folder whose weights (and audio, model, diffusion settings) a new run
                                      # starts from, with a fresh optimizer: fine-tuning
        "strategy": "mirrored",
        "max_steps": 1000000,
        "save_every": 5000,
        "keep_checkpoints": 3,
        "batch_size": 16,
        "micro_batches": 1,           # split each replica's batch into sequential parts to save memory
        "learning_rate": 2e-4,
        "grad_clip_norm": 1e9,
        "ema_decay": 0.9999,
        "sample_every": 5000,
        "log_every": 50,
        "seed": 0,
        "export": True,
        "mixed_precision": False,     # mixed_float16 on GPUs, mixed_bfloat16 on CPUs; S4 and output layers float32
        "jit_compile": False,         # compile the forward and backward pass with XLA (not applying gradients)
        "max_nonfinite_steps": 20,    # stop after this many steps in a row with a non-finite loss or gradients
    },
}

_NULLABLE = {"diffusion.max_energy_override", "diffusion.energy_min", "diffusion.energy_max"}  # null allowed

SEARCHED_SCHEDULE = "fast_schedule.json"  # in a run folder: written by `evaluate search-schedule`

_CHOICES = {
    "data.kind": ("ljspeech", "sc09"),
    "audio.features": ("hifigan", "lmnt", "ivanvovk", "priorgrad"),
    "diffusion.prior": ("standard", "priorgrad"),
    "model.tf32": ("auto", "on", "off"),
    "diffusion.schedule_precision": ("float64", "float32"),
    "diffusion.loss": ("l1", "l2"),
    "train.strategy": ("mirrored", "multi_worker", "one_device"),
}


def defaults():
    """Every key a config may set, with its default: the common ones and each registered family's section."""
    config = copy.deepcopy(COMMON_DEFAULTS)
    for name in registry.names():
        config["model"][name] = copy.deepcopy(registry.family(name).section)
    return config


def choices():
    """{dotted key: allowed values}: the common ones and each registered family's."""
    found = dict(_CHOICES, **{"model.backbone": tuple(registry.names())})
    for name in registry.names():
        found.update({f"model.{name}.{key}": values for key, values in registry.family(name).choices.items()})
    return found


def _type_name(value):
    if isinstance(value, list) and value and isinstance(value[0], list):
        return "a list of lists of numbers"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list of numbers", dict: "a section"}[type(value)]


def _is_number_or_list(value, nested):
    """A number, or (nested) a non-empty list of numbers."""
    if nested:
        return isinstance(value, list) and len(value) > 0 and all(_is_number_or_list(v, False) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_value(key, value, default):
    """Raise UserError unless `value` has the type of `default` (a key that may be null, _NULLABLE, takes a number
    or null; a key whose default is null takes an integer or null); return it (ints widened to float)."""
    nullable = key in _NULLABLE or default is None
    if nullable:
        if value is None:
            return None
        default = 0.0 if key in _NULLABLE else 0
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, list):
        nested = bool(default) and isinstance(default[0], list)
        ok = isinstance(value, list) and all(_is_number_or_list(v, nested) for v in value)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        what = _type_name(default) + (" or null" if nullable else "")
        raise UserError(f"config key '{key}' must be {what}, got {value!r}")
    allowed = choices().get(key)
    if allowed is not None and value not in allowed:
        raise UserError(f"config key '{key}' must be one of {', '.join(allowed)}, got {value!r}")
    return value


def merge(base, update, prefix, source):
    """Merge the nested dict `update` into the config `base` in place, checking each key and value (errors name
    `source` and the dotted key)."""
    for name, value in update.items():
        key = f"{prefix}{name}"
        if name not in base:
            close = difflib.get_close_matches(name, list(base), n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise UserError(f"{source}: unknown config key '{key}'{hint}")
        if isinstance(base[name], dict):
            if not isinstance(value, dict):
                raise UserError(f"{source}: config key '{key}' must be a section (a JSON object)")
            merge(base[name], value, key + ".", source)
        else:
            base[name] = _check_value(key, value, base[name])


def parse_override(text):
    """Split 'a.b=value' into (['a', 'b'], value); the value is read as JSON when it parses, else as a string."""
    if "=" not in text:
        raise UserError(f"override '{text}' is not of the form key=value")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def migrate(data, backbone):
    """A config (a parsed JSON object) in the layout of earlier versions, where the keys of every family sat
    directly in `model` (and a few elsewhere), moved to this layout: each such key goes to the section of
    `backbone` when that family reads it, else to the section of the family that does."""
    data = copy.deepcopy(data)
    families = {name: registry.family(name) for name in registry.names()}
    for name, family in families.items():
        for (section, key), target in family.legacy_keys.items():
            if isinstance(data.get(section), dict) and key in data[section]:
                data.setdefault("model", {}).setdefault(name, {})[target] = data[section].pop(key)
    model = data.get("model")
    if not isinstance(model, dict):
        return data
    for key in [k for k in model if k not in COMMON_DEFAULTS["model"] and k not in families]:
        owners = [name for name, family in families.items() if key in family.section]
        if owners and isinstance(model.get(owners[0], {}), dict):
            owner = backbone if backbone in owners else owners[0]
            model.setdefault(owner, {})[key] = model.pop(key)
    return data


def _backbone_of(data, default):
    model = data.get("model") if isinstance(data, dict) else None
    backbone = model.get("backbone", default) if isinstance(model, dict) else default
    return backbone if isinstance(backbone, str) else default


def apply_overrides(config, overrides):
    """Apply dotted `key=value` strings to a config dict in place (`model.X` for a key X of the current backbone
    means `model.<backbone>.X`)."""
    for text in overrides:
        key, value = parse_override(text)
        nested = value
        for part in reversed(key.split(".")):
            nested = {part: nested}
        merge(config, migrate(nested, config["model"]["backbone"]), "", "override")


def validate(config):
    """Checks that span several keys; the family checks its own (registry.Family.check)."""
    audio = config["audio"]
    if audio["win_length"] > audio["n_fft"]:
        raise UserError("config key 'audio.win_length' must not exceed 'audio.n_fft'")
    if audio["fmax"] > audio["sample_rate"] / 2:
        raise UserError("config key 'audio.fmax' must not exceed half of 'audio.sample_rate'")
    family = registry.family_of(config)
    if family.conditioning != "either" and config["model"]["unconditional"] != (family.conditioning == "none"):
        needed = "true" if family.conditioning == "none" else "false"
        what = "generates audio without a mel" if family.conditioning == "none" else "is a vocoder (it needs a mel)"
        raise UserError(f"config key 'model.unconditional' must be {needed} for '{family.name}': {family.title} "
                        f"{what}")
    if family.check is not None:
        family.check(config)
    d = config["diffusion"]
    if not 0 < d["beta_start"] < d["beta_end"] < 1:
        raise UserError("config keys 'diffusion.beta_start' < 'diffusion.beta_end' must lie in (0, 1)")
    _check_prior(config, family)
    data = config["data"]
    if min(data["valid_percent"], data["test_percent"]) < 0 or data["valid_percent"] + data["test_percent"] >= 100:
        raise UserError("config keys 'data.valid_percent' and 'data.test_percent' must be at least 0 and add up "
                        "to less than 100")
    for key in ("model.audio_length", "train.max_steps", "train.save_every", "train.batch_size", "data.crop_frames",
                "train.sample_every", "train.log_every", "train.keep_checkpoints", "train.micro_batches"):
        section, name = key.split(".")
        if config[section][name] < 1:
            raise UserError(f"config key '{key}' must be at least 1")


def _check_prior(config, family):
    d = config["diffusion"]
    if d["prior"] == "standard":
        return
    if config["model"]["unconditional"] or family.kind != "diffusion":
        raise UserError("config key 'diffusion.prior' must be 'standard' for a model that generates without a mel: "
                        "the PriorGrad prior is taken from the mel")
    if not 0 < d["std_min"] <= 1:
        raise UserError("config key 'diffusion.std_min' must lie in (0, 1]")
    if (d["energy_min"] is None) != (d["energy_max"] is None):
        raise UserError("config keys 'diffusion.energy_min' and 'diffusion.energy_max' must both be numbers or both "
                        "null (computed when training starts)")
    top = d["energy_max"] if d["max_energy_override"] is None else d["max_energy_override"]
    if d["energy_min"] is not None and not 0 <= d["energy_min"] < top:
        raise UserError(f"config key 'diffusion.energy_min' = {d['energy_min']} must be at least 0 and below the "
                        f"largest energy ({top}: 'diffusion.energy_max' or 'diffusion.max_energy_override')")


def read_json(path):
    """The parsed JSON file at `path`; a missing or unreadable file is a UserError naming it."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: config file not found")
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None


def load_config(path=None, overrides=()):
    """Defaults, then the JSON file at `path` (if any), then the overrides; validated."""
    config = defaults()
    if path is not None:
        data = read_json(path)
        if not isinstance(data, dict):
            raise UserError(f"{path}: a config must be a JSON object")
        merge(config, migrate(data, _backbone_of(data, config["model"]["backbone"])), "", path)
    apply_overrides(config, overrides)
    validate(config)
    return config


def with_model_of(config, overrides=()):
    """For fine-tuning (`train.init_from` = a model folder): `config` with the folder's audio, model and diffusion
    sections (the weights fix the architecture and the features), then the command-line overrides again."""
    source = config["train"]["init_from"]
    if not source:
        return config
    config = copy.deepcopy(config)
    model = load_run_config(source)
    for section in ("audio", "model", "diffusion"):
        config[section] = model[section]
    apply_overrides(config, overrides)
    validate(config)
    return config


def flatten(config, prefix=""):
    """{dotted key: value} of a (nested) config."""
    flat = {}
    for name, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def used_keys(config):
    """`config` without the sections of the families it does not use and without the classifier's section: what a
    run's config.json records."""
    config = copy.deepcopy(config)
    for name in registry.names():
        if name != config["model"]["backbone"]:
            del config["model"][name]
    config.pop("classifier")
    return config


def save_config(config, model_dir):
    """Write the resolved config as <model_dir>/config.json."""
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def load_run_config(model_dir):
    """Read the config a training run saved in its folder, with its searched fast schedule if it has one."""
    path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(path):
        raise UserError(f"{model_dir}: not a model folder (no config.json)")
    return with_searched_schedule(load_config(path), model_dir)


def with_searched_schedule(config, model_dir):
    """`config` with `diffusion.fast_schedule` set to the schedule `evaluate search-schedule` saved in the run
    folder (SEARCHED_SCHEDULE), when there is one."""
    path = os.path.join(model_dir, SEARCHED_SCHEDULE)
    if not os.path.isfile(path):
        return config
    try:
        with open(path) as f:
            betas = json.load(f)["fast_schedule"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"{path}: not a saved schedule ({err}); delete it to use the config's fast schedule") from None
    config = copy.deepcopy(config)
    config["diffusion"]["fast_schedule"] = _check_value("diffusion.fast_schedule", betas,
                                                        COMMON_DEFAULTS["diffusion"]["fast_schedule"])
    return config
