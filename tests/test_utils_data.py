"""`tinygrad_mnist.utils.data` (PyTorch's Dataset/DataLoader semantics), the MNIST
`Dataset` and the transforms."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinygrad_mnist as tg
from tinygrad_mnist.vision import datasets, transforms
from tinygrad_mnist.vision.utils import make_grid, save_image
from tinygrad_mnist.utils.data import (DataLoader, Dataset, Subset, TensorDataset,
                                       default_collate, random_split)

DATA = os.environ.get("TINYGRAD_MNIST_DATA")


class Squares(Dataset):
    def __len__(self):
        return 7

    def __getitem__(self, index):
        return np.full((2,), index, np.float32), index * index


def test_batches_are_collated_in_order_without_shuffling_by_default():
    batches = list(DataLoader(Squares(), batch_size=3))
    assert [len(y) for _, y in batches] == [3, 3, 1]
    x, y = batches[0]
    assert x.shape == (3, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert y.tolist() == [0, 1, 4]
    assert len(DataLoader(Squares(), batch_size=3)) == 3
    assert len(DataLoader(Squares(), batch_size=3, drop_last=True)) == 2
    assert [len(y) for _, y in DataLoader(Squares(), batch_size=3, drop_last=True)] == [3, 3]


def test_the_default_batch_size_is_one():
    x, y = next(iter(DataLoader(Squares())))
    assert x.shape == (1, 2) and y.tolist() == [0]


def test_shuffling_draws_a_new_order_each_epoch_reproducibly():
    loader = DataLoader(TensorDataset(tg.arange(20)), batch_size=20, shuffle=True,
                        generator=tg.Generator().manual_seed(3))
    first, second = (next(iter(loader))[0].tolist() for _ in range(2))
    assert sorted(first) == list(range(20)) and first != second
    tg.manual_seed(5)
    a = next(iter(DataLoader(TensorDataset(tg.arange(20)), batch_size=20, shuffle=True)))
    tg.manual_seed(5)
    b = next(iter(DataLoader(TensorDataset(tg.arange(20)), batch_size=20, shuffle=True)))
    assert a[0].tolist() == b[0].tolist()


def test_a_tensor_dataset_batches_as_collating_its_samples_would():
    ds = TensorDataset(tg.randn(10, 3), tg.arange(10))
    fast = list(DataLoader(ds, batch_size=4))
    slow = list(DataLoader(ds, batch_size=4, collate_fn=default_collate))
    for (xf, yf), (xs, ys) in zip(fast, slow):
        assert xf.equal(xs) and yf.equal(ys) and xf.dtype == xs.dtype


def test_samplers_and_custom_collate():
    ds = Squares()
    assert [y.tolist() for _, y in DataLoader(ds, batch_size=2, sampler=[6, 5, 4])] == \
        [[36, 25], [16]]
    assert [y.tolist() for _, y in DataLoader(ds, batch_sampler=[[1, 2], [0]])] == [[1, 4], [0]]
    assert next(iter(DataLoader(ds, batch_size=2, collate_fn=len))) == 2
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(ds, sampler=[0], shuffle=True)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        DataLoader(ds, batch_size=0)


def test_collate_keeps_the_structure_of_samples():
    batch = default_collate([{"x": np.zeros(2), "name": "a"}, {"x": np.ones(2), "name": "b"}])
    assert batch["x"].shape == (2, 2) and batch["name"] == ["a", "b"]
    assert default_collate([(True, 1.5), (False, 2.5)])[0].dtype == np.bool_
    assert default_collate([(True, 1.5), (False, 2.5)])[1].dtype == np.float64
    with pytest.raises(TypeError, match="give a collate_fn"):
        default_collate([object(), object()])


def test_random_split_and_subset():
    parts = random_split(range(10), [0.7, 0.3], generator=tg.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [7, 3]
    assert sorted(parts[0].indices + parts[1].indices) == list(range(10))
    assert [len(p) for p in random_split(range(5), [0.5, 0.5])] == [3, 2]  # remainder first
    with pytest.raises(ValueError, match="do not add up"):
        random_split(range(5), [2, 2])
    assert Subset(range(10), [9, 3])[1] == 3 and len(Subset(range(10), [9, 3])) == 2


@pytest.mark.filterwarnings("ignore:DataLoader. num_workers")
def test_workers_and_pinned_memory_are_accepted():
    loader = DataLoader(Squares(), batch_size=4, num_workers=2, pin_memory=True,
                        persistent_workers=True, prefetch_factor=2)
    assert [len(y) for _, y in loader] == [4, 3]
    in_process = DataLoader(Squares(), batch_size=4)
    assert [y.tolist() for _, y in loader] == [y.tolist() for _, y in in_process]


NUM_WORKERS_WARNING = """
import warnings
import numpy as np
from tinygrad_mnist.utils.data import DataLoader, TensorDataset
data = TensorDataset(np.arange(10.0))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    DataLoader(data, batch_size=4)                      # no workers asked: silent
    print(len(caught))
    DataLoader(data, batch_size=4, num_workers=2)       # told once...
    DataLoader(data, batch_size=4, num_workers=4)       # ...per process
