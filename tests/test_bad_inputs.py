"""Bad inputs and faults, table by table: command-line options, --config files, IDX and
CSV files, pictures, checkpoints, HTTP requests and connections, killed and interrupted
processes, a full disk. Each case asserts a clear one-line error with its class's exit
status (see tinygrad_mnist.errors), or the right recovery; no traceback, no hang (every
wait is bounded), no output file lost or half-written.

Commands run in-process through `cli.main` where they can; in a subprocess only where a
process must be killed or interrupted, or a pipe or the import time matters."""
from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import pytest
from PIL import Image

import tinygrad_mnist as tg
from tinygrad_mnist import errors
from tinygrad_mnist.app import cli
from tinygrad_mnist.models import build_model
from tinygrad_mnist.app.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
MNIST = os.environ.get("TINYGRAD_MNIST_DATA")
needs_mnist = pytest.mark.skipif(not MNIST, reason="set TINYGRAD_MNIST_DATA to the MNIST "
                                                   "folder (or fill the user cache)")
TINY = ["--limit", "600", "--val-size", "200", "--hidden", "16", "--epochs", "2",
        "--batch-size", "100", "--no-plots"]
USAGE, DATA, CHECKPOINT, IO = (errors.EXIT_USAGE, errors.EXIT_DATA, errors.EXIT_CHECKPOINT,
                               errors.EXIT_IO)


# ---------------------------------------------------------------- helpers
def run(argv: List[str], capsys: pytest.CaptureFixture) -> Tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


ERROR_LINE = re.compile(r"^tinygrad-mnist: error: ")


def error_line(err: str) -> str:
    """The one error line of stderr (`tinygrad-mnist: error: ...`, whether argparse or
    the command found it): exactly one, and no traceback. Lines naming one input of
    several (`FILE: error: ...`) may come before it."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if ERROR_LINE.match(line)]
    assert len(lines) == 1, err
    assert len(lines[0]) < 700
    return lines[0]


def expect(argv: List[str], capsys: pytest.CaptureFixture, status: int,
           *fragments: str) -> str:
    code, _, err = run(argv, capsys)
    line = error_line(err)
    assert code == status, err
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def snapshot(directory: Path) -> Dict[str, bytes]:
    """Every file under `directory`, by relative path, with its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def save_checkpoint(path: Path, hidden=(16,), mutate: Optional[Callable] = None) -> Path:
    """A model checkpoint as training writes one (an untrained MLP: no MNIST needed)."""
    config = TrainConfig(hidden=list(hidden)).validate()
    model = build_model(config)
    state = {"format": "tinygrad_mnist.model", "model": model.state_dict(),
             "config": dataclasses.asdict(config), "stats": [0.1307, 0.3081], "epoch": 1,
             "val_acc": 0.5}
    if mutate is not None:
        state = mutate(state)
    tg.save(state, path)
    return path


def digit_png(path: Path, size: int = 60) -> Path:
    a = np.full((size, size), 255, np.uint8)
    a[size // 5:-size // 5, size // 2 - 3:size // 2 + 3] = 0
    Image.fromarray(a).save(path)
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares width x height pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))
    return path


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    dtype = {0x08: ">u1", 0x0D: ">f4", 0x0C: ">i4"}[code]
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    return header + np.ascontiguousarray(array, dtype=dtype).tobytes()


def subprocess_env(**extra: str) -> Dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1", OPENBLAS_NUM_THREADS="1", **extra)


# ---------------------------------------------------------------- 1. command-line options
BAD_OPTIONS = {
    "epochs not a number": (["train", "--epochs", "two"], "--epochs"),
    "epochs zero": (["train", "--epochs", "0"], "--epochs must be at least 1"),
    "epochs negative": (["train", "--epochs", "-3"], "--epochs"),
    "batch size zero": (["train", "--batch-size", "0"], "--batch-size must be at least 1"),
    "batch size fractional": (["train", "--batch-size", "12.5"], "--batch-size"),
    "lr zero": (["train", "--lr", "0"], "--lr must be positive"),
    "lr negative": (["train", "--lr", "-0.1"], "--lr must be positive"),
    "lr NaN": (["train", "--lr", "nan"], "--lr must be positive"),
    "lr infinite": (["train", "--lr", "inf"], "--lr must be positive"),
    "lr a word": (["train", "--lr", "fast"], "--lr"),
    "dropout one": (["train", "--dropout", "1"], "--dropout must be in [0, 1)"),
    "dropout negative": (["train", "--dropout", "-0.1"], "--dropout"),
    "label smoothing 1.5": (["train", "--label-smoothing", "1.5"], "--label-smoothing"),
    "weight decay negative": (["train", "--weight-decay", "-1"], "--weight-decay"),
    "l1 negative": (["train", "--l1", "-1"], "--l1"),
    "unknown optimizer": (["train", "--optimizer", "lion"], "--optimizer must be one of"),
    "unknown schedule": (["train", "--schedule", "linear"], "--schedule must be one of"),
    "unknown init": (["train", "--init", "zeros"], "--init must be one of"),
    "unknown model": (["train", "--model", "resnet"], "--model must be one of"),
    "hidden zero": (["train", "--hidden", "0"], "--hidden must be between 1 and"),
    "hidden negative": (["train", "--hidden", "-5"], "--hidden"),
    "hidden 10^9": (["train", "--hidden", "1000000000"], "--hidden must be between 1 and"),
    "hidden too many parameters": (["train", "--hidden", "60000", "60000"], "parameters"),
    "hidden missing value": (["train", "--hidden"], "--hidden"),
    "val size zero": (["train", "--val-size", "0"], "--val-size must be at least 1"),
    "limit zero": (["train", "--limit", "0"], "--limit must be at least 1"),
    "seed negative": (["train", "--seed", "-1"], "--seed"),
    "unknown option": (["train", "--learning-rate", "0.1"], "--learning-rate"),
    "unknown command": (["frobnicate"], "frobnicate"),
    "predict labels 0": (["predict", "x", "y.png", "--labels", "0"], "--labels must be in 1..10"),
    "predict labels 11": (["predict", "x", "y.png", "--labels", "11"],
                          "--labels must be in 1..10"),
    "predict without inputs": (["predict", "x"], "inputs"),
    "serve port out of range": (["serve", "x", "--port", "70000"], "--port"),
    "serve port a word": (["serve", "x", "--port", "http"], "--port"),
    "export without --onnx": (["export", "x"], "--onnx"),
    "export to both --onnx and --web": (["export", "x", "--onnx", "m.onnx", "--web", "site"],
                                        "--web: not allowed with argument --onnx"),
    "resume a missing run": (["train", "--resume", "/nonexistent/run"], "cannot resume"),
    "conv channels for the MLP": (["train", "--conv-channels", "8"],
                                  "--conv-channels is for --model cnn"),
    "conv channels zero": (["train", "--model", "cnn", "--conv-channels", "0"],
                           "--conv-channels must be between 1 and 1024"),
    "image size for MNIST": (["train", "--image-size", "32"],
                             "--image-size is for image folders (--data-dir with one "
                             "sub-folder of images per class), not the registered dataset "
                             "mnist"),
    "channels for Fashion-MNIST": (["train", "--dataset", "fashion-mnist", "--channels", "3"],
                                   "--channels is for image folders"),
}


