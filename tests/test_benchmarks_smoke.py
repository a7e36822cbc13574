"""The benchmark scripts still run: each script's main() with tiny sizes and one
repetition. Nothing here is timed or compared; the benchmarks themselves are run by
hand (see docs/engine.md, Speed, and benchmarks/README.md)."""
import csv
import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name):
    """Import benchmarks/<name>.py (not a package) as a module."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"bench_smoke_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_bench_train_runs_every_section(tmp_path, capsys):
    out = tmp_path / "train.csv"
    results = load("bench_train").main([
        "--sizes", "784-16-10", "--batch-size", "32", "--repeats", "1",
        "--epochs-fraction", "0.1", "--samples", "640", "--data", "random",
        "--step-batch-sizes", "1", "8", "--steps", "8",
        "--memory-epochs", "2", "--threads", "0", "--csv", str(out)])
    text = capsys.readouterr().out
    assert set(results) == {"epoch", "step", "memory"}
    for title in ("Seconds per epoch", "Microseconds per training step", "Memory of training"):
        assert title in text
    assert "| 784-16-10 | tinygrad_mnist |" in text and "| 784-16-10 | numpy by hand |" in text
    metrics = {(r["section"], r["implementation"], r["metric"]) for r in rows(out)}
    for name in ("tinygrad_mnist", "numpy by hand"):
        assert ("epoch", name, "median_s") in metrics
        assert ("step", name, "ratio_to_numpy") in metrics
        assert ("memory", name, "peak_rise_bytes") in metrics


def test_bench_train_without_torch_says_so_or_skips_it(tmp_path, capsys):
    load("bench_train").main([
        "--sizes", "784-8-10", "--repeats", "1", "--epochs-fraction", "0.1",
        "--samples", "256", "--data", "random", "--sections", "epoch", "--no-torch",
        "--with-unfolded", "--threads", "0", "--csv", str(tmp_path / "t.csv")])
    out = capsys.readouterr().out
    assert "PyTorch CPU" not in out and "| numpy by hand, unfolded lr |" in out


def test_bench_train_records_its_epoch_medians(tmp_path, monkeypatch, capsys):
    """--record adds the epoch section's medians, with this machine and the command, to
    the results file the README's and docs' tables are drawn from."""
    load("bench_train")
    import results
    monkeypatch.setattr(results, "RESULTS", tmp_path / "results.json")
    load("bench_train").main([
        "--sizes", "784-8-10", "--repeats", "1", "--epochs-fraction", "0.1",
        "--samples", "256", "--data", "random", "--sections", "epoch", "--no-torch",
        "--threads", "0", "--csv", str(tmp_path / "t.csv"), "--record"])
    (entry,) = results.load(tmp_path / "results.json")
    assert entry["kind"] == "bench_train" and entry["machine"]["cores"] >= 1
    assert entry["command"].startswith("python benchmarks/bench_train.py --sizes 784-8-10")
    assert "--record" not in entry["command"]
    seconds = entry["values"]["seconds_per_epoch"]["784-8-10"]
    assert {"eager", "compiled", "numpy by hand"} <= set(seconds)
    assert all(s > 0 for s in seconds.values())


def test_bench_hvp_runs(capsys):
    results = load("bench_hvp").main(["--sizes", "784-8-10", "--batch-size", "4",
                                      "--repeats", "1", "--inner", "1", "--threads", "0"])
    assert ("tinygrad_mnist", "HVP") in results
    assert "| tinygrad_mnist |" in capsys.readouterr().out


def test_bench_scaling_runs_and_plots(tmp_path, capsys):
    png, out = tmp_path / "scaling.png", tmp_path / "scaling.csv"
    results = load("bench_scaling").main([
        "--widths", "8", "16", "--batch-sizes", "8", "16", "--batch-mlp", "784-8-10",
        "--fraction", "0.01", "--min-steps", "1", "--repeats", "1", "--samples", "256",
        "--data", "random", "--threads", "0", "--csv", str(out), "--png", str(png)])
    assert len(results["width"]) == 2 and len(results["batch"]) == 2
    assert png.stat().st_size > 0 and png.read_bytes()[:4] == b"\x89PNG"
    assert len(rows(out)) == 4
    assert "Epoch time vs hidden width" in capsys.readouterr().out


def test_bench_engine_runs(tmp_path, capsys):
    result = load("bench_engine").main(["--batch", "4", "--repeats", "2", "--rounds", "1",
                                        "--csv", str(tmp_path / "engine.csv")])
    assert result["ratio"] > 0
    assert "ratio tinygrad_mnist / numpy by hand" in capsys.readouterr().out


def test_numpy_reference_matches_the_framework():
    """The hand-written reference computes the same loss and gradients as the engine."""
    import numpy as np
    numpy_reference = load("numpy_reference")
    from tinygrad_mnist import from_numpy, nn
    from tinygrad_mnist.nn import functional as F
    rng = np.random.default_rng(0)
    for batch in (1, 5):
        x = rng.random((batch, 784), dtype=np.float32)
        y = rng.integers(0, 10, batch)
        ref = numpy_reference.NumpyMLP((784, 12, 7, 10), seed=1)
        layers = []
        for w, b in zip(ref.weights, ref.biases):
            linear = nn.Linear(w.shape[1], w.shape[0])
            linear.weight.data[...], linear.bias.data[...] = w, b
            layers += [linear, nn.ReLU()]
        model = nn.Sequential(*layers[:-1])
        loss, grad_w, grad_b = ref.loss_and_grads(x, y)
        out = F.cross_entropy(model(from_numpy(x)), y)
        out.backward()
        assert out.item() == pytest.approx(loss, rel=1e-5)
        linears = [m for m in model if isinstance(m, nn.Linear)]
        for m, gw, gb in zip(linears, grad_w, grad_b):
            np.testing.assert_allclose(m.weight.grad, gw, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(m.bias.grad, gb, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["NumpyTrainer", "UnfoldedNumpyTrainer", "OpsTrainer"])
def test_references_train_like_the_framework(name):
    """Three SGD-with-momentum steps by hand (or with the framework's ops called by
    hand) end where nn + optim.SGD end. The first weight (200 x 784) is large enough
    to be updated in pieces."""
    import numpy as np
    harness = load("harness")
    x, y, _ = harness.load_data("random", 48)
    sizes = (784, 200, 12, 10)
    assert 200 * 784 > load("numpy_reference").BLOCKED_ABOVE
    framework = harness.FrameworkTrainer(sizes, x, y, 16)
    reference = getattr(harness, name)(sizes, x, y, 16)
    assert framework.steps(3) == pytest.approx(reference.steps(3), rel=1e-5)
    linears = [m for m in framework.model if hasattr(m, "weight")]
    if name == "OpsTrainer":
        weights, biases = reference.params[::2], reference.params[1::2]
    else:
        weights, biases = reference.model.weights, reference.model.biases
    assert len(weights) == len(linears) == 3
    for m, w, b in zip(linears, weights, biases):
        np.testing.assert_allclose(m.weight.data, w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(m.bias.data, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["FrameworkTrainer", "NumpyTrainer", "OpsTrainer"])
def test_restart_repeats_the_same_steps(name):
    """The step section times every round from the same start: after restart() the
    same weights meet the same batches, so the losses repeat exactly."""
    harness = load("harness")
    x, y, _ = harness.load_data("random", 64)
    trainer = getattr(harness, name)((784, 12, 10), x, y, 16)
    first = trainer.steps(5)
    assert trainer.steps(5) != first      # training moved on
    trainer.restart()
    assert trainer.steps(5) == first


def test_threads_option_reruns_the_script_with_the_thread_variables(tmp_path, capfd,
                                                                   monkeypatch):
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "threads.csv"
    assert load("bench_train").main([
        "--sizes", "784-8-10", "--repeats", "1", "--epochs-fraction", "0.1",
        "--samples", "256", "--data", "random", "--sections", "epoch", "--no-torch",
        "--threads", "1", "--csv", str(out)]) == {}  # the child process did the work
    assert "OPENBLAS_NUM_THREADS=1, OMP_NUM_THREADS=1" in capfd.readouterr().out
    assert rows(out)


def test_the_benchmarked_training_step_stays_float32(monkeypatch):
    """Every op's output and every gradient of a training step is float32: no silent
    upcast to float64 anywhere on the path that bench_train.py times."""
    import numpy as np
    harness = load("harness")
    from tinygrad_mnist import autograd
    seen = []
    apply, engine_backward = autograd.Function.apply.__func__, autograd.backward

    def checked_apply(cls, *inputs, **options):
        out = apply(cls, *inputs, **options)
        seen.append((cls.__name__, out.dtype))
        return out

    def graph(root):
        nodes, stack = {}, [root]
        while stack:
            node = stack.pop()
            if node._ctx is not None and id(node) not in nodes:
                nodes[id(node)] = node
                stack.extend(node._ctx.parents)
        return nodes.values()

    def checked_backward(root, gradient, retain_graph, create_graph=False):
        for node in graph(root):
            original = node._ctx.backward

            def backward(g, original=original, name=type(node._ctx).__name__):
                grads = original(g)
                for gi in grads if isinstance(grads, tuple) else (grads,):
                    if gi is not None:
                        seen.append((name + ".backward", gi.dtype))
                return grads
            node._ctx.backward = backward
        return engine_backward(root, gradient, retain_graph, create_graph)

    monkeypatch.setattr(autograd.Function, "apply", classmethod(checked_apply))
    monkeypatch.setattr(autograd, "backward", checked_backward)
    x, y, _ = harness.load_data("random", 64)
    for batch in (1, 16):
        trainer = harness.FrameworkTrainer((784, 32, 16, 10), x, y, batch)
        trainer.steps(3)
        for p in trainer.model.parameters():
            state = trainer.optimizer.state[p]
            assert p.data.dtype == p.grad.dtype == state["momentum_buffer"].dtype == np.float32
    names = {name for name, _ in seen}
    assert {"Linear", "ReLU", "CrossEntropy", "Linear.backward", "CrossEntropy.backward"} <= names
    assert {dtype for _, dtype in seen} == {np.dtype(np.float32)}, \
        sorted({s for s in seen if s[1] != np.float32})


def test_generalisation_scans_and_table(tmp_path, monkeypatch, capsys):
    """The scan set is made the hidden set's way (8x8 counts as dark ink on white,
    64x64 bicubic); without scikit-learn or --uci the UCI sets are skipped, not
    downloaded; the table has a row per set and a column per run and steps."""
    import numpy as np
    from PIL import Image
    gen = load("generalisation")
    counts = np.zeros((2, 8, 8))
    counts[:, 1:7, 3:5] = 16
    counts[1, 1:7, 2] = 8                       # a soft stroke beside the full one
    items = gen.build_scans(tmp_path / "scans", counts, np.array([1, 7]))
    assert [(label, group) for _, label, group in items] == [(1, "scans"), (7, "scans")]
    scan = np.asarray(Image.open(items[1][0]))
    assert scan.shape == (64, 64) and scan[0, 0] == 255 and scan[32, 32] == 0
    assert 0 < scan[32, 17] < 255                   # the soft stroke stays grey
    monkeypatch.setitem(sys.modules, "sklearn", None)
    assert gen.uci_digits(None) is None
    gen.print_table([("scans", "all", 2, "mlp", "this", 0.5),
                     ("scans", "all", 2, "mlp", "old", 1.0)], ["mlp"], ["this", "old"])
    assert "| scans | 2 | 50.0 % | 100.0 % |" in capsys.readouterr().out


def test_bench_web_runs(capsys):
    from test_browser import CHROMIUM
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    results = load("bench_web").main(["--models", "mlp", "--rounds", "1", "--predictions", "2"])
    assert [r["model"] for r in results] == ["mlp"]
    assert results[0]["rounds"][0]["forward"] > 0 and results[0]["site_mb"] < 2.5
    assert "| mlp site | ≤ 2.5 MB |" in capsys.readouterr().out