for w in caught:
    print(w.category.__name__, w.filename.endswith("<string>"), str(w.message))
"""


def test_num_workers_is_said_once_per_process_never_silent():
    done = subprocess.run([sys.executable, "-c", NUM_WORKERS_WARNING], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "0" and len(lines) == 2, done.stdout
    kind, at_caller, message = lines[1].split(" ", 2)
    assert kind == "UserWarning" and at_caller == "True"  # points at the user's line
    assert message.startswith("DataLoader: num_workers=2 starts no worker processes")
    assert "num_workers=0" in message


def test_to_tensor_and_normalize():
    image = np.array([[0, 255], [51, 102]], np.uint8)
    t = transforms.ToTensor()(image)
    assert t.shape == (1, 2, 2) and t.dtype == np.float32
    np.testing.assert_allclose(t.numpy()[0], [[0, 1], [0.2, 0.4]], rtol=1e-6)
    n = transforms.Normalize((0.5,), (0.5,))(t)
    np.testing.assert_allclose(n.numpy()[0], [[-1, 1], [-0.6, -0.2]], rtol=1e-6)
    rgb = transforms.ToTensor()(np.zeros((4, 5, 3), np.float32))
    assert rgb.shape == (3, 4, 5)
    both = transforms.Compose([transforms.ToTensor(), transforms.Lambda(lambda x: x * 2)])
    assert both(image).numpy().max() == 2.0
    with pytest.raises(ValueError, match="channel mean"):
        transforms.Normalize((0.1, 0.2), (1, 1))(t)


def test_random_rotation_and_affine_turn_the_way_torchvision_says():
    """RandomRotation turns counter-clockwise for positive angles, RandomAffine
    clockwise (as torchvision documents them); both about the image centre, keeping the
    input's kind, shape and dtype."""
    image = np.zeros((5, 5), np.uint8)
    image[2, 4] = 200                                   # right of the centre
    up = transforms.RandomRotation((90, 90))(image)
    assert up.dtype == np.uint8 and np.argwhere(up).tolist() == [[0, 2]] and up.max() == 200
    down = transforms.RandomAffine((90, 90))(image)
    assert np.argwhere(down).tolist() == [[4, 2]]
    moved = transforms.RandomAffine(0, translate=(0.2, 0.2))(image.astype(np.float32))
    assert np.abs(np.argwhere(moved) - [2, 4]).max() <= 1 or not moved.any()
    tensor = tg.tensor(np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32))
    smooth = transforms.RandomRotation(15, transforms.InterpolationMode.BILINEAR, fill=0.5)
    out = smooth(tensor)
    assert isinstance(out, tg.Tensor) and out.shape == (2, 3, 8, 8) and out.dtype == tg.float32
    assert transforms.RandomAffine(0)(tensor).numpy().tolist() == tensor.numpy().tolist()
    steady = transforms.RandomRotation(30, generator=np.random.default_rng(3))
    again = transforms.RandomRotation(30, generator=np.random.default_rng(3))
    assert np.array_equal(steady(image), again(image))  # a seeded generator repeats
    with pytest.raises(ValueError, match="only expand=False and center=None"):
        transforms.RandomRotation(10, expand=True)
    with pytest.raises(ValueError, match="shear must be a number, or 2 or 4 values"):
        transforms.RandomAffine(0, shear=(1, 2, 3))
    with pytest.raises(ValueError, match="interpolation must be"):
        transforms.RandomRotation(10, interpolation="bicubic")


