"""Preprocessing: scaling, standardisation, layouts, one-hot, splits, summaries, mnist_style."""
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from data_helpers import REAL_DATA, fake_arrays, isolated_env, needs_real_data  # noqa: F401
from tinygrad_mnist.data import (Stats, apply_standardization, class_counts, fit_standardization,
                                 load_image, load_mnist, mnist_style, one_hot, prepare, scale,
                                 to_layout, train_val_split)


def test_scale_to_float32_unit_range():
    x = scale(np.array([[0, 128, 255]], dtype=np.uint8))
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, [[0, 128 / 255, 1]], rtol=1e-6)
    with pytest.raises(TypeError, match="uint8"):
        scale(np.zeros(3, dtype=np.float32))


def test_standardisation_uses_training_statistics_only():
    arrays = fake_arrays()
    x_train, stats = prepare(arrays["train_images"], standardize=True)
    assert isinstance(stats, Stats) and json.loads(json.dumps(stats)) == list(stats)
    assert x_train.dtype == np.float32 and x_train.shape == (30, 784)
    assert abs(float(x_train.mean())) < 1e-5 and abs(float(x_train.std()) - 1) < 1e-4
    x_test, same = prepare(arrays["test_images"], layout="image", standardize=stats)
    assert same == stats and x_test.shape == (10, 1, 28, 28) and x_test.dtype == np.float32
    expected = (arrays["test_images"].astype(np.float64) / 255 - stats.mean) / stats.std
    np.testing.assert_allclose(x_test.reshape(10, 28, 28), expected, atol=1e-5)
    assert abs(float(x_test.mean())) > 1e-4  # not re-fitted on the test split
    plain, none = prepare(arrays["test_images"])
    assert none is None and plain.max() <= 1 and plain.min() >= 0


def test_standardisation_of_constant_data_is_an_error():
    with pytest.raises(ValueError, match="std is 0"):
        fit_standardization(np.zeros((2, 784), np.float32))
    np.testing.assert_allclose(apply_standardization(np.ones(2), Stats(0.5, 0.25)), [2, 2])


def test_layouts():
    x = np.arange(2 * 784, dtype=np.float32).reshape(2, 28, 28)
    assert to_layout(x, "flat").shape == (2, 784)
    image = to_layout(to_layout(x, "flat"), "image")
    assert image.shape == (2, 1, 28, 28)
    np.testing.assert_array_equal(image[:, 0], x)
    with pytest.raises(ValueError, match="layout must be one of"):
        to_layout(x, "nhwc")
    assert to_layout(np.zeros((2, 3, 4, 5)), "flat").shape == (2, 60)
    assert to_layout(np.zeros((2, 60)), "image", (3, 4, 5)).shape == (2, 3, 4, 5)
    with pytest.raises(ValueError, match="cannot tell the image shape"):
        to_layout(np.zeros((2, 10)), "image")
    with pytest.raises(ValueError, match="does not fit"):
        to_layout(np.zeros((2, 10)), "image", (3, 4, 5))


@given(st.lists(st.integers(0, 9), max_size=50))
def test_one_hot(labels):
    y = np.array(labels, dtype=np.int64)
    oh = one_hot(y)
    assert oh.dtype == np.float32 and oh.shape == (len(labels), 10)
    np.testing.assert_array_equal(oh.sum(axis=1), 1)
    np.testing.assert_array_equal(oh.argmax(axis=1), y)


def test_one_hot_rejects_bad_labels():
    with pytest.raises(ValueError, match=r"in 0..9, got values from 0 to 10"):
        one_hot(np.array([0, 10]))
    with pytest.raises(ValueError, match="1-D integer"):
        one_hot(np.array([0.5]))


@pytest.mark.parametrize("stratify", [False, True])
def test_split_is_seeded_disjoint_and_complete(stratify):
    y = np.repeat(np.arange(10), [50, 60, 70, 80, 90, 100, 110, 120, 130, 190])
    x = np.arange(len(y))
    a = train_val_split(x, y, val_size=100, seed=3, stratify=stratify)
    b = train_val_split(x, y, val_size=100, seed=3, stratify=stratify)
    c = train_val_split(x, y, val_size=100, seed=4, stratify=stratify)
    assert len(a.x_val) == 100 and len(a.x_train) == len(y) - 100
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert not np.array_equal(a.x_val, c.x_val)
    assert np.array_equal(np.sort(np.concatenate([a.x_train, a.x_val])), x)
    np.testing.assert_array_equal(y[a.x_val], a.y_val)
    if stratify:  # exactly proportional: 5%, 6%, ... of each class
        assert np.bincount(a.y_val).tolist() == [5, 6, 7, 8, 9, 10, 11, 12, 13, 19]


