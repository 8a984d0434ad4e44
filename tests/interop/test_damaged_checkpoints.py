"""Damaged or crafted checkpoints: every mutation of every fixture checkpoint (seeded) is read into arrays or refused
with one UserError, in a process whose memory is capped, so that what a reader allocates stays bounded; in the
slow selection, each copy that reads is also given to its converter, which makes a model folder or refuses it
with one UserError."""

import glob
import json
import os

import pytest

from tests.helpers import FIXTURES, run_script

CHECKPOINTS = sorted(glob.glob(os.path.join(FIXTURES, "*", "*.pt")) + glob.glob(os.path.join(FIXTURES, "*", "*.pkl")))

# mutates a checkpoint as copying, storage or an attacker might, and reads each copy: prints one word per case
FUZZ = """
import io, os, random, resource, sys, zipfile
import importlib, json
path, cases, seed, work, conversion = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
conversion = json.loads(conversion)  # {"function": "module:name", "files": [...]} or null: read only
# a reader that allocates what a header declares fails (TensorFlow, for the converters, reserves more)
limit = (8 if conversion else 3) << 30
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from tf_diffwave.errors import UserError
from tf_diffwave.interop.torch_checkpoint import read_torch_checkpoint
if conversion:
    module, name = conversion["function"].split(":")
    convert = getattr(importlib.import_module(module), name)

def members(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info, archive.read(info)) for info in archive.infolist()]

def rezip(entries):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for info, content in entries:
            archive.writestr(info.filename, content)
    return out.getvalue()

def flip(content, rng, count):
    content = bytearray(content)
    for _ in range(count):
        content[rng.randrange(len(content))] = rng.randrange(256)
    return bytes(content)

def mutate(data, rng):
    if not data.startswith(b"PK"):  # torch's legacy stream: its pickles come first, then the storages' bytes
        kind = rng.choice(["truncate", "flip file", "flip head"])
        if kind == "flip head":
            return flip(data[: len(data) // 10], rng, rng.choice([1, 2, 8])) + data[len(data) // 10:]
    else:
        kind = rng.choice(["truncate", "flip file", "flip pickle", "drop entry", "shorten entry", "flip pickle one"])
    if kind == "truncate":
        return data[: rng.randrange(len(data))]
    if kind == "flip file":
        return flip(data, rng, rng.choice([1, 8, 64]))
    entries = members(data)
    index = next(i for i, (info, _) in enumerate(entries) if info.filename.endswith("data.pkl"))
    if kind.startswith("flip pickle"):
        info, content = entries[index]
        entries[index] = (info, flip(content, rng, 1 if kind.endswith("one") else rng.choice([2, 8])))
    elif kind == "drop entry":
        entries.pop(rng.randrange(len(entries)))
    else:
        i = rng.randrange(len(entries))
        entries[i] = (entries[i][0], entries[i][1][: rng.randrange(len(entries[i][1]) + 1)])
    return rezip(entries)

data = open(path, "rb").read()
rng = random.Random(seed)
for case in range(cases):
    copy = os.path.join(work, f"case-{case}.pt")
    with open(copy, "wb") as f:
        f.write(mutate(data, rng))
    try:
        read_torch_checkpoint(copy)
        if conversion:
            convert(copy, *conversion["files"], os.path.join(work, f"model-{case}"), export=False,
                    **conversion.get("options", {}))
        print("converted" if conversion else "read")
    except UserError as err:
        assert "\\n" not in str(err) and str(err).startswith(copy), str(err)
        print("refused")
    except BaseException as err:
        print(f"case {case}: {type(err).__name__}: {err}", file=sys.stderr)
        raise
"""


# fixture -> its converter and the files it takes after the checkpoint (relative to tests/fixtures)
CONVERSIONS = {
    "lmnt-small.pt": {"function": "tf_diffwave.interop.lmnt:convert_lmnt", "files": []},
    "lmnt-uncond-small.pt": {"function": "tf_diffwave.interop.lmnt:convert_lmnt", "files": []},
    "ivanvovk-small.pt": {"function": "tf_diffwave.interop.wavegrad_ivanvovk:convert_ivanvovk",
                          "files": ["wavegrad/ivanvovk-small.json"]},
    "priorgrad-small.pt": {"function": "tf_diffwave.interop.priorgrad:convert_priorgrad",
                           "files": ["priorgrad/priorgrad-small-stats"]},
    "fregrad-small.pt": {"function": "tf_diffwave.interop.fregrad:convert_fregrad",
                         "files": ["fregrad/fregrad-small-stats"],
                         "options": {"params_path": "fregrad/fregrad-small-params_saved.py"}},
    "rf5-wavenet-small.pt": {"function": "tf_diffwave.interop.rf5_diffwave:convert_rf5_diffwave",
                             "files": ["rf5-diffwave/rf5-wavenet-small.json"]},
    "rf5-sashimi-small.pt": {"function": "tf_diffwave.interop.rf5_sashimi:convert_rf5_sashimi",
                             "files": ["rf5-diffwave/rf5-sashimi-small.json"]},
    "sashimi-ar-small.pt": {"function": "tf_diffwave.interop.simple_sashimi:convert_simple_sashimi", "files": []},
    "albertfgu-wavenet-small.pt": {"function": "tf_diffwave.interop.albertfgu:convert_albertfgu",
                                   "files": ["albertfgu-diffwave-sashimi/albertfgu-wavenet-small.yaml"]},
    "philsyn-vocoder-small.pt": {"function": "tf_diffwave.interop.philsyn_vocoder:convert_philsyn_vocoder",
                                 "files": ["philsyn-diffwave-vocoder/philsyn-vocoder-small.json"]},
    "philsyn-vocoder-small-legacy.pkl": {"function": "tf_diffwave.interop.philsyn_vocoder:convert_philsyn_vocoder",
                                         "files": ["philsyn-diffwave-vocoder/philsyn-vocoder-small.json"]},
}


def fuzz(path, cases, tmp_path, convert=False):
    conversion = None
    if convert:
        conversion = dict(CONVERSIONS[os.path.basename(path)])
        conversion["files"] = [os.path.join(FIXTURES, f) for f in conversion["files"]]
        conversion["options"] = {k: os.path.join(FIXTURES, v) for k, v in conversion.get("options", {}).items()}
    out = run_script(FUZZ, path, cases, sum(os.path.basename(path).encode()), tmp_path, json.dumps(conversion),
                     timeout=1800)
    words = out.split()
    assert len(words) == cases and set(words) <= {"converted" if convert else "read", "refused"}
    return words


def test_every_fixture_has_its_converter():
    assert sorted(CONVERSIONS) == sorted(os.path.basename(p) for p in CHECKPOINTS)


@pytest.mark.parametrize("path", CHECKPOINTS, ids=[os.path.basename(p) for p in CHECKPOINTS])
def test_mutated_checkpoints_are_read_or_refused_in_one_line(path, tmp_path):
    assert "refused" in fuzz(path, 6, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("path", CHECKPOINTS, ids=[os.path.basename(p) for p in CHECKPOINTS])
def test_many_mutated_checkpoints_are_converted_or_refused_in_one_line(path, tmp_path):
    fuzz(path, 40, tmp_path, convert=True)
