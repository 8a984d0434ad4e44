"""Reading PyTorch checkpoints (`torch.save`) into numpy arrays, without PyTorch and without running anything the
file asks for.

A checkpoint (PyTorch 1.6 and later) is a zip archive holding `<name>/data.pkl`, a pickle of the saved object, and
`<name>/data/<key>`, the raw bytes of each tensor storage. The legacy format (before 1.6, or
`_use_new_zipfile_serialization=False`) is a stream: pickles of a magic number, the protocol version and the
writer's type sizes, the pickle of the object, the pickle of its storage keys, then each storage as an int64
element count and its bytes. Unpickling is restricted to the few globals that rebuild tensors and dicts (the
allow-list that `torch.load(weights_only=True)` also applies); a pickle that names any other global, such as
`os.system`, is refused before that global is looked up.
"""

import collections
import io
import os
import pickle
import struct
import tarfile
import zipfile

import numpy as np

from tf_diffwave.errors import UserError

# what a reader allocates at most: far above any supported model's largest tensor (WaveGrad base: 2.4M values) and
# pickle (about 100 kB), and far below a machine's memory, so that a damaged or crafted file is refused instead
MAX_ELEMENTS = 2**28  # values of one tensor (1 GiB of float32)
MAX_PICKLE_BYTES = 2**26
LEGACY_MAGIC, LEGACY_PROTOCOL = 0x1950A86A20F9469CFC6C, 1001
LEGACY_STREAM = "PyTorch's legacy (pre-1.6) format"

# torch's legacy storage classes (still what torch.save writes) and the numpy types of their bytes
_STORAGES = {"DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2", "BFloat16Storage": "<u2",
             "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
             "ByteStorage": "u1", "BoolStorage": "?"}


class _Storage:
    """The flat contents of one tensor storage."""

    def __init__(self, array, bfloat16):
        self.array, self.bfloat16 = array, bfloat16


class _CheckpointUnpickler(pickle._Unpickler):
    """Unpickles data.pkl of a torch zip checkpoint: tensors become numpy arrays, nothing else is constructed."""

    def __init__(self, file, archive, prefix, path):
        super().__init__(file)
        self.archive, self.prefix, self.path = archive, prefix, path
        self.legacy_storages = {}  # legacy format: key -> (_Storage to fill, its kind), read after the pickle

    def _refuse_buffer(self):
        raise UserError(f"{self.path}: damaged checkpoint: its pickle holds a byte array or an out-of-band buffer, "
                        f"which torch.save does not write")

    # protocol 5's byte arrays are allocated at the length they declare before they are read; torch never writes them
    dispatch = dict(pickle._Unpickler.dispatch)
    for _opcode in (pickle.BYTEARRAY8, pickle.NEXT_BUFFER, pickle.READONLY_BUFFER):
        dispatch[_opcode[0]] = _refuse_buffer
    del _opcode

    def find_class(self, module, name):
        allowed = {("collections", "OrderedDict"): collections.OrderedDict,
                   ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor,
                   ("torch._utils", "_rebuild_parameter"): lambda data, requires_grad, hooks: data}
        if (module, name) in allowed:
            return allowed[module, name]
        if module == "torch" and name in _STORAGES:
            return name
        raise UserError(f"{self.path}: refused: the checkpoint's pickle asks for '{module}.{name}', which is not "
                        f"needed to rebuild tensors and dicts (nothing was run)")

    def persistent_load(self, pid):
        legacy = self.archive is None  # its references carry a sixth entry, the view (None)
        if not (isinstance(pid, tuple) and len(pid) == 5 + legacy and pid[0] == "storage" and pid[1] in _STORAGES):
            raise UserError(f"{self.path}: not a PyTorch checkpoint (unknown storage reference {pid!r})")
        kind, key = pid[1], str(pid[2])
        if legacy:
            storage, _ = self.legacy_storages.setdefault(key, (_Storage(None, kind == "BFloat16Storage"), kind))
            return storage
        dtype = np.dtype(_STORAGES[kind])
        raw = _member(self.archive, f"{self.prefix}/data/{key}", MAX_ELEMENTS * dtype.itemsize, self.path,
                      f"the data of storage {key}")
        if len(raw) % dtype.itemsize:
            raise UserError(f"{self.path}: storage {key} is {len(raw)} bytes, not a whole number of {kind} items")
        return _Storage(np.frombuffer(raw, dtype), kind == "BFloat16Storage")

    def _rebuild_tensor(self, storage, offset, size, stride, *unused):
        if isinstance(storage, _Storage) and storage.array is None:  # legacy: the storages' bytes come later
            return _Pending(self, storage, offset, size, stride)
        if not isinstance(storage, _Storage):
            raise UserError(f"{self.path}: not a PyTorch checkpoint (a tensor without a storage)")
        size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if len(size) != len(stride) or min(size + stride + (offset,), default=0) < 0 or (
                0 not in size and last >= len(storage.array)):
            raise UserError(f"{self.path}: a tensor of shape {size} lies outside its storage")
        count = int(np.prod(size, dtype=object))
        if count > max(len(storage.array), 1) or count > MAX_ELEMENTS:  # repeated strides (0) can declare any size
            raise UserError(f"{self.path}: a tensor of shape {size} declares {count} values, more than its storage "
                            f"holds ({len(storage.array)}) or than {MAX_ELEMENTS} (damaged or crafted)")
        flat = storage.array
        item = flat.itemsize
        array = np.lib.stride_tricks.as_strided(flat[offset:], size, [s * item for s in stride]) if 0 not in size \
            else np.zeros(size, flat.dtype)
        if storage.bfloat16:  # numpy has no bfloat16: its bits are the top half of a float32's
            return (array.astype(np.uint32) << 16).view(np.float32)
        return np.array(array)


