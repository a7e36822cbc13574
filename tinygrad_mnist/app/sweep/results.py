"""A sweep's results: one row per trial (`sweep.csv`), the summary per configuration
(mean ± std over seeds: `summary.csv`, `summary.md` and the table printed at the end),
and the plots (`metric.png`: the metric against each swept option; `parallel.png`:
parallel coordinates over the swept options and the metric).

Configurations are ranked by their mean validation metric; the test accuracy is shown
beside it but never used to choose."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pandas as pd

from .. import plots
from ...atomic import atomic_write_text
from ..inference import SWEEP_CSV
from .spec import Spec, Trial

#: The per-trial columns of sweep.csv after the swept options and the seed.
RESULT_COLUMNS = ("status", "val_acc", "val_loss", "test_acc", "test_loss", "best_epoch",
                  "train_seconds", "seconds", "resumed_from", "worker", "run_dir", "error")


def read_run(run_dir: Path) -> Dict[str, Any]:
    """The results of a finished run directory: best validation accuracy, lowest
    validation loss, test accuracy and loss, best epoch, training seconds."""
    report = json.loads((Path(run_dir) / "report.json").read_text())
    val_loss = None
    if (Path(run_dir) / "metrics.csv").exists():
        history = pd.read_csv(Path(run_dir) / "metrics.csv")
        if len(history):
            val_loss = float(history["val_loss"].min())
    return {"status": "ok", "val_acc": report["val_accuracy"], "val_loss": val_loss,
            "test_acc": report["test_accuracy"], "test_loss": report["test_loss"],
            "best_epoch": report["best_epoch"], "train_seconds": report["training_seconds"],
            "error": None}


def format_value(value: Any) -> Any:
    """An option's value as one CSV cell: lists as "512 256" (as on the command line)."""
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return value


def trials_frame(spec: Spec, finished: Sequence[Tuple[Trial, Dict[str, Any]]]
                 ) -> pd.DataFrame:
    """sweep.csv's rows: trial, id, configuration, the swept options, seed, results
    (run_dir relative to the sweep directory)."""
    records = []
    for trial, row in sorted(finished, key=lambda item: item[0].index):
        record = {"trial": trial.index, "id": trial.id, "config": trial.config}
        record.update({k: format_value(trial.params.get(k)) for k in spec.space})
        record["seed"] = trial.seed
        record.update({k: row.get(k) for k in RESULT_COLUMNS})
        record["run_dir"] = row.get("run_dir") or f"trials/{trial.name}"
        records.append(record)
    columns = ["trial", "id", "config", *spec.space, "seed", *RESULT_COLUMNS]
    return pd.DataFrame(records, columns=columns)


def summarize(frame: pd.DataFrame, options: List[str], metric: str,
              maximize: bool) -> pd.DataFrame:
    """One row per configuration: the swept options, runs (finished) and failed, mean
    and std over seeds of the metric, test accuracy and training seconds; best first."""
    ok = frame[frame["status"] == "ok"]
    keys = options or None
    groups = frame.groupby(keys, sort=False, dropna=False) if keys else [((), frame)]
    rows = []
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        good = ok.loc[ok.index.intersection(group.index)]
        row = dict(zip(options, key))
        row.update(runs=len(good), failed=int(len(group) - len(good)))
        for column in dict.fromkeys([metric, "val_acc", "test_acc", "train_seconds"]):
            values = good[column].astype(float)
            row[f"{column}_mean"] = values.mean() if len(values) else math.nan
            row[f"{column}_std"] = values.std(ddof=1) if len(values) > 1 else \
                (0.0 if len(values) else math.nan)
        rows.append(row)
    summary = pd.DataFrame(rows)
    if not len(summary):
        return summary
    order = summary[f"{metric}_mean"].fillna(-math.inf if maximize else math.inf)
    index = order.sort_values(ascending=not maximize, kind="stable").index
    return summary.loc[index].reset_index(drop=True)


def best_configuration(summary: pd.DataFrame, metric: str) -> Optional[Dict[str, Any]]:
    """The summary's top row (the best mean validation metric), if any trial finished."""
    if not len(summary) or not summary["runs"].iloc[0]:
        return None
    return summary.iloc[0].to_dict()


