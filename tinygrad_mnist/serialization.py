"""Checkpoints without pickle: `save(obj, path)` and `load(path)`.

`obj` is a tree of dicts, lists and tuples holding NumPy arrays, NumPy scalars,
Tensors and plain values (None, bool, int of any size, float including nan/inf,
str), e.g. `{"model": model.state_dict(), "optimizer": opt.state_dict(),
"epoch": 3, "rng": gen.bit_generator.state}`. The file is an `.npz` archive: one
`.npy` member per array and a JSON manifest describing the tree, so it loads with
`allow_pickle=False`. Everything comes back as it went in: tuples stay tuples, dict
keys keep their types (int keys too), Tensors come back as Tensors (with their
`requires_grad`, without gradients). Dict subclasses (OrderedDict, Counter) come back
as plain dicts.

The file is written with `tinygrad_mnist.atomic.atomic_write` (a temporary file renamed
over `path`), so a crash never leaves a half-written checkpoint. Loading a truncated,
corrupted or foreign file raises `CheckpointError` naming the file.
"""
from __future__ import annotations

import json
import math
import os
import zipfile
from typing import Any, Dict, Union

import numpy as np

from .atomic import atomic_write
from .device import check_device, device
from .tensor import Tensor

PathLike = Union[str, "os.PathLike[str]"]

FORMAT = "tinygrad_mnist.checkpoint"
VERSION = 1
_MANIFEST = "manifest"
_JSON_SAFE_INT = 2 ** 53  # larger ints are stored as strings (exact in any JSON reader)


class CheckpointError(ValueError):
    """A file is not a readable checkpoint (truncated, corrupted or foreign)."""


