"""Running a sweep's trials on Dask: an embedded `LocalCluster` (one single-threaded worker
process per core) or an existing cluster at a scheduler address.

Each trial is one task, `run_trial`, that trains one ordinary run into its own directory
under the sweep's `trials/`. What makes the sweep survive faults:

* a trial that raises is a row with status `failed` and its error; the others go on;
* a worker that dies mid-trial (killed, out of memory, its machine gone) has the task
  rescheduled by Dask on another worker (up to `distributed.scheduler.allowed-failures`
  times), and the trial resumes from its run's `last.npz`, so at most one epoch is redone;
* a re-run of the same spec skips every trial whose run directory holds a report, and
  resumes the ones that had begun;
* Ctrl-C cancels the queued trials, writes `sweep.csv` and says how to resume.

Run directories are written by the workers: on a cluster of several machines the sweep
directory must be on a file system they all see at the same path (and each worker needs
the MNIST files, through `data_dir`, `$TINYGRAD_MNIST_DATA` or its own cache).
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import pandas as pd

from ...atomic import atomic_write_text
from ...errors import Terminated
from ..config import TrainConfig
from ...serialization import load
from . import results
from .spec import PathLike, Spec, Trial, configurations, expand, load_spec

#: Environment for worker processes of the embedded LocalCluster: one BLAS thread each,
#: so N workers on N cores do not fight over them.
TRAIN_OPTIONS = {f.name for f in dataclasses.fields(TrainConfig)}
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                     "MKL_NUM_THREADS": "1"}


# --------------------------------------------------------------------- the task
def run_trial(options: Dict[str, Any], run_dir: str) -> Dict[str, Any]:
    """Train (or finish) one trial in `run_dir` and return its results row. Runs on a Dask
    worker: with one BLAS thread, and never raising for a failed run (the row says
    `failed` and why), so one bad trial cannot stop a sweep."""
    from threadpoolctl import threadpool_limits

    from ..train import train

    started = time.perf_counter()
    path = Path(run_dir)
    row: Dict[str, Any] = {"worker": f"{socket.gethostname()}:{os.getpid()}",
                           "resumed_from": None}
    try:  # quiet, and what the trainer still prints (its result line) is not for here
        with threadpool_limits(limits=1), contextlib.redirect_stdout(io.StringIO()):
            if not (path / "report.json").exists():
                if (path / "last.npz").exists():
                    row["resumed_from"] = int(load(path / "last.npz")["epoch"])
                    train(resume=path, quiet=True)
                else:  # a directory without a checkpoint holds nothing worth keeping
                    values = {**options, "out": str(path), "quiet": True}
                    if path.exists() and "overwrite" in TRAIN_OPTIONS:
                        values["overwrite"] = True
                    train(TrainConfig.from_dict(values))
        row.update(results.read_run(path))
    except Exception as e:  # recorded in sweep.csv; the sweep goes on
        row.update(status="failed", error=f"{type(e).__name__}: {e}")
    row["seconds"] = time.perf_counter() - started
    return row


# --------------------------------------------------------------------- planning
class _Planner:
    """Hands out trials: every one at the start for grid and random search; for TPE a
    few configurations at a time, each drawn from the results so far."""

    def __init__(self, spec: Spec, parallel: int) -> None:
        self.spec = spec
        self.parallel = max(1, parallel)
        self.study: Any = None
        self.asked: Dict[int, Tuple[Any, List[Trial]]] = {}
        self.configs = 0

    def start(self) -> List[Trial]:
        if self.spec.search != "tpe":
            return expand(self.spec, configurations(self.spec))
        self.study = _tpe_study(self.spec)
        return [t for _ in range(self.parallel) for t in self._ask()]

    def done(self, trial: Trial, rows: Dict[str, Dict[str, Any]]) -> List[Trial]:
        """Note that `trial` finished (rows: every finished trial's row, by id); returns
        the trials to run next: for TPE, once all seeds of a configuration are done, its
        mean metric is told to the study and the next configuration drawn."""
        if self.study is None or trial.config not in self.asked:
            return []
        optuna_trial, trials = self.asked[trial.config]
        if not all(t.id in rows for t in trials):
            return []
        del self.asked[trial.config]
        values = [rows[t.id].get(self.spec.metric) for t in trials
                  if rows[t.id].get("status") == "ok"]
        import optuna
        if values:
            self.study.tell(optuna_trial, float(sum(values) / len(values)))
        else:
            self.study.tell(optuna_trial, state=optuna.trial.TrialState.FAIL)
        return self._ask()

    def _ask(self) -> List[Trial]:
        """The trials (one per seed) of the next configuration TPE draws, if any is left.
        The sampler is seeded, so a re-run draws the same ones for the same results."""
        if self.configs >= self.spec.trials:
            return []
        optuna_trial = self.study.ask(_tpe_distributions(self.spec))
        params = {key: _tpe_value(self.spec, key, value)
                  for key, value in optuna_trial.params.items()}
        config = self.configs
        self.configs += 1
        trials = expand(self.spec, [params], first_config=config,
                        first_index=config * len(self.spec.seeds))
        self.asked[config] = (optuna_trial, trials)
        return trials


def _tpe_study(spec: Spec) -> Any:
    try:
        import optuna
    except ImportError:
        raise ImportError("search: tpe needs Optuna (pip install optuna); grid and random "
                          "search need nothing more") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(direction="maximize" if spec.maximize else "minimize",
                               sampler=optuna.samplers.TPESampler(seed=spec.seed))


def _tpe_distributions(spec: Spec) -> Dict[str, Any]:
    from optuna import distributions as d

    from .spec import Range
    out = {}
    for key, domain in spec.space.items():
        if isinstance(domain, Range):
            out[key] = (d.IntDistribution(int(domain.low), int(domain.high), log=domain.log)
                        if domain.int else d.FloatDistribution(domain.low, domain.high,
                                                               log=domain.log))
        else:  # Optuna's categories are scalars: choose among the values' JSON texts
            out[key] = d.CategoricalDistribution([json.dumps(v) for v in domain])
    return out


def _tpe_value(spec: Spec, key: str, value: Any) -> Any:
    return json.loads(value) if isinstance(spec.space[key], list) else value


# --------------------------------------------------------------------- the engine
@dataclass
class SweepResult:
    """What `run` returns: the sweep directory, one row per trial (`sweep.csv`), the
    summary per configuration, how many trials ran now, were skipped or failed, and the
    wall time."""
    directory: Path
    frame: pd.DataFrame
    summary: pd.DataFrame
    best: Optional[Dict[str, Any]]
    ran: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0        # wall time of this run of the sweep
    files: List[Path] = field(default_factory=list)


def start_client(scheduler: Optional[str] = None,
                 workers: Optional[int] = None) -> Tuple[Any, Any]:
    """(client, cluster): a Dask client connected to `scheduler` (``tcp://HOST:PORT``;
    cluster None), or to a new LocalCluster on 127.0.0.1 with `workers` single-threaded
    processes (default: one per core). Close both when done (`close_client`)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError('sweeps run on Dask: pip install -e ".[sweep]" (or pip install '
                          '"dask[distributed]")') from None
    if scheduler:
        return Client(scheduler, timeout="30s"), None
    if not workers:
        workers = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1)
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address="127.0.0.1:0",
                           env=dict(SINGLE_THREAD_ENV), silence_logs=logging.CRITICAL)
    return Client(cluster), cluster


