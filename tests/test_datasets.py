"""The dataset registry (against a local HTTP server and small IDX files written here),
data given as a folder (IDX files, image folders, Kaggle CSV), and training the app on
any image shape and number of classes."""
import dataclasses
import gzip
import hashlib
import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import tinygrad_mnist as tg
from data_helpers import (fake_arrays, gz_bytes, isolated_env, listing, pin_dataset,  # noqa: F401
                          server, write_files)
from tinygrad_mnist import models
from tinygrad_mnist.app import cli
from tinygrad_mnist.models import build_model
from tinygrad_mnist.app.config import TrainConfig, recipe_note
from tinygrad_mnist.data import (ChecksumError, DataError, HttpMirror, ImageData, LocalMirror,
                                 default_mirrors, fashion_style, files, load_dataset,
                                 load_folder, load_mnist, mnist_style, registry, write_idx)
from tinygrad_mnist.errors import UsageError
from tinygrad_mnist.app.inference import load_trained, predict_proba
from tinygrad_mnist.app.predict import picture_steps, predict
from tinygrad_mnist.app.serve import load_predictor

FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot")


# ------------------------------------------------------------------------ the registry
def test_registry_entries_are_complete():
    assert list(registry.DATASETS)[:3] == ["mnist", "fashion-mnist", "kmnist"]
    for name, info in registry.DATASETS.items():
        assert info.name == name and len(info.classes) == 10 and info.homepage
        assert [s.role for s in info.files] == ["train_images", "train_labels", "test_images",
                                                "test_labels"]
        for spec in info.files:
            pin = spec.sha256 or spec.gz_sha256
            assert re.fullmatch("[0-9a-f]{64}", pin), (name, spec)
    assert registry.DATASETS["fashion-mnist"].classes == FASHION
    assert registry.DATASETS["fashion-mnist"].env_var == "TINYGRAD_FASHION_MNIST_DATA"
    assert registry.DATASETS["mnist"].env_var == files.ENV_VAR == "TINYGRAD_MNIST_DATA"
    assert "dataset-fashion-mnist" in registry.DATASETS["fashion-mnist"].offline
    with pytest.raises(ValueError, match="unknown dataset 'cifar'; registered: mnist, "):
        registry.get_dataset("cifar")


def test_the_real_pins_are_unchanged():
    """The registry must keep MNIST's pins, and Fashion-MNIST's are Zalando's files'."""
    assert registry.DATASETS["mnist"].files == tuple(files.MNIST_FILES)
    digest = registry.DATASETS["fashion-mnist"].files[0].sha256
    assert digest.startswith("c59f468a2f67")


def test_download_a_registered_dataset_into_its_own_cache(server, monkeypatch, isolated_env):
    arrays = fake_arrays(seed=3)
    url = server.serve("fashion", arrays)
    pin_dataset(monkeypatch, "fashion-mnist", arrays, mirrors=(url,))
    data = load_dataset("fashion-mnist", quiet=True)
    cache = isolated_env.parent / "fashion-mnist"
    assert data.source == cache and data.name == "fashion-mnist" and data.classes == FASHION
    np.testing.assert_array_equal(data.train_images, arrays["train_images"])
    assert data.image_shape == (1, 28, 28) and data.num_classes == 10
    assert len(listing(cache)) == 4
    server.requests.clear()
    load_dataset("fashion-mnist", quiet=True)    # from the cache
    assert server.requests == []


def test_a_system_package_folder_is_used_first_and_only_when_it_matches(
        server, monkeypatch, tmp_path, isolated_env):
    arrays = fake_arrays(seed=4)
    debian = write_files(tmp_path / "usr-share", arrays)
    stale = write_files(tmp_path / "stale", fake_arrays(seed=9))
    url = server.serve("web", arrays)
    pin_dataset(monkeypatch, "fashion-mnist", arrays, mirrors=(url,),
                local_dirs=(str(stale), str(debian), str(tmp_path / "absent")))
    mirrors = default_mirrors("fashion-mnist")
    assert [type(m) for m in mirrors] == [LocalMirror, LocalMirror, HttpMirror]
    data = load_dataset("fashion-mnist", quiet=True)
    np.testing.assert_array_equal(data.test_labels, arrays["test_labels"])
    assert server.requests == []                 # the matching local folder sufficed
    assert len(listing(stale)) == 4              # a folder that does not match is left alone