def test_random_crop_pads_then_cuts_a_window():
    image = np.arange(25, dtype=np.uint8).reshape(5, 5)
    crop = transforms.RandomCrop(5, padding=1, generator=np.random.default_rng(0))(image)
    assert crop.shape == (5, 5) and crop.dtype == np.uint8
    rows = [r for r in range(-1, 2) for c in range(-1, 2)
            if np.array_equal(crop, np.pad(image, 1)[1 + r:6 + r, 1 + c:6 + c])]
    assert rows, "the crop is a 5x5 window of the zero-padded image"
    assert transforms.RandomCrop((2, 3))(np.zeros((4, 4, 3))).shape == (2, 3, 3)
    edge = transforms.RandomCrop(8, pad_if_needed=True, padding_mode="edge")
    assert edge(np.ones((5, 5), np.float32)).min() == 1.0
    with pytest.raises(ValueError, match=r"the crop \(6, 6\) is larger than the"):
        transforms.RandomCrop(6)(image)
    with pytest.raises(ValueError, match="padding_mode must be"):
        transforms.RandomCrop(3, padding_mode="wrap")


def test_an_empty_root_without_download_is_named(tmp_path):
    with pytest.raises(Exception, match="MNIST.raw.*download=False"):
        datasets.MNIST(tmp_path, train=True, download=False)


@pytest.mark.skipif(not DATA, reason="set TINYGRAD_MNIST_DATA to read MNIST")
def test_the_mnist_dataset_reads_torchvisions_layout(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for path in Path(DATA).iterdir():
        (raw / path.name).symlink_to(path)
    assert len(datasets.MNIST(tmp_path, train=False)) == 10000


@pytest.mark.skipif(not DATA, reason="set TINYGRAD_MNIST_DATA to read MNIST")
def test_the_mnist_dataset_gives_images_and_labels():
    train = datasets.MNIST(DATA, train=True)
    test = datasets.MNIST(DATA, train=False, transform=transforms.ToTensor(),
                          target_transform=lambda y: y + 100)
    assert len(train) == 60000 and len(test) == 10000
    image, label = train[0]
    assert image.shape == (28, 28) and image.dtype == np.uint8 and isinstance(label, int)
    assert train.data.shape == (60000, 28, 28) and train.targets.dtype == np.int64
    x, y = test[0]
    assert x.shape == (1, 28, 28) and 0 <= x.numpy().min() and x.numpy().max() <= 1
    assert y == int(test.targets[0]) + 100
    xb, yb = next(iter(DataLoader(test, batch_size=16)))
    assert xb.shape == (16, 1, 28, 28) and yb.dtype == np.int64


# ------------------------------------------------------ vision.utils: make_grid, save_image
def test_make_grid_lays_images_out_as_torchvision_does():
    images = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 1, 2, 3)
    grid = make_grid(tg.tensor(images), nrow=2, padding=1, pad_value=-1).data
    assert grid.shape == (3, 3 * (2 + 1) + 1, 2 * (3 + 1) + 1)     # 3 rows of 2, 3 channels
    np.testing.assert_array_equal(grid[0, 1:3, 1:4], images[0, 0])  # first image, top left
    np.testing.assert_array_equal(grid[2, 1:3, 5:8], images[1, 0])  # second, to its right
    np.testing.assert_array_equal(grid[1, 4:6, 1:4], images[2, 0])  # third, next row
    assert (grid[:, 7:9, 5:8] == -1).all()                           # no sixth image
    assert (grid[:, 0] == -1).all() and (grid[:, :, 4] == -1).all()  # the padding
    one = make_grid(images[0])                   # one image: as it is, three channels
    assert one.shape == (3, 2, 3)
    normalized = make_grid(tg.tensor(images), normalize=True, padding=0).data
    assert normalized.min() == 0.0 and normalized.max() == 1.0
    with pytest.raises(ValueError, match="make_grid: expected images"):
        make_grid(np.zeros((1, 1, 1, 1, 1)))


def test_save_image_writes_the_grid_as_a_png(tmp_path):
    images = np.zeros((4, 1, 2, 2), np.float32)
    images[1] = 1.0
    save_image(tg.tensor(images), tmp_path / "grid.png", nrow=4, padding=0)
    with Image.open(tmp_path / "grid.png") as saved:
        assert saved.format == "PNG" and saved.size == (8, 2)
        pixels = np.asarray(saved.convert("L"))
    np.testing.assert_array_equal(pixels[:, 2:4], 255)
    np.testing.assert_array_equal(pixels[:, :2], 0)
