"""Kaggle digit-recognizer CSV: good files load, bad columns, dtypes and ranges are clear errors."""
import numpy as np
import pandas as pd
import pytest

from data_helpers import isolated_env  # noqa: F401 - autouse fixture
from tinygrad_mnist.data import CSVError, read_kaggle_csv
from tinygrad_mnist.data.kaggle import PIXEL_COLUMNS


def frame(n=3, labelled=True, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.integers(0, 256, (n, 784)), columns=PIXEL_COLUMNS)
    if labelled:
        df.insert(0, "label", rng.integers(0, 10, n))
    return df


def write(tmp_path, df, name="train.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def test_train_and_test_csv(tmp_path):
    df = frame()
    images, labels = read_kaggle_csv(write(tmp_path, df), labelled=True)
    assert images.shape == (3, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images.reshape(3, -1), df[PIXEL_COLUMNS].to_numpy())
    np.testing.assert_array_equal(labels, df["label"].to_numpy())
    assert labels.dtype == np.uint8
    images, labels = read_kaggle_csv(write(tmp_path, frame(labelled=False), "test.csv"))
    assert labels is None and images.shape == (3, 28, 28)


def mutate(kind):
    df = frame()
    if kind == "drop":
        return df.drop(columns=["pixel783"]), r"missing pixel783"
    if kind == "extra":
        return df.assign(extra=1), r"unexpected extra"
    if kind == "order":
        cols = list(df.columns)
        cols[1], cols[2] = cols[2], cols[1]
        return df[cols], r"columns are out of order"
    if kind == "float":
        return df.astype({"pixel10": float}).assign(pixel10=0.5), r"integers; pixel10 has dtype float64"
    if kind == "text":
        return df.astype({"pixel3": object}).assign(pixel3="x"), r"pixel3 has dtype (object|str)"
    if kind == "nan":
        df = df.astype({"pixel7": float})
        df.loc[1, "pixel7"] = np.nan
        return df, r"missing value in column pixel7, data row 2"
    if kind == "high":
        df.loc[2, "pixel400"] = 256
        return df, r"pixel value 256 outside 0..255 in column pixel400, data row 3"
    if kind == "negative":
        df.loc[0, "pixel0"] = -1
        return df, r"pixel value -1 outside 0..255 in column pixel0, data row 1"
    if kind == "label":
        df.loc[1, "label"] = 10
        return df, r"label value 10 outside 0..9 in column label, data row 2"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["drop", "extra", "order", "float", "text", "nan", "high",
                                  "negative", "label"])
def test_bad_csv_raises_a_clear_error(tmp_path, kind):
    df, message = mutate(kind)
    path = write(tmp_path, df)
    with pytest.raises(CSVError, match=message) as info:
        read_kaggle_csv(path)
    assert str(path) in str(info.value)


def test_label_column_required_or_forbidden(tmp_path):
    with pytest.raises(CSVError, match="missing the 'label' column"):
        read_kaggle_csv(write(tmp_path, frame(labelled=False)), labelled=True)
    with pytest.raises(CSVError, match="unexpected 'label' column"):
        read_kaggle_csv(write(tmp_path, frame()), labelled=False)


def test_empty_and_unreadable(tmp_path):
    with pytest.raises(CSVError, match="no rows"):
        read_kaggle_csv(write(tmp_path, frame(n=0)))
    with pytest.raises(CSVError, match="cannot read CSV"):
        read_kaggle_csv(tmp_path / "missing.csv")