def test_each_dataset_has_its_own_variable(monkeypatch, tmp_path):
    arrays = fake_arrays(seed=5)
    pin_dataset(monkeypatch, "kmnist", arrays)
    folder = write_files(tmp_path / "k", arrays)
    monkeypatch.setenv("TINYGRAD_KMNIST_DATA", str(folder))
    assert load_dataset("kmnist", download=False).source == folder
    with pytest.raises(DataError, match=r"\(from TINYGRAD_FASHION_MNIST_DATA\) lacks"):
        monkeypatch.setenv("TINYGRAD_FASHION_MNIST_DATA", str(tmp_path / "none"))
        load_dataset("fashion-mnist", download=False)


def test_a_dataset_pinned_by_its_gz_files(server, monkeypatch, tmp_path, isolated_env):
    """KMNIST's publisher gives digests of the .gz files: those pin them as distributed."""
    arrays = fake_arrays(seed=6)
    specs = tuple(dataclasses.replace(
        s, sha256=None, gz_sha256=hashlib.sha256(gz_bytes(arrays[s.role])).hexdigest())
        for s in registry.DATASETS["kmnist"].files)
    url = server.serve("k", arrays)
    monkeypatch.setitem(registry.DATASETS, "kmnist", dataclasses.replace(
        registry.DATASETS["kmnist"], files=specs, mirrors=(url,)))
    data = load_dataset("kmnist", quiet=True)
    np.testing.assert_array_equal(data.train_labels, arrays["train_labels"])
    assert data.classes[:3] == ("o", "ki", "su")
    raw = write_files(tmp_path / "raw", arrays, compress=False)
    with pytest.raises(ChecksumError, match="keep the .gz as downloaded"):
        load_dataset("kmnist", raw)


def test_another_datasets_files_are_named_and_never_replaced(server, monkeypatch, tmp_path):
    """The issue's case: Fashion-MNIST's files where MNIST is expected."""
    mnist, fashion = fake_arrays(seed=7), fake_arrays(seed=8)
    pin_dataset(monkeypatch, "mnist", mnist, mirrors=(server.serve("m", mnist),))
    pin_dataset(monkeypatch, "fashion-mnist", fashion)
    folder = write_files(tmp_path / "mine", fashion)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(ChecksumError) as info:
        load_mnist(folder, quiet=True)
    message = str(info.value)
    assert "(MNIST expected)" in message and "Fashion-MNIST's train-images-idx3-ubyte" in message
    assert "--dataset fashion-mnist" in message
    assert "delete" not in message and "download" not in message.split("\n")[1]
    assert server.requests == []
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    foreign = write_files(tmp_path / "foreign", fake_arrays(seed=11))
    with pytest.raises(ChecksumError, match="(?s)Fashion-MNIST expected.*without --dataset"):
        load_dataset("fashion-mnist", foreign)


def test_the_download_command_takes_a_dataset(server, monkeypatch, capsys, tmp_path):
    from tinygrad_mnist.data.__main__ import main
    arrays = fake_arrays(seed=12)
    pin_dataset(monkeypatch, "fashion-mnist", arrays, mirrors=(server.serve("f", arrays),))
    assert main(["download", "--dataset", "fashion-mnist", "--dir", str(tmp_path / "f"),
                 "--quiet"]) == 0
    assert "Fashion-MNIST files verified in" in capsys.readouterr().out


