"""The BLAS thread policy (`tinygrad_mnist.threads`), and how the training app uses it
and the compiled training step: `--threads` and `--no-jit`, recorded in config.json,
restored on --resume, the same numbers for the same seed and thread count, and the same
numbers with and without the compiled step."""
import json
import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from tinygrad_mnist import jit, models, nn, optim, threads
from tinygrad_mnist.app import cli
from tinygrad_mnist.app.config import TrainConfig, saved_threads
from tinygrad_mnist.errors import UsageError

needs_mnist = pytest.mark.skipif(not os.environ.get("TINYGRAD_MNIST_DATA"),
                                 reason="set TINYGRAD_MNIST_DATA to the MNIST folder")


def blas_threads():
    return [pool["num_threads"] for pool in threadpool_info()]


def test_limited_sets_the_count_and_restores_it():
    before = blas_threads()
    with threads.limited(1):
        assert set(blas_threads()) == {1}
        assert "1 thread" in threads.describe()
    assert blas_threads() == before
    with threads.limited(None):                     # None: the libraries' own setting
        assert blas_threads() == before


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(ValueError):
        with threads.limited(bad):
            pass


def test_the_same_seed_and_thread_count_give_the_same_numbers():
    def train():
        nn.init.manual_seed(0)
        model = models.MLP((64, 32), dropout=0.2)
        step = jit.compile_step(model, optim.Adam(model.parameters()))
        rng = np.random.default_rng(0)
        with threads.limited(1):
            losses = [step(rng.standard_normal((32, 784)).astype(np.float32),
                           rng.integers(0, 10, 32)).loss for _ in range(4)]
        return losses, model.state_dict()

    (l1, s1), (l2, s2) = train(), train()
    assert l1 == l2 and all(np.array_equal(s1[k], s2[k]) for k in s1)


# ------------------------------------------------------------------ configuration
def test_the_thread_count_defaults_per_model_and_is_checked():
    for model in ("mlp", "cnn"):
        assert TrainConfig(model=model).validate().threads == models.DEFAULTS[model]["threads"]
    assert TrainConfig(threads=2).validate().threads == 2
    with pytest.raises(UsageError, match="--threads"):
        TrainConfig(threads=0).validate()
    assert TrainConfig().validate().jit is True


def test_a_run_saved_before_the_option_gets_its_models_default(tmp_path):
    old = TrainConfig(model="cnn").validate().__dict__ | {"version": "0.1.0"}
    del old["threads"], old["jit"]
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert TrainConfig.from_dict({k: v for k, v in old.items() if k != "version"}).threads \
        == models.DEFAULTS["cnn"]["threads"]
    assert saved_threads(tmp_path) == models.DEFAULTS["cnn"]["threads"]
    assert saved_threads(tmp_path / "best.npz") == models.DEFAULTS["cnn"]["threads"]
    (tmp_path / "elsewhere").mkdir()
    assert saved_threads(tmp_path / "elsewhere" / "model.npz") is None


def test_resume_keeps_the_thread_count_but_may_switch_the_jit(tmp_path):
    from tinygrad_mnist.app.train import check_resume
    with pytest.raises(UsageError, match="--threads"):
        check_resume(tmp_path, ["threads"])
    with pytest.raises(UsageError, match="does not exist"):     # jit may change: no
        check_resume(tmp_path, ["jit", "epochs"])              # complaint about options


def test_the_options_are_in_every_commands_help(capsys):
    for command, flags in [("train", ["--threads", "--no-jit"]), ("evaluate", ["--threads"]),
                           ("predict", ["--threads"]), ("serve", ["--threads"])]:
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = capsys.readouterr().out
        for flag in flags:
            assert flag in text, (command, flag)


def test_evaluate_predict_and_serve_use_the_runs_own_count(tmp_path):
    config = TrainConfig(threads=2).validate()
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(config.__dict__))
    parser = cli.build_parser()
    for argv, expected in [(["evaluate", str(run)], 2),
                           (["evaluate", str(run), "--threads", "3"], 3),
                           (["serve", str(run / "best.npz")], 2),
                           (["predict", f"{run},{run}", "x.png"], 2),
                           (["evaluate", str(tmp_path / "elsewhere")], 1)]:
        assert cli._command_threads(parser.parse_args(argv)) == expected, argv
    assert cli._command_threads(parser.parse_args(["train"])) is None
    with pytest.raises(UsageError):
        cli._command_threads(parser.parse_args(["evaluate", str(run), "--threads", "0"]))


def test_train_runs_under_its_thread_count_and_lifts_it_after(tmp_path, monkeypatch):
    from tinygrad_mnist.app import train as train_module
    seen = []

    class Stop(Exception):
        pass

    def load_data(config):
        seen.append(blas_threads())
        raise Stop

    monkeypatch.setattr(train_module, "load_data", load_data)
    before = blas_threads()
    with pytest.raises(Stop):
        train_module.train(TrainConfig(threads=1, out=str(tmp_path / "run"), quiet=2))
    assert set(seen[0]) == {1} and blas_threads() == before