class _Pending:
    """A tensor of a legacy checkpoint, rebuilt once its storage's bytes are read."""

    def __init__(self, unpickler, *arguments):
        self.unpickler, self.arguments = unpickler, arguments

    def tensor(self):
        return self.unpickler._rebuild_tensor(*self.arguments)


def _resolved(value, done):
    """`value` with every _Pending tensor in its dicts, lists and tuples rebuilt (each once: `done` by id)."""
    if isinstance(value, _Pending):
        if id(value) not in done:
            done[id(value)] = value.tensor()
        return done[id(value)]
    if isinstance(value, dict):
        for key in value:
            value[key] = _resolved(value[key], done)
        return value
    if isinstance(value, list):
        value[:] = [_resolved(item, done) for item in value]
        return value
    if isinstance(value, tuple):
        return tuple(_resolved(item, done) for item in value)
    return value


def _read_legacy(path):
    """The object of a legacy-format checkpoint (see the module's docstring), tensors as numpy arrays."""
    with open(path, "rb") as file:  # in memory: a damaged length in a pickle reads what there is, not what it says
        f = io.BytesIO(file.read())
    size = len(f.getbuffer())
    head = _CheckpointUnpickler(f, None, None, path)
    magic, protocol, _ = (head.load() for _ in range(3))
    if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
        raise UserError(f"{path}: not a PyTorch checkpoint (legacy header {magic!r}, {protocol!r})")
    unpickler = _CheckpointUnpickler(f, None, None, path)
    saved = unpickler.load()
    keys = _CheckpointUnpickler(f, None, None, path).load()
    if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(unpickler.legacy_storages):
        raise UserError(f"{path}: damaged checkpoint: its storage list does not match the tensors' storages")
    for key in map(str, keys):
        storage, kind = unpickler.legacy_storages[key]
        dtype = np.dtype(_STORAGES[kind])
        count = int(np.frombuffer(f.read(8), "<i8")[0])
        if count < 0 or count > MAX_ELEMENTS or count * dtype.itemsize > size - f.tell():
            raise UserError(f"{path}: storage {key} declares {count} values, more than the file holds or than "
                            f"{MAX_ELEMENTS} (damaged or crafted)")
        storage.array = np.frombuffer(f.read(count * dtype.itemsize), dtype)
    return _resolved(saved, {})


def read_torch_checkpoint(path):
    """The object saved by `torch.save` at `path` (zip format, or the legacy format of PyTorch before 1.6), tensors
    as numpy arrays."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: checkpoint file not found")
    legacy = not zipfile.is_zipfile(path) and _what_it_is(path) == LEGACY_STREAM
    if not zipfile.is_zipfile(path) and not legacy:
        raise UserError(f"{path}: not a zip-format PyTorch checkpoint ({_what_it_is(path)})")
    try:
        if legacy:
            return _read_legacy(path)
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pickles) != 1:
                raise UserError(f"{path}: a zip file, but not a PyTorch checkpoint (no <name>/data.pkl)")
            prefix = pickles[0].split("/")[0]
            data = _member(archive, pickles[0], MAX_PICKLE_BYTES, path, "its pickle")
            # the pure-Python unpickler: the C one allocates the length an opcode declares before reading it
            return _CheckpointUnpickler(io.BytesIO(data), archive, prefix, path).load()
    except (zipfile.BadZipFile, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, RecursionError, OverflowError, struct.error) as err:
        raise UserError(f"{path}: damaged or truncated checkpoint ({type(err).__name__}: {err})") from None


def _member(archive, name, limit, path, what):
    """The bytes of zip member `name`, refused when it is absent or declares more than `limit` bytes or more than
    the file holds (a stored member cannot), before they are read."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise UserError(f"{path}: the checkpoint lacks {what}") from None
    stored_too_long = info.compress_type == zipfile.ZIP_STORED and info.file_size > os.path.getsize(path)
    if info.file_size > limit or stored_too_long:
        raise UserError(f"{path}: {what} declares {info.file_size} bytes, more than the file holds or than "
                        f"{limit} (damaged or crafted)")
    return archive.read(name)


def _what_it_is(path):
    """A short description of a file that is not a zip archive."""
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        return "the file is empty"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive that is truncated or damaged"
    if tarfile.is_tarfile(path):
        return "PyTorch's legacy tar format: load and save it again with PyTorch 1.6 or later"
    if head.startswith(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"):
        return LEGACY_STREAM
    return "unknown format"
