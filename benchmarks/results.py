#!/usr/bin/env python
"""The measured results behind every number in README.md and docs/: one file,
``benchmarks/results.json``, its writer and the tables drawn from it.

Each entry is one measurement::

    {"kind": "train", "group": "mnist/mlp", "command": "tinygrad-mnist train",
     "date": "2026-12-08", "code": "2f9e3b1",
     "machine": {"cpu": "AMD EPYC", "cores": 2, "load": "shared", "load_average": 5.1},
     "values": {"seed": 0, "test_acc": 98.53, "epochs": 12, "train_seconds": 34.7},
     "note": "..."}

``kind`` says which script wrote it (``train``, ``ensemble``, ``sweep``,
``bench_train``, ``bench_cnn``, ``bench_serve``, ``generalisation``); ``group`` is the
row it belongs to in the tables (all entries of a group are the same configuration, so
a table shows their range); accuracies are percentages. ``code`` is the commit
measured; figures carried over from the README before this file existed have
``"code": null`` and ``recorded_in``, the commit that recorded them (and its date).
``machine.load`` is "quiet" (nothing else running) or "shared" (other work on the
machine: times are not comparable).

Writers: ``record()`` here, called by ``bench_train.py``, ``bench_cnn.py``,
``bench_serve.py`` and ``generalisation.py`` when given ``--record``, and the commands::

    python benchmarks/results.py run RUN_DIR --group mnist/mlp --command "tinygrad-mnist train"
    python benchmarks/results.py ensemble ENSEMBLE_DIR --group mnist/cnn5 --command "..."
    python benchmarks/results.py sweep SWEEP_DIR --group mnist/mlp-lr-hidden --command "..."
    python benchmarks/results.py render [--check]

``render`` rewrites every table between ``<!-- results: NAME -->`` and
``<!-- /results -->`` in README.md and docs/*.md from the file; ``--check`` only says
which differ (tests/test_readme.py fails when one does).
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results.json"
PAGES = ("README.md", "docs/*.md")
KINDS = ("train", "ensemble", "sweep", "bench_train", "bench_cnn", "bench_serve",
         "generalisation")
QUIET_LOAD = 1.5  # load average per core below which a machine counts as quiet


# --------------------------------------------------------------------------- writing
def cpu_model() -> str:
    """The CPU's model name ("AMD EPYC", "Intel(R) Xeon(R) ..."), as the OS reports it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(load: Optional[str] = None) -> Dict[str, Any]:
    """This machine as an entry records it: CPU model, cores, load average now and
    "quiet" or "shared" (given, or judged from the load average)."""
    cores = os.cpu_count() or 1
    try:
        average = round(os.getloadavg()[0], 2)
    except OSError:
        average = None
    if load is None:
        load = "quiet" if average is not None and average / cores < QUIET_LOAD / 2 else "shared"
    return {"cpu": cpu_model(), "cores": cores, "load": load, "load_average": average}


def code_version() -> Optional[str]:
    """The checkout's short commit, or None outside git."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def load(path: Optional[Path] = None) -> List[Dict[str, Any]]:
    return json.loads(Path(path or RESULTS).read_text())["results"]


def _same(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    """The same measurement: kind, group, date, machine and identifying values."""
    keys = ("seed", "set", "threads", "clients", "run", "config")
    return (a["kind"], a["group"], a["date"], a["machine"]["cpu"]) == \
        (b["kind"], b["group"], b["date"], b["machine"]["cpu"]) and \
        all(a["values"].get(k) == b["values"].get(k) for k in keys)


def record(kind: str, group: str, values: Dict[str, Any], command: str, *,
           note: str = "", load: Optional[str] = None, date: Optional[str] = None,
           machine_info: Optional[Dict[str, Any]] = None, code: Optional[str] = None,
           path: Optional[Path] = None) -> Dict[str, Any]:
    """Add one measurement to the results file (`path`, default RESULTS), replacing the
    same measurement made earlier that day on this machine, and return the entry."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    entry = {"kind": kind, "group": group, "command": command,
             "date": date or datetime.date.today().isoformat(),
             "code": code if code is not None else code_version(),
             "machine": machine_info or machine(load), "values": values}
    if note:
        entry["note"] = note
    path = Path(path or RESULTS)
    data = json.loads(path.read_text()) if path.exists() else {"results": []}
    data["results"] = [e for e in data["results"] if not _same(e, entry)] + [entry]
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return entry