@needs_mnist
def test_more_conv_blocks_than_the_image_can_be_halved(capsys, tmp_path):
    line = expect(["train", "--model", "cnn", "--conv-channels", "4", "4", "4", "4", "4",
                   "--limit", "200", "--out", str(tmp_path / "run")], capsys, USAGE,
                  "--conv-channels 4 4 4 4 4", "between 1 and 4 conv blocks")
    assert "Traceback" not in line


@pytest.mark.parametrize("argv, fragment", BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_bad_options_are_one_usage_line(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written anywhere
    code, out, err = run(argv, capsys)
    assert code == USAGE, err
    assert fragment in error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_choices_are_case_insensitive_and_shown_in_help(capsys):
    args = cli.build_parser().parse_args(["train", "--optimizer", "Adam", "--model", "MLP",
                                          "--schedule", "COSINE"])
    config = cli._config_from(args)  # noqa: SLF001 -- the parser's own helper
    assert (config.optimizer, config.model, config.schedule) == ("adam", "mlp", "cosine")
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    assert "{sgd,momentum,nesterov,rmsprop,adam,adamw}" in text and "{mlp,cnn}" in text
    assert "exit status:" in text and "4    checkpoint" in text


def test_debug_shows_the_traceback(capsys, monkeypatch):
    code, _, err = run(["--debug", "train", "--epochs", "0"], capsys)
    assert code == USAGE and "Traceback" in err and "UsageError" in err
    monkeypatch.setenv(errors.DEBUG_ENV, "1")
    code, _, err = run(["train", "--lr", "-1"], capsys)
    assert code == USAGE and "Traceback" in err


# ---------------------------------------------------------------- 2. --config files
BAD_CONFIGS: Dict[str, Tuple[Any, str]] = {
    "epochs a string": ({"epochs": "two"}, '"epochs" must be an integer, got the string'),
    "lr a string": ({"lr": "0.1"}, '"lr" must be a number, got the string "0.1"'),
    "batch size fractional": ({"batch_size": 12.5}, '"batch_size" must be an integer'),
    "dropout a string": ({"dropout": "0.2"}, '"dropout" must be a number'),
    "hidden a string": ({"hidden": "512"}, '"hidden" must be a list of integers'),
    "hidden with a string": ({"hidden": [512, "256"]}, '"hidden" must be an integer'),
    "hidden a number": ({"hidden": 512}, '"hidden" must be a list'),
    "hidden 10^9": ({"hidden": [10 ** 9]}, '"hidden" must be between 1 and'),
    "epochs a bool": ({"epochs": True}, '"epochs" must be an integer, got true'),
    "batch size null": ({"batch_size": None}, '"batch_size" must be given a value'),
    "model a number": ({"model": 3}, '"model" must be a string'),
    "optimizer unknown": ({"optimizer": "lion"}, '"optimizer" must be one of'),
    "plots a string": ({"plots": "yes"}, '"plots" must be true or false'),
    "plots a number": ({"plots": 1}, '"plots" must be true or false'),
    "quiet 5": ({"quiet": 5}, '"quiet" must be 0, 1 or 2'),
    "seed negative": ({"seed": -1}, '"seed" must be in'),
    "val size zero": ({"val_size": 0}, '"val_size" must be at least 1'),
    "limit negative": ({"limit": -5}, '"limit" must be at least 1'),
    "lr NaN": ({"lr": float("nan")}, '"lr" must be positive'),
    "weight decay negative": ({"weight_decay": -1}, '"weight_decay" must be >= 0'),
    "data dir a number": ({"data_dir": 5}, '"data_dir" must be a string'),
    "data dir a list": ({"data_dir": ["a"]}, '"data_dir" must be a string'),
    "unknown key": ({"learning_rate": 0.1}, "unknown config key(s): learning_rate"),
    "a list": ([1, 2], "must hold a JSON object"),
    "a string": ("epochs", "must hold a JSON object"),
}
BAD_CONFIG_FILES = {
    "invalid JSON": (b'{"epochs": 2,', "cannot read --config"),
    "empty file": (b"", "cannot read --config"),
    "not UTF-8": (b'{"model": "\xff"}', "cannot read --config"),
    "nested too deeply": (b"[" * 100_000 + b"]" * 100_000, "cannot read --config"),
}


@pytest.mark.parametrize("values, fragment", BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_bad_config_values_name_the_file_and_key(values, fragment, capsys, tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps(values))
    line = expect(["train", "--config", str(config), "--out", str(tmp_path / "run")],
                  capsys, USAGE, fragment)
    assert str(config) in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("content, fragment", BAD_CONFIG_FILES.values(),
                         ids=BAD_CONFIG_FILES.keys())
def test_unreadable_config_files(content, fragment, capsys, tmp_path):
    config = tmp_path / "c.json"
    config.write_bytes(content)
    assert str(config) in expect(["train", "--config", str(config)], capsys, USAGE, fragment)


@pytest.mark.parametrize("what", ["missing", "a directory"])
def test_config_path_that_is_not_a_file(what, capsys, tmp_path):
    config = tmp_path / "c.json"
    if what == "a directory":
        config.mkdir()
    expect(["train", "--config", str(config)], capsys, USAGE, "cannot read --config")


def test_command_line_wins_and_its_errors_name_the_flag(capsys, tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"epochs": 3}))
    line = expect(["train", "--config", str(config), "--epochs", "0"], capsys, USAGE,
                  "--epochs must be at least 1")
    assert str(config) not in line


# ---------------------------------------------------------------- 3. checkpoints
def _weights_of(hidden):
    def mutate(state):
        state["model"] = build_model(TrainConfig(hidden=list(hidden)).validate()).state_dict()
        return state
    return mutate


def _set(path: Tuple[str, ...], value: Any) -> Callable:
    def mutate(state):
        target = state
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return state
    return mutate


def _drop(key: str) -> Callable:
    def mutate(state):
        del state[key]
        return state
    return mutate


def _poison(value: float) -> Callable:
    def mutate(state):
        state["model"]["0.weight"][3, 5] = value
        return state
    return mutate


BAD_CHECKPOINTS: Dict[str, Callable[[Path], Path]] = {
    "missing file": lambda d: d / "nothing.npz",
    "run without best.npz": lambda d: (d / "empty-run").mkdir() or d / "empty-run",
    "text file": lambda d: (d / "t.npz").write_text("not a checkpoint") and d / "t.npz",
    "empty file": lambda d: (d / "e.npz").write_bytes(b"") or d / "e.npz",
    "truncated": lambda d: _truncated(save_checkpoint(d / "t.npz")),
    "another framework's npz": lambda d: _foreign(d / "f.npz"),
    "a pickle": lambda d: (d / "p.npz").write_bytes(b"\x80\x04K\x01.") and d / "p.npz",
    "not a dict": lambda d: tg.save([1, 2, 3], d / "l.npz") or d / "l.npz",
    "no model": lambda d: save_checkpoint(d / "m.npz", mutate=_drop("model")),
    "no config": lambda d: save_checkpoint(d / "c.npz", mutate=_drop("config")),
    "no stats": lambda d: save_checkpoint(d / "s.npz", mutate=_drop("stats")),
    "stats of zero spread": lambda d: save_checkpoint(d / "z.npz",
                                                      mutate=_set(("stats",), [0.1, 0.0])),
    "stats strings": lambda d: save_checkpoint(d / "w.npz", mutate=_set(("stats",), ["a", "b"])),
    "weights of another size": lambda d: save_checkpoint(d / "o.npz", mutate=_weights_of([32])),
    "config asks for a cnn": lambda d: save_checkpoint(d / "n.npz",
                                                       mutate=_set(("config", "model"), "cnn")),
    "config asks for 10^9 hidden units": lambda d: save_checkpoint(
        d / "h.npz", mutate=_set(("config", "hidden"), [10 ** 9])),
    "config with an unknown key": lambda d: save_checkpoint(
        d / "k.npz", mutate=_set(("config", "learning_rate"), 0.1)),
    "config value of the wrong type": lambda d: save_checkpoint(
        d / "y.npz", mutate=_set(("config", "epochs"), "two")),
    "config not a dict": lambda d: save_checkpoint(d / "g.npz", mutate=_set(("config",), "mlp")),
    "epoch a word": lambda d: save_checkpoint(d / "x.npz", mutate=_set(("epoch",), "first")),
    "NaN weights": lambda d: save_checkpoint(d / "nan.npz", mutate=_poison(np.nan)),
    "infinite weights": lambda d: save_checkpoint(d / "inf.npz", mutate=_poison(np.inf)),
}


def _truncated(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[:-200])
    return path


def _foreign(path: Path) -> Path:
    np.savez(path, w=np.zeros(3))
    return path


@pytest.mark.parametrize("command", ["evaluate", "predict", "export"])
@pytest.mark.parametrize("make", BAD_CHECKPOINTS.values(), ids=BAD_CHECKPOINTS.keys())
def test_bad_checkpoints_are_one_checkpoint_line(make, command, capsys, tmp_path):
    checkpoint = make(tmp_path)
    argv = {"evaluate": ["evaluate", str(checkpoint), "--no-plots"],
            "predict": ["predict", str(checkpoint), str(digit_png(tmp_path / "d.png"))],
            "export": ["export", str(checkpoint), "--onnx", str(tmp_path / "m.onnx")]}[command]
    before = snapshot(tmp_path)
    line = expect(argv, capsys, CHECKPOINT)
    assert checkpoint.name in line or str(checkpoint) in line
    assert snapshot(tmp_path) == before  # no report, no ONNX file


@pytest.mark.parametrize("name", ["NaN weights", "weights of another size", "no stats"])
def test_serve_refuses_a_bad_checkpoint_before_listening(name, capsys, tmp_path):
    checkpoint = BAD_CHECKPOINTS[name](tmp_path)
    expect(["serve", str(checkpoint), "--port", "0"], capsys, CHECKPOINT, checkpoint.name)


# ---------------------------------------------------------------- 4. IDX and CSV files
GOOD_IMAGES = np.zeros((3, 28, 28), np.uint8)
GOOD_IMAGES[:, 6:22, 13:15] = 255
CSV_HEADER = ",".join(f"pixel{i}" for i in range(784))
BAD_DATA_FILES: Dict[str, Tuple[str, bytes, str]] = {
    "IDX of float pixels": ("f-idx3-ubyte", idx_bytes(GOOD_IMAGES / 255.0, 0x0D),
                            "unsigned bytes"),
    "IDX of int32 pixels": ("i-idx3-ubyte", idx_bytes(GOOD_IMAGES, 0x0C), "unsigned bytes"),
    "IDX of 27-pixel rows": ("w-idx3-ubyte", idx_bytes(np.zeros((2, 28, 27), np.uint8)),
                             "28x28"),
    "IDX of labels": ("l-idx1-ubyte", idx_bytes(np.zeros(5, np.uint8)), "28x28"),
    "IDX truncated": ("t-idx3-ubyte", idx_bytes(GOOD_IMAGES)[:-10], "truncated"),
    "IDX with trailing bytes": ("x-idx3-ubyte", idx_bytes(GOOD_IMAGES) + b"xx", "trailing"),
    "IDX with a bad magic": ("m-idx3-ubyte", b"\x01\x02\x08\x03" + idx_bytes(GOOD_IMAGES)[4:],
                             "magic"),
    "IDX empty": ("e-idx3-ubyte", b"", "too short"),
    "IDX gzip corrupt": ("c-idx3-ubyte.gz", gzip.compress(idx_bytes(GOOD_IMAGES))[:-20],
                         "gzip"),
    "CSV with wrong columns": ("a.csv", b"a,b\n1,2\n", "columns"),
    "CSV with a missing value": ("b.csv", (CSV_HEADER + "\n" + "0," * 783 + "\n").encode(),
                                 "missing value"),
    "CSV with a word": ("c.csv", (CSV_HEADER + "\n" + "0," * 783 + "x\n").encode(),
                        "integers"),
    "CSV with a pixel of 256": ("d.csv", (CSV_HEADER + "\n" + "0," * 783 + "256\n").encode(),
                                "outside 0..255"),
    "CSV with a negative pixel": ("e.csv", (CSV_HEADER + "\n-1" + ",0" * 783 + "\n").encode(),
                                  "outside 0..255"),
    "CSV without rows": ("f.csv", (CSV_HEADER + "\n").encode(), "no rows"),
    "CSV empty": ("g.csv", b"", "cannot read CSV"),
    "CSV that is binary": ("h.csv", bytes(range(256)) * 4, "CSV|columns"),
    "CSV with label 10": ("i.csv", ("label," + CSV_HEADER + "\n10" + ",0" * 784 + "\n").encode(),
                          "label value 10"),
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("model") / "model.npz")


@pytest.mark.parametrize("name, content, fragment", BAD_DATA_FILES.values(),
                         ids=BAD_DATA_FILES.keys())
def test_bad_data_files_are_named_and_others_still_run(name, content, fragment, capsys,
                                                       tmp_path, checkpoint):
    bad = tmp_path / name
    bad.write_bytes(content)
    good = digit_png(tmp_path / "good.png")
    code, out, err = run(["predict", str(checkpoint), str(bad), str(good)], capsys)
    assert code == 0 and "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith(str(bad))]
    assert any(f in line for f in fragment.split("|")), line
    assert out.startswith(f"{good}: ")  # the good file is still predicted
    code, _, err = run(["predict", str(checkpoint), str(bad)], capsys)  # alone: a data error
    assert code == DATA and "none of the 1 input(s) could be predicted" in error_line(err)


def test_idx_and_csv_images_are_numbered_from_one(capsys, tmp_path, checkpoint):
    idx = tmp_path / "digits-idx3-ubyte"
    idx.write_bytes(idx_bytes(GOOD_IMAGES))
    csv = tmp_path / "digits.csv"
    csv.write_text(CSV_HEADER + "\n" + "\n".join(",".join(map(str, im.ravel()))
                                                for im in GOOD_IMAGES) + "\n")
    code, out, _ = run(["predict", str(checkpoint), str(idx), str(csv)], capsys)
    names = [line.split(": ")[0] for line in out.splitlines()]
    assert code == 0 and names == [f"{idx}#1", f"{idx}#2", f"{idx}#3",
                                   f"{csv}#1", f"{csv}#2", f"{csv}#3"]


# ---------------------------------------------------------------- 5. pictures
def _exif_rotated(path: Path) -> Path:
    """A wide picture of a horizontal bar whose EXIF says: turn me 90 degrees."""
    a = np.full((40, 80), 255, np.uint8)
    a[18:22, 10:70] = 0
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 clockwise to display
    Image.fromarray(a).save(path, exif=exif)
    return path


BAD_PICTURES: Dict[str, Tuple[Callable[[Path], Path], str]] = {
    "text named .png": (lambda d: (d / "t.png").write_text("hello") and d / "t.png",
                        "cannot read image"),
    "empty .png": (lambda d: (d / "e.png").write_bytes(b"") or d / "e.png",
                   "cannot read image"),
    "truncated PNG": (lambda d: _cut(digit_png(d / "c.png")), "cannot read image"),
    "decompression bomb": (lambda d: png_header_only(d / "bomb.png", 40000, 40000),
                           "over the limit"),
    "just over the size limit": (lambda d: png_header_only(d / "big.png", 10000, 5001),
                                 "over the limit"),
    "69 bytes declaring 14 Mpixels": (lambda d: png_header_only(d / "tall.png", 1, 13862896),
                                      "declares 1x13862896 pixels in only 69 bytes"),
    "blank page": (lambda d: Image.new("L", (50, 50), 255).save(d / "w.png") or d / "w.png",
                   "no ink"),
    "one pixel": (lambda d: Image.new("L", (1, 1), 0).save(d / "p.png") or d / "p.png",
                  ""),
    "missing file": (lambda d: d / "nowhere.png", "not found"),
    "named pipe": (lambda d: os.mkfifo(d / "pipe.png") or d / "pipe.png",
                   "not a regular file"),
    "folder without pictures": (lambda d: (d / "empty").mkdir() or d / "empty",
                                "no PNG/JPEG images"),
}


def _cut(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[:60])
    return path


@pytest.mark.parametrize("make, fragment", BAD_PICTURES.values(), ids=BAD_PICTURES.keys())
def test_bad_pictures_get_their_own_line_and_the_good_ones_are_predicted(
        make, fragment, capsys, tmp_path, checkpoint):
    bad = make(tmp_path)
    good = digit_png(tmp_path / "good.png")
    code, out, err = run(["predict", str(checkpoint), str(good), str(bad)], capsys)
    assert code == 0 and "Traceback" not in err
    assert out.startswith(f"{good}: ")
    bad_lines = [line for line in err.splitlines() if str(bad) in line]
    if fragment:
        assert len(bad_lines) == 1 and fragment in bad_lines[0], err


def test_a_named_pipe_in_a_folder_is_skipped_without_hanging(tmp_path, checkpoint):
    folder = tmp_path / "mine"
    folder.mkdir()
    digit_png(folder / "a.png")
    os.mkfifo(folder / "something.png")  # reading it would wait for a writer forever
    done = subprocess.run([sys.executable, "-m", "tinygrad_mnist", "predict", str(checkpoint),
                           str(folder)], capture_output=True, text=True, timeout=120,
                          env=subprocess_env())
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert f"{folder / 'a.png'}: " in done.stdout
    assert "something.png" in done.stderr and "not a regular file" in done.stderr


def test_exif_orientation_is_applied(tmp_path):
    from tinygrad_mnist.data import load_image
    image = load_image(_exif_rotated(tmp_path / "r.jpg"))
    assert image.shape == (80, 40)            # turned upright: tall, not wide
    assert (image[10:70, 18:22] < 128).mean() > 0.8   # the bar is now vertical


# ---------------------------------------------------------------- 6. outputs and overwriting
def test_kaggle_refuses_other_inputs_before_predicting(capsys, tmp_path, checkpoint):
    csv = tmp_path / "test.csv"
    csv.write_text(CSV_HEADER + "\n" + ",".join(["0"] * 784) + "\n")
    out = tmp_path / "submission.csv"
    expect(["predict", str(checkpoint), str(csv), str(tmp_path / "extra.png"),
            "--kaggle", str(out)], capsys, USAGE, "--kaggle takes Kaggle CSV inputs only")
    assert not out.exists()


def test_kaggle_with_an_unreadable_csv_writes_nothing(capsys, tmp_path, checkpoint):
    good, bad = tmp_path / "a.csv", tmp_path / "b.csv"
    good.write_text(CSV_HEADER + "\n" + ",".join(["0"] * 784) + "\n")
    bad.write_text("not,a,kaggle,file\n")
    sub, preds = tmp_path / "submission.csv", tmp_path / "predictions.csv"
    preds.write_text("keep me")
    line = expect(["predict", str(checkpoint), str(good), str(bad), "--kaggle", str(sub),
                   "--csv", str(preds)], capsys, DATA, "no Kaggle submission written")
    assert str(bad) in line
    assert not sub.exists() and preds.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv", "predictions.csv"]


@pytest.mark.parametrize("option", ["--csv", "--kaggle"])
def test_outputs_into_a_missing_directory_are_refused_first(option, capsys, tmp_path,
                                                            checkpoint):
    csv = tmp_path / "test.csv"
    csv.write_text(CSV_HEADER + "\n" + ",".join(["0"] * 784) + "\n")
    code, out, err = run(["predict", str(checkpoint), str(csv), option,
                          str(tmp_path / "no" / "out.csv")], capsys)
    assert code == IO and out == ""  # refused before predicting anything
    assert "directory does not exist" in error_line(err)


def test_onnx_export_into_a_missing_directory_is_refused(capsys, tmp_path, checkpoint):
    expect(["export", str(checkpoint), "--onnx", str(tmp_path / "no" / "m.onnx")], capsys,
           IO, "directory does not exist")
    assert not (tmp_path / "no").exists()


def test_web_export_into_an_existing_folder_is_refused(capsys, tmp_path, checkpoint):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "mine.txt").write_text("keep")
    expect(["export", str(checkpoint), "--web", str(tmp_path / "site")], capsys, USAGE,
           "--web", "already exists")
    assert [p.name for p in (tmp_path / "site").iterdir()] == ["mine.txt"]


