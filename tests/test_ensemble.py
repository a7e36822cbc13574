"""Ensembles: the probabilities are the mean of the members'; evaluate writes a report
comparing each member with the ensemble; a sweep directory gives its best runs; predict,
serve and the ONNX export (one graph, MLP and CNN members together) use the ensemble."""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pandas as pd
import pytest

import tinygrad_mnist as tg
from tinygrad_mnist.app import cli
from tinygrad_mnist.models import build_model
from tinygrad_mnist.app.config import TrainConfig
from tinygrad_mnist.data import load_mnist, write_idx
from tinygrad_mnist.app.inference import (Ensemble, Trained, load_models, load_trained,
                                      resolve_runs)
from tinygrad_mnist.app.predict import predict
from tinygrad_mnist.app.serve import load_predictor
from tinygrad_mnist.app.train import train

pytestmark = pytest.mark.skipif(not os.environ.get("TINYGRAD_MNIST_DATA"),
                                reason="set TINYGRAD_MNIST_DATA to the MNIST folder")
TINY = dict(limit=2000, val_size=400, epochs=1, batch_size=64, plots=False, quiet=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two small MLPs trained here (different widths and seeds), and an untrained CNN
    checkpoint (a member of another layout, for the export)."""
    root = tmp_path_factory.mktemp("members")
    a = train(TrainConfig(hidden=[32], seed=0, out=str(root / "a"), **TINY))
    b = train(TrainConfig(hidden=[16], seed=1, out=str(root / "b"), **TINY))
    config = TrainConfig(model="cnn", hidden=[16], seed=2).validate()
    (root / "cnn").mkdir()
    tg.save({"format": "tinygrad_mnist.model", "model": build_model(config).state_dict(),
             "config": dataclasses.asdict(config), "stats": [0.13, 0.31], "epoch": 0,
             "val_acc": None}, root / "cnn" / "best.npz")
    return {"a": a, "b": b, "cnn": root / "cnn"}


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def test_ensemble_probabilities_are_the_mean_of_its_members(runs, mnist):
    images = mnist.test_images[:300] / 255.0
    ensemble = load_models([runs["a"], runs["b"]])
    assert isinstance(ensemble, Ensemble) and len(ensemble.members) == 2
    pa = load_trained(runs["a"]).predict_proba(images)
    pb = load_trained(runs["b"]).predict_proba(images)
    proba = ensemble.predict_proba(images)
    assert proba.shape == (300, 10) and proba.dtype == np.float32
    np.testing.assert_allclose(proba, (pa.astype(np.float64) + pb) / 2, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert not np.allclose(pa, pb)                      # two different models
    assert isinstance(load_models(runs["a"]), Trained)  # one path: the model itself
    assert isinstance(load_models([runs["a"]]), Trained)


def test_evaluate_reports_each_member_and_the_ensemble(runs, mnist, tmp_path, capsys):
    out = tmp_path / "report"
    assert cli.main(["evaluate", str(runs["a"]), str(runs["b"]), "--out", str(out),
                     "--no-plots"]) == 0
    report = json.loads((out / "report.json").read_text())
    images, labels = mnist.test_images / 255.0, mnist.test_labels
    probas = [load_trained(runs[k]).predict_proba(images) for k in ("a", "b")]
    expected = np.mean(np.argmax((probas[0].astype(np.float64) + probas[1]) / 2, axis=1)
                       == labels)
    assert report["test_accuracy"] == pytest.approx(expected, abs=1e-9)
    assert report["size"] == 2 and report["test_images"] == 10_000
    for member, key in zip(report["members"], ("a", "b")):
        own = json.loads((runs[key] / "report.json").read_text())
        assert member["run"] == str(runs[key])
        assert member["test_accuracy"] == pytest.approx(own["test_accuracy"])
        assert member["test_loss"] == pytest.approx(own["test_loss"], rel=1e-5)
    assert np.array(report["confusion_matrix"]).sum() == 10_000
    text = (out / "report.md").read_text()
    assert "**ensemble**" in text and str(runs["a"]) in text and str(runs["b"]) in text
    assert f"**{report['test_accuracy']:.2%}**" in text
    assert f"ensemble of 2: test accuracy {report['test_accuracy']:.2%}" in capsys.readouterr().out


def test_a_sweep_directory_gives_its_best_runs(runs, tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    rows = [{"trial": 0, "status": "ok", "val_acc": 0.5, "val_loss": 0.9,
             "run_dir": os.path.relpath(runs["a"], sweep)},
            {"trial": 1, "status": "failed", "val_acc": None, "val_loss": None,
             "run_dir": "trials/001-x"},
            {"trial": 2, "status": "ok", "val_acc": 0.7, "val_loss": 0.8,
             "run_dir": os.path.relpath(runs["b"], sweep)}]
    pd.DataFrame(rows).to_csv(sweep / "sweep.csv", index=False)
    resolved = [p.resolve() for p in resolve_runs(sweep)]
    assert resolved == [runs["b"].resolve(), runs["a"].resolve()]   # by val_acc, best first
    assert [p.resolve() for p in resolve_runs(sweep, top_k=1)] == [runs["b"].resolve()]
    assert isinstance(load_models(sweep, top_k=1), Trained)
    assert isinstance(load_models(sweep), Ensemble)
    (sweep / "spec.json").write_text(json.dumps({"metric": "val_loss"}))
    assert [p.resolve() for p in resolve_runs(sweep, top_k=1)] == [runs["b"].resolve()]
    rows[2]["val_loss"] = 1.5
    pd.DataFrame(rows).to_csv(sweep / "sweep.csv", index=False)
    assert [p.resolve() for p in resolve_runs(sweep, top_k=1)] == [runs["a"].resolve()]


def test_predict_and_serve_use_the_ensemble(runs, mnist, tmp_path, capsys):
    images = mnist.test_images[:8]
    write_idx(tmp_path / "digits-idx3-ubyte", images)
    expected = load_models([runs["a"], runs["b"]]).predict_proba(images / 255.0)
    results, _ = predict([runs["a"], runs["b"]], [tmp_path / "digits-idx3-ubyte"], top=1)
    assert [r.top[0][0] for r in results] == expected.argmax(axis=1).tolist()
    assert [r.top[0][1] for r in results] == pytest.approx(expected.max(axis=1).tolist(),
                                                           rel=1e-6)
    assert cli.main(["predict", f"{runs['a']},{runs['b']}",
                     str(tmp_path / "digits-idx3-ubyte"), "--labels", "1"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith(f"{expected[0].argmax()} ({expected[0].max():.1%})")
    served = load_predictor([runs["a"], runs["b"]])(images / 255.0)
    np.testing.assert_array_equal(served, expected)


def test_the_onnx_export_of_an_ensemble_is_one_graph(runs, mnist, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    images = (mnist.test_images[:64] / 255.0).astype(np.float32)
    mixed = [runs["a"], runs["cnn"]]
    assert cli.main(["export", *map(str, mixed), "--onnx", str(tmp_path / "e.onnx")]) == 0
    model = onnx.load(str(tmp_path / "e.onnx"))
    assert len(model.graph.input) == 1
    assert [d.dim_param or d.dim_value for d in
            model.graph.input[0].type.tensor_type.shape.dim] == ["N", 1, 28, 28]
    means = [n for n in model.graph.node if n.op_type == "Mean"]
    assert len(means) == 1 and len(means[0].input) == 2
    session = ort.InferenceSession(str(tmp_path / "e.onnx"), providers=["CPUExecutionProvider"])
    logits, proba = session.run(["logits", "probabilities"], {"input": images[:, None]})
    expected = load_models(mixed).predict_proba(images)
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    np.testing.assert_allclose(np.exp(logits), expected, atol=1e-5)

    assert cli.main(["export", str(runs["a"]), str(runs["b"]),
                     "--onnx", str(tmp_path / "mlp.onnx")]) == 0
    session = ort.InferenceSession(str(tmp_path / "mlp.onnx"), providers=["CPUExecutionProvider"])
    (proba,) = session.run(["probabilities"], {"input": images.reshape(-1, 784)})
    np.testing.assert_allclose(proba, load_models([runs["a"], runs["b"]]).predict_proba(images),
                               atol=1e-5)