# ------------------------------------------------------------------ data in a folder
def test_a_folder_of_a_registered_datasets_files_loads_as_that_dataset(monkeypatch, tmp_path):
    arrays = fake_arrays(seed=13)
    pin_dataset(monkeypatch, "fashion-mnist", arrays)
    folder = tmp_path / "f"
    folder.mkdir()
    for role, name in (("train_images", "fashion-train-images-idx3-ubyte"),
                       ("train_labels", "fashion-train-labels-idx1-ubyte"),
                       ("test_images", "fashion-t10k-images-idx3-ubyte.gz"),
                       ("test_labels", "fashion-t10k-labels-idx1-ubyte.gz")):
        write_idx(folder / name, arrays[role])
    data = load_folder(folder)
    assert data.name == "fashion-mnist" and data.classes == FASHION
    write_idx(folder / "fashion-t10k-labels-idx1-ubyte.gz", arrays["test_labels"][::-1].copy())
    with pytest.raises(ChecksumError, match="not Fashion-MNIST's test labels file"):
        load_folder(folder)


def test_unregistered_idx_files_load_unchecked_said_once(tmp_path, capsys):
    rng = np.random.default_rng(0)
    folder = tmp_path / "emnist-like"
    write_idx(folder / "emnist-balanced-train-images-idx3-ubyte.gz",
              rng.integers(0, 256, (94, 28, 28), dtype=np.uint8))
    write_idx(folder / "emnist-balanced-train-labels-idx1-ubyte.gz",
              np.arange(94, dtype=np.uint8) % 47)
    write_idx(folder / "emnist-balanced-test-images-idx3-ubyte.gz",
              rng.integers(0, 256, (47, 28, 28), dtype=np.uint8))
    write_idx(folder / "emnist-balanced-test-labels-idx1-ubyte.gz", np.arange(47, dtype=np.uint8))
    data = load_folder(folder)
    assert data.name == "idx" and data.num_classes == 47 and data.classes[-1] == "46"
    assert "without checking their digests" in capsys.readouterr().err
    load_folder(folder)
    assert capsys.readouterr().err == ""                     # said once
    (folder / "emnist-balanced-test-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="IDX files for test labels are missing"):
        load_folder(folder)


def make_image_folder(root, shape=(3, 32, 32), classes=("cat", "dog", "emu", "fox", "gnu"),
                      per_class=(12, 3), seed=0):
    """``root/train/<class>/*.png`` and ``root/test/...``: each class a distinct colour
    blob position, so a model can learn it quickly."""
    rng = np.random.default_rng(seed)
    c, h, w = shape
    for split, n in zip(("train", "test"), per_class):
        for k, name in enumerate(classes):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                a = rng.integers(0, 40, (h, w, 3), dtype=np.uint8)
                y0, x0 = (k * 5) % (h - 8), (k * 7) % (w - 8)
                a[y0:y0 + 8, x0:x0 + 8, k % 3] = 250
                im = Image.fromarray(a if c == 3 else a.max(axis=2))
                im.save(root / split / name / f"{i}.png")
    return root


def test_an_image_folder_with_train_and_test(tmp_path):
    root = make_image_folder(tmp_path / "pets")
    data = load_folder(root)
    assert isinstance(data, ImageData) and data.name == "image-folder"
    assert data.classes == ("cat", "dog", "emu", "fox", "gnu")
    assert data.train_images.shape == (60, 3, 32, 32) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (15, 3, 32, 32) and data.image_shape == (3, 32, 32)
    assert np.bincount(data.test_labels).tolist() == [3] * 5
    grey = load_folder(root, channels=1, image_size=16)
    assert grey.train_images.shape == (60, 16, 16) and grey.image_shape == (1, 16, 16)


def test_an_image_folder_of_class_folders_only(tmp_path):
    root = tmp_path / "digits"
    for k in range(3):
        (root / str(k)).mkdir(parents=True)
        for i in range(7):
            Image.new("L", (20, 20), 30 * k + i).save(root / str(k) / f"{i}.png")
    data = load_folder(root)
    assert data.image_shape == (1, 20, 20) and len(data.test_labels) == 3   # a seventh
    assert np.bincount(data.test_labels).tolist() == [1, 1, 1]              # stratified
    Image.new("L", (30, 20)).save(root / "0" / "odd.png")
    with pytest.raises(DataError, match="different sizes .* --image-size N"):
        load_folder(root)
    assert load_folder(root, image_size=24).image_shape == (1, 24, 24)
    with pytest.raises(DataError, match="no class sub-folders"):
        load_folder(tmp_path / "digits" / "0")


def test_a_kaggle_csv_is_training_data(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.integers(0, 256, (70, 784)),
                         columns=[f"pixel{i}" for i in range(784)])
    frame.insert(0, "label", np.arange(70) % 10)
    frame.to_csv(tmp_path / "train.csv", index=False)
    data = load_folder(tmp_path / "train.csv")
    assert data.name == "kaggle-csv" and data.train_images.shape == (60, 28, 28)
    assert len(data.test_labels) == 10 and sorted(data.test_labels.tolist()) == list(range(10))
    assert load_folder(tmp_path).name == "kaggle-csv"       # the folder holding train.csv
    with pytest.raises(FileNotFoundError, match="no data at"):
        load_folder(tmp_path / "nothing")


def test_a_datasets_cnn_recipe_fills_only_what_a_run_leaves_unset(capsys):
    fashion = TrainConfig(model="cnn", dataset="Fashion-MNIST").validate()
    assert (fashion.conv_channels, fashion.epochs, fashion.augment) == ([64, 128, 256], 20,
                                                                        "shift")
    assert recipe_note(fashion) == ("The CNN's recipe for fashion-mnist: --augment shift, "
                                    "--conv-channels 64 128 256, --epochs 20")
    mine = TrainConfig(model="cnn", dataset="fashion-mnist", epochs=3, conv_channels=[8],
                       augment="none").validate()
    assert (mine.conv_channels, mine.epochs, mine.augment) == ([8], 3, "none")
    assert recipe_note(mine) == ""
    mnist = TrainConfig(model="cnn", dataset="mnist").validate()
    assert (mnist.conv_channels, mnist.epochs, mnist.augment) == ([32, 64, 128], 12, "affine")
    mlp = TrainConfig(dataset="fashion-mnist").validate()     # a recipe of the CNN only
    assert (mlp.conv_channels, mlp.epochs, mlp.augment) == (None, 12, "none")
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert "the cnn on fashion-mnist: 20" in " ".join(capsys.readouterr().out.split())


def test_a_saved_run_keeps_the_defaults_it_was_made_with(tmp_path):
    """A run's saved options meant the model's defaults when it was made (an earlier
    version saved the CNN's widths as null); a dataset recipe added since must not
    change the network its weights load into, nor what --resume continues."""
    config = TrainConfig(model="cnn", dataset="fashion-mnist", conv_channels=[32, 64, 128],
                         hidden=[16]).validate()
    saved = {**dataclasses.asdict(config), "conv_channels": None}
    tg.save({"format": "tinygrad_mnist.model", "model": build_model(config).state_dict(),
             "config": saved, "stats": [0.3, 0.3], "epoch": 0, "val_acc": None},
            tmp_path / "best.npz")
    assert load_trained(tmp_path).model[0].weight.shape == (32, 1, 3, 3)
    assert TrainConfig.from_dict(saved, saved=True).conv_channels == [32, 64, 128]
    assert TrainConfig.from_dict(saved).conv_channels == [64, 128, 256]   # a new run's


# ------------------------------------------------------------ any shape through the app
def test_cnn_and_mlp_take_any_image_shape_and_class_count():
    rng = np.random.default_rng(0)
    cnn = models.build("cnn", (3, 32, 32), 47, hidden=[16], generator=rng)
    x = tg.Tensor(rng.standard_normal((4, 3, 32, 32)).astype(np.float32))
    logits = cnn(x)
    assert logits.shape == (4, 47)
    tg.cross_entropy(logits, np.arange(4)).backward()
    assert all(p.grad is not None for p in cnn.parameters())
    assert cnn[0].weight.shape == (32, 3, 3, 3)
    assert predict_proba(cnn, np.zeros((0, 3, 32, 32), np.float32)).shape == (0, 47)
    mlp = models.build("mlp", (3, 32, 32), 5, hidden=[8])
    assert mlp(tg.Tensor(np.zeros((2, 3072), np.float32))).shape == (2, 5)
    with pytest.raises(ValueError, match="between 1 and 3 conv blocks"):
        models.CNN(channels=(8, 8, 8, 8), image_shape=(1, 8, 8))


def test_the_app_trains_on_a_colour_image_folder(tmp_path, capsys):
    root = make_image_folder(tmp_path / "pets", per_class=(6, 2))
    out = tmp_path / "run"
    assert cli.main(["train", "--data-dir", str(root), "--model", "cnn", "--hidden", "16",
                     "--epochs", "1", "--batch-size", "16", "--val-size", "10", "--out",
                     str(out), "-qq"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [row["class"] for row in report["per_class"]][:5] == ["cat", "dog", "emu", "fox",
                                                                "gnu"]
    assert np.array(report["confusion_matrix"]).shape == (5, 5)
    assert "| fox |" in (out / "report.md").read_text()
    for png in ("confusion_matrix.png", "misclassified.png", "first_layer_weights.png"):
        assert (out / png).stat().st_size > 0
    trained = load_trained(out)
    assert trained.classes == ("cat", "dog", "emu", "fox", "gnu")
    assert trained.image_shape == (3, 32, 32)
    with pytest.raises(UsageError, match=r"serve is a page for drawing digits; this model "
                                         r"classifies 3x32x32 images into 5 classes \(cat"):
        load_predictor(out)
    assert cli.main(["evaluate", str(out), "--no-plots"]) == 0
    results, _ = predict(out, [root / "test" / "fox" / "0.png"])
    assert results[0].error is None and results[0].names[0] in trained.classes
    capsys.readouterr()


def test_the_app_trains_on_47_classes_of_unregistered_idx_and_a_registered_name(
        monkeypatch, tmp_path):
    rng = np.random.default_rng(2)
    folder = tmp_path / "balanced"
    labels = np.arange(188) % 47
    write_idx(folder / "train-images-idx3-ubyte", rng.integers(0, 256, (188, 28, 28),
                                                                dtype=np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte", labels.astype(np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte", rng.integers(0, 256, (47, 28, 28),
                                                               dtype=np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(47, dtype=np.uint8))
    assert cli.main(["train", "--data-dir", str(folder), "--hidden", "8", "--epochs", "1",
                     "--val-size", "47", "--out", str(tmp_path / "r47"), "--no-plots",
                     "-qq"]) == 0
    assert len(load_trained(tmp_path / "r47").classes) == 47
    arrays = fake_arrays(n_train=40, seed=14)
    pin_dataset(monkeypatch, "fashion-mnist", arrays)
    monkeypatch.setenv("TINYGRAD_FASHION_MNIST_DATA", str(write_files(tmp_path / "f", arrays)))
    assert cli.main(["train", "--dataset", "fashion-mnist", "--hidden", "8", "--epochs", "1",
                     "--val-size", "10", "--out", str(tmp_path / "rf"), "--no-plots",
                     "-qq"]) == 0
    trained = load_trained(tmp_path / "rf")
    assert trained.classes == FASHION and trained.config.dataset == "fashion-mnist"
    assert "| Ankle boot |" in (tmp_path / "rf" / "report.md").read_text()
    # a photo for a Fashion-MNIST model goes through Fashion-MNIST's steps, not MNIST's
    assert picture_steps(trained) is fashion_style
    assert picture_steps(load_trained(tmp_path / "r47")) is mnist_style


def test_loaded_images_are_the_same_arrays_as_load_mnist(monkeypatch, tmp_path):
    arrays = fake_arrays(seed=15)
    pin_dataset(monkeypatch, "mnist", arrays)
    folder = write_files(tmp_path / "m", arrays)
    a, b = load_mnist(folder), load_dataset("mnist", folder)
    np.testing.assert_array_equal(a.train_images, b.train_images)
    assert b.classes == registry.DIGITS
    assert gzip.decompress((folder / "train-labels-idx1-ubyte.gz").read_bytes())[:4] == \
        b"\x00\x00\x08\x01"