def test_all_or_nothing_multi_file_write(tmp_path):
    from tinygrad_mnist.atomic import atomic_write_files
    first = tmp_path / "a.txt"
    first.write_text("old")
    with pytest.raises(FileNotFoundError):
        atomic_write_files({first: b"new", tmp_path / "missing" / "b.txt": b"x"})
    assert first.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == \
        ["a.txt"]


def test_a_failing_report_leaves_the_old_one(tmp_path, monkeypatch):
    from tinygrad_mnist.app import plots, report
    from tinygrad_mnist.app.inference import load_trained
    save_checkpoint(tmp_path / "best.npz")
    (tmp_path / "report.md").write_text("the old report")
    trained = load_trained(tmp_path)
    x = np.zeros((20, 784), np.float32)
    y = np.arange(20) % 10

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(plots, "misclassified", broken)
    with pytest.raises(OSError):
        report.write_report(tmp_path, trained, x, y, make_plots=True)
    assert (tmp_path / "report.md").read_text() == "the old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.npz", "report.md"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A real two-epoch run on 600 MNIST images (seconds)."""
    if not MNIST:
        pytest.skip("needs TINYGRAD_MNIST_DATA")
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert cli.main(["train", *TINY, "--out", str(out), "-qq"]) == 0
    return out


@needs_mnist
def test_out_of_an_existing_run_is_refused(capsys, tiny_run, tmp_path):
    before = snapshot(tiny_run)
    line = expect(["train", *TINY, "--out", str(tiny_run)], capsys, USAGE,
                  "already holds a run", "--overwrite")
    assert str(tiny_run) in line and snapshot(tiny_run) == before
    expect(["train", *TINY, "--out", str(tiny_run / "config.json")], capsys, USAGE,
           "is a file")


@needs_mnist
def test_evaluate_of_last_npz_writes_beside_the_runs_report(capsys, tiny_run):
    before = snapshot(tiny_run)
    code, out, err = run(["evaluate", str(tiny_run / "last.npz"), "--no-plots"], capsys)
    assert code == 0 and "last-report" in out, err
    after = snapshot(tiny_run)
    assert {k: v for k, v in after.items() if not k.startswith("last-report")} == before
    assert {"last-report/report.json", "last-report/report.md"} <= set(after)


@needs_mnist
def test_overwrite_replaces_only_the_run(capsys, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "report.md").write_text("old report")
    expect(["train", *TINY, "--out", str(out)], capsys, USAGE, "already holds a run")
    code, stdout, err = run(["train", *TINY, "--out", str(out), "--overwrite", "-qq"], capsys)
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine"
    assert "old report" not in (out / "report.md").read_text()
    assert stdout.startswith("Test accuracy") and stdout.count("\n") == 1  # -qq: the result


def test_a_run_that_cannot_start_creates_and_deletes_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = str(tmp_path / "missing")
    expect(["train", "--data-dir", missing], capsys, errors.EXIT_IO, "no data at")
    assert not (tmp_path / "runs").exists()                   # no empty run directory
    old = tmp_path / "old"
    old.mkdir()
    (old / "report.md").write_text("old report")
    expect(["train", "--data-dir", missing, "--out", str(old), "--overwrite"], capsys,
           errors.EXIT_IO, "no data at")
    assert (old / "report.md").read_text() == "old report"    # --overwrite waits for a start


@needs_mnist
def test_image_folder_options_on_idx_files_are_refused(capsys, tmp_path):
    expect(["train", "--data-dir", os.environ["TINYGRAD_MNIST_DATA"], "--channels", "3",
            "--out", str(tmp_path / "r")], capsys, USAGE,
           "--channels is for image folders", "not mnist's files")
    assert not (tmp_path / "r").exists()


@needs_mnist
def test_limit_means_training_images_and_is_said(capsys, tmp_path):
    code, out, err = run(["train", *TINY, "--out", str(tmp_path / "r"), "-q"], capsys)
    first = out.splitlines()[0]
    assert code == 0 and " 600 " in first and "(--limit)" in first and "on 200" in first
    epochs = [line for line in out.splitlines() if line.startswith("epoch")]
    assert "lr 1.00e-03" in epochs[0] and "lr 0.00e+00" not in epochs[-1]  # the rate used
    assert "\r" not in out + err  # no progress bars off a terminal
    expect(["train", "--limit", "59000", "--out", str(tmp_path / "s")], capsys, USAGE,
           "need 64,000 training images")


@needs_mnist
@pytest.mark.filterwarnings("error::RuntimeWarning")  # NumPy's must not escape as warnings
def test_a_diverging_run_says_so_in_one_warning_and_one_error(capsys, tmp_path):
    code, out, err = run(["train", *TINY, "--lr", "1e30", "--optimizer", "sgd",
                          "--schedule", "none", "--dropout", "0", "--out",
                          str(tmp_path / "d")], capsys)
    assert code == errors.EXIT_FAILURE
    assert "lower the learning rate" in error_line(err)
    assert err.count("warning:") <= 1 and "RuntimeWarning" not in err


# ---------------------------------------------------------------- 7. resuming and killing
@needs_mnist
@pytest.mark.parametrize("what", ["best.npz as last.npz", "foreign last.npz",
                                  "truncated last.npz", "config of another model"])
def test_resume_from_a_bad_last_npz(what, capsys, tiny_run, tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    last = run_dir / "last.npz"
    if what == "best.npz as last.npz":
        last.write_bytes((tiny_run / "best.npz").read_bytes())
    elif what == "foreign last.npz":
        np.savez(last, weights=np.zeros(4))
    elif what == "truncated last.npz":
        last.write_bytes((tiny_run / "last.npz").read_bytes()[:5000])
    else:
        state = tg.load(tiny_run / "last.npz")
        state["config"]["hidden"] = [64]
        tg.save(state, last)
    line = expect(["train", "--resume", str(run_dir)], capsys, CHECKPOINT)
    assert str(last) in line


# SIGINT and SIGTERM, then resuming with the printed command: tests/test_signals.py.


KILL_DURING_SAVE = """
import sys, time
from pathlib import Path
import tinygrad_mnist.atomic as atomic
from tinygrad_mnist.app import cli
original = atomic.atomic_write
def slow(path, content, **kw):
    if Path(path).name == "last.npz" and Path(path).exists():
        def half(f):
            f.write(b"PK\\x03\\x04 half of a checkpoint")
            f.flush()
            Path(sys.argv[1]).write_text("writing")
            time.sleep(60)
        return original(path, half, **kw)
    return original(path, content, **kw)