def run_values(run: Path) -> Dict[str, Any]:
    """What a training run's directory says about it: seed, epochs, test and validation
    accuracy, test loss, training seconds, seconds per epoch (range), threads, jit."""
    report = json.loads((run / "report.json").read_text())
    config = json.loads((run / "config.json").read_text())
    with open(run / "metrics.csv", newline="") as f:
        seconds = [float(r["seconds"]) for r in csv.DictReader(f)]
    return {"seed": config["seed"], "epochs": len(seconds),
            "test_acc": round(100 * report["test_accuracy"], 2),
            "val_acc": round(100 * report["val_accuracy"], 2),
            "test_loss": round(report["test_loss"], 4),
            "train_seconds": round(report["training_seconds"], 1),
            "epoch_seconds": [round(min(seconds), 1), round(max(seconds), 1)],
            "threads": config.get("threads"), "jit": config.get("jit")}


# --------------------------------------------------------------------------- reading
def fmt_acc(values: Iterable[float], decimals: int = 2) -> str:
    """"98.53 %" or the range "98.41–98.59 %"."""
    vals = sorted(values)
    if not vals:
        return "not measured"
    lo, hi = f"{vals[0]:.{decimals}f}", f"{vals[-1]:.{decimals}f}"
    return f"{lo} %" if lo == hi else f"{lo}–{hi} %"


def fmt_seconds(s: Optional[float]) -> str:
    """"35 s", "7 min 45 s", "1 h 7 min"."""
    if s is None:
        return ""
    s = round(s)
    if s < 120:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


def short_cpu(m: Dict[str, Any]) -> str:
    cpu = re.sub(r"\((R|TM)\)|CPU|Processor|@.*", "", m["cpu"])
    cpu = re.sub(r"\b\d+-Core\b", "", cpu)
    cores = f"{m['cores']} cores" if m.get("cores") else "cores not recorded"
    return f"{' '.join(cpu.split())}, {cores}"


def accuracies(entries: Sequence[Dict[str, Any]], key: str = "test_acc") -> List[float]:
    out: List[float] = []
    for e in entries:
        v = e["values"].get(key)
        out += v if isinstance(v, list) else [] if v is None else [v]
    return out


def _seeds(entries) -> str:
    seeds = sorted({s for e in entries for s in
                    (e["values"].get("seeds") or [e["values"].get("seed")]) if s is not None})
    if not seeds:
        return ""
    if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 1:
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _cpus(entries) -> str:
    return "; ".join(dict.fromkeys(short_cpu(e["machine"]) for e in entries))


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


def by_group(entries, kind: str, group: str):
    return [e for e in entries if e["kind"] == kind and e["group"] == group]


def _timing(entries) -> str:
    """The training time of the quiet-machine runs (else all runs), as a range; the
    wall time where no training time was recorded."""
    key = "train_seconds"
    timed = [e for e in entries if e["values"].get(key)]
    if not timed:
        key = "wall_seconds"
        timed = [e for e in entries if e["values"].get(key)]
    quiet = [e for e in timed if e["machine"]["load"] == "quiet"] or timed
    secs = sorted(e["values"][key] for e in quiet)
    if not secs:
        return "not measured"
    lo, hi = fmt_seconds(secs[0]), fmt_seconds(secs[-1])
    text = lo if lo == hi else f"{lo}–{hi}"
    return text + (" wall" if key == "wall_seconds" else "") + \
        ("" if quiet[0]["machine"]["load"] == "quiet" else " (shared machine)")


