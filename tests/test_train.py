"""The training app end to end, on small subsets of the real MNIST files."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import tinygrad_mnist as tg
from tinygrad_mnist.app import cli
from tinygrad_mnist.data import load_mnist
from tinygrad_mnist.app.inference import load_trained
from tinygrad_mnist.app.predict import predict
from tinygrad_mnist.app.train import TrainConfig, TrainingDiverged, train

pytestmark = pytest.mark.skipif(not os.environ.get("TINYGRAD_MNIST_DATA"),
                                reason="set TINYGRAD_MNIST_DATA to the MNIST folder")
ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--limit", "2500", "--val-size", "500", "--hidden", "64", "--epochs", "3",
         "--batch-size", "64", "--seed", "3"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "small"
    assert cli.main(["train", *SMALL, "--out", str(out), "--quiet"]) == 0
    return out


def test_run_directory_has_every_output(run_dir):
    for name in ["config.json", "metrics.csv", "best.npz", "last.npz", "report.md",
                 "report.json", "learning_curves.png", "confusion_matrix.png",
                 "misclassified.png", "first_layer_weights.png"]:
        assert (run_dir / name).is_file(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["seed"] == 3 and config["hidden"] == [64] and config["version"] == tg.__version__
    frame = pd.read_csv(run_dir / "metrics.csv")
    assert list(frame["epoch"]) == [1, 2, 3]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
            "images_per_sec"} <= set(frame.columns)
    assert frame["val_acc"].iloc[-1] > 0.8


def test_report_accuracy_matches_an_independent_recomputation(run_dir):
    report = json.loads((run_dir / "report.json").read_text())
    state = tg.load(run_dir / "best.npz")
    mean, std = state["stats"]
    weights = state["model"]
    mnist = load_mnist()
    x = ((mnist.test_images.reshape(-1, 784) / 255.0) - mean) / std
    h = np.maximum(x @ weights["0.weight"].T + weights["0.bias"], 0)  # plain NumPy forward
    logits = h @ weights["3.weight"].T + weights["3.bias"] if "3.weight" in weights else \
        h @ weights["2.weight"].T + weights["2.bias"]
    accuracy = np.mean(logits.argmax(1) == mnist.test_labels)
    assert report["test_accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert report["test_accuracy"] > 0.85
    cm = np.array(report["confusion_matrix"])
    assert cm.sum() == 10_000 and np.trace(cm) == round(accuracy * 10_000)
    text = (run_dir / "report.md").read_text()
    assert "| 7 |" in text
    support = np.bincount(mnist.test_labels, minlength=10)
    assert f"| {support[7]} |" in text and f"| {support[7]}.0000 |" not in text  # counts


def test_evaluation_loss_is_the_mean_negative_log_of_the_reported_probabilities():
    from tinygrad_mnist.app.inference import MIN_PROBABILITY, evaluate_arrays
    model = tg.nn.Linear(4, 3)
    model.weight.data[...] = np.array([[60, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], np.float32)
    model.bias.data[...] = 0
    x = np.array([[1, 0, 0, 0], [0, 1, 2, 0], [0, 0, 1, 0], [2, 0, 0, 0]], np.float32)
    y = np.array([0, 2, 1, 1])                 # the last: probability exp(-120) -> 0 in float32
    loss, accuracy, proba = evaluate_arrays(model, x, y, batch_size=3)
    picked = proba[np.arange(4), y].astype(np.float64)
    assert picked[-1] == 0
    expected = -np.log(np.maximum(picked, MIN_PROBABILITY)).mean()
    assert loss == expected and np.isfinite(loss)
    assert accuracy == 0.5 and proba.dtype == np.float32


def test_evaluate_reruns_the_report(run_dir, capsys):
    before = json.loads((run_dir / "report.json").read_text())
    assert cli.main(["evaluate", str(run_dir), "--no-plots"]) == 0
    assert f"{before['test_accuracy']:.2%}" in capsys.readouterr().out


def _config(tmp_path, name, **overrides):
    values = dict(limit=1600, val_size=400, hidden=[32], epochs=3, batch_size=50, seed=1,
                  dropout=0.3, schedule="cosine", plots=False, quiet=True,
                  out=str(tmp_path / name))
    values.update(overrides)
    return TrainConfig.from_dict(values)


def test_resume_gives_bitwise_the_same_weights(tmp_path, monkeypatch):
    full = train(_config(tmp_path, "full"))
    # Interrupt the second epoch part-way, then resume.
    import tinygrad_mnist.app.train as train_module
    original = train_module.train_epoch
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tmp_path, "split"))
    monkeypatch.setattr(train_module, "train_epoch", original)
    assert tg.load(tmp_path / "split" / "last.npz")["epoch"] == 1
    resumed = train(resume=tmp_path / "split")
    a, b = tg.load(full / "last.npz"), tg.load(resumed / "last.npz")
    for key in a["model"]:
        np.testing.assert_array_equal(a["model"][key], b["model"][key])
    assert pd.read_csv(full / "metrics.csv")["val_loss"].tolist() == \
        pd.read_csv(resumed / "metrics.csv")["val_loss"].tolist()


#: Runs scripts/train_mnist.py ARGS..., held in the middle of the second epoch (its
#: third batch) until a signal arrives, having said so in the marker file.
HELD_MID_EPOCH = """
import runpy, sys, time
from pathlib import Path
from tinygrad_mnist.data import DataLoader
marker, script = Path(sys.argv[1]), sys.argv[2]
batches = DataLoader.__iter__
epochs = []
def held(self):
    epochs.append(1)
    for n, batch in enumerate(batches(self)):
        if len(epochs) == 2 and n == 3 and not marker.exists():
            marker.write_text("inside epoch 2")
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                time.sleep(0.01)
        yield batch
