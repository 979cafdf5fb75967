"""The legacy torch.save reader that scripts/py/build_efficientnet.py uses (no torch needed).

Files are written here in the legacy layout by a pickler that stands in for torch: stand-in
`torch.FloatStorage` and `torch._utils._rebuild_tensor_v2` are put in sys.modules only while
pickling, so the bytes name the same globals a real torch file does.
"""

import collections
import io
import os
import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "py"))
from build_efficientnet_torchfile import TorchFileError, load_state_dict  # noqa: E402


class StorageRef:
    def __init__(self, key, array):
        self.key = key
        self.array = array


class TensorRef:
    """Pickles as torch does: _rebuild_tensor_v2(storage, offset, size, stride, False, hooks)."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (sys.modules["torch._utils"]._rebuild_tensor_v2, self.args)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


@pytest.fixture
def fake_torch(monkeypatch):
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    for name in ("FloatStorage", "LongStorage"):
        cls = type(name, (), {"__module__": "torch", "__qualname__": name})
        setattr(torch, name, cls)

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


def legacy_bytes(torch, obj, storages, truncate=0):
    """The five parts of a legacy file: magic, version, sys info, object, keys + raw storages."""
    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, out, protocol=2)

    class Writer(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, StorageRef):
                cls = torch.FloatStorage if o.array.dtype == np.float32 else torch.LongStorage
                return ("storage", cls, o.key, "cpu", o.array.size, None)
            return None

    Writer(out, protocol=2).dump(obj)
    pickle.dump([s.key for s in storages], out, protocol=2)
    for s in storages:
        out.write(struct.pack("<q", s.array.size))
        out.write(s.array.tobytes())
    data = out.getvalue()
    return data[: len(data) - truncate]


def test_reads_tensors_and_strided_views(fake_torch):
    w = np.arange(24, dtype=np.float32)
    steps = np.array([7], dtype=np.int64)
    sw, ss = StorageRef("1", w), StorageRef("2", steps)
    state = collections.OrderedDict([
        ("conv.weight", TensorRef(sw, 0, (2, 3, 2), (6, 2, 1))),
        ("transposed", TensorRef(sw, 12, (3, 4), (1, 3))),  # a non-contiguous view
        ("bn.num_batches_tracked", TensorRef(ss, 0, (), ())),
    ])
    got = load_state_dict(legacy_bytes(fake_torch, state, [sw, ss]))
    assert list(got) == ["conv.weight", "transposed", "bn.num_batches_tracked"]
    np.testing.assert_array_equal(got["conv.weight"], w[:12].reshape(2, 3, 2))
    np.testing.assert_array_equal(got["transposed"], w[12:].reshape(4, 3).T)
    assert got["bn.num_batches_tracked"] == 7 and got["bn.num_batches_tracked"].dtype == np.int64


def test_refuses_unknown_globals(fake_torch):
    state = collections.OrderedDict([("x", Evil())])
    with pytest.raises(TorchFileError, match="refusing to load global posix.system"):
        load_state_dict(legacy_bytes(fake_torch, state, []))


def test_truncated_storage_names_the_offset(fake_torch):
    s = StorageRef("9", np.ones(10, dtype=np.float32))
    state = collections.OrderedDict([("w", TensorRef(s, 0, (10,), (1,)))])
    with pytest.raises(TorchFileError, match=r"storage '9': needs 40 bytes at byte \d+"):
        load_state_dict(legacy_bytes(fake_torch, state, [s], truncate=4))


def test_view_outside_its_storage_is_an_error(fake_torch):
    s = StorageRef("3", np.ones(4, dtype=np.float32))
    state = collections.OrderedDict([("w", TensorRef(s, 2, (4,), (1,)))])
    with pytest.raises(TorchFileError, match="outside its storage"):
        load_state_dict(legacy_bytes(fake_torch, state, [s]))


def test_zip_format_is_refused():
    with pytest.raises(TorchFileError, match="not a pickle|bad magic"):
        load_state_dict(b"PK\x03\x04" + b"\0" * 64)