# ------------------------------------------------------------------------ encode
def _encode(obj: Any, arrays: Dict[str, np.ndarray], where: str) -> Any:
    """The JSON form of `obj`; arrays go to `arrays` and are referenced by name. Every
    JSON object in the manifest is a tagged node, so no user dict can be mistaken
    for one."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.generic) or isinstance(obj, np.ndarray):
        array = np.asarray(obj)
        if array.dtype.hasobject:
            raise TypeError(f"save: the array at {where} has dtype {array.dtype}, which "
                            f"would need pickle; store numeric or string arrays")
        key = f"a{len(arrays)}"
        arrays[key] = array
        return {"$": "scalar" if isinstance(obj, np.generic) else "array", "key": key}
    if isinstance(obj, int):
        return obj if -_JSON_SAFE_INT < obj < _JSON_SAFE_INT else {"$": "int", "value": str(obj)}
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"$": "float", "value": repr(obj)}
    if isinstance(obj, Tensor):
        node = _encode(obj.data, arrays, where)
        return {"$": "tensor", "key": node["key"], "requires_grad": obj.requires_grad}
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else {"$": "tuple", "items": items}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not (k is None or isinstance(k, (bool, int, float, str, tuple, np.generic))):
                raise TypeError(f"save: the dict at {where} has a key of type "
                                f"{type(k).__name__}; keys must be str, int, float, bool, "
                                f"None or tuples of those")
            items.append([_encode(k, arrays, where), _encode(v, arrays, f"{where}[{k!r}]")])
        return {"$": "dict", "items": items}
    raise TypeError(f"save: cannot store a {type(obj).__name__} (at {where}); use dicts, "
                    f"lists, tuples, arrays, Tensors, numbers, strings, bools and None")


def save(obj: Any, path: PathLike) -> None:
    """Write `obj` to `path` (used as given; `.npz` is not appended), atomically."""
    path = os.fspath(path)
    arrays: Dict[str, np.ndarray] = {}
    manifest = {"format": FORMAT, "version": VERSION, "arrays": 0,
                "root": _encode(obj, arrays, "the top level")}
    manifest["arrays"] = len(arrays)
    text = json.dumps(manifest, allow_nan=False, separators=(",", ":"))
    arrays[_MANIFEST] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, allow_pickle=False, **arrays))


# ------------------------------------------------------------------------ decode
class _Decoder:
    def __init__(self, arrays: Dict[str, np.ndarray]):
        self.arrays = arrays
        self.used = set()

    def array(self, node: dict) -> np.ndarray:
        key = node.get("key")
        if key not in self.arrays or key in self.used:
            raise ValueError(f"the manifest refers to a missing or reused array {key!r}")
        self.used.add(key)
        return self.arrays[key]

    def __call__(self, node: Any) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self(v) for v in node]
        if not isinstance(node, dict):
            raise ValueError(f"unexpected manifest node {node!r}")
        tag = node.get("$")
        if tag == "array":
            return self.array(node)
        if tag == "scalar":
            return self.array(node)[()]
        if tag == "tensor":
            return Tensor(self.array(node), requires_grad=bool(node.get("requires_grad")))
        if tag == "int":
            return int(node["value"])
        if tag == "float":
            return float(node["value"])
        if tag == "tuple":
            return tuple(self(v) for v in node["items"])
        if tag == "dict":
            return {self(k): self(v) for k, v in node["items"]}
        raise ValueError(f"unknown manifest tag {tag!r}")


def load(path: PathLike, map_location: Any = None, weights_only: bool = True) -> Any:
    """Read an object written by `save`. Raises `CheckpointError` (naming the file) if
    it is truncated, corrupted or not such a checkpoint; `FileNotFoundError` if absent.

    PyTorch's `map_location` may name the CPU (the only device; a function or a dict
    of devices is accepted and has nothing to move), and `weights_only` may be given: a
    checkpoint never holds code, so loading is always as safe as PyTorch's
    `weights_only=True`."""
    if isinstance(map_location, (str, device)):
        check_device(map_location, "load")
    path = os.fspath(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as e:
        raise _unreadable(path, e) from e
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{path}: not a tinygrad_mnist checkpoint (a single .npy "
                              f"array, not an .npz archive)")
    try:
        with npz:  # reading every member checks its CRC: corruption cannot pass silently
            _check_sizes(npz.zip, os.path.getsize(path))
            arrays = {name: npz[name] for name in npz.files}
    except CheckpointError as e:
        raise CheckpointError(f"{path}: damaged tinygrad_mnist checkpoint: {e}") from None
    except Exception as e:
        raise _unreadable(path, e) from e
    manifest_bytes = arrays.pop(_MANIFEST, None)
    if manifest_bytes is None:
        raise CheckpointError(f"{path}: an .npz archive without a tinygrad_mnist manifest "
                              f"(members: {sorted(arrays)[:5]}); it was not written by save()")
    try:
        manifest = json.loads(manifest_bytes.tobytes().decode("utf-8"))
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError("the manifest does not name the tinygrad_mnist format")
        if manifest.get("version") != VERSION:
            raise ValueError(f"format version {manifest.get('version')!r} is not "
                             f"supported (this library reads version {VERSION})")
        if manifest.get("arrays") != len(arrays):
            raise ValueError(f"the manifest lists {manifest.get('arrays')} arrays, the "
                             f"archive holds {len(arrays)}")
        decode = _Decoder(arrays)
        obj = decode(manifest["root"])
        if decode.used != set(arrays):
            raise ValueError(f"{len(set(arrays) - decode.used)} array(s) in the archive "
                             f"are not in the manifest")
    except Exception as e:
        raise CheckpointError(f"{path}: damaged tinygrad_mnist checkpoint: {e}") from e
    return obj


_MAX_DEFLATE_RATIO = 1032  # no deflated stream expands more than this


def _check_sizes(archive: zipfile.ZipFile, archive_bytes: int) -> None:
    """CheckpointError if a member's .npy header (whatever the member's name: np.load
    reads any member that starts like one) declares more data than the member
    can hold (NumPy would allocate the declared array before reading: a small damaged
    file could ask for gigabytes), or the member claims more than the archive's bytes
    can expand to."""
    for info in archive.infolist():
        if info.compress_size > archive_bytes or \
                info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 1024:
            raise CheckpointError(f"the member {info.filename} claims {info.file_size:,} "
                                  f"bytes, more than the archive can hold")
        with archive.open(info) as f:
            if f.read(len(np.lib.format.MAGIC_PREFIX)) != np.lib.format.MAGIC_PREFIX:
                continue  # not an array: np.load gives its bytes, which fail later
            f.seek(0)
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise CheckpointError(f"the member {info.filename} is a .npy file of "
                                      f"version {version}, which save() never writes")
            shape, _, dtype = read_header(f)
            held = info.file_size - f.tell()
        needed = math.prod(shape) * dtype.itemsize
        if not dtype.hasobject and needed > held:
            raise CheckpointError(f"the member {info.filename} declares an array of "
                                  f"{needed:,} bytes but holds {held:,}")


def _unreadable(path: str, error: Exception) -> CheckpointError:
    return CheckpointError(f"{path}: not a readable tinygrad_mnist checkpoint: the file is "
                           f"truncated, corrupted or of another format "
                           f"({type(error).__name__}: {error})")