def format_metric(metric: str, value: float) -> str:
    return f"{value:.2%}" if metric.endswith("acc") else f"{value:.4f}"


def _mean_std(metric: str, mean: float, std: float, runs: int) -> str:
    if not runs:
        return "–"
    if metric.endswith("acc"):
        text = f"{100 * mean:.2f}"
        return (text + (f" ± {100 * std:.2f}" if runs > 1 else "")) + " %"
    return f"{mean:.4f}" + (f" ± {std:.4f}" if runs > 1 else "")


def summary_table(summary: pd.DataFrame, options: List[str], metric: str) -> pd.DataFrame:
    """The summary as the printed/markdown table: text cells, best configuration first."""
    rows = []
    for _, r in summary.iterrows():
        row = {k: r[k] for k in options}
        runs, failed = int(r["runs"]), int(r["failed"])
        row["runs"] = runs if not failed else f"{runs} (+{failed} failed)"
        for column, title in dict.fromkeys([(metric, metric.replace("_", " ")),
                                            ("val_acc", "val acc"), ("test_acc", "test acc")]):
            row[title] = _mean_std(column, r[f"{column}_mean"], r[f"{column}_std"], runs)
        seconds = r["train_seconds_mean"]
        row["s / run"] = "–" if not runs else f"{seconds:.{0 if seconds >= 10 else 1}f}"
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    """A DataFrame as a GitHub markdown table."""
    columns = list(map(str, table.columns))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def format_summary(spec: Spec, frame: pd.DataFrame, summary: pd.DataFrame,
                   best: Optional[Dict[str, Any]], ran: int, skipped: int,
                   seconds: float = 0.0, workers: int = 0) -> str:
    """The text printed at the end of a sweep."""
    options = list(spec.space)
    failed = int((frame["status"] != "ok").sum()) if len(frame) else 0
    took = f"{int(seconds // 60)} min {seconds % 60:.0f} s" if seconds >= 60 else \
        f"{seconds:.1f} s"
    lines = [f"\nSweep {spec.name}: {len(frame)} trials ({ran} run now in {took} on "
             f"{workers} worker thread(s), {skipped} already finished, {failed} failed), "
             f"{len(summary)} configuration(s) × {len(spec.seeds)} seed(s), ranked by mean "
             f"{spec.metric}:", ""]
    if len(summary):
        lines.append(summary_table(summary, options, spec.metric).to_string(index=False))
    if best is not None:
        chosen = ", ".join(f"{k}={best[k]}" for k in options) or "the only configuration"
        runs, metric = int(best["runs"]), spec.metric
        validation = _mean_std(metric, best[f"{metric}_mean"], best[f"{metric}_std"], runs)
        test = _mean_std("test_acc", best["test_acc_mean"], best["test_acc_std"], runs)
        lines += ["", f"Best by {metric}: {chosen}: validation {validation}, test {test}"]
    lines.append(f"Results: {spec.out / SWEEP_CSV}, summary.md, metric.png, parallel.png")
    return "\n".join(lines)


def write_summary(directory: Path, frame: pd.DataFrame, summary: pd.DataFrame, spec: Spec,
                  make_plots: bool = True) -> List[Path]:
    """summary.csv, summary.md and (with `make_plots`) metric.png and parallel.png."""
    options = list(spec.space)
    files = [atomic_write_text(directory / "summary.csv", summary.to_csv(index=False))]
    table = summary_table(summary, options, spec.metric) if len(summary) else pd.DataFrame()
    text = (f"# Sweep {spec.name}\n\n{len(frame)} trials, ranked by mean {spec.metric} over "
            f"seeds {spec.seeds} (the test accuracy is shown, never used to choose).\n\n"
            + (markdown(table) if len(table) else "No finished trial.") + "\n")
    files.append(atomic_write_text(directory / "summary.md", text))
    ok = frame[frame["status"] == "ok"]
    if make_plots and len(ok) and options:
        plots.sweep_metric(ok, options, spec.metric, directory / "metric.png",
                           title=f"Sweep {spec.name}")
        plots.parallel_coordinates(ok, options, spec.metric, directory / "parallel.png",
                                   title=f"Sweep {spec.name}: {len(ok)} trials")
        files += [directory / "metric.png", directory / "parallel.png"]
    return files