# The rows of the README's results table: (groups, kind, label); the first group's
# first entry gives the command.
SUMMARY_ROWS = [
    (("mnist/mlp",), "train", "MNIST, MLP 784-512-256-10"),
    (("mnist/cnn",), "train", "MNIST, CNN 32-64-128, affine distortion"),
    (("mnist/cnn-wide",), "train", "MNIST, CNN 64-128-256"),
    (("mnist/cnn5",), "ensemble", "MNIST, ensemble of 5 CNNs"),
    (("mnist/cnn-wide5", "mnist/cnn-wide5-any"), "ensemble",
     "MNIST, ensemble of 5 CNNs 64-128-256 (any 5 of the seeds)"),
    (("fashion-mnist/mlp",), "train", "Fashion-MNIST, MLP"),
    (("fashion-mnist/cnn",), "train", "Fashion-MNIST, CNN (its recipe)"),
]


def render_summary(entries) -> str:
    rows = []
    for groups, kind, label in SUMMARY_ROWS:
        found = [e for g in groups for e in by_group(entries, kind, g)]
        rows.append([label, f"`{found[0]['command']}`", fmt_acc(accuracies(found)),
                     _seeds(found), _timing(found), _cpus(found)])
    return table(["model", "command", "test accuracy", "seeds", "training time",
                  "measured on"], rows)


def render_runs(entries, prefix: str) -> str:
    """Every recorded training run of the groups under `prefix`, one row each."""
    rows = []
    for e in entries:
        if e["kind"] != "train" or not e["group"].startswith(prefix):
            continue
        v = e["values"]
        seeds = _seeds([e])
        spe = v.get("epoch_seconds")
        rows.append([f"`{e['command']}`", seeds, fmt_acc(accuracies([e])), v.get("epochs", ""),
                     fmt_seconds(v.get("train_seconds")),
                     "–".join(f"{s:g}" for s in spe) if isinstance(spe, list) else spe or "",
                     fmt_seconds(v.get("wall_seconds")),
                     f"{short_cpu(e['machine'])}, {e['machine']['load']}",
                     e["date"], _commit(e)])
    return table(["command", "seed", "test accuracy", "epochs", "training", "s / epoch",
                  "wall", "machine", "date", "code"], rows)


def _commit(e) -> str:
    """The commit measured, or the one that recorded a figure carried over."""
    if e.get("code"):
        return f"`{e['code']}`"
    return f"recorded in `{e['recorded_in']}`" if e.get("recorded_in") else ""


def render_ensemble(entries, group: str) -> str:
    """The members of the ensemble `group` (train entries whose values name it), then
    the ensemble."""
    rows = []
    members = [e for e in entries if e["kind"] == "train" and e["values"].get("ensemble") == group]
    for e in sorted(members, key=lambda e: e["values"]["seed"]):
        v = e["values"]
        rows.append([v["seed"], f"{v['val_acc']:.2f} %", f"{v['test_acc']:.2f} %",
                     f"{v['test_loss']:.4f}"])
    for e in by_group(entries, "ensemble", group):
        v = e["values"]
        rows.append([f"**ensemble of {v['members']}** (seeds {_seeds([e])})", "",
                     f"**{v['test_acc']:.2f} %**", f"**{v['test_loss']:.4f}**"])
    return table(["seed", "validation accuracy", "test accuracy", "test loss"], rows)


def render_ensembles(entries) -> str:
    """Every recorded ensemble."""
    rows = []
    for e in entries:
        if e["kind"] != "ensemble":
            continue
        v = e["values"]
        median = f" (median {v['median_test_acc']:.2f} %)" if "median_test_acc" in v else ""
        rows.append([f"`{e['command']}`", v["members"], _seeds([e]),
                     fmt_acc(accuracies([e])) + median,
                     f"{v['test_loss']:.4f}" if "test_loss" in v else "",
                     fmt_seconds(v.get("wall_seconds")),
                     f"{short_cpu(e['machine'])}, {e['machine']['load']}", e.get("note", "")])
    return table(["command", "members", "seeds", "test accuracy", "test loss", "wall",
                  "machine", "note"], rows)


