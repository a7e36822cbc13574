"""DataLoader: batching, seeded epochs, bitwise resume from a JSON state, augmentation."""
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from data_helpers import isolated_env  # noqa: F401 - autouse fixture
from tinygrad_mnist.data import DataLoader, shift_images


def data(n=50):
    x = np.arange(n * 784, dtype=np.float32).reshape(n, 784)
    return x, np.arange(n)


def epoch(loader):
    return [(xb.copy(), yb.copy()) for xb, yb in loader]


@given(n=st.integers(1, 40), batch=st.integers(1, 12), drop_last=st.booleans(),
       shuffle=st.booleans())
def test_each_epoch_is_a_permutation_in_batches(n, batch, drop_last, shuffle):
    x, y = data(n)
    loader = DataLoader(x, y, batch, shuffle=shuffle, drop_last=drop_last, seed=1)
    batches = epoch(loader)
    assert len(batches) == len(loader) == (n // batch if drop_last else -(-n // batch))
    assert all(len(yb) == batch for _, yb in batches[:-1] if batches)
    seen = np.concatenate([yb for _, yb in batches]) if batches else np.array([], int)
    assert len(set(seen.tolist())) == len(seen) == (len(loader) * batch if drop_last else n)
    for xb, yb in batches:
        np.testing.assert_array_equal(xb, x[yb])   # images stay with their labels
    if not shuffle and batches:
        np.testing.assert_array_equal(seen, np.arange(len(seen)))


def test_same_seed_same_order_fresh_order_each_epoch():
    x, y = data()
    a, b = DataLoader(x, y, 8, seed=7), DataLoader(x, y, 8, seed=7)
    first_a, first_b = [yb for _, yb in a], [yb for _, yb in b]
    assert all(np.array_equal(p, q) for p, q in zip(first_a, first_b))
    second = np.concatenate([yb for _, yb in a])
    assert not np.array_equal(np.concatenate(first_a), second) and a.epoch == 1
    other = np.concatenate([yb for _, yb in DataLoader(x, y, 8, seed=8)])
    assert not np.array_equal(np.concatenate(first_a), other)


@pytest.mark.parametrize("stop_after", [0, 3, 7, 8])  # 8: saved at the end of an epoch
def test_resume_bitwise_from_json_state(stop_after):
    x, y = data()
    reference = DataLoader(x.reshape(-1, 1, 28, 28), y, 7, seed=3, augment_shift=2)
    epoch(reference)                                     # epoch 0
    expected = epoch(reference) + epoch(reference)       # epochs 1 and 2

    loader = DataLoader(x.reshape(-1, 1, 28, 28), y, 7, seed=3, augment_shift=2)
    epoch(loader)
    it = iter(loader)
    got = [tuple(a.copy() for a in next(it)) for _ in range(stop_after)]
    state = json.loads(json.dumps(loader.state_dict()))  # plain JSON, no pickle

    resumed = DataLoader(x.reshape(-1, 1, 28, 28), y, 7, seed=3, augment_shift=2)
    resumed.load_state_dict(state)
    while len(got) < len(expected):                     # the rest of epoch 1, then 2
        got += epoch(resumed)
    assert len(got) == len(expected)
    for (xa, ya), (xb, yb) in zip(got, expected):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)


def test_state_dict_must_match_the_data():
    x, y = data()
    state = DataLoader(x, y, 5).state_dict()
    with pytest.raises(ValueError, match="num_samples=50, this loader has 49"):
        DataLoader(x[:49], y[:49], 5).load_state_dict(state)


def test_unlabelled_data_yields_arrays():
    x, _ = data(10)
    batches = list(DataLoader(x, batch_size=4, shuffle=False))
    assert [b.shape for b in batches] == [(4, 784), (4, 784), (2, 784)]
    np.testing.assert_array_equal(np.concatenate(batches), x)


def reference_shift(image, dy, dx):
    out = np.zeros_like(image)
    for r in range(28):
        for c in range(28):
            if 0 <= r - dy < 28 and 0 <= c - dx < 28:
                out[r, c] = image[r - dy, c - dx]
    return out


@pytest.mark.parametrize("shape", [(5, 784), (5, 28, 28), (5, 1, 28, 28)])
def test_shift_images_matches_a_per_pixel_reference(shape):
    rng = np.random.default_rng(0)
    x = rng.random((5, 28, 28), dtype=np.float32)
    dy, dx = np.array([0, 1, -2, 3, -1]), np.array([2, 0, -1, -3, 1])
    out = shift_images(x.reshape(shape), dy, dx)
    assert out.shape == shape and out.dtype == np.float32
    for i in range(5):
        np.testing.assert_array_equal(out.reshape(5, 28, 28)[i], reference_shift(x[i], dy[i], dx[i]))


def test_augmentation_shifts_within_bounds_and_varies():
    x = np.zeros((64, 28, 28), np.float32)
    x[:, 14, 14] = 1
    loader = DataLoader(x, np.zeros(64), 64, shuffle=False, augment_shift=2, seed=0)
    (xb, _), = list(loader)
    pos = np.argwhere(xb == 1)
    assert len(pos) == 64 and np.abs(pos[:, 1:] - 14).max() == 2
    assert len({tuple(p) for p in pos[:, 1:]}) > 10
    assert x.max() == 1 and np.count_nonzero(x) == 64    # the source data is untouched


def test_bad_arguments():
    x, y = data()
    with pytest.raises(ValueError, match="x has 50 samples but y has 49"):
        DataLoader(x, y[:49])
    with pytest.raises(ValueError, match="batch_size must be positive"):
        DataLoader(x, y, 0)
    with pytest.raises(ValueError, match="cannot tell the image shape"):
        DataLoader(np.zeros((4, 10)), augment_shift=1)
    with pytest.raises(ValueError, match="augment_shift must be >= 0"):
        DataLoader(x, y, augment_shift=-1)
