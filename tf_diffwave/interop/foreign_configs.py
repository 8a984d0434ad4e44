"""The JSON and YAML configs that other implementations keep beside their checkpoints, read with errors that name
the file."""

import re

import yaml

from tf_diffwave.config import read_json
from tf_diffwave.errors import UserError


def read_json_config(path, sections, what):
    """The JSON object at `path`, which must hold each of `sections` as an object (`what` names the implementation
    in the error)."""
    data = read_json(path)
    if not isinstance(data, dict) or not all(isinstance(data.get(s), dict) for s in sections):
        raise UserError(f"{path}: not {what} config (it needs {' and '.join(repr(s) for s in sections)})")
    return data


def typed_entry(section, key, kind, path, where, holder):
    """section[key] when it is a `kind` (a bool counts only where `kind` is bool); otherwise a one-line error that
    names the file `path`, the key as `where` + key and the implementation `holder` whose file it is."""
    value = section.get(key)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise UserError(f"{path}: {where}{key} = {value!r} is missing or not what {holder} stores there")
    return value


def read_hydra_config(path, sections, what):
    """The composed Hydra (OmegaConf) YAML config at `path` as `train.py` prints it, which must hold each of
    `sections` as a mapping; a value that is exactly an interpolation `${a.b}` is replaced by what it names."""
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except OSError as err:
        raise UserError(f"{path}: cannot read it ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(s), dict) for s in sections):
        raise UserError(f"{path}: not {what} config (it needs {' and '.join(repr(s) for s in sections)})")

    def resolved(value, seen=()):
        match = re.fullmatch(r"\$\{([\w.]+)\}", value) if isinstance(value, str) else None
        if match is None:
            return value
        target = data
        for part in match.group(1).split("."):
            if not isinstance(target, dict) or part not in target or match.group(1) in seen:
                raise UserError(f"{path}: the interpolation {value} names nothing in the file")
            target = target[part]
        return resolved(target, seen + (match.group(1),))

    return {name: {key: resolved(value) for key, value in section.items()} if isinstance(section, dict) else section
            for name, section in data.items()}