DataLoader.__iter__ = held
sys.argv = sys.argv[2:]
runpy.run_path(script, run_name="__main__")
"""


def test_ctrl_c_saves_and_resume_continues(tmp_path):
    epochs = 4
    args = ["--limit", "3000", "--val-size", "500", "--hidden", "128", "--epochs",
            str(epochs), "--batch-size", "32", "--seed", "5", "--no-plots"]
    script = [sys.executable, str(ROOT / "scripts" / "train_mnist.py")]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    marker = tmp_path / "held"
    proc = subprocess.Popen([sys.executable, "-c", HELD_MID_EPOCH, str(marker), *script[1:],
                             *args, "--out", str(tmp_path / "a")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120  # wait for the state, not for time
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), proc.stderr.read() if proc.poll() is not None else "timed out"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"python {ROOT / 'scripts' / 'train_mnist.py'} --resume" in err
    assert tg.load(tmp_path / "a" / "last.npz")["epoch"] == 1  # epoch 2 was cut short
    done = subprocess.run(script + ["--resume", str(tmp_path / "a"), "--quiet"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    reference = subprocess.run(script + args + ["--out", str(tmp_path / "b"), "--quiet"],
                               env=env, capture_output=True, text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr
    a, b = tg.load(tmp_path / "a" / "last.npz"), tg.load(tmp_path / "b" / "last.npz")
    assert a["epoch"] == b["epoch"] == epochs
    for key in a["model"]:
        np.testing.assert_array_equal(a["model"][key], b["model"][key])


@pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")  # diverging on purpose
def test_non_finite_loss_stops_with_a_clear_message(tmp_path):
    config = _config(tmp_path, "diverge", optimizer="sgd", lr=1e30, schedule="none",
                     dropout=0.0)
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        train(config)
    assert tg.load(tmp_path / "diverge" / "last.npz")["epoch"] >= 0


def test_bad_options_are_named(tmp_path, capsys):
    assert cli.main(["train", "--optimizer", "lion", "--out", str(tmp_path)]) == 2
    assert "--optimizer must be one of" in capsys.readouterr().err
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"epochs": 2, "learning_rate": 0.1}))
    assert cli.main(["train", "--config", str(config)]) == 2
    assert "unknown config key(s): learning_rate" in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "cannot resume" in capsys.readouterr().err


def test_resume_keeps_the_saved_options(run_dir, capsys):
    assert cli.main(["train", "--resume", str(run_dir), "--lr", "0.5"]) == 2
    assert "only --epochs, --quiet, --no-plots and --no-jit" in capsys.readouterr().err


# --------------------------------------------------------------------- predict
def _handwriting(image28: np.ndarray, scale: int, offset, size=(200, 160)) -> Image.Image:
    """Dark ink on white paper, scaled up and placed off-centre, as a user might draw."""
    big = Image.fromarray(255 - image28).resize((28 * scale, 28 * scale), Image.BILINEAR)
    canvas = Image.new("L", size, 255)
    canvas.paste(big, offset)
    return canvas


def test_predict_recognises_own_handwriting_and_reports_bad_files(tmp_path, run_dir, capsys):
    trained = load_trained(run_dir)
    mnist = load_mnist()
    images, labels = mnist.test_images[:40], mnist.test_labels[:40]
    right = np.flatnonzero(trained.predict_proba(images / 255.0).argmax(1) == labels)[:10]
    folder = tmp_path / "mine"
    folder.mkdir()
    for n, i in enumerate(right):
        _handwriting(images[i], scale=3 + n % 3, offset=(5 + 7 * n, 2 + 3 * n),
                     size=(220, 180)).save(folder / f"{n:02d}_{labels[i]}.png")
    (folder / "zz_broken.png").write_bytes(b"not a png at all")
    Image.new("L", (50, 50), 255).save(folder / "zz_empty.png")

    results, _ = predict(run_dir, [folder])
    by_name = {Path(r.source).name: r for r in results}
    hits = sum(by_name[f"{n:02d}_{labels[i]}.png"].top[0][0] == labels[i]
               for n, i in enumerate(right))
    assert hits >= 0.8 * len(right)
    assert by_name["zz_broken.png"].error and "zz_broken.png" in by_name["zz_broken.png"].error
    assert by_name["zz_empty.png"].error and "empty" in by_name["zz_empty.png"].error.lower()
    for r in results:
        if not r.error:
            assert len(r.top) == 3 and r.top[0][1] >= r.top[1][1] >= r.top[2][1]

    out_csv = tmp_path / "pred.csv"
    assert cli.main(["predict", str(run_dir), str(folder), "--csv", str(out_csv)]) == 0
    printed = capsys.readouterr()
    assert "zz_broken.png: error" in printed.err
    frame = pd.read_csv(out_csv)
    assert len(frame) == len(results) and {"label_1", "prob_1", "error"} <= set(frame.columns)


def test_predict_kaggle_csv_writes_a_submission(tmp_path, run_dir):
    mnist = load_mnist()
    pixels = mnist.test_images[:5].reshape(5, -1)
    frame = pd.DataFrame(pixels, columns=[f"pixel{i}" for i in range(784)])
    frame.to_csv(tmp_path / "test.csv", index=False)
    out = tmp_path / "submission.csv"
    assert cli.main(["predict", str(run_dir), str(tmp_path / "test.csv"),
                     "--kaggle", str(out)]) == 0
    submission = pd.read_csv(out)
    assert list(submission.columns) == ["ImageId", "Label"]
    assert list(submission["ImageId"]) == [1, 2, 3, 4, 5]
    assert submission["Label"].between(0, 9).all()