def close_client(client: Any, cluster: Any = None) -> None:
    """Close a client and the cluster `start_client` started with it, if any."""
    client.close()
    if cluster is not None:
        cluster.close()


def _parallelism(client: Any) -> int:
    try:
        return max(1, sum(client.nthreads().values()))
    except Exception:  # pragma: no cover - a scheduler that does not answer
        return 1


def run(spec: Union[PathLike, Dict[str, Any], Spec], client: Any = None, *,
        scheduler: Optional[str] = None, workers: Optional[int] = None,
        out: Optional[PathLike] = None, progress: bool = True,
        plots: bool = True) -> SweepResult:
    """Run a sweep (a spec file, dict or Spec; see `tinygrad_mnist.app.sweep.spec`) and return
    its results. Trials run on `client` if given, else on a new client (`scheduler`, or a
    LocalCluster of `workers` processes) that is closed at the end. `out` overrides the
    spec's sweep directory. Writes `sweep.csv` as trials finish, then `summary.csv`,
    `summary.md` and (with `plots`) `metric.png` and `parallel.png`."""
    spec = load_spec(spec)
    if out is not None:
        spec.out = Path(out)
    directory = spec.out
    (directory / "trials").mkdir(parents=True, exist_ok=True)
    atomic_write_text(directory / "spec.json", json.dumps(spec.to_dict(), indent=2) + "\n")
    own = client is None
    cluster = None
    if own:
        client, cluster = start_client(scheduler, workers)
    try:
        return _run(spec, client, directory, progress, plots)
    finally:
        if own:
            close_client(client, cluster)


