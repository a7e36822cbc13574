"""Ctrl-C (SIGINT) and SIGTERM stop `train`, `sweep` and `serve` cleanly: a run saves its
last completed epoch, says how to resume and exits with its documented status (130 for
SIGINT, 143 for SIGTERM: see tinygrad_mnist.errors); `serve` answers the request under
way and exits with 0.

No test here waits for time. Each command runs in a small wrapper that holds it, at a
known point, until the signal arrives, and says so by writing a marker file; the test
waits for that file (bounded), then signals. So the run can never finish before the
signal, however loaded the machine, and the signal always lands at the same point."""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

import tinygrad_mnist as tg
from tinygrad_mnist import errors

MNIST = os.environ.get("TINYGRAD_MNIST_DATA")
needs_mnist = pytest.mark.skipif(not MNIST, reason="set TINYGRAD_MNIST_DATA to the MNIST "
                                                   "folder (or fill the user cache)")
SIGNALS = {"SIGINT": (signal.SIGINT, errors.EXIT_INTERRUPTED, "Interrupted"),
           "SIGTERM": (signal.SIGTERM, errors.EXIT_TERMINATED, "Terminated (SIGTERM)")}
TINY = ["--limit", "600", "--val-size", "200", "--hidden", "16", "--batch-size", "100",
        "--no-plots"]
WAIT = 120  # seconds: the bound of every wait for a state (a loaded machine is slow)

#: Runs `tinygrad-mnist ARGS...` (as `python -m tinygrad_mnist`), held after the first
#: epoch's files are written (metrics.csv is the last of them) until a signal arrives.
HELD_TRAIN = """
import sys, time
from pathlib import Path
import tinygrad_mnist
import tinygrad_mnist.app.train as train_module
from tinygrad_mnist.app import cli
marker = Path(sys.argv[1])
write = train_module.atomic_write_text
def write_then_hold(path, *args, **kwargs):
    write(path, *args, **kwargs)
    if Path(path).name == "metrics.csv" and not marker.exists():
        marker.write_text("epoch 1 is saved")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # until the signal's exception
            time.sleep(0.01)
train_module.atomic_write_text = write_then_hold
sys.argv = [str(Path(tinygrad_mnist.__file__).parent / "__main__.py"), *sys.argv[2:]]
sys.exit(cli.main(sys.argv[1:]))
"""


def environment() -> Dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1", OPENBLAS_NUM_THREADS="1")


def wait_for(path: Path, proc: subprocess.Popen) -> None:
    """Until `path` exists (the process reached the state it marks), bounded."""
    deadline = time.monotonic() + WAIT
    while not path.exists():
        assert proc.poll() is None, f"exited with {proc.returncode} before {path.name}"
        assert time.monotonic() < deadline, f"no {path.name} after {WAIT} s"
        time.sleep(0.02)


def finish(proc: subprocess.Popen) -> str:
    """The process's stderr once it has exited (killed if it does not, bounded)."""
    try:
        _, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return err


