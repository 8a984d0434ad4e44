"""Damaged or crafted checkpoints: every mutation of every fixture checkpoint (seeded) is read into arrays or refused
with one UserError, in a process whose memory is capped, so that what a reader allocates stays bounded."""

import glob
import os

import pytest

from tests.helpers import FIXTURES, run_script

CHECKPOINTS = sorted(glob.glob(os.path.join(FIXTURES, "*", "*.pt")))

# mutates a checkpoint as copying, storage or an attacker might, and reads each copy: prints one word per case
FUZZ = """
import io, os, random, resource, sys, zipfile
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # a reader that allocates what a header declares fails
from tf_diffwave.errors import UserError
from tf_diffwave.interop.torch_checkpoint import read_torch_checkpoint

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

path, cases, seed, work = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
data = open(path, "rb").read()
rng = random.Random(seed)
for case in range(cases):
    copy = os.path.join(work, f"case-{case}.pt")
    with open(copy, "wb") as f:
        f.write(mutate(data, rng))
    try:
        read_torch_checkpoint(copy)
        print("read")
    except UserError as err:
        assert "\\n" not in str(err) and str(err).startswith(copy), str(err)
        print("refused")
    except BaseException as err:
        print(f"case {case}: {type(err).__name__}: {err}", file=sys.stderr)
        raise
"""


def fuzz(path, cases, tmp_path):
    out = run_script(FUZZ, path, cases, sum(os.path.basename(path).encode()), tmp_path, timeout=600)
    words = out.split()
    assert len(words) == cases and set(words) <= {"read", "refused"}
    return words


@pytest.mark.parametrize("path", CHECKPOINTS, ids=[os.path.basename(p) for p in CHECKPOINTS])
def test_mutated_checkpoints_are_read_or_refused_in_one_line(path, tmp_path):
    assert "refused" in fuzz(path, 6, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("path", CHECKPOINTS, ids=[os.path.basename(p) for p in CHECKPOINTS])
def test_many_mutated_checkpoints_are_read_or_refused_in_one_line(path, tmp_path):
    fuzz(path, 40, tmp_path)

