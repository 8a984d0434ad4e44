"""Reading torch.save zip checkpoints without PyTorch: tensors rebuilt from hand-written files; nothing else runs."""

import io
import os
import pickle
import pickletools
import struct
import zipfile

import numpy as np
import pytest

from tests.helpers import FIXTURES, RunsAShellCommand, run_script, write_checkpoint
from tf_diffwave.errors import UserError
from tf_diffwave.interop.torch_checkpoint import read_torch_checkpoint


def text(s):
    """Pickle opcode BINUNICODE."""
    data = s.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def tensor_pickle(size, stride, offset=0, storage="FloatStorage", numel=6):
    """The pickle torch.save writes for {'w': tensor}, written opcode by opcode (protocol 2)."""
    ints = lambda values: b"(" + b"".join(b"J" + struct.pack("<i", v) for v in values) + b"t"  # noqa: E731
    persistent_id = b"(" + text("storage") + f"ctorch\n{storage}\n".encode() + text("0") + text("cpu") + \
        b"K" + bytes([numel]) + b"tQ"
    rebuild = b"ctorch._utils\n_rebuild_tensor_v2\n(" + persistent_id + b"K" + bytes([offset]) + ints(size) + \
        ints(stride) + b"\x89" + b"ccollections\nOrderedDict\n)R" + b"tR"
    return b"\x80\x02}" + text("w") + rebuild + b"s."


def test_tensors_are_rebuilt_with_their_strides(tmp_path):
    values = np.arange(6, dtype=np.float32)
    path = write_checkpoint(tmp_path / "a.pt", tensor_pickle((3, 2), (1, 3)), {"0": values.tobytes()})
    w = read_torch_checkpoint(path)["w"]
    np.testing.assert_array_equal(w, [[0, 3], [1, 4], [2, 5]])  # a transposed view of the storage
    assert w.dtype == np.float32 and w.flags.writeable


def test_bfloat16_storages_become_float32(tmp_path):
    values = np.array([1.5, -2.25, 2.0 ** 100], np.float32)
    bits = (values.view(np.uint32) >> 16).astype("<u2")  # these values are exact in bfloat16
    path = write_checkpoint(tmp_path / "b.pt", tensor_pickle((3,), (1,), storage="BFloat16Storage", numel=3),
                            {"0": bits.tobytes()})
    np.testing.assert_array_equal(read_torch_checkpoint(path)["w"], values)


@pytest.mark.parametrize("protocol", [2, 4])  # GLOBAL and STACK_GLOBAL
def test_a_pickle_that_calls_os_system_is_refused_and_nothing_runs(tmp_path, protocol):
    marker = tmp_path / "ran"
    payload = pickle.dumps({"model": RunsAShellCommand(marker)}, protocol=protocol)
    path = write_checkpoint(tmp_path / "evil.pt", payload)
    with pytest.raises(UserError, match=r"refused: .*'(posix|os)\.system'.*nothing was run") as err:
        read_torch_checkpoint(path)
    assert "\n" not in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("size,stride,offset", [((7,), (1,), 0), ((3, 2), (1, 3), 1), ((2,), (-1,), 0)])
def test_a_tensor_outside_its_storage_is_an_error(tmp_path, size, stride, offset):
    path = write_checkpoint(tmp_path / "oob.pt", tensor_pickle(size, stride, offset), {"0": bytes(24)})
    with pytest.raises(UserError, match="lies outside its storage"):
        read_torch_checkpoint(path)


def test_a_tensor_declaring_more_values_than_its_storage_holds_is_refused(tmp_path):
    """Repeated strides (0) let a tensor over one stored value declare any size; building it would allocate it."""
    path = write_checkpoint(tmp_path / "wide.pt", tensor_pickle((1000, 1000), (0, 0), numel=1), {"0": bytes(4)})
    with pytest.raises(UserError, match="declares 1000000 values, more than its storage holds \\(1\\)"):
        read_torch_checkpoint(path)


