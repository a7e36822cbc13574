"""Fuzzed parsers: every reader of outside data, fed what hypothesis makes of it.

Each parser either parses (and its result has the promised form) or raises its
documented error class, whose message is one line that the CLI prints with that class's
exit status. Never another exception, a hang (each example runs under an alarm), a
huge allocation (NumPy's and Python's allocations are traced: an example may use at
most `MAX_BYTES`) or a file written outside the run directory (each example runs in an
empty working directory, and only the files it wrote may be there afterwards).

=================  ===========================================  =======================
reader             input                                        documented failure
=================  ===========================================  =======================
IDX                ``read_idx`` (raw or gzip)                   ``IDXError`` (DataError)
Kaggle CSV         ``read_kaggle_csv``                          ``CSVError`` (DataError)
pictures           ``predict`` of a picture file                one error entry for it
image folders      ``load_folder`` of class sub-folders         ``DataError``
checkpoints        ``load`` (``.npz`` members, manifest),       ``CheckpointError``
                   ``load_trained`` (config, shapes, dtypes)
``--config``       ``tinygrad-mnist train --config FILE``       exit 2, one error line
sweep specs        ``load_spec`` (YAML, JSON) and its trials    ``ValueError``
``POST /predict``  the running server, JSON bodies (image       a 4xx JSON error
                   bodies: ``PREDICT_BODIES``)
=================  ===========================================  =======================

Profiles: at least 200 examples per reader (CI's quick profile, derandomized so a CI
run is reproducible; allocations are traced only with ``TINYGRAD_MNIST_FUZZ_TRACE=1``,
which doubles the time, and otherwise bounded by an address-space limit);
``HYPOTHESIS_PROFILE=fuzz`` runs 5,000 each, freshly random, with tracing::

    HYPOTHESIS_PROFILE=fuzz python -m pytest tests/test_fuzz.py --hypothesis-show-statistics
"""
from __future__ import annotations

import contextlib
import dataclasses
import gzip
import http.client
import io
import json
import math
import os
import re
import resource
import signal
import struct
import tempfile
import threading
import tracemalloc
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Type

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

import tinygrad_mnist as tg
from tinygrad_mnist import errors
from tinygrad_mnist.app import cli
from tinygrad_mnist.app.config import TrainConfig
from tinygrad_mnist.app.inference import load_trained
from tinygrad_mnist.app.predict import predict
from tinygrad_mnist.app.sweep.spec import SPEC_KEYS, configurations, expand, load_spec
from tinygrad_mnist.data import DataError, load_folder, read_idx, read_kaggle_csv
from tinygrad_mnist.data.errors import CSVError, IDXError
from tinygrad_mnist.models import build_model
from tinygrad_mnist.serialization import CheckpointError

LONG = settings.default.max_examples >= 5000
#: Trace allocations (about twice as slow): in the long profile, or when asked.
TRACE = LONG or os.environ.get("TINYGRAD_MNIST_FUZZ_TRACE", "") == "1"
#: Examples per reader: the profile's count, at least 200.
EXAMPLES = max(200, settings.default.max_examples)
fuzz = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture,
                                       HealthCheck.filter_too_much])
MAX_BYTES = 64 * 2 ** 20   #: traced allocation allowed to one example (inputs are < 1 MB)
ADDRESS_SPACE = 6 * 2 ** 30  #: the safety net's room, far above MAX_BYTES
MAX_SECONDS = 20           #: an example that takes longer has hung
MAX_MESSAGE = 1000         #: characters of an error message


# ---------------------------------------------------------------- the harness
class Hang(Exception):
    """An example ran for MAX_SECONDS."""


@pytest.fixture(scope="module", autouse=True)
def traced():
    """With TRACE, trace allocations for the whole module (NumPy reports its arrays to
    tracemalloc). Always a safety net: the address space may grow by at most `ADDRESS_SPACE`, so a
    runaway allocation inside C code (where the alarm cannot interrupt) fails with
    MemoryError instead of filling the machine's memory."""
    limits = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + ADDRESS_SPACE, limits[1]))
    if TRACE:
        tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()
        resource.setrlimit(resource.RLIMIT_AS, limits)