def render_sweep(entries, group: str) -> str:
    rows = []
    for e in by_group(entries, "sweep", group):
        v = e["values"]
        rows.append([*v["config"].values(), v["runs"],
                     f"{v['val_acc']:.2f} ± {v['val_acc_std']:.2f} %",
                     f"{v['test_acc']:.2f} ± {v['test_acc_std']:.2f} %",
                     f"{v['train_seconds']:g}"])
    first = by_group(entries, "sweep", group)[0]["values"]["config"]
    return table([*first, "runs", "val acc", "test acc", "s / run"], rows)


GEN_MODELS = [("mnist/mlp", "default MLP"), ("mnist/cnn", "CNN, affine (default)"),
              ("mnist/cnn-shift", "CNN, shifts"), ("mnist/cnn-elastic", "CNN, elastic")]


FASHION_MODELS = [("fashion-mnist/cnn", "Fashion-MNIST CNN")]


def render_generalisation(entries, models=GEN_MODELS) -> str:
    groups = {group for group, _ in models}
    gen = [e for e in entries if e["kind"] == "generalisation" and e["group"] in groups]
    sets = list(dict.fromkeys(e["values"]["set"] for e in gen))
    rows = []
    for s in sets:
        here = [e for e in gen if e["values"]["set"] == s]
        row = [s, f"{here[0]['values']['images']:,}"]
        for group, _ in models:
            row.append(fmt_acc(accuracies([e for e in here if e["group"] == group], "accuracy"),
                               decimals=1).replace("not measured", ""))
        rows.append(row)
    return table(["test set", "images", *(label for _, label in models)], rows)


def render_bench_train(entries) -> str:
    rows = []
    for e in entries:
        if e["kind"] != "bench_train":
            continue
        v = e["values"]
        for mlp, times in v["seconds_per_epoch"].items():
            rows.append([mlp, *(f"{times[k]:.3f}" if k in times else "" for k in
                                ("eager", "compiled", "numpy by hand", "PyTorch CPU")),
                         f"{short_cpu(e['machine'])}, {e['date']}"])
    return table(["MLP, batch 128, s/epoch", "eager", "compiled", "numpy by hand",
                  "PyTorch CPU", "measured on"], rows)


def render_bench_cnn(entries) -> str:
    rows = []
    for e in entries:
        if e["kind"] != "bench_cnn":
            continue
        v = e["values"]
        rows.append([v["threads"], f"{v['eager']:.1f}", f"{v['compiled']:.1f}",
                     f"{v['PyTorch CPU']:.1f}", f"{v['compiled'] / v['PyTorch CPU']:.2f}×",
                     f"{short_cpu(e['machine'])}, {e['date']}"])
    return table(["BLAS threads", "eager s/epoch", "compiled", "PyTorch CPU",
                  "compiled ÷ PyTorch", "measured on"], rows)


def _span(values: Sequence[float], form: str) -> str:
    lo, hi = form.format(min(values)), form.format(max(values))
    return lo if lo == hi else f"{lo}–{hi}"


def render_bench_serve(entries) -> str:
    serve = [e for e in entries if e["kind"] == "bench_serve" and e["group"] == "serve-mlp"]
    rows = []
    for phase in dict.fromkeys(e["values"]["clients"] for e in serve):
        here = [e["values"] for e in serve if e["values"]["clients"] == phase]
        rps = sorted(v["requests_per_s"] for v in here)
        p99 = sorted(v["p99_ms"] for v in here)
        rows.append([phase, len(here), _span(rps, "{:,.0f}"), _span(p99, "{:.0f}") + " ms",
                     sum(v["errors"] for v in here),
                     _cpus([e for e in serve if e["values"]["clients"] == phase])])
    return table(["clients", "runs", "requests / s", "p99 latency", "errors", "measured on"],
                 rows)