def test_lengths_a_damaged_file_declares_are_not_allocated(tmp_path):
    """A pickle opcode declaring 2 GiB of bytes, and a storage declaring more bytes than the file holds, are refused
    in a process that cannot allocate 1 GiB."""
    huge_bytes = write_checkpoint(tmp_path / "bytes.pt", b"\x80\x02}" + b"B" + struct.pack("<I", 2**31) + b"xx")
    storage = write_checkpoint(tmp_path / "storage.pt", tensor_pickle((6,), (1,)), {"0": bytes(24)})
    data = bytearray(open(storage, "rb").read())
    entry = data.rfind(b"PK\x01\x02")  # the central directory's last entry
    assert data[entry + 46: entry + 46 + 14] == b"archive/data/0"
    struct.pack_into("<I", data, entry + 24, 2**31)  # its uncompressed size
    open(storage, "wb").write(bytes(data))
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
            "from tf_diffwave.errors import UserError\n"
            "from tf_diffwave.interop.torch_checkpoint import read_torch_checkpoint\n"
            "for path in sys.argv[1:]:\n"
            "    try:\n"
            "        read_torch_checkpoint(path)\n"
            "    except UserError as err:\n"
            "        print('refused', err)\n")
    out = run_script(code, huge_bytes, storage).splitlines()
    assert len(out) == 2 and all(line.startswith("refused") for line in out), out


def test_missing_storage_data_is_an_error(tmp_path):
    path = write_checkpoint(tmp_path / "nodata.pt", tensor_pickle((6,), (1,)))
    with pytest.raises(UserError, match="lacks the data of storage 0"):
        read_torch_checkpoint(path)


def test_files_that_are_not_zip_checkpoints_are_named_errors(tmp_path):
    cases = {"empty.pt": (b"", "the file is empty"),
             "text.pt": (b"hello, not a checkpoint\n", "unknown format")}
    for name, (content, reason) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(UserError, match=f"{name}: not a zip-format PyTorch checkpoint \\({reason}"):
            read_torch_checkpoint(str(tmp_path / name))
    whole = write_checkpoint(tmp_path / "whole.pt", tensor_pickle((6,), (1,)), {"0": bytes(24)})
    with open(whole, "rb") as f:
        (tmp_path / "truncated.pt").write_bytes(f.read()[:200])
    with pytest.raises(UserError, match="truncated.pt: .*truncated or damaged"):
        read_torch_checkpoint(str(tmp_path / "truncated.pt"))
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "a zip, but not a checkpoint")
    with pytest.raises(UserError, match="other.zip: a zip file, but not a PyTorch checkpoint"):
        read_torch_checkpoint(str(tmp_path / "other.zip"))
    with pytest.raises(UserError, match="absent.pt: checkpoint file not found"):
        read_torch_checkpoint(str(tmp_path / "absent.pt"))
    (tmp_path / "legacy.pt").write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + b"\x80\x02")  # magic
    with pytest.raises(UserError, match="legacy.pt: damaged or truncated checkpoint"):
        read_torch_checkpoint(str(tmp_path / "legacy.pt"))


PHILSYN = os.path.join(FIXTURES, "philsyn-diffwave-vocoder", "philsyn-vocoder-small")


def test_a_legacy_checkpoint_reads_as_the_same_dict_saved_in_zip_format():
    legacy, zipped = (read_torch_checkpoint(PHILSYN + suffix) for suffix in ("-legacy.pkl", ".pt"))
    assert set(legacy) == set(zipped) == {"model_state_dict", "optimizer_state_dict"}
    ours, theirs = legacy["model_state_dict"], zipped["model_state_dict"]
    assert list(ours) == list(theirs) and len(ours) == 92
    for key in ours:
        assert ours[key].dtype == theirs[key].dtype and np.array_equal(ours[key], theirs[key]), key


def test_a_legacy_storage_larger_than_the_file_is_refused_before_it_is_read(tmp_path):
    with open(PHILSYN + "-legacy.pkl", "rb") as f:
        data = bytearray(f.read())
    stream = io.BytesIO(bytes(data))
    for _ in range(5):  # past the pickles (magic, protocol, type sizes, the object, the storage keys), unrun
        for _ in pickletools.genops(stream):
            pass
    data[stream.tell(): stream.tell() + 8] = (2**40).to_bytes(8, "little")  # the first storage's element count
    (tmp_path / "huge.pkl").write_bytes(bytes(data))
    with pytest.raises(UserError, match="huge.pkl: storage .* declares 1099511627776 values, more than the file"):
        read_torch_checkpoint(str(tmp_path / "huge.pkl"))