@contextlib.contextmanager
def sandbox() -> Iterator[Path]:
    """An empty working directory for one example; afterwards: no hang, no huge
    allocation, and nothing written but what the example itself wrote (`Path.touch`
    marks nothing: the example lists its own files in `written`)."""
    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"the example ran for {MAX_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(MAX_SECONDS)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="fuzz-") as root:
        directory = Path(root)
        os.chdir(directory)
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        try:
            yield directory
            if TRACE:
                _, peak = tracemalloc.get_traced_memory()
                assert peak - base < MAX_BYTES, f"allocated {(peak - base) / 2**20:.0f} MiB"
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
            os.chdir(cwd)


def files_under(directory: Path) -> List[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def one_line(error: BaseException, cls: Type[BaseException]) -> str:
    """`error` is of the documented class and says what is wrong in one line."""
    assert isinstance(error, cls), f"{type(error).__name__}: {error}"
    message = str(error)
    assert message.strip() and "\n" not in message.strip(), repr(message)
    assert len(message) <= MAX_MESSAGE, message[:200]
    assert errors.exit_status(error) is not None
    return message


def outcome(call: Callable[[], Any], cls: Type[BaseException]) -> Tuple[Any, Optional[str]]:
    """(result, None) if `call` parses, (None, message) if it raises `cls` properly;
    anything else propagates and fails the example."""
    try:
        return call(), None
    except cls as e:
        return None, one_line(e, cls)


def mutated(data: bytes, draw: Callable) -> bytes:
    """`data` cut short, with bytes flipped, inserted or deleted, or as it is."""
    how = draw(st.sampled_from(["same", "cut", "flip", "insert", "delete"]))
    if how == "same" or not data:
        return data
    at = draw(st.integers(0, len(data) - 1))
    if how == "cut":
        return data[:at]
    if how == "flip":
        flips = draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(1, 255)),
                              min_size=1, max_size=8))
        out = bytearray(data)
        for i, x in flips:
            out[i] ^= x
        return bytes(out)
    if how == "insert":
        return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    return data[:at] + data[at + draw(st.integers(1, 16)):]


JSON_LEAVES = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70)
               | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
JSON = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def deeply_nested(depth: int, kind: str) -> str:
    """`[[[...]]]` or `{"a": {"a": ...}}` nested `depth` levels (past Python's limit)."""
    return ("[" * depth + "]" * depth if kind == "list"
            else '{"a":' * depth + "1" + "}" * depth)


def not_an_object(draw: Callable) -> Optional[bytes]:
    """For three tenths of the draws, what a JSON reader must refuse or not expect:
    noise, any JSON value, or nesting past Python's recursion limit; else None."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=100))
    if kind == 1:
        return json.dumps(draw(JSON)).encode()
    if kind == 2:
        return deeply_nested(draw(st.integers(1, 3000)),
                             draw(st.sampled_from(["list", "dict"]))).encode()
    return None


# ---------------------------------------------------------------- IDX
IDX_CODES = [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]
ITEMSIZE = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}
SIDES = st.integers(0, 6) | st.sampled_from([28, 255, 256, 2 ** 16, 2 ** 31, 2 ** 32 - 1])


@st.composite
def idx_files(draw) -> Tuple[bytes, Optional[Tuple[int, ...]]]:
    """IDX bytes (maybe gzipped, maybe damaged) and the shape they declare, if whole."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=64)), None
    code = draw(st.sampled_from(IDX_CODES) | st.integers(0, 255))
    zero = draw(st.just(0) | st.integers(0, 2 ** 16 - 1))
    shape = draw(st.lists(SIDES, min_size=0, max_size=5))
    ndim = draw(st.just(len(shape)) | st.integers(0, 255))
    head = struct.pack(">HBB", zero, code, ndim) + b"".join(struct.pack(">I", s)
                                                             for s in shape)
    size = ITEMSIZE.get(code, 1) * int(np.prod(shape, dtype=object) if shape else 0)
    length = size if size <= 4096 and draw(st.booleans()) else draw(st.integers(0, 64))
    data = head + draw(st.binary(min_size=length, max_size=length))
    possible = math.prod(n for n in shape if n) * ITEMSIZE.get(code, 1) < 2 ** 63
    whole = (zero == 0 and code in ITEMSIZE and ndim == len(shape) > 0 and length == size
             and possible)
    damaged = mutated(data, draw)
    if draw(st.booleans()):
        damaged = mutated(gzip.compress(damaged, mtime=0), draw)
    return damaged, tuple(shape) if whole and damaged == data else None