atomic.atomic_write = slow
import tinygrad_mnist.serialization as serialization
serialization.atomic_write = slow
sys.exit(cli.main(["train", *sys.argv[2:]]))
"""


@needs_mnist
def test_sigkill_during_a_checkpoint_write_loses_nothing(tmp_path):
    out, marker = tmp_path / "run", tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", KILL_DURING_SAVE, str(marker), *TINY,
                             "--out", str(out), "-qq"], env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert marker.exists(), proc.stderr.read() if proc.stderr else ""
        proc.kill()  # SIGKILL in the middle of writing last.npz
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stderr:
            proc.stderr.close()
    assert tg.load(out / "last.npz")["epoch"] == 0  # the previous one, whole
    code = cli.main(["train", "--resume", str(out), "-qq"])
    assert code == 0 and tg.load(out / "last.npz")["epoch"] == 2
    assert (out / "report.json").exists()


# ---------------------------------------------------------------- 8. a full disk
@pytest.fixture
def full_disk(tmp_path) -> Path:
    """A 256 KiB tmpfs (Linux, root with the right to mount; skipped elsewhere)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs Linux and root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def test_export_onto_a_full_disk(capsys, tmp_path, full_disk):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_checkpoint(run_dir / "best.npz", hidden=(512, 256))  # an ONNX file of ~2 MB
    expect(["export", str(run_dir), "--onnx", str(full_disk / "m.onnx")], capsys, IO,
           "No space left on device", "free some disk space")
    assert list(full_disk.iterdir()) == []  # no half-written file, no temporary file