def _run(spec: Spec, client: Any, directory: Path, progress: bool,
         plots: bool) -> SweepResult:
    began = time.monotonic()
    say = _Say(progress)
    parallel = _parallelism(client)
    planner = _Planner(spec, parallel)
    rows: Dict[str, Dict[str, Any]] = {}      # finished trials (ok or failed), by id
    trials: Dict[str, Trial] = {}
    finished_before = _finished_runs(directory)
    todo = planner.start()
    futures: Dict[Any, Trial] = {}
    run_dirs: Dict[str, str] = {}              # relative to the sweep directory
    skipped = ran = 0
    line = _Progress(spec, say)

    def submit(new: List[Trial]) -> None:
        nonlocal skipped
        queue = list(new)
        while queue:
            trial = queue.pop(0)
            trials[trial.id] = trial
            if trial.id in finished_before:
                rows[trial.id] = {**finished_before[trial.id], "status": "ok"}
                skipped += 1
                queue += planner.done(trial, rows)
                continue
            run_dir = _run_dir(directory, trial)
            run_dirs[trial.id] = run_dir.relative_to(directory).as_posix()
            future = client.submit(run_trial, trial.options, str(run_dir.resolve()), pure=False,
                                   key=f"trial-{trial.name}-{os.urandom(3).hex()}")
            futures[future] = trial

    submit(todo)
    if skipped:
        say(f"{spec.name}: {skipped} trial(s) already finished in {directory}, "
            f"{len(futures)} to run")
    try:
        last_poll = 0.0
        while futures:
            done = [f for f in futures if f.done()]
            for future in done:
                trial = futures.pop(future)
                rows[trial.id] = {**_row_of(future), "run_dir": run_dirs[trial.id]}
                ran += 1
                _write_csv(directory, spec, trials, rows)
                line.finished(trial, rows[trial.id])
                submit(planner.done(trial, rows))
            now = time.monotonic()
            if done or now - last_poll > 1.0:
                last_poll = now
                line.show(len(rows), len(trials), _running(client, futures))
            if not done and futures:
                _wait_for_one(list(futures), seconds=1.0)
    except KeyboardInterrupt as e:
        client.cancel(list(futures))
        _write_csv(directory, spec, trials, rows)
        line.end()
        how = (f"tinygrad-mnist sweep {spec.source}" if spec.source else
               f"tinygrad_mnist.app.sweep.run({str(directory / 'spec.json')!r})")
        what = "Terminated (SIGTERM)" if isinstance(e, Terminated) else "Interrupted"
        print(f"\n{what}: {sum(r.get('status') == 'ok' for r in rows.values())} of "
              f"{len(trials)} trials are finished (kept in {directory / 'sweep.csv'}); "
              f"unfinished ones resume from their last epoch.\nResume with:  {how}",
              file=sys.stderr, flush=True)
        raise
    line.end()
    frame = _write_csv(directory, spec, trials, rows)
    summary = results.summarize(frame, list(spec.space), spec.metric, spec.maximize)
    files = results.write_summary(directory, frame, summary, spec, make_plots=plots)
    best = results.best_configuration(summary, spec.metric)
    failed = int((frame["status"] != "ok").sum()) if len(frame) else 0
    seconds = time.monotonic() - began
    say(results.format_summary(spec, frame, summary, best, ran, skipped, seconds, parallel))
    return SweepResult(directory, frame, summary, best, ran, skipped, failed, seconds, files)


def _run_dir(directory: Path, trial: Trial) -> Path:
    """The trial's run directory: an existing one with its id (from an earlier run of a
    spec whose order changed), else trials/NNN-ID."""
    existing = sorted((directory / "trials").glob(f"*-{trial.id}"))
    return existing[0] if existing else directory / "trials" / trial.name