@fuzz
@given(idx_files())
@example((struct.pack(">HBB3I", 0, 0x08, 3, 2 ** 31, 2 ** 31, 4), None))  # 2**64 elements
@example((struct.pack(">HBB3I", 0, 0x08, 3, 0, 2 ** 32 - 1, 2 ** 32 - 1), None))  # empty, huge
def test_idx(case):
    data, shape = case
    with sandbox() as box:
        (box / "x-idx3-ubyte").write_bytes(data)
        array, _ = outcome(lambda: read_idx(box / "x-idx3-ubyte"), IDXError)
        if shape is not None:
            assert array is not None and array.shape == shape
        if array is not None:
            assert array.dtype.isnative
        assert files_under(box) == ["x-idx3-ubyte"]


# ---------------------------------------------------------------- Kaggle CSV
PIXELS = [f"pixel{i}" for i in range(784)]
CELLS = (st.integers(0, 255).map(str) | st.integers(-2 ** 70, 2 ** 70).map(str)
         | st.floats().map(repr) | st.sampled_from(["", " ", "nan", "1e3", "0x10", "true",
                                                   '"3"', "3,4", "\"", "ÿ"])
         | st.text(max_size=5))


@st.composite
def kaggle_csvs(draw) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    labelled = draw(st.booleans())
    columns = (["label"] if labelled else []) + PIXELS
    change = draw(st.sampled_from(["none", "none", "drop", "rename", "swap", "extra"]))
    i = draw(st.integers(0, len(columns) - 1))
    if change == "drop":
        del columns[i]
    elif change == "rename":
        columns[i] = draw(st.text(max_size=8))
    elif change == "swap":
        j = draw(st.integers(0, len(columns) - 1))
        columns[i], columns[j] = columns[j], columns[i]
    elif change == "extra":
        columns.insert(i, draw(st.text(max_size=8)))
    rows = []
    for _ in range(draw(st.integers(0, 3))):
        row = [draw(st.integers(0, 255).map(str))] * len(columns)
        if labelled:
            row[0] = draw(st.integers(0, 9).map(str))
        for k, cell in draw(st.lists(st.tuples(st.integers(0, len(columns) - 1), CELLS),
                                     max_size=3)):
            row[k] = cell
        cut = draw(st.just(len(row)) | st.integers(0, len(row)))
        rows.append(",".join(row[:cut]))
    text = "\n".join([",".join(columns)] + rows) + draw(st.sampled_from(["\n", "", "\r\n"]))
    return mutated(text.encode("utf-8"), draw) if draw(st.integers(0, 3)) == 0 \
        else text.encode("utf-8")


@fuzz
@given(kaggle_csvs())
def test_kaggle_csv(data):
    with sandbox() as box:
        (box / "train.csv").write_bytes(data)
        digits, _ = outcome(lambda: read_kaggle_csv(box / "train.csv"), CSVError)
        if digits is not None:
            n = len(digits.images)
            assert n >= 1 and digits.images.shape == (n, 28, 28)
            assert digits.images.dtype == np.uint8
            assert digits.labels is None or (digits.labels.shape == (n,)
                                             and digits.labels.max() <= 9)
        assert files_under(box) == ["train.csv"]


# ---------------------------------------------------------------- pictures
MODES = ["L", "RGB", "RGBA", "LA", "P", "1", "I;16", "I", "F", "CMYK"]
FORMATS = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "gif": "GIF", "webp": "WEBP",
           "tif": "TIFF", "ppm": "PPM"}


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels but holds almost none."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


