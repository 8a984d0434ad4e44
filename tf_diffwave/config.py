"""Configs: plain JSON on top of the defaults below, with dotted `key=value` overrides, checked on load.

The sections that belong to other parts of the package are registered by them, upward: each model family's
`model.<name>` (models/registry.py registers a source that declares a family when a config names it, so loading a
config imports the family it uses and no other) and the digit classifier's `classifier`. This module imports
nothing of theirs. A run folder's config.json records the layout it was written in (`format`); older layouts are
migrated by that number.
"""

import copy
import dataclasses
import difflib
import json
import os

from tf_diffwave.errors import UserError
from tf_diffwave.shipped import existing_path

FORMAT = 2  # the layout of the configs this version writes; 1: none recorded (the family keys directly in `model`)

# Every key a config may set, with its default, but for the registered sections. The type of each default is the type
# the key must have (an int is accepted where a float is expected). DiffWave BASE (Kong et al. 2021) for LJSpeech.
COMMON_DEFAULTS = {
    "data": {
        "kind": "ljspeech",           # corpus layout: "ljspeech" (metadata.csv + wavs/) or "sc09" (zero/ ... nine/)
        "path": "data/ljspeech-demo",  # corpus folder
        "mel_dir": "",                # folder of precomputed <id>.npy log-mels; "" computes them on the fly
        "crop_frames": 62,            # training segment in mel frames (62 x 256 = 15872 samples)
        "silence_pad": 0.0,           # seconds of digital silence added before and after each training utterance,
                                      # so that a vocoder learns that a silent mel is silence (mels computed on the
                                      # fly only)
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
        "features": "hifigan",        # mel recipe: "hifigan" (ln of Slaney mels), "tacotron2" (the same, frames
                                      # padded by reflection), "priorgrad" (HiFi-GAN's uncentred frames), "lmnt"
                                      # (lmnt-com/diffwave's HTK mels in dB scaled to [0, 1]) or "ivanvovk"
                                      # (ivanvovk/WaveGrad's log10 of HTK mel power); see data/features.py
    },
    "model": {                        # keys every family reads
        "backbone": "wavenet",        # the model family: one of the registered families' names
        "tf32": "auto",               # GPU TF32 matmuls: "on", "off", or "auto" (off for families that lose accuracy)
        "unconditional": False,       # True: no mel conditioner (generation from noise)
        "audio_length": 16000,        # unconditional models: samples per clip, trained and generated
    },                                # + the section of the family, `model.<name>`, registered by models/registry.py
    "diffusion": {
        "num_steps": 50,
        "beta_start": 1e-4,
        "beta_end": 0.05,
        "zero_terminal_snr": False,   # rescale the linear betas so that the last step is (almost) pure noise (FreGrad)
        "training_betas": [],         # the training schedule as a list (imported models keep their originals'); []:
                                      # linear from beta_start to beta_end in num_steps
        "loss": "l1",                 # "l1" (lmnt-com/diffwave) or "l2" (the paper, eq. 7)
        "stft_loss_weight": 0.0,      # add this times the multi-resolution STFT log-magnitude distance of the predicted
                                      # noise to the noise, per band (FreGrad: 0.1)
        "stft_loss_resolutions": [[512, 50, 300], [1024, 120, 600], [256, 30, 128]],  # (n_fft, hop, window) each:
                                      # FreGrad's, for its half-rate bands
        "fast_schedule": [1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5],  # DiffWave appendix B, BASE
        "fast_steps": [],             # networks given the step: what each step of the fast schedule gives the
                                      # network (0-based training steps, one per beta); []: the fractional steps
                                      # whose noise levels the betas reach (DiffWave appendix B)
        "clip_each_step": False,      # clip the audio to [-1, 1] after every reverse step (lmnt-com/diffwave), not
                                      # only at the end
        "clip_x0": False,             # take each reverse step from the estimate of the clean audio clipped to [-1, 1]
                                      # (ivanvovk/WaveGrad's sampler), not from the noise estimate (DiffWave eq. 5)
        "clip_output": True,          # clip the sampled audio to [-1, 1] at the end (false: return it as
                                      # philsyn/DiffWave-unconditional's sampler does, unclipped)
        "schedule_precision": "float64",  # reverse-step coefficients: "float64" (exact, rounded once) or "float32"
                                          # (computed in float32, as ivanvovk/WaveGrad does)
        "prior": "standard",          # "standard": noise N(0, I); "priorgrad" (vocoders): N(0, diag(std^2)), std from
                                      # each mel frame's energy (PriorGrad); "fregrad" (two-band families): one such std
                                      # per band, smoothed over the frames (FreGrad); see diffusion/prior.py
        "std_min": 0.1,               # priorgrad: the smallest std (silent frames)
        "max_energy_override": 4.0,   # priorgrad: frame energies clamped to this, which replaces energy_max (null: no
                                      # clamp), as PriorGrad's max_energy_override
        "energy_min": None,           # priorgrad: the training set's smallest and largest frame energy; null: computed
        "energy_max": None,           # from the training split when training starts, then stored in the run's config
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
    "audio.features": ("hifigan", "lmnt", "ivanvovk", "priorgrad", "tacotron2"),
    "diffusion.prior": ("standard", "priorgrad", "fregrad"),
    "model.tf32": ("auto", "on", "off"),
    "diffusion.schedule_precision": ("float64", "float32"),
    "diffusion.loss": ("l1", "l2"),
    "train.strategy": ("mirrored", "multi_worker", "one_device"),
}


@dataclasses.dataclass(frozen=True)
class Section:
    """A config section registered by the part of the package that reads it: its keys' defaults, their allowed
    values ({key: values}), and whether a run folder's config.json records it."""

    defaults: dict
    choices: dict = dataclasses.field(default_factory=dict)
    recorded: bool = True


_sections = {}  # top-level name -> Section (the digit classifier's)
_families = None  # the model families' source (models/registry.py): names(), family(name)


def register_section(name, section):
    """Make the top-level config section `name` (a Section) part of every config."""
    _sections[name] = section


def register_families(source):
    """Where the `model.<name>` sections come from: `source.names()` lists the family names, and
    `source.family(name)` declares one (its `section` of defaults, `choices`, `check`, `conditioning`, `title`,
    `legacy_keys`)."""
    global _families
    _families = source


def family_names():
    """Every `model.backbone` value a config may give."""
    return list(_families.names()) if _families else []


def family_of(config):
    """The declaration of a config's family (its registry.Family)."""
    return _families.family(config["model"]["backbone"])


def defaults(backbone=None):
    """Every key a config may set, with its default: the common ones, the registered sections, and the section of
    the family `backbone` (default: the default backbone's, added when a config is merged in that does not name
    another; a family's section is added when a config names the family or sets one of its keys)."""
    config = copy.deepcopy(COMMON_DEFAULTS)
    config.update({name: copy.deepcopy(section.defaults) for name, section in _sections.items()})
    if backbone is not None:
        config["model"]["backbone"] = backbone
    _add_family_section(config["model"], config["model"]["backbone"])
    return config


def _add_family_section(model, name):
    if name in family_names() and name not in model:
        model[name] = copy.deepcopy(_families.family(name).section)


def _allowed_values(key):
    """The values key (dotted) may take, or None for any of its type."""
    parts = key.split(".")
    if key == "model.backbone":
        return tuple(family_names())
    if len(parts) == 3 and parts[0] == "model" and parts[1] in family_names():
        return _families.family(parts[1]).choices.get(parts[2])
    if len(parts) == 2 and parts[0] in _sections:
        return _sections[parts[0]].choices.get(parts[1])
    return _CHOICES.get(key)


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
    allowed = _allowed_values(key)
    if allowed is not None and value not in allowed:
        raise UserError(f"config key '{key}' must be one of {', '.join(allowed)}, got {value!r}")
    return value


def merge(base, update, prefix, source):
    """Merge the nested dict `update` into the config `base` in place, checking each key and value (errors name
    `source` and the dotted key)."""
    for name, value in update.items():
        key = f"{prefix}{name}"
        if prefix == "model.":
            _add_family_section(base, name)
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
            if key == "model.backbone":
                _add_family_section(base, value)


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


def migrate(data, source):
    """A config file's JSON object in this version's layout, by the `format` it records (none recorded: 1); errors
    name `source`."""
    version = data.get("format", 1)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= FORMAT:
        raise UserError(f"{source}: config format {version!r} is not one this version of tf-diffwave reads (1 to "
                        f"{FORMAT}); a newer version wrote it")
    data = {key: value for key, value in copy.deepcopy(data).items() if key != "format"}
    return _from_format_1(data) if version == 1 else data


def _from_format_1(data):
    """Format 1 kept the keys of every family directly in `model` (and a few elsewhere): each such key moves to
    the section of the config's backbone when that family reads it, else to the section of the family that does."""
    families = {name: _families.family(name) for name in family_names()}
    for name, family in families.items():
        for (section, key), target in family.legacy_keys.items():
            if isinstance(data.get(section), dict) and key in data[section]:
                data.setdefault("model", {}).setdefault(name, {})[target] = data[section].pop(key)
    model = data.get("model")
    if not isinstance(model, dict):
        return data
    backbone = model.get("backbone")
    for key in [k for k in model if k not in COMMON_DEFAULTS["model"] and k not in families]:
        owners = [name for name, family in families.items() if key in family.section]
        if owners and isinstance(model.get(owners[0], {}), dict):
            owner = backbone if backbone in owners else owners[0]
            model.setdefault(owner, {})[key] = model.pop(key)
    return data


def apply_overrides(config, overrides):
    """Apply dotted `key=value` strings to a config dict in place (`model.X` for a key X of the current backbone's
    section means `model.<backbone>.X`)."""
    for text in overrides:
        key, value = parse_override(text)
        parts = key.split(".")
        backbone = config["model"]["backbone"]
        if len(parts) == 2 and parts[0] == "model" and parts[1] not in config["model"] \
                and parts[1] in config["model"].get(backbone, {}):
            parts.insert(1, backbone)
        nested = value
        for part in reversed(parts):
            nested = {part: nested}
        merge(config, nested, "", "override")


def validate(config):
    """Checks that span several keys; the family checks its own (registry.Family.validate)."""
    audio = config["audio"]
    if audio["win_length"] > audio["n_fft"]:
        raise UserError("config key 'audio.win_length' must not exceed 'audio.n_fft'")
    if audio["fmax"] > audio["sample_rate"] / 2:
        raise UserError("config key 'audio.fmax' must not exceed half of 'audio.sample_rate'")
    family_of(config).validate(config)
    d = config["diffusion"]
    if not 0 < d["beta_start"] < d["beta_end"] < 1:
        raise UserError("config keys 'diffusion.beta_start' < 'diffusion.beta_end' must lie in (0, 1)")
    if d["training_betas"] and (len(d["training_betas"]) < 2 or not all(0 < b < 1 for b in d["training_betas"])):
        raise UserError("config key 'diffusion.training_betas' must be [] or at least 2 betas in (0, 1)")
    if d["fast_steps"] and len(d["fast_steps"]) != len(d["fast_schedule"]):
        raise UserError(f"config key 'diffusion.fast_steps' has {len(d['fast_steps'])} steps for the "
                        f"{len(d['fast_schedule'])} betas of 'diffusion.fast_schedule': give one per beta, or []")
    _check_prior(config)
    data = config["data"]
    if min(data["valid_percent"], data["test_percent"]) < 0 or data["valid_percent"] + data["test_percent"] >= 100:
        raise UserError("config keys 'data.valid_percent' and 'data.test_percent' must be at least 0 and add up "
                        "to less than 100")
    if data["silence_pad"] < 0:
        raise UserError("config key 'data.silence_pad' must be at least 0")
    for key in ("model.audio_length", "train.max_steps", "train.save_every", "train.batch_size", "data.crop_frames",
                "train.sample_every", "train.log_every", "train.keep_checkpoints", "train.micro_batches"):
        section, name = key.split(".")
        if config[section][name] < 1:
            raise UserError(f"config key '{key}' must be at least 1")


def _check_prior(config):
    d = config["diffusion"]
    if d["prior"] == "standard":
        return
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
    """Defaults, then the JSON file at `path` (if any; a shipped config such as "configs/demo.json" is found from
    any folder), then the overrides; validated."""
    data = {}
    if path is not None:
        path = existing_path(path) or path
        data = read_json(path)
        if not isinstance(data, dict):
            raise UserError(f"{path}: a config must be a JSON object")
        data = migrate(data, path)
    model = data.get("model")
    named = model.get("backbone") if isinstance(model, dict) else None
    config = defaults(named if named in family_names() else None)  # only the family the config names is declared
    merge(config, data, "", path)
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
    """`config` without the sections of the families it does not use and without the registered sections a run
    does not record (the classifier's): what a run's config.json records."""
    config = copy.deepcopy(config)
    for name in family_names():
        if name != config["model"]["backbone"]:
            config["model"].pop(name, None)
    for name, section in _sections.items():
        if not section.recorded:
            config.pop(name, None)
    return config


def save_config(config, model_dir):
    """Write the resolved config as <model_dir>/config.json, with the format of its layout."""
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump({"format": FORMAT, **config}, f, indent=2)


def load_run_config(model_dir):
    """Read the config a training run saved in its folder, with its searched fast schedule if it has one."""
    path = os.path.join(model_dir, "config.json")
    if os.path.isfile(model_dir):
        extension = os.path.splitext(model_dir)[1].lower()
        what = {".tflite": "a LiteRT model; run it with tf_diffwave.serving.litert_runtime.LiteRTModel",
                ".pt": "a PyTorch checkpoint; convert it first with tf-diffwave convert",
                ".pth": "a PyTorch checkpoint; convert it first with tf-diffwave convert"}
        raise UserError(f"{model_dir}: a file, not a model folder"
                        f"{' (' + what[extension] + ')' if extension in what else ''}; give the folder that holds "
                        f"config.json")
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
    config["diffusion"]["fast_steps"] = []  # the searched schedule's own aligned steps
    return config