def test_predictions_onto_a_full_disk(capsys, tmp_path, full_disk, checkpoint):
    fd = os.open(full_disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:  # fill the disk to the last block
        while os.write(fd, b"x" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    out = full_disk / "p.csv"
    good = digit_png(tmp_path / "a.png")
    expect(["predict", str(checkpoint), str(good), "--csv", str(out)], capsys, IO,
           "No space left on device")
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


@needs_mnist
def test_training_onto_a_full_disk(capsys, full_disk):
    out = full_disk / "run"
    expect(["train", *TINY, "--hidden", "256", "--out", str(out)], capsys, IO,
           "No space left on device")
    for name in ("best.npz", "last.npz"):  # whatever is there loads
        if (out / name).exists():
            tg.load(out / name)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------- 9. HTTP
def stub(images: np.ndarray) -> np.ndarray:
    p = np.full((len(images), 10), 0.02)
    p[:, 7] = 0.82
    return p


class Server:
    def __init__(self, request_timeout: float) -> None:
        from tinygrad_mnist.app.serve import make_server
        self.server = make_server(stub, port=0, log_requests=False,
                                  request_timeout=request_timeout)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.port = self.server.server_address[1]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until it answers
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.02)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture(scope="module")
def http_server():
    server = Server(request_timeout=1.0)
    yield server
    server.close()


def exchange(port: int, data: bytes, half_close: bool = True,
             timeout: float = 10) -> Tuple[bytes, float]:
    """Send `data`, read until the server closes; (answer, seconds it took)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        started = time.monotonic()
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks), time.monotonic() - started


def post_head(length: Any = 10, extra: str = "") -> bytes:
    return (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n").encode()


DRAWING = json.dumps({"width": 20, "height": 20,
                      "pixels": [0 if 8 <= i % 20 <= 11 else 255 for i in range(400)]}
                     ).encode()
BAD_HTTP: Dict[str, Tuple[bytes, int]] = {
    "HTTP/0.9 request line": (b"GET /\r\n", 400),
    "HTTP/0.9 version": (b"GET / HTTP/0.9\r\n\r\n", 505),
    "HTTP/2.0 over plain text": (b"GET / HTTP/2.0\r\n\r\n", 505),
    "garbage request line": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    "lower-case method": (b"get / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "no method": (b" / HTTP/1.1\r\n\r\n", 400),
    "two conflicting Content-Lengths": (post_head(5, "Content-Length: 6\r\n") + b"{}", 400),
    "two equal Content-Lengths": (post_head(2, "Content-Length: 2\r\n") + b"{}", 400),
    "Content-Length and chunked": (post_head(2, "Transfer-Encoding: chunked\r\n") + b"{}",
                                   400),
    "chunked body": (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 411),
    "Content-Length a word": (post_head("ten"), 400),
    "Content-Length negative": (post_head(-1), 400),
    "Content-Length in exponent form": (post_head("1e3"), 400),
    "Content-Length of a terabyte": (post_head(10 ** 12), 413),
    "Content-Length over the limit": (post_head(10 ** 7), 413),
    "empty body": (post_head(0), 400),
    "a NUL in a header": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: \x00\r\n\r\n", 400),
    "a folded header line": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  b\r\n\r\n", 400),
    "a space before the colon": (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    "20 kB of one header": (b"GET / HTTP/1.1\r\nX-A: " + b"a" * 20_000 + b"\r\n\r\n", 431),
    "3000 headers": (b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 3000 + b"\r\n", 431),
    "a 20 kB path": (b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n", 431),
    "half-closed in the headers": (b"POST /predict HTTP/1.1\r\nHost: x\r\n", 400),
    "half-closed in the body": (post_head(100) + b'{"width":', 400),
    "text/plain body": (post_head(len(DRAWING)).replace(b"application/json", b"text/plain")
                        + DRAWING, 415),
    "Expect 100-continue with a huge body": (post_head(10 ** 8, "Expect: 100-continue\r\n"),
                                             413),
    "a websocket upgrade": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                            b"Upgrade: websocket\r\n\r\n", 200),
}


@pytest.mark.parametrize("data, status", BAD_HTTP.values(), ids=BAD_HTTP.keys())
def test_malformed_http_is_answered_and_closed(data, status, http_server, caplog):
    with caplog.at_level(logging.INFO):
        answer, took = exchange(http_server.port, data)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    assert took < 3  # answered, not left hanging
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Traceback" not in answer and b"Content-Length" in head.title()
    if status != 200:
        assert json.loads(body)["error"]
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_pipelined_good_then_bad_requests(http_server):
    good = post_head(len(DRAWING)) + DRAWING
    answer, _ = exchange(http_server.port, good + b"NONSENSE\r\n\r\n")
    first, _, rest = answer.partition(b"HTTP/1.1 400")
    assert first.startswith(b"HTTP/1.1 200") and b'"digit":7' in first and rest


@pytest.fixture
def quick_server():
    server = Server(request_timeout=0.5)
    yield server
    server.close()


SLOW_CLIENTS = {
    "idle connection": b"",
    "trickled request line": b"POST /pred",
    "headers without their end": post_head(10)[:-2],
    "body that stops": post_head(100) + b'{"width": 20',
}


@pytest.mark.parametrize("sent", SLOW_CLIENTS.values(), ids=SLOW_CLIENTS.keys())
def test_stalled_clients_are_closed_at_the_timeout(sent, quick_server, caplog):
    answer, took = exchange(quick_server.port, sent, half_close=False)
    assert 0.4 < took < 3
    assert answer == b"" if not sent else answer.startswith(b"HTTP/1.1 408")
    assert "Traceback" not in caplog.text


def test_trickling_clients_do_not_delay_others(quick_server):
    """Ten connections sending a byte every 0.1 s are closed at the 0.5 s timeout, and
    meanwhile a normal request is answered at once."""
    kept: List[float] = []

    def trickle() -> None:
        with socket.create_connection(("127.0.0.1", quick_server.port), timeout=5) as s:
            started = time.monotonic()
            s.settimeout(0.1)
            try:
                for byte in post_head(10):
                    s.sendall(bytes([byte]))
                    try:
                        s.recv(4096)  # a 408, or the end of the connection
                        break
                    except socket.timeout:
                        continue
            except OSError:
                pass
            kept.append(time.monotonic() - started)
    threads = [threading.Thread(target=trickle) for _ in range(10)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    answer, took = exchange(quick_server.port, post_head(len(DRAWING)) + DRAWING)
    for t in threads:
        t.join(10)
    assert answer.startswith(b"HTTP/1.1 200") and took < 0.4
    assert len(kept) == 10 and all(0.4 < k < 2 for k in kept), kept


def test_a_client_that_hangs_up_mid_body_leaves_no_trace(http_server, caplog):
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", http_server.port), timeout=5) as s:
                s.sendall(post_head(len(DRAWING)) + DRAWING[:50])
            with socket.create_connection(("127.0.0.1", http_server.port), timeout=5) as s:
                s.sendall(post_head(len(DRAWING)) + DRAWING)  # and leaves before the answer
        time.sleep(0.2)
        answer, _ = exchange(http_server.port, post_head(len(DRAWING)) + DRAWING)
    assert answer.startswith(b"HTTP/1.1 200")
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_one_content_length_per_response(http_server):
    for request in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", post_head(len(DRAWING)) + DRAWING,
                    post_head(10 ** 8), b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"):
        answer, _ = exchange(http_server.port, request)
        head = answer.split(b"\r\n\r\n")[0].lower()
        assert head.count(b"content-length:") == 1, head


# ---------------------------------------------------------------- 10. the rest
def test_backward_of_an_empty_batch():
    from tinygrad_mnist import nn
    layer = nn.Linear(4, 3)
    for reduction, expected in (("mean", np.nan), ("sum", 0.0)):
        loss = tg.cross_entropy(layer(tg.Tensor(np.zeros((0, 4), np.float32))),
                                np.zeros(0, np.int64), reduction=reduction)
        loss.backward()
        np.testing.assert_equal(float(loss.data), expected)
        assert np.all(np.asarray(layer.weight.grad.data) == 0)
        layer.weight.grad = None


def test_download_failures_are_said_once_and_the_error_is_one_line(tmp_path, capsys):
    from tinygrad_mnist.data import DownloadError, MNIST_FILES, fetch_files

    class Broken:
        def __init__(self, name: str) -> None:
            self.description = name

        def fetch(self, specs, directory, *, quiet):
            return [f"{s.name}.gz: refused" for s in specs]
    with pytest.raises(DownloadError) as info:
        fetch_files(list(MNIST_FILES)[:4], tmp_path, [Broken("first"), Broken("second")])
    err = capsys.readouterr().err
    assert err.count("fetching 4") == 2 and err.count("failed:") == 2  # once per source
    assert "(and 3 more)" in err
    message = str(info.value)
    assert "\n" not in message and "printed above" in message and "by hand" in message
    with pytest.raises(DownloadError) as info:
        fetch_files(list(MNIST_FILES)[:4], tmp_path, [Broken("first")], quiet=True)
    assert capsys.readouterr().err == "" and "refused" in str(info.value)


def test_help_and_version_import_no_heavy_package():
    code = ("import sys; from tinygrad_mnist.app import cli\n"
            "try:\n    cli.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('pandas', 'matplotlib', 'onnx', 'onnxruntime', 'starlette',"
            " 'uvicorn') if m in sys.modules]\nprint('HEAVY', heavy)")
    for flag in ("--help", "--version"):
        done = subprocess.run([sys.executable, "-c", code, flag], capture_output=True,
                              text=True, timeout=60, env=subprocess_env())
        assert "HEAVY []" in done.stdout.splitlines()[-1], (flag, done.stdout[-300:])


def test_the_load_test_script_runs_small(capsys):
    """benchmarks/bench_serve.py, five clients for a second: the real `serve` command
    in a subprocess, stopped at the end."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_serve
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert bench_serve.main(["--clients", "5", "--seconds", "1", "--warmup", "0.2",
                             "--tricklers", "0"]) == 0
    out = capsys.readouterr().out
    assert "5 clients" in out and "errors 0" in out and "targets:" in out
    with pytest.raises(SystemExit):
        bench_serve.main(["--clients", "5000"])  # bounded


def test_serve_stops_cleanly_on_ctrl_c(tmp_path, checkpoint):
    proc = subprocess.Popen([sys.executable, "-m", "tinygrad_mnist", "serve", str(checkpoint),
                             "--port", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=subprocess_env())
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+)/", line).group(1))
        answer, _ = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert '"GET /healthz" 200' in err  # the line per request