def _finished_runs(directory: Path) -> Dict[str, Dict[str, Any]]:
    """Trials of an earlier run of this sweep whose run directory holds a report, by id."""
    found = {}
    for path in sorted((directory / "trials").glob("*-*")):
        if (path / "report.json").exists():
            try:
                found[path.name.rsplit("-", 1)[1]] = {**results.read_run(path),
                                                      "run_dir": f"trials/{path.name}"}
            except (OSError, ValueError, KeyError):
                continue  # unreadable: the trial runs again
    return found


def _wait_for_one(futures: List[Any], seconds: float) -> None:
    """Return as soon as one of `futures` is done, or after `seconds`."""
    from distributed import wait

    with contextlib.suppress(TimeoutError):
        wait(futures, timeout=seconds, return_when="FIRST_COMPLETED")


def _row_of(future: Any) -> Dict[str, Any]:
    """A finished future's row; a task Dask gave up on (its workers kept dying) fails."""
    if future.status == "finished":
        return future.result()
    from distributed.scheduler import KilledWorker

    error = future.exception()
    if isinstance(error, KilledWorker):
        text = "KilledWorker: the trial's workers died too many times"
    else:
        text = f"{type(error).__name__}: {error}"
    return {"status": "failed", "error": text, "resumed_from": None}


def _running(client: Any, futures: Dict[Any, Trial]) -> Optional[int]:
    """How many of the sweep's tasks are on a worker (at most one per worker thread: the
    scheduler may also queue a task or two on a busy worker)."""
    keys = {f.key for f in futures}
    try:
        processing = client.processing()
        nthreads = client.nthreads()
    except Exception:  # pragma: no cover - a scheduler that does not answer
        return None
    return sum(min(sum(1 for key in tasks if key in keys), nthreads.get(worker, 1))
               for worker, tasks in processing.items())


def _write_csv(directory: Path, spec: Spec, trials: Dict[str, Trial],
               rows: Dict[str, Dict[str, Any]]) -> pd.DataFrame:
    frame = results.trials_frame(spec, [(trials[i], rows[i]) for i in trials if i in rows])
    atomic_write_text(directory / results.SWEEP_CSV, frame.to_csv(index=False))
    return frame


class _Say:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str) -> None:
        if self.enabled:
            print(text, flush=True)


class _Progress:
    """The live line: trials done / running / failed and the best so far. On a terminal
    it redraws one line; otherwise it prints a line per finished trial."""

    def __init__(self, spec: Spec, say: _Say) -> None:
        self.spec, self.say = spec, say
        self.tty = say.enabled and sys.stderr.isatty()
        self.failed = 0
        self.done = -1
        self.best: Optional[Tuple[float, Trial]] = None
        self.text = ""

    def finished(self, trial: Trial, row: Dict[str, Any]) -> None:
        if row.get("status") != "ok":
            self.failed += 1
            if self.say.enabled:
                self._clear()
                print(f"trial {trial.name} failed: {row.get('error')}", file=sys.stderr,
                      flush=True)
            return
        value = row.get(self.spec.metric)
        if value is not None and (self.best is None or
                                  (value > self.best[0]) == self.spec.maximize
                                  and value != self.best[0]):
            self.best = (value, trial)

    def show(self, done: int, total: int, running: Optional[int]) -> None:
        if not self.say.enabled:
            return
        best = ("" if self.best is None else
                f"; best {self.spec.metric} {results.format_metric(self.spec.metric, self.best[0])}"
                f" (trial {self.best[1].name})")
        text = (f"[{self.spec.name}] {done}/{total} done, "
                f"{'?' if running is None else running} running, {self.failed} failed{best}")
        if text == self.text or (not self.tty and done == self.done):
            return  # a log file gets a line per finished trial, not per poll
        self.text, self.done = text, done
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + text)
            sys.stderr.flush()
        else:
            print(text, file=sys.stderr, flush=True)

    def _clear(self) -> None:
        if self.tty and self.text:
            sys.stderr.write("\r\x1b[2K")

    def end(self) -> None:
        if self.tty and self.text:
            sys.stderr.write("\n")
            sys.stderr.flush()
