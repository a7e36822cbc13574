"""Sweeps on Dask: a 2-process LocalCluster and a real cluster (`dask scheduler` and two
`dask worker` processes on 127.0.0.1), failures recorded, a worker killed mid-trial,
Ctrl-C, and a re-run that trains only the missing trials. Tiny trials: small MLPs, one
or a few epochs on 2,000 of the real MNIST training images."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

pytest.importorskip("distributed", reason='sweeps need Dask: pip install -e ".[sweep]"')

import tinygrad_mnist as tg  # noqa: E402
from tinygrad_mnist.app import cli, sweep  # noqa: E402
from tinygrad_mnist.app.sweep import runner  # noqa: E402
from tinygrad_mnist.app.sweep.spec import Range, configurations, load_spec  # noqa: E402
from tinygrad_mnist.app.train import TrainConfig, train  # noqa: E402

needs_data = pytest.mark.skipif(not os.environ.get("TINYGRAD_MNIST_DATA"),
                                reason="set TINYGRAD_MNIST_DATA to the MNIST folder")
TINY = {"limit": 2000, "val_size": 400, "epochs": 1, "batch_size": 64, "hidden": [32],
        "plots": False}


@pytest.fixture(scope="module")
def client():
    """One 2-process LocalCluster for the module (starting workers is the slow part)."""
    client, cluster = sweep.start_client(workers=2)
    yield client
    sweep.close_client(client, cluster)


def tiny_spec(out: Path, **values) -> dict:
    spec = {"name": out.name, "out": str(out), "train": dict(TINY), "seeds": 1}
    spec.update(values)
    return spec


# --------------------------------------------------------------------- specs
def test_spec_errors_are_named(tmp_path):
    cases = [({"trainn": {}}, "unknown sweep spec key"),
             ({"train": {"learning_rate": 1}}, "unknown training option"),
             ({"space": {"seed": [1, 2]}}, "cannot be set in a sweep"),
             ({"train": {"lr": 0.1}, "space": {"lr": [0.1]}}, "both fixed"),
             ({"search": "bayes"}, "search must be one of"),
             ({"search": "random", "space": {"lr": [0.1]}}, "needs trials"),
             ({"trials": 3}, "a grid runs every"),
             ({"space": {"lr": {"low": 0.1, "high": 1}}}, "must be a list of values"),
             ({"search": "random", "trials": 2, "space": {"lr": {"low": 1, "high": 0.1}}},
              "low < high"),
             ({"seeds": 0}, "seeds must be at least 1"),
             ({"metric": "test_acc"}, "metric must be one of"),
             ({"train": {"epochs": 0}}, "--epochs must be at least 1")]
    for values, message in cases:
        with pytest.raises(ValueError, match=message):
            load_spec(values)
    bad = tmp_path / "bad.yaml"
    bad.write_text("space: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_spec(bad)


def test_ensemble_train_says_and_uses_its_own_default_model(capsys):
    assert sweep.ensemble_spec(2).train["model"] == "cnn"
    assert sweep.ensemble_spec(2, {"model": "mlp"}).train["model"] == "mlp"
    with pytest.raises(SystemExit):
        cli.main(["ensemble-train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "mlp (fully connected) or cnn (convolutional) (default: cnn)" in help_text


def test_grid_and_random_search_give_the_same_trials_every_time(tmp_path):
    grid = load_spec({"space": {"lr": [0.1, 0.01], "hidden": [[8], [16, 8]]}, "seeds": [3, 4]})
    trials = sweep.expand(grid, configurations(grid))
    assert len(trials) == 8 and [t.seed for t in trials[:2]] == [3, 4]
    assert {t.params["lr"] for t in trials} == {0.1, 0.01}
    assert len({t.id for t in trials}) == 8
    assert [t.id for t in sweep.expand(grid, configurations(grid))] == [t.id for t in trials]

    spec = load_spec({"search": "random", "trials": 20, "seed": 7,
                      "space": {"lr": {"low": 1e-4, "high": 1e-1, "log": True},
                                "batch_size": {"low": 16, "high": 256, "int": True},
                                "optimizer": ["adam", "sgd"]}})
    assert isinstance(spec.space["lr"], Range)
    first, again = configurations(spec), configurations(spec)
    assert first == again and len(first) == 20
    assert all(1e-4 <= c["lr"] <= 1e-1 and isinstance(c["batch_size"], int)
               and 16 <= c["batch_size"] <= 256 for c in first)
    assert {c["optimizer"] for c in first} == {"adam", "sgd"}
    lrs = np.log10([c["lr"] for c in first])
    assert lrs.min() < -3 and lrs.max() > -2  # log-uniform: spread over the decades


# --------------------------------------------------------------------- LocalCluster
@needs_data
@pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
def test_sweep_on_a_local_cluster_records_failures_and_goes_on(tmp_path, client, capsys):
    spec = tiny_spec(tmp_path / "grid", space={"lr": [0.003, 1e30], "hidden": [[16], [32]]},
                     train={k: v for k, v in TINY.items() if k != "hidden"}, seeds=[0, 1])
    result = sweep.run(spec, client=client)
    frame = pd.read_csv(tmp_path / "grid" / "sweep.csv")
    assert len(frame) == 8 and result.ran == 8 and result.skipped == 0
    assert (frame["status"] == "ok").sum() == 4 and result.failed == 4
    failed = frame[frame["status"] == "failed"]
    assert (failed["lr"] == 1e30).all()
    assert failed["error"].str.contains("TrainingDiverged").all()
    ok = frame[frame["status"] == "ok"]
    assert set(ok["seed"]) == {0, 1} and ok["val_acc"].between(0.3, 1).all()
    assert ok["test_acc"].between(0.3, 1).all() and (ok["seconds"] > 0).all()
    for run in ok["run_dir"]:
        assert (tmp_path / "grid" / run / "report.json").exists()

    # A trial is an ordinary, deterministic training run: the same numbers in-process.
    row = ok.iloc[0]
    options = json.loads((tmp_path / "grid" / row["run_dir"] / "config.json").read_text())
    options.pop("version")
    with threadpool_limits(limits=1):  # as on the workers: BLAS rounding depends on it
        alone = train(TrainConfig.from_dict({**options, "out": str(tmp_path / "alone")}))
    report = json.loads((alone / "report.json").read_text())
    assert report["val_accuracy"] == row["val_acc"]
    assert report["test_accuracy"] == row["test_acc"]

    summary = pd.read_csv(tmp_path / "grid" / "summary.csv")
    assert len(summary) == 4 and summary["runs"].tolist()[:2] == [2, 2]
    assert summary["val_acc_mean"].iloc[0] >= summary["val_acc_mean"].iloc[1]
    best = ok[ok["lr"] == 0.003].groupby("hidden")["val_acc"].mean().max()
    assert summary["val_acc_mean"].iloc[0] == pytest.approx(best)
    assert "±" in (tmp_path / "grid" / "summary.md").read_text()
    for name in ("metric.png", "parallel.png", "spec.json"):
        assert (tmp_path / "grid" / name).stat().st_size > 0
    out = capsys.readouterr()
    assert "Best by val_acc: lr=0.003" in out.out
    assert "8/8 done" in out.err and "failed: TrainingDiverged" in out.err


@needs_data
def test_a_rerun_trains_only_the_missing_trials(tmp_path, client):
    spec = tiny_spec(tmp_path / "again", space={"lr": [0.002, 0.004]}, seeds=2)
    first = sweep.run(spec, client=client, progress=False)
    assert first.ran == 4
    frame = first.frame.set_index("trial")
    directory = tmp_path / "again"
    gone, unreported, kept = (directory / frame.loc[i, "run_dir"] for i in (0, 1, 2))
    weights = tg.load(kept / "best.npz")["model"]
    shutil.rmtree(gone)                                       # never ran
    (unreported / "report.json").unlink()                     # killed while reporting
    (directory / "sweep.csv").unlink()                        # the run dirs are the truth

    second = sweep.run(spec, client=client, progress=False)
    assert (second.ran, second.skipped, second.failed) == (2, 2, 0)
    rows = second.frame.set_index("trial")
    assert rows.loc[1, "resumed_from"] == 1                   # finished its epochs: report only
    assert pd.isna(rows.loc[0, "resumed_from"])
    assert rows["val_acc"].tolist() == pytest.approx(frame["val_acc"].tolist())
    for key, value in tg.load(kept / "best.npz")["model"].items():
        np.testing.assert_array_equal(value, weights[key])   # untouched


@needs_data
def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path, client, monkeypatch, capsys):
    spec_file = tmp_path / "stop.yaml"
    spec_file.write_text(f"out: {tmp_path / 'stop'}\ntrain: {json.dumps(TINY)}\n"
                         f"space:\n  lr: [0.001, 0.002, 0.003, 0.004]\n")
    real_finished = runner._Progress.finished

    def interrupt(self, trial, row):
        real_finished(self, trial, row)
        raise KeyboardInterrupt
    monkeypatch.setattr(runner._Progress, "finished", interrupt)
    with pytest.raises(KeyboardInterrupt):
        sweep.run(spec_file, client=client)
    err = capsys.readouterr().err
    assert f"Resume with:  tinygrad-mnist sweep {spec_file}" in err
    done = pd.read_csv(tmp_path / "stop" / "sweep.csv")
    assert 1 <= len(done) < 4
    deadline = time.monotonic() + 20
    while any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(client.processing().values())  # the queued trials were cancelled

    monkeypatch.setattr(runner._Progress, "finished", real_finished)
    result = sweep.run(spec_file, client=client, progress=False)
    assert result.skipped >= len(done) and len(result.frame) == 4
    assert (result.frame["status"] == "ok").all()


@needs_data
def test_a_worker_killed_mid_trial_resumes_elsewhere_and_nothing_is_lost(tmp_path, client):
    # Epochs long enough (many small batches) to kill a worker between two of them.
    options = {**TINY, "limit": 10000, "batch_size": 32, "epochs": 4, "hidden": [128]}
    spec = tiny_spec(tmp_path / "kill", train=options, seeds=[0, 1])
    directory = tmp_path / "kill"
    done = {}
    thread = threading.Thread(target=lambda: done.update(
        result=sweep.run(spec, client=client, progress=False)), daemon=True)
    thread.start()

    # Wait for a trial with a checkpoint after epoch 1, then kill its worker's process.
    deadline = time.monotonic() + 60
    victim = None
    while victim is None and time.monotonic() < deadline:
        for last in directory.glob("trials/*/last.npz"):
            try:
                epoch = tg.load(last)["epoch"]
            except Exception:
                continue
            if 1 <= epoch < 3:
                victim = last.parent
                break
        time.sleep(0.05)
    assert victim is not None, "no trial reached its first checkpoint in time"
    worker = next(w for w, tasks in client.processing().items()
                  if any(victim.name in str(key) for key in tasks))
    pid = client.run(os.getpid, workers=[worker])[worker]
    os.kill(pid, signal.SIGKILL)

    thread.join(timeout=120)
    assert not thread.is_alive()
    result = done["result"]
    assert result.failed == 0 and len(result.frame) == 2
    row = result.frame[result.frame["run_dir"] == f"trials/{victim.name}"].iloc[0]
    assert row["resumed_from"] >= 1 and not row["worker"].endswith(f":{pid}")
    assert pd.read_csv(victim / "metrics.csv")["epoch"].tolist() == [1, 2, 3, 4]
    # Nothing lost: bitwise the weights of an uninterrupted run.
    with threadpool_limits(limits=1):  # as on the workers: BLAS rounding depends on it
        alone = train(TrainConfig.from_dict({**options, "seed": int(row["seed"]),
                                             "quiet": True, "out": str(tmp_path / "alone")}))
    a, b = tg.load(alone / "last.npz")["model"], tg.load(victim / "last.npz")["model"]
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


@needs_data
def test_tpe_search_draws_from_the_results_and_resumes(tmp_path, client):
    pytest.importorskip("optuna", reason="TPE search needs Optuna (pip install optuna)")
    spec = tiny_spec(tmp_path / "tpe", search="tpe", trials=4, seed=3,
                     train={k: v for k, v in TINY.items() if k != "hidden"},
                     space={"lr": {"low": 1e-4, "high": 1e-2, "log": True},
                            "hidden": [[16], [32]]})
    first = sweep.run(spec, client=client, progress=False)
    assert first.ran == 4 and (first.frame["status"] == "ok").all()
    assert first.frame["lr"].between(1e-4, 1e-2).all()
    assert set(first.frame["hidden"].astype(str)) <= {"16", "32"}
    again = sweep.run(spec, client=client, progress=False)
    assert (again.ran, again.skipped) == (0, 4)
    assert again.frame["id"].tolist() == first.frame["id"].tolist()


# --------------------------------------------------------------------- a real cluster
@needs_data
def test_sweep_and_ensemble_train_on_a_real_cluster(tmp_path, capsys):
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1, as on real
    machines; the CLI submits to them with --scheduler."""
    address_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    common = ["--no-dashboard", "--scheduler-file", str(address_file)]
    logs = open(tmp_path / "cluster.log", "w")
    procs = [subprocess.Popen(dask + ["scheduler", "--host", "127.0.0.1", "--port", "0",
                                      *common], stdout=logs, stderr=logs)]
    try:
        deadline = time.monotonic() + 30
        while not address_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for name in ("w1", "w2"):
            procs.append(subprocess.Popen(dask + ["worker", "--nthreads", "1", "--name", name,
                                                  "--host", "127.0.0.1", *common],
                                          stdout=logs, stderr=logs))
        address = json.loads(address_file.read_text())["address"]
        from distributed import Client
        with Client(address, timeout="30s") as check:
            check.wait_for_workers(2, timeout=60)
            pids = set(check.run(os.getpid).values())

        spec = tmp_path / "cluster.json"
        spec.write_text(json.dumps(tiny_spec(tmp_path / "remote",
                                             space={"lr": [0.002, 0.004]}, seeds=2)))
        assert cli.main(["sweep", str(spec), "--scheduler", address]) == 0
        frame = pd.read_csv(tmp_path / "remote" / "sweep.csv")
        assert len(frame) == 4 and (frame["status"] == "ok").all()
        assert {int(w.rsplit(":", 1)[1]) for w in frame["worker"]} <= pids

        members = tmp_path / "members"
        assert cli.main(["ensemble-train", "--members", "2", "--model", "mlp", "--out",
                         str(members), "--scheduler", address, "--quiet",
                         *sum(([f"--{k.replace('_', '-')}", str(v)] for k, v in TINY.items()
                               if k not in ("hidden", "plots")), []),
                         "--hidden", "32", "--no-plots"]) == 0
        report = json.loads((members / "ensemble" / "report.json").read_text())
        assert report["size"] == 2 and sorted(m["seed"] for m in report["members"]) == [0, 1]
        assert "ensemble of 2: test accuracy" in capsys.readouterr().out
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        logs.close()