TABLES: Dict[str, Callable[[List[Dict[str, Any]]], str]] = {
    "summary": render_summary,
    "mnist-runs": lambda e: render_runs(e, "mnist/"),
    "fashion-runs": lambda e: render_runs(e, "fashion-mnist/"),
    "ensemble-cnn5": lambda e: render_ensemble(e, "mnist/cnn5"),
    "ensemble-wide5": lambda e: render_ensemble(e, "mnist/cnn-wide5"),
    "ensembles": render_ensembles,
    "sweep-mlp": lambda e: render_sweep(e, "mnist/mlp-lr-hidden"),
    "generalisation": render_generalisation,
    "generalisation-fashion": lambda e: render_generalisation(e, FASHION_MODELS),
    "bench-train": render_bench_train,
    "bench-cnn": render_bench_cnn,
    "bench-serve": render_bench_serve,
}

BLOCK = re.compile(r"(<!-- results: ([\w-]+) -->\n)(.*?)(<!-- /results -->)", re.S)


def pages(root: Path = ROOT) -> List[Path]:
    return [p for pattern in PAGES for p in sorted(root.glob(pattern))]


def render_text(text: str, entries) -> str:
    return BLOCK.sub(lambda m: m.group(1) + TABLES[m.group(2)](entries) + "\n" + m.group(4),
                     text)


def render(check: bool = False, root: Path = ROOT, path: Optional[Path] = None) -> List[Path]:
    """Rewrite the marked tables (or, with `check`, only list the pages that differ)."""
    entries, stale = load(path), []
    for page in pages(root):
        text = page.read_text()
        new = render_text(text, entries)
        if new != text:
            stale.append(page)
            if not check:
                page.write_text(new)
    return stale


# ------------------------------------------------------------------------------ CLI
def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    for name, helptext in (("run", "record a training run's directory"),
                           ("ensemble", "record an ensemble's report directory"),
                           ("sweep", "record a sweep directory's summary.csv")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("dir", type=Path)
        s.add_argument("--group", required=True, help="its row in the tables, e.g. mnist/mlp")
        s.add_argument("--command", required=True, help="the command that made it")
        s.add_argument("--load", choices=("quiet", "shared"),
                       help="was the machine quiet (default: judged from the load average)")
        s.add_argument("--code", help="the commit it was measured with (default: this "
                                      "checkout's)")
        s.add_argument("--note", default="")
    r = sub.add_parser("render", help="rewrite the marked tables in README.md and docs/")
    r.add_argument("--check", action="store_true", help="only list the pages that differ")
    args = p.parse_args(argv)
    if args.what == "render":
        stale = render(check=args.check)
        for page in stale:
            print(f"{'differs' if args.check else 'rewrote'}: {page.relative_to(ROOT)}")
        return 1 if stale and args.check else 0
    # recorded after the fact: the load average now says nothing about the run
    kw = dict(note=args.note, code=args.code,
              machine_info={**machine(args.load or "shared"), "load_average": None})
    if args.what == "run":
        record("train", args.group, run_values(args.dir), args.command, **kw)
    elif args.what == "ensemble":
        report = json.loads((args.dir / "report.json").read_text())
        record("ensemble", args.group,
               {"test_acc": round(100 * report["test_accuracy"], 2),
                "test_loss": round(report["test_loss"], 4),
                "members": report["size"],
                "seeds": sorted(m.get("seed") for m in report["members"]
                                if m.get("seed") is not None) or None}, args.command, **kw)
    else:
        with open(args.dir / "summary.csv", newline="") as f:
            for row in csv.DictReader(f):
                options = [k for k in row if not re.match(
                    r"(runs|failed|.*_(mean|std))$", k)]
                record("sweep", args.group, {
                    "config": {k: row[k] for k in options}, "runs": int(row["runs"]),
                    "val_acc": round(100 * float(row["val_acc_mean"]), 2),
                    "val_acc_std": round(100 * float(row["val_acc_std"] or 0), 2),
                    "test_acc": round(100 * float(row["test_acc_mean"]), 2),
                    "test_acc_std": round(100 * float(row["test_acc_std"] or 0), 2),
                    "train_seconds": round(float(row["train_seconds_mean"]), 1)},
                    args.command, **kw)
    print(f"recorded in {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