@needs_mnist
@pytest.mark.parametrize("name", SIGNALS)
def test_train_saves_says_how_to_resume_and_exits_with_its_status(name, tmp_path):
    sig, status, said = SIGNALS[name]
    out, marker, epochs = tmp_path / "run", tmp_path / "held", 3
    proc = subprocess.Popen([sys.executable, "-c", HELD_TRAIN, str(marker), "train", *TINY,
                             "--epochs", str(epochs), "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=environment(), cwd=tmp_path)
    wait_for(marker, proc)
    proc.send_signal(sig)
    err = finish(proc)
    assert proc.returncode == status and "Traceback" not in err, err
    assert f"{said} during epoch 1. The last completed epoch is saved in " \
           f"{out / 'last.npz'}." in err
    hint = err.split("Resume with:")[1].strip()
    assert hint == f"python -m tinygrad_mnist train --resume {out}"
    assert tg.load(out / "last.npz")["epoch"] == 1
    done = subprocess.run([sys.executable, *hint.split()[1:], "-qq"], capture_output=True,
                          text=True, timeout=300, env=environment(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert tg.load(out / "last.npz")["epoch"] == epochs
    assert (out / "report.json").exists()


#: Runs `tinygrad-mnist sweep ARGS...`, held after its first trial has finished (and is
#: in sweep.csv) until a signal arrives.
HELD_SWEEP = """
import sys, time
from pathlib import Path
from tinygrad_mnist.app import cli
from tinygrad_mnist.app.sweep import runner
marker = Path(sys.argv[1])
finished = runner._Progress.finished
def finished_then_hold(self, trial, row):
    finished(self, trial, row)
    if not marker.exists():
        marker.write_text("one trial is finished")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            time.sleep(0.01)
runner._Progress.finished = finished_then_hold
sys.argv = ["tinygrad-mnist", *sys.argv[2:]]
sys.exit(cli.main(sys.argv[1:]))
"""


@needs_mnist
def test_sweep_stops_on_sigterm_and_says_how_to_resume(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "out": str(tmp_path / "sweep"), "space": {"lr": [0.001, 0.002, 0.003]},
        "train": {"limit": 600, "val_size": 200, "hidden": [16], "epochs": 1,
                  "batch_size": 100, "plots": False}}))
    marker = tmp_path / "held"
    proc = subprocess.Popen([sys.executable, "-c", HELD_SWEEP, str(marker), "sweep",
                             str(spec), "--workers", "1", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=environment(), cwd=tmp_path)
    wait_for(marker, proc)
    proc.send_signal(signal.SIGTERM)
    err = finish(proc)
    assert proc.returncode == errors.EXIT_TERMINATED and "Traceback" not in err, err
    assert "Terminated (SIGTERM): 1 of 3 trials are finished" in err
    assert f"Resume with:  tinygrad-mnist sweep {spec}" in err
    rows = (tmp_path / "sweep" / "sweep.csv").read_text().splitlines()
    assert len(rows) == 2  # the header and the finished trial, kept


#: Serves `tinygrad-mnist serve ARGS...` with a predictor that, once a request reaches
#: it, marks that and holds the request until the server has been told to stop.
HELD_SERVE = """
import sys, threading
from pathlib import Path
import numpy as np
import uvicorn
from tinygrad_mnist.app import cli
from tinygrad_mnist.app.serve import server
marker = Path(sys.argv[1])
stopping = threading.Event()
handle_exit = uvicorn.Server.handle_exit
def handle_exit_and_say(self, sig, frame):
    stopping.set()
    handle_exit(self, sig, frame)
uvicorn.Server.handle_exit = handle_exit_and_say
def held_predictor(run_dir, top_k=None):
    def predict_proba(images):
        marker.write_text("a request is under way")
        assert stopping.wait(300)
        p = np.full((len(images), 10), 0.02)
        p[:, 7] = 0.82
        return p
    return predict_proba
server.load_predictor = held_predictor
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("name", SIGNALS)
def test_serve_answers_the_request_under_way_then_stops(name, tmp_path):
    sig = SIGNALS[name][0]
    marker = tmp_path / "held"
    proc = subprocess.Popen([sys.executable, "-c", HELD_SERVE, str(marker), "serve",
                             str(tmp_path / "any-run"), "--port", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=environment(), cwd=tmp_path)
    answers: List[Any] = []
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # printed once the server answers
        port = int(re.search(r"127\.0\.0\.1:(\d+)/", line).group(1))
        drawing = np.full((28, 28), 255)
        drawing[5:23, 12:16] = 0
        body = json.dumps({"width": 28, "height": 28,
                           "pixels": drawing.ravel().tolist()}).encode()

        def ask() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
            connection.request("POST", "/predict", body=body,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            answers.append((response.status, json.loads(response.read())))
            connection.close()
        client = threading.Thread(target=ask, daemon=True)
        client.start()
        wait_for(marker, proc)  # the request is inside the model
        proc.send_signal(sig)
        client.join(WAIT)
        err = line + finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert answers and answers[0][0] == 200 and answers[0][1]["digit"] == 7, answers
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert '"POST /predict" 200' in err  # answered, and logged as such