def test_split_validation():
    with pytest.raises(ValueError, match="val_size must be in 0..3"):
        train_val_split(np.zeros(3), np.zeros(3), val_size=4)
    with pytest.raises(ValueError, match="x has 3 samples but y has 2"):
        train_val_split(np.zeros(3), np.zeros(2), val_size=1)


def test_class_counts_table():
    table = class_counts({"train": np.array([0, 1, 1, 9]), "val": np.array([2])})
    assert list(table.columns) == ["train", "val"]
    assert table["train"].tolist() == [1, 2, 0, 0, 0, 0, 0, 0, 0, 1, 4]
    assert table.loc["total", "val"] == 1 and table.index[-1] == "total"


# ---------------------------------------------------------------- mnist_style and load_image
def drawn_digit(size=(300, 200), dark_on_light=True):
    """A '7'-like stroke drawn off-centre on a large canvas."""
    im = Image.new("L", size, 255 if dark_on_light else 0)
    draw = ImageDraw.Draw(im)
    ink = 0 if dark_on_light else 255
    draw.line([(40, 30), (140, 30), (70, 170)], fill=ink, width=12)
    return np.asarray(im)


def assert_mnist_like(out):
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1 and out.max() > 0.9
    rows, cols = np.flatnonzero(out.any(axis=1)), np.flatnonzero(out.any(axis=0))
    assert rows[-1] - rows[0] + 1 <= 21 and cols[-1] - cols[0] + 1 <= 21   # fits ~20x20
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 >= 19
    ys, xs = np.indices(out.shape)
    centre = np.array([(ys * out).sum(), (xs * out).sum()]) / out.sum()
    np.testing.assert_allclose(centre, [14, 14], atol=0.75)  # as in MNIST itself
    assert out[0].max() == 0 and out[:, 0].max() == 0   # black background


def test_mnist_style_of_dark_ink_on_light_paper():
    out = mnist_style(drawn_digit())
    assert_mnist_like(out)


def test_mnist_style_inversion_and_float_input_agree():
    light = mnist_style(drawn_digit())
    np.testing.assert_allclose(mnist_style(drawn_digit(dark_on_light=False)), light, atol=1e-6)
    np.testing.assert_allclose(mnist_style(drawn_digit() / 255.0), light, atol=1e-6)


def test_mnist_style_keeps_aspect_ratio():
    im = np.zeros((100, 100), np.uint8)
    im[10:90, 45:55] = 255   # a tall bar, 8:1
    out = mnist_style(im)
    rows, cols = np.flatnonzero(out.max(axis=1) > 0.5), np.flatnonzero(out.max(axis=0) > 0.5)
    assert len(rows) == 20 and 2 <= len(cols) <= 4


def test_mnist_style_empty_image():
    for blank in (np.full((50, 40), 255, np.uint8), np.zeros((28, 28), np.float32)):
        with pytest.raises(ValueError, match="no ink"):
            mnist_style(blank)
    with pytest.raises(ValueError, match="2-D"):
        mnist_style(np.zeros((2, 28, 28)))


@needs_real_data
def test_mnist_style_recovers_a_real_digit():
    """MNIST digits scaled up 5x and printed dark-on-light come back close to themselves."""
    correlations = []
    for digit in load_mnist(REAL_DATA, download=False).test_images[:20]:
        big = np.asarray(Image.fromarray(255 - digit).resize((140, 140), Image.BICUBIC))
        out = mnist_style(big)
        assert_mnist_like(out)
        correlations.append(np.corrcoef(out.ravel(), digit.ravel() / 255)[0, 1])
    assert np.median(correlations) > 0.95


def test_load_image_flattens_alpha_onto_white(tmp_path):
    im = Image.new("RGBA", (40, 30), (0, 0, 0, 0))      # transparent black
    ImageDraw.Draw(im).rectangle([10, 10, 20, 20], fill=(0, 0, 0, 255))
    im.save(tmp_path / "d.png")
    grey = load_image(tmp_path / "d.png")
    assert grey.shape == (30, 40) and grey.dtype == np.uint8
    assert grey[0, 0] == 255 and grey[15, 15] == 0
    Image.fromarray(drawn_digit()).convert("RGB").save(tmp_path / "d.jpg")
    assert_mnist_like(mnist_style(load_image(tmp_path / "d.jpg")))


def test_load_image_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="image file not found: .*nope.png"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read image .*junk.png"):
        load_image(tmp_path / "junk.png")
