"""Metrics against plain-loop recomputations; plots render and save PNGs."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, strategies as st

from tinygrad_mnist.app import metrics, plots

labels = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=60)


@given(labels)
def test_metrics_match_loops(pairs):
    y_true = np.array([p[0] for p in pairs])
    y_pred = np.array([p[1] for p in pairs])
    cm = metrics.confusion_matrix(y_true, y_pred, 5)
    loop = np.zeros((5, 5), int)
    for t, p in pairs:
        loop[t, p] += 1
    np.testing.assert_array_equal(cm, loop)
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(
        sum(t == p for t, p in pairs) / len(pairs))
    report = metrics.classification_report(y_true, y_pred, 5)
    for c in range(5):
        tp = sum(t == c and p == c for t, p in pairs)
        pred = sum(p == c for _, p in pairs)
        true = sum(t == c for t, _ in pairs)
        precision = tp / pred if pred else 0.0
        recall = tp / true if true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        row = report.loc[str(c)]
        assert row["precision"] == pytest.approx(precision)
        assert row["recall"] == pytest.approx(recall)
        assert row["f1"] == pytest.approx(f1)
        assert row["support"] == true
    assert report.loc["weighted avg", "recall"] == pytest.approx(
        metrics.accuracy(y_true, y_pred))


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="3 labels but y_pred has 2"):
        metrics.accuracy([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="outside"):
        metrics.confusion_matrix([0, 12], [0, 1], 10)


def test_plots_render_to_png(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.5, 0.3],
                       "val_loss": [1.1, 0.6, 0.4], "train_acc": [0.7, 0.8, 0.9],
                       "val_acc": [0.6, 0.75, 0.85]})
    images = rng.random((20, 784))
    y_true = rng.integers(0, 10, 20)
    y_pred = rng.integers(0, 10, 20)
    made = [
        plots.learning_curves(df, tmp_path / "curves.png"),
        plots.confusion_matrix(metrics.confusion_matrix(y_true, y_pred), tmp_path / "cm.png"),
        plots.misclassified(images, y_true, y_pred, rng.random(20), tmp_path / "wrong.png"),
        plots.first_layer_weights(rng.standard_normal((16, 784)), tmp_path / "w.png"),
        plots.first_layer_weights(rng.standard_normal((8, 1, 3, 3)), tmp_path / "w3.png"),
    ]
    for fig, name in zip(made, ["curves", "cm", "wrong", "w", "w3"]):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert fig.axes
