"""Read a legacy (pre-1.6) `torch.save` state dict into NumPy arrays, without torch.

The legacy layout is five things back to back in one file:
  1. pickle: a magic number        2. pickle: the protocol version (1001)
  3. pickle: system info (endianness, type sizes)
  4. pickle: the object itself; each tensor is `torch._utils._rebuild_tensor_v2(storage,
     offset, size, stride, requires_grad, hooks)` and each storage a persistent id
     ('storage', <StorageClass>, key, location, element count, view metadata)
  5. pickle: the list of storage keys, in the order their raw data follows; each storage is
     then an int64 little-endian element count followed by the elements.

The unpickler here resolves only the handful of globals that layout needs and refuses every
other one, so a hostile file cannot run code. Nothing is imported from torch.
"""

import collections
import io
import pickle
import struct

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Storage classes the legacy format names, and the dtype of their elements.
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class TorchFileError(Exception):
    """The file is not a legacy torch state dict this reader understands."""


class StorageType:
    """Stands in for `torch.FloatStorage` and its kin: only the element dtype matters."""

    def __init__(self, name):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class Storage:
    """A storage named by a persistent id; its bytes arrive after the object pickle."""

    def __init__(self, key, storage_type, count):
        self.key = key
        self.dtype = storage_type.dtype
        self.count = count
        self.data = None  # np.ndarray, 1-D, filled by read_storages


class PendingTensor:
    """A tensor whose storage has not been read yet: materialised after step 5."""

    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = tuple(size)
        self.stride = tuple(stride)

    def materialise(self):
        data = self.storage.data
        if not self.size:
            return data[self.offset].copy()
        end = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1
        if self.offset < 0 or end > len(data) or any(s < 0 for s in self.stride):
            raise TorchFileError(
                f"tensor view (offset {self.offset}, size {self.size}, stride {self.stride}) "
                f"lies outside its storage {self.storage.key} of {len(data)} elements")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size, strides=[s * item for s in self.stride], writeable=False)
        return np.ascontiguousarray(view)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
    if not isinstance(storage, Storage):
        raise TorchFileError(f"_rebuild_tensor_v2 got {type(storage).__name__}, not a storage")
    return PendingTensor(storage, int(offset), size, stride)


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only OrderedDict, _rebuild_tensor_v2 and the storage classes."""

    def __init__(self, file):
        super().__init__(file)
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(name)
        raise TorchFileError(f"refusing to load global {module}.{name}: not part of a plain state dict")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise TorchFileError(f"unknown persistent id {pid!r}")
        _, storage_type, key, _location, count = pid[:5]
        if not isinstance(storage_type, StorageType):
            raise TorchFileError(f"storage {key!r} has type {storage_type!r}, not a known storage class")
        if len(pid) > 5 and pid[5] is not None:
            raise TorchFileError(f"storage {key!r} is a view of another storage: not supported")
        if key not in self.storages:
            self.storages[key] = Storage(key, storage_type, int(count))
        return self.storages[key]


def _load_plain(f, what):
    """Loads one of the small header pickles, which hold only ints, strings and dicts."""

    class Plain(pickle.Unpickler):
        def find_class(self, module, name):
            raise TorchFileError(f"{what}: refusing global {module}.{name}")

    try:
        return Plain(f).load()
    except (pickle.UnpicklingError, EOFError) as e:
        raise TorchFileError(f"{what}: not a pickle ({e}) at byte {f.tell()}") from e


def read_storages(f, keys, storages):
    for key in keys:
        if key not in storages:
            raise TorchFileError(f"storage key {key!r} listed but never referenced")
        st = storages[key]
        at = f.tell()
        head = f.read(8)
        if len(head) != 8:
            raise TorchFileError(f"storage {key!r}: file ends at byte {at} before its size")
        (count,) = struct.unpack("<q", head)
        if count != st.count:
            raise TorchFileError(f"storage {key!r}: size {count} at byte {at}, but the pickle said {st.count}")
        nbytes = count * st.dtype.itemsize
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise TorchFileError(f"storage {key!r}: needs {nbytes} bytes at byte {at + 8}, file has {len(raw)}")
        st.data = np.frombuffer(raw, dtype=st.dtype)


def load_state_dict(data):
    """Parses the bytes of a legacy torch state dict; returns an OrderedDict of np.ndarray."""
    f = io.BytesIO(data)
    if _load_plain(f, "magic number") != LEGACY_MAGIC:
        raise TorchFileError("not a legacy torch file (bad magic number); zip-format files are not supported")
    version = _load_plain(f, "protocol version")
    if version != LEGACY_PROTOCOL:
        raise TorchFileError(f"legacy protocol version {version}, expected {LEGACY_PROTOCOL}")
    info = _load_plain(f, "system info")
    if not isinstance(info, dict) or not info.get("little_endian", False):
        raise TorchFileError(f"system info {info!r}: only little-endian files are supported")

    unpickler = RestrictedUnpickler(f)
    try:
        obj = unpickler.load()
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError) as e:
        raise TorchFileError(f"state dict pickle is malformed near byte {f.tell()}: {e}") from e
    keys = _load_plain(f, "storage key list")
    if not isinstance(keys, list):
        raise TorchFileError(f"storage key list is a {type(keys).__name__}")
    read_storages(f, keys, unpickler.storages)
    if f.tell() != len(data):
        raise TorchFileError(f"{len(data) - f.tell()} unread bytes after the last storage")
    if not isinstance(obj, collections.OrderedDict):
        raise TorchFileError(f"top-level object is a {type(obj).__name__}, not a state dict")

    out = collections.OrderedDict()
    for name, value in obj.items():
        if not isinstance(value, PendingTensor):
            raise TorchFileError(f"state dict entry {name!r} is a {type(value).__name__}, not a tensor")
        out[name] = value.materialise()
    return out
