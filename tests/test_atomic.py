"""atomic_write: complete files or none, the permissions of a plain open(), and every file
of a training run written through it (all 0o644 under the usual umask 022)."""
import os
from pathlib import Path

import pandas as pd
import pytest

from data_helpers import fake, isolated_env, write_files  # noqa: F401 - fixtures
from tinygrad_mnist.app import cli
from tinygrad_mnist.atomic import atomic_write, atomic_write_text
from tinygrad_mnist.app.train import TrainConfig, train


@pytest.fixture
def umask():
    """`os.umask`, with the process umask restored after the test."""
    saved = os.umask(0o022)
    yield os.umask
    os.umask(saved)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_writes_bytes_or_through_a_function(tmp_path):
    assert atomic_write(tmp_path / "a", b"bytes") == tmp_path / "a"
    atomic_write(str(tmp_path / "b"), lambda f: f.write(b"from a function"))
    atomic_write_text(tmp_path / "c", "é\r\nline\n")
    assert (tmp_path / "a").read_bytes() == b"bytes"
    assert (tmp_path / "b").read_bytes() == b"from a function"
    assert (tmp_path / "c").read_bytes() == "é\r\nline\n".encode("utf-8")  # not translated
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "c"]


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_0o666_less_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    assert mode(atomic_write(tmp_path / "new", b"x")) == expected


def test_an_existing_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    path = atomic_write(tmp_path / "private", b"old")
    path.chmod(0o600)
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new" and mode(path) == 0o600


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, error):
    path = atomic_write(tmp_path / "f", b"old")

    def fail(f):
        f.write(b"half")
        raise error
    with pytest.raises(type(error)):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f"]


def test_a_rejecting_check_leaves_the_target_untouched(tmp_path):
    seen = []

    def reject(temporary: Path):
        seen.append(temporary.read_bytes())
        raise ValueError("bad content")
    with pytest.raises(ValueError, match="bad content"):
        atomic_write(tmp_path / "f", b"candidate", check=reject)
    assert seen == [b"candidate"] and os.listdir(tmp_path) == []


def test_a_missing_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"cannot write {tmp_path / 'no' / 'f'}: "
                                                "its directory does not exist"):
        atomic_write(tmp_path / "no" / "f", b"x")


def test_every_file_of_a_training_run_is_0o644(tmp_path, fake, umask):
    """A tiny run on fake MNIST files, then `evaluate` and `predict --csv/--kaggle` into
    the same directory: every file is rw-r--r-- under umask 022, none is left over."""
    umask(0o022)
    data_dir = write_files(tmp_path / "mnist", fake)
    run_dir = tmp_path / "run"
    config = TrainConfig.from_dict(dict(val_size=10, hidden=[8], epochs=2, batch_size=8,
                                        data_dir=str(data_dir), out=str(run_dir), quiet=True))
    train(config)
    assert cli.main(["evaluate", str(run_dir)]) == 0
    digits = pd.DataFrame(fake["test_images"].reshape(len(fake["test_images"]), -1),
                          columns=[f"pixel{i}" for i in range(784)])
    digits.to_csv(tmp_path / "digits.csv", index=False)
    assert cli.main(["predict", str(run_dir), str(tmp_path / "digits.csv"),
                     "--csv", str(run_dir / "predictions.csv"),
                     "--kaggle", str(run_dir / "submission.csv")]) == 0

    files = sorted(p.name for p in run_dir.iterdir())
    assert files == sorted(["config.json", "metrics.csv", "best.npz", "last.npz", "report.md",
                            "report.json", "learning_curves.png", "confusion_matrix.png",
                            "misclassified.png", "first_layer_weights.png",
                            "predictions.csv", "submission.csv"])
    assert {name: oct(mode(run_dir / name)) for name in files} == \
        {name: oct(0o644) for name in files}
