"""Where the files come from, verification, and the real MNIST files (when available)."""
import os
from pathlib import Path

import numpy as np
import pytest

from data_helpers import (REAL_DATA, fake, fake_arrays, isolated_env, listing,  # noqa: F401
                          needs_real_data, pin_dataset, specs_for, write_files)
from tinygrad_mnist.data import (ChecksumError, DataError, IDXError, class_counts, data_dir,
                                 default_cache_dir, ensure_mnist, files, load_mnist)

NO_MIRRORS = []


def test_default_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c" / "tinygrad_mnist" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "tinygrad_mnist" / "mnist"


def test_precedence_root_then_env_then_cache(monkeypatch, tmp_path, isolated_env):
    assert data_dir() == (isolated_env, False)
    monkeypatch.setenv(files.ENV_VAR, str(tmp_path / "env"))
    assert data_dir() == (tmp_path / "env", True)
    assert data_dir(tmp_path / "root") == (tmp_path / "root", True)


@pytest.mark.parametrize("compress", [True, False])
def test_load_from_root_gz_or_raw(fake, tmp_path, compress):
    root = write_files(tmp_path / "root", fake, compress=compress)
    mnist = load_mnist(root, mirrors=NO_MIRRORS)
    assert mnist.directory == root
    for role, array in fake.items():
        np.testing.assert_array_equal(getattr(mnist, role), array)


def test_load_from_env_and_cache(fake, tmp_path, monkeypatch, isolated_env):
    write_files(isolated_env, fake)
    assert load_mnist(mirrors=NO_MIRRORS).directory == isolated_env
    env = write_files(tmp_path / "env", fake)
    monkeypatch.setenv(files.ENV_VAR, str(env))
    assert load_mnist(mirrors=NO_MIRRORS).directory == env


def test_missing_files_without_download(fake, tmp_path, monkeypatch):
    monkeypatch.setenv(files.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"nowhere \(from TINYGRAD_MNIST_DATA\) lacks "
                                        r"train-images-idx3-ubyte, .* and download=False"):
        load_mnist(download=False)


def test_pin_mismatch_in_env_directory_is_an_error(fake, tmp_path, monkeypatch):
    env = write_files(tmp_path / "env", fake_arrays(seed=5))
    monkeypatch.setenv(files.ENV_VAR, str(env))
    with pytest.raises(ChecksumError, match=f"{env}/train-images-idx3-ubyte.gz: SHA-256"):
        load_mnist(mirrors=NO_MIRRORS)
    assert len(listing(env)) == 4  # nothing deleted


def test_bad_cache_file_is_deleted_when_no_mirror_can_replace_it(fake, isolated_env):
    write_files(isolated_env, {**fake, "train_images": fake["test_images"]})
    with pytest.raises(DataError, match="could not download"):
        load_mnist(mirrors=NO_MIRRORS, quiet=True)
    assert "train-images-idx3-ubyte.gz" not in listing(isolated_env)


def test_image_label_count_mismatch(monkeypatch, tmp_path):
    arrays = fake_arrays()
    arrays["train_labels"] = arrays["train_labels"][:-1]
    pin_dataset(monkeypatch, "mnist", arrays)
    root = write_files(tmp_path / "root", arrays)
    with pytest.raises(IDXError, match=r"image/label count mismatch: .*train-images-idx3-ubyte.gz "
                                       r"has 30 images but .*train-labels-idx1-ubyte.gz has 29"):
        load_mnist(root)


def test_wrong_image_shape(monkeypatch, tmp_path):
    arrays = fake_arrays()
    arrays["test_images"] = arrays["test_images"].reshape(10, 784)
    pin_dataset(monkeypatch, "mnist", arrays)
    with pytest.raises(IDXError, match=r"t10k-images-idx3-ubyte.gz: expected uint8 images of "
                                       r"shape \(N, H, W\) or \(N, C, H, W\), got uint8 "
                                       r"\(10, 784\)"):
        load_mnist(write_files(tmp_path / "root", arrays))


def test_ensure_mnist_returns_the_directory(fake, tmp_path):
    root = write_files(tmp_path / "root", fake)
    assert ensure_mnist(root, mirrors=NO_MIRRORS) == root


# ---------------------------------------------------------------- the real files
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def real():
    if not REAL_DATA:
        pytest.skip("no real data")
    return load_mnist(REAL_DATA, download=False)


@needs_real_data
def test_real_files_match_their_pins():
    for spec in files.MNIST_FILES:
        path = files.find_file(REAL_DATA, spec)
        assert path is not None, f"{spec.name} missing from {REAL_DATA}"
        files.verified_bytes(path, spec)


@needs_real_data
def test_real_mnist_shapes_and_counts(real):
    assert real.train_images.shape == (60000, 28, 28) and real.test_images.shape == (10000, 28, 28)
    assert real.train_images.dtype == np.uint8 and real.train_labels.shape == (60000,)
    assert real.test_labels.shape == (10000,)
    assert np.bincount(real.train_labels).tolist() == TRAIN_COUNTS
    table = class_counts({"train": real.train_labels, "test": real.test_labels})
    assert table["train"].tolist() == TRAIN_COUNTS + [60000]
    assert table["test"].tolist() == TEST_COUNTS + [10000]
    assert real.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert real.train_images.max() == 255 and real.train_images.min() == 0


@needs_real_data
def test_real_data_through_the_environment_variable(monkeypatch):
    monkeypatch.setenv(files.ENV_VAR, REAL_DATA)
    assert load_mnist(download=False).directory == Path(REAL_DATA)
    assert os.environ[files.ENV_VAR] == REAL_DATA