@st.composite
def pictures(draw) -> Tuple[str, bytes]:
    """(suffix, bytes) of a picture file: made by Pillow in some mode and format, with
    some EXIF orientation, then maybe damaged; or a bomb's header; or noise."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.sampled_from(sorted(FORMATS))), draw(st.binary(max_size=200))
    if kind == 1:
        side = st.integers(1, 2 ** 31 - 1) | st.sampled_from([0, 7072, 10000, 40000])
        return "png", png_header(draw(side), draw(side))
    mode, suffix = draw(st.sampled_from(MODES)), draw(st.sampled_from(sorted(FORMATS)))
    width, height = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    style = draw(st.sampled_from(["noise", "blank", "stroke"]))
    grey = (rng.integers(0, 256, (height, width, 4), dtype=np.uint8) if style == "noise"
            else np.full((height, width, 4), draw(st.integers(0, 255)), np.uint8))
    if style == "stroke":
        grey[height // 4: height - height // 4, width // 2: width // 2 + 2] = \
            draw(st.integers(0, 255))
    image = Image.fromarray(grey, "RGBA")
    try:
        image = image.convert(mode)
    except ValueError:
        image = image.convert("L")
    buffer = io.BytesIO()
    options: Dict[str, Any] = {}
    orientation = draw(st.none() | st.integers(0, 9))
    if orientation is not None and FORMATS[suffix] in ("PNG", "JPEG", "WEBP", "TIFF"):
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif
    try:
        image.save(buffer, format=FORMATS[suffix], **options)
    except (OSError, ValueError, KeyError):  # this format cannot hold this mode
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
        suffix = "png"
    return suffix, mutated(buffer.getvalue(), draw)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained MLP's checkpoint, as training writes one."""
    path = tmp_path_factory.mktemp("model") / "best.npz"
    tg.save(model_state(), path)
    return path


def model_state(hidden: Tuple[int, ...] = (16,)) -> Dict[str, Any]:
    config = TrainConfig(hidden=list(hidden)).validate()
    return {"format": "tinygrad_mnist.model", "model": build_model(config).state_dict(),
            "config": dataclasses.asdict(config), "stats": [0.1307, 0.3081], "epoch": 1,
            "val_acc": 0.5}


@fuzz
@given(pictures())
def test_picture_files_for_predict(checkpoint, picture):
    suffix, data = picture
    with sandbox() as box:
        (box / f"in.{suffix}").write_bytes(data)
        results, kaggle = predict(checkpoint, [box / f"in.{suffix}"])
        assert len(results) == 1 and not kaggle
        result = results[0]
        if result.error:
            assert "\n" not in result.error and len(result.error) <= MAX_MESSAGE
            assert not result.top
        else:
            assert len(result.top) == 3 and all(0 <= p <= 1 for _, p in result.top)
        assert files_under(box) == [f"in.{suffix}"]


@fuzz
@given(st.lists(pictures(), min_size=1, max_size=4), st.data())
def test_image_folders(pictures_, data):
    with sandbox() as box:
        written = []
        for n, (suffix, content) in enumerate(pictures_):
            name = f"digits/{data.draw(st.sampled_from(['0', '1', '7']))}/{n}.{suffix}"
            (box / name).parent.mkdir(parents=True, exist_ok=True)
            (box / name).write_bytes(content)
            written.append(name)
        size = data.draw(st.none() | st.integers(1, 32))
        loaded, _ = outcome(lambda: load_folder(box / "digits", image_size=size, quiet=True),
                            DataError)
        if loaded is not None:
            assert len(loaded.train_images) + len(loaded.test_images) == len(pictures_)
            assert loaded.train_images.dtype == np.uint8
        assert files_under(box) == sorted(written)


# ---------------------------------------------------------------- checkpoints
def npz(members: Dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)
    return buffer.getvalue()