# --------------------------------------------------------------- the app, end to end
@needs_mnist
def test_the_app_gives_the_same_numbers_with_and_without_the_compiled_step(tmp_path):
    import tinygrad_mnist as tg
    small = ["--limit", "600", "--val-size", "200", "--epochs", "2", "--batch-size", "64",
             "--hidden", "32", "--seed", "1", "--no-plots", "-qq"]
    runs = {}
    for flag in ([], ["--no-jit"]):
        runs[bool(flag)] = out = tmp_path / ("eager" if flag else "compiled")
        assert cli.main(["train", *small, *flag, "--out", str(out)]) == 0
    compiled, eager = (json.loads((runs[k] / "config.json").read_text()) for k in (False, True))
    assert compiled["jit"] is True and eager["jit"] is False
    assert compiled["threads"] == eager["threads"] == models.DEFAULTS["mlp"]["threads"]
    assert "compiled training step (tinygrad_mnist.jit), 1 BLAS thread" in \
        (runs[False] / "report.md").read_text()
    assert "eager training step (--no-jit)" in (runs[True] / "report.md").read_text()
    metrics = [[",".join(line.split(",")[:6])                  # all but the seconds
                for line in (runs[k] / "metrics.csv").read_text().splitlines()]
               for k in (False, True)]
    assert metrics[0] == metrics[1]
    a, b = (tg.load(runs[k] / "last.npz") for k in (False, True))
    for part in ("model", "optimizer"):
        assert _arrays(a[part]) and _arrays(a[part]) == _arrays(b[part])


def _arrays(tree):
    """The arrays of a nested state as (path, bytes) pairs, for a bitwise comparison."""
    if isinstance(tree, dict):
        return [(f"{k}/{p}", v) for k in sorted(tree, key=str) for p, v in _arrays(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [(f"{i}/{p}", v) for i, t in enumerate(tree) for p, v in _arrays(t)]
    if isinstance(tree, np.ndarray):
        return [("", (tree.dtype.str, tree.shape, tree.tobytes()))]
    return [("", tree)]


@needs_mnist
def test_the_apps_cnn_epoch_is_the_same_compiled_or_eager():
    """The app's epoch loop (train_epoch with training_step) on the default CNN with
    its default augmentation, and with elastic distortions, compiled against eager."""
    from tinygrad_mnist.models import build_model
    from tinygrad_mnist.app.train import (build_optimizer, build_scheduler, load_data,
                                      train_epoch, training_step)
    from tinygrad_mnist.data import DISTORTIONS, DataLoader
    results = []
    for use_jit, augment in ((True, None), (False, None), (True, "elastic"),
                             (False, "elastic")):
        config = TrainConfig(model="cnn", limit=300, val_size=100, batch_size=64, seed=2,
                             label_smoothing=0.1, jit=use_jit, augment=augment).validate()
        nn.init.manual_seed(config.seed)
        data = load_data(config)
        model = build_model(config, data.image_shape, len(data.classes))
        loader = DataLoader(data.x_train, data.y_train, config.batch_size, seed=config.seed,
                            augment_shift=2 if config.augment == "shift" else 0,
                            distortion=DISTORTIONS.get(config.augment),
                            image_shape=data.image_shape)
        optimizer = build_optimizer(config, model.parameters())
        scheduler = build_scheduler(config, optimizer, len(loader))
        step = training_step(model, optimizer, config)
        assert isinstance(step, jit.TrainStep) == use_jit
        with threads.limited(config.threads):
            history = [train_epoch(model, loader, optimizer, scheduler, config, None, step)
                       for _ in range(2)]
        results.append((history, model.state_dict(), nn.init.get_rng_state()))
    for (h1, s1, r1), (h2, s2, r2) in (results[:2], results[2:]):
        assert h1 == h2 and r1 == r2 and all(np.array_equal(s1[k], s2[k]) for k in s1)


def test_the_busy_benchmark_runs(tmp_path, capsys):
    """bench_train.py's busy section (the default run beside a CPU-bound process), tiny."""
    import importlib.util
    import sys
    from pathlib import Path
    benchmarks = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(benchmarks))
    spec = importlib.util.spec_from_file_location("bench_train_busy",
                                                  benchmarks / "bench_train.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = bench.main(["--sections", "busy", "--busy-steps", "2", "--repeats", "1",
                          "--samples", "512", "--data", "random", "--threads", "0",
                          "--no-torch", "--csv", str(tmp_path / "busy.csv")])
    assert {row[4] for row in results["busy"]} == {"quiet_s", "busy_s", "busy_over_quiet"}
    assert "beside a CPU-bound process" in capsys.readouterr().out
