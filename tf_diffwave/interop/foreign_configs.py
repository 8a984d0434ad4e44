"""The JSON configs that other implementations keep beside their checkpoints, read with errors that name the file."""

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