def npy(array: np.ndarray, shape: Optional[Tuple[int, ...]] = None) -> bytes:
    """An .npy member holding `array`; with `shape`, a header that claims that shape."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=True)
    if shape is None:
        return buffer.getvalue()
    header = {"descr": np.lib.format.dtype_to_descr(np.asarray(array).dtype),
              "fortran_order": False, "shape": shape}
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue() + np.asarray(array).tobytes()


DTYPES = ["float32", "float64", "float16", "int8", "int64", "uint8", "bool", "complex64",
          "<U3", "object"]


@st.composite
def checkpoint_files(draw) -> bytes:
    """A model checkpoint as `save` writes it, then changed: its tree (config values,
    array shapes and dtypes), its manifest, its members, or its bytes."""
    kind = draw(st.sampled_from(["bytes", "tree", "tree", "manifest", "members"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    state = model_state()
    if kind == "tree":
        where = draw(st.sampled_from(["config", "model", "stats", "top"]))
        if where == "config":
            key = draw(st.sampled_from(sorted(state["config"])))
            state["config"][key] = draw(JSON | st.sampled_from(
                [[16, 16], [0], [-1], "cnn", "mlp", None, 2 ** 40]))
        elif where == "model":
            key = draw(st.sampled_from(sorted(state["model"])))
            what = draw(st.sampled_from(["dtype", "shape", "drop", "value"]))
            value = state["model"][key]
            if what == "dtype":
                dtype = draw(st.sampled_from(DTYPES[:-1]))
                state["model"][key] = value.astype(dtype)
            elif what == "shape":
                state["model"][key] = np.zeros(draw(st.lists(st.integers(0, 20), max_size=3)),
                                               np.float32)
            elif what == "drop":
                del state["model"][key]
            else:
                state["model"][key] = draw(JSON)
        elif where == "stats":
            state["stats"] = draw(JSON | st.lists(st.floats(), min_size=2, max_size=2))
        else:
            state[draw(st.sampled_from(sorted(state)))] = draw(JSON)
        with tempfile.TemporaryDirectory() as scratch:
            tg.save(state, Path(scratch) / "c.npz")
            return (Path(scratch) / "c.npz").read_bytes()
    manifest = {"format": "tinygrad_mnist.checkpoint", "version": 1, "arrays": 1,
                "root": {"$": "dict", "items": [["w", {"$": "array", "key": "a0"}]]}}
    if kind == "manifest":
        text = draw(st.sampled_from([
            json.dumps(manifest), json.dumps(draw(JSON)),
            deeply_nested(draw(st.integers(900, 3000)), "list"),
            json.dumps({**manifest, "root": draw(JSON)}),
            json.dumps({**manifest, "arrays": draw(JSON)}),
            json.dumps({**manifest, "root": {"$": draw(st.sampled_from(
                ["int", "float", "tuple", "dict", "scalar", "tensor", "x"])),
                **draw(st.dictionaries(st.sampled_from(["value", "items", "key"]), JSON,
                                       max_size=2))}})]))
        raw = mutated(text.encode("utf-8"), draw)
        return npz({"manifest.npy": npy(np.frombuffer(raw, np.uint8)),
                    "a0.npy": npy(np.zeros(3, np.float32))})
    dtype = draw(st.sampled_from(DTYPES))
    values = np.array([1, None], dtype=object) if dtype == "object" else np.zeros(3, dtype)
    claimed = draw(st.none() | st.lists(st.integers(0, 2 ** 40), max_size=3).map(tuple))
    member = npy(values, claimed) if dtype != "object" else npy(values)
    return npz({"manifest.npy": npy(np.frombuffer(json.dumps(manifest).encode(), np.uint8)),
                draw(st.sampled_from(["a0.npy", "a0", "b.npy", "../a0.npy"])): member})


@fuzz
@given(checkpoint_files())
def test_checkpoints(data):
    with sandbox() as box:
        (box / "best.npz").write_bytes(data)
        loaded, _ = outcome(lambda: tg.load(box / "best.npz"), CheckpointError)
        trained, _ = outcome(lambda: load_trained(box / "best.npz"), CheckpointError)
        if trained is not None:
            assert loaded is not None
            proba = trained.predict_proba(np.zeros((2, 28, 28), np.float32))
            assert proba.shape == (2, 10)
        assert files_under(box) == ["best.npz"]


# ---------------------------------------------------------------- --config
FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]
PLAUSIBLE = st.sampled_from([1, 0, -1, 3, 0.5, 1e-3, "mlp", "cnn", "adam", "mnist", "",
                             [64], [0], [64, "a"], True, False, None, "1", 2 ** 63, 1e308])


@st.composite
def config_files(draw) -> bytes:
    odd = not_an_object(draw)
    if odd is not None:
        return odd
    values = draw(st.dictionaries(st.sampled_from(FIELDS + ["version", "resume", "config"])
                                  | st.text(max_size=8), PLAUSIBLE | JSON, max_size=5))
    values.setdefault("epochs", 1)
    text = json.dumps(values)
    return mutated(text.encode("utf-8"), draw) if draw(st.integers(0, 4)) == 0 \
        else text.encode("utf-8")


@fuzz
@given(data=config_files())
@example(data=b'{"\\ud800": 1}')                   # a lone surrogate: unprintable
@example(data=b'{"\\n": 1, "model": "a\\nb"}')   # line breaks in a key and a value
def test_config_files(data, monkeypatch, capsys):
    import tinygrad_mnist.app.train as train_module
    started: List[TrainConfig] = []
    monkeypatch.setattr(train_module, "train", lambda config: started.append(config))
    with sandbox() as box:
        (box / "options.json").write_bytes(data)
        code = cli.main(["train", "--config", "options.json"])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        if code == 0:
            assert len(started) == 1 and isinstance(started[0], TrainConfig) and not err
        else:
            lines = err.splitlines()
            assert code == errors.EXIT_USAGE and len(lines) == 1, err
            assert re.match(r"(tinygrad-mnist: )?error: ", lines[0]), err
        assert files_under(box) == ["options.json"]


# ---------------------------------------------------------------- sweep specs
SPEC_VALUES = {
    "name": st.text(max_size=10) | JSON,
    "out": st.sampled_from(["sweeps/x", "", "."]) | JSON,
    "train": st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5),
                             PLAUSIBLE, max_size=3) | JSON,
    "search": st.sampled_from(["grid", "random", "tpe", "other"]) | JSON,
    "space": st.dictionaries(st.sampled_from(["lr", "hidden", "dropout", "epochs", "x"]),
                             st.lists(PLAUSIBLE, max_size=4)
                             | st.fixed_dictionaries({"low": PLAUSIBLE, "high": PLAUSIBLE},
                                                     optional={"log": st.booleans(),
                                                               "int": JSON})
                             | JSON, max_size=3),
    "trials": st.integers(-2, 50) | st.sampled_from([10 ** 9, 10 ** 12]) | JSON,
    "seeds": st.integers(-1, 5) | st.sampled_from([10 ** 9]) | st.lists(st.integers(0, 9),
                                                                        max_size=4) | JSON,
    "seed": st.integers(-5, 5) | JSON,
    "metric": st.sampled_from(["val_acc", "val_loss", "test_acc"]) | JSON,
}


def yaml_bomb(depth: int) -> str:
    """Aliases that double at each level: small text, 2**depth items when expanded."""
    lines = ["a0: &a0 [1, 1]"] + [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]"
                                  for i in range(1, depth)]
    return "\n".join(lines) + f"\nname: *a{depth - 1}\n"


@st.composite
def sweep_specs(draw) -> Tuple[str, bytes]:
    suffix = draw(st.sampled_from(["yaml", "yml", "json"]))
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return suffix, draw(st.binary(max_size=100))
    if kind == 1:
        text = (yaml_bomb(draw(st.integers(1, 40))) if suffix != "json" else
                deeply_nested(draw(st.integers(1, 3000)),
                              draw(st.sampled_from(["list", "dict"]))))
        return suffix, text.encode()
    keys = draw(st.lists(st.sampled_from(list(SPEC_KEYS) + ["other"]), unique=True,
                         max_size=6))
    values = {key: draw(SPEC_VALUES.get(key, JSON)) for key in keys}
    text = json.dumps(values) if suffix == "json" else yaml.safe_dump(values)
    return suffix, mutated(text.encode("utf-8"), draw) if draw(st.integers(0, 4)) == 0 \
        else text.encode("utf-8")


@fuzz
@given(sweep_specs())
def test_sweep_specs(case):
    suffix, data = case
    with sandbox() as box:
        (box / f"spec.{suffix}").write_bytes(data)
        spec, _ = outcome(lambda: load_spec(box / f"spec.{suffix}"), ValueError)
        if spec is not None and spec.search != "tpe":
            trials, _ = outcome(lambda: expand(spec, configurations(spec)), ValueError)
            assert trials is None or all(t.options["seed"] in spec.seeds for t in trials)
        assert files_under(box) == [f"spec.{suffix}"]


# ---------------------------------------------------------------- POST /predict
def stub(images: np.ndarray) -> np.ndarray:
    p = np.full((len(images), 10), 0.02)
    p[:, 7] = 0.82
    return p


@pytest.fixture(scope="module")
def server():
    from tinygrad_mnist.app.serve import make_server
    server = make_server(stub, port=0, log_requests=False, request_timeout=5)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def post(port: int, body: bytes, content_type: Optional[str]) -> Tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        connection.request("POST", "/predict", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@st.composite
def json_drawings(draw) -> bytes:
    """`{"width", "height", "pixels"}` bodies, right and wrong, and other JSON."""
    odd = not_an_object(draw)
    if odd is not None:
        return odd
    side = st.integers(1, 20) | st.sampled_from([0, -1, 512, 513, 2 ** 63, 1.0, True, "8",
                                                 None])
    width, height = draw(side), draw(side)
    count = width * height if all(type(v) is int and 0 < v <= 20 for v in (width, height)) \
        else draw(st.integers(0, 50))
    count = draw(st.just(count) | st.integers(0, 50))
    fill = draw(st.integers(0, 255) | st.floats(0, 255))
    pixels: List[Any] = [fill] * count
    if count and draw(st.booleans()):
        pixels[: count // 3] = [255 - fill] * (count // 3)  # some ink
    for i, v in draw(st.lists(st.tuples(st.integers(0, max(count - 1, 0)),
                                        JSON_LEAVES | st.floats()), max_size=3)):
        if count:
            pixels[i] = v
    body: Dict[str, Any] = {"width": width, "height": height, "pixels": pixels}
    for key in draw(st.lists(st.sampled_from(["width", "height", "pixels"]), max_size=1)):
        del body[key]
    text = json.dumps(body)  # NaN and Infinity too: the server must refuse them
    return mutated(text.encode(), draw) if draw(st.integers(0, 4)) == 0 else text.encode()


#: Content type -> bodies: a new kind of body (an image upload) is one more row.
PREDICT_BODIES: Dict[str, st.SearchStrategy] = {
    "application/json": json_drawings(),
}


def check_answer(status: int, payload: Any) -> None:
    """A 200 with the answer's fields, or a 4xx with one line of error."""
    assert status < 500, (status, payload)
    if status == 200:
        assert 0 <= payload["digit"] <= 9 and len(payload["probabilities"]) == 10
        assert len(payload["preview"]) == 784
    else:
        assert 400 <= status < 500 and set(payload) == {"error"}
        assert payload["error"] and "\n" not in payload["error"]
        assert len(payload["error"]) <= MAX_MESSAGE and "Traceback" not in payload["error"]


@fuzz
@given(st.data())
@pytest.mark.parametrize("content_type", sorted(PREDICT_BODIES))
def test_predict_bodies(server, content_type, data):
    body = data.draw(PREDICT_BODIES[content_type])
    sent_type = data.draw(st.sampled_from([content_type, content_type + "; charset=utf-8"])
                          | st.sampled_from([None, "text/plain", "application/x-www-form"]))
    with sandbox() as box:
        check_answer(*post(server, body, sent_type))
        assert files_under(box) == []


@fuzz
@given(pictures())
def test_picture_bodies(server, picture):
    """Picture files as bodies of their own type: refused with a 4xx while the server
    takes JSON only; once it takes images, answered (200) or refused in one line."""
    suffix, data = picture
    content_type = "image/jpeg" if suffix == "jpg" else f"image/{suffix}"
    with sandbox() as box:
        check_answer(*post(server, data, content_type))
        assert files_under(box) == []
