"""The `tinygrad-mnist` command (also `python -m tinygrad_mnist` and
`scripts/train_mnist.py`): train, evaluate, predict, export, serve, sweep,
ensemble-train."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import json
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

from .. import __version__, errors, models, threads
from .config import TrainConfig, option_flag, saved_threads
from ..data import DATASETS
from ..errors import UsageError


PROG = "tinygrad-mnist"
#: How every usage error starts, whichever command or check finds it.
ERROR_PREFIX = f"{PROG}: error: "


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (exit status 2) and the exit statuses in --help;
    `option_names` are its visible options, for "did you mean"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("epilog", _EXIT_HELP)
        kwargs.setdefault("formatter_class", _Formatter)
        self.option_names: List[str] = []
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        if action.help is not argparse.SUPPRESS:
            self.option_names += [name for name in action.option_strings
                                  if name.startswith("--")]
        return action

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(errors.EXIT_USAGE, f"{ERROR_PREFIX}{message} (see {self.prog} --help)\n")


class _Formatter(argparse.HelpFormatter):
    """Wraps each paragraph (paragraphs are separated by a blank line), but keeps one
    laid out in lines (the exit statuses) as it is."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join(
            "".join(indent + line for line in part.splitlines(keepends=True)) if "\n" in part
            else super(_Formatter, self)._fill_text(part, width, indent)
            for part in text.split("\n\n")) + ("\n" if text.endswith("\n") else "")


class _Deprecated(argparse.Action):
    """An old spelling of an option: stores into the new option's `dest`, and says once
    on stderr which spelling to use instead. Hidden from --help."""

    def __init__(self, option_strings: List[str], dest: str, new: str = "",
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)
        self.new = new

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Optional[str] = None) -> None:
        print(f"{PROG}: note: {option_string} is deprecated and will be removed; use "
              f"{self.new}", file=sys.stderr, flush=True)
        setattr(namespace, self.dest, values)


def _unrecognized(extras: List[str], parser: "_Parser") -> str:
    """argparse's "unrecognized arguments" message, with the closest option of the
    command for the first unknown option ("did you mean --epochs?")."""
    message = f"unrecognized arguments: {' '.join(extras)}"
    for extra in extras:
        if extra.startswith("--"):
            close = difflib.get_close_matches(extra.split("=")[0], parser.option_names, n=1,
                                              cutoff=0.6)
            if close:
                return f"{message}; did you mean {close[0]}?"
    return message


def _command(sub: Any, name: str, summary: str, details: str = "") -> "_Parser":
    """A subcommand whose --help starts with the one line `summary` (also its line in
    `tinygrad-mnist --help`), then `details`."""
    description = summary[0].upper() + summary[1:] + "." + (f"\n\n{details}" if details else "")
    return sub.add_parser(name, help=summary, description=description)


_EXIT_HELP = ("exit status:\n" + "".join(f"  {code:<4} {meaning}\n" for code, meaning
                                         in errors.EXIT_MEANINGS.items())
              + f"An error is one line on stderr; --debug (or {errors.DEBUG_ENV}=1) also "
                "prints its traceback.")


def _add_train_options(p: argparse.ArgumentParser, exclude: tuple = (),
                       defaults: Optional[Dict[str, Any]] = None) -> None:
    """The train command's options, built from the metadata of TrainConfig's fields
    (without the options named in `exclude`, and then without --config and --resume);
    `defaults` are the command's own defaults where they differ from train's."""
    fields = [f for f in dataclasses.fields(TrainConfig) if f.name not in exclude]
    for f in fields:
        meta = f.metadata
        if meta["flag"]:
            continue  # on/off switches come last, after --config and --resume
        default = (defaults or {}).get(f.name, f.default)
        if default is None and any(f.name in d for d in models.DEFAULTS.values()):
            default = ", ".join(f"{model}: {d[f.name]}" for model, d in models.DEFAULTS.items()
                                if f.name in d)
            default += "".join(f"; the cnn on {name}: {info.cnn_defaults[f.name]}"
                               for name, info in DATASETS.items()
                               if f.name in info.cnn_defaults)
        help_text = meta["help"] if default is None else f"{meta['help']} (default: {default})"
        if meta["type"] is bool:
            p.add_argument(option_flag(f.name), action=argparse.BooleanOptionalAction,
                           default=None, help=help_text)
        else:  # choices are checked (case-insensitively) by TrainConfig.validate
            metavar = ("{" + ",".join(meta["choices"]) + "}" if meta["choices"] is not None
                       else "N" if meta["nargs"] else None)
            p.add_argument(option_flag(f.name), type=meta["type"], nargs=meta["nargs"],
                           default=None, metavar=metavar, help=help_text)
    if not exclude:
        p.add_argument("--config", type=Path,
                       help="JSON file of options (command-line flags win)")
        p.add_argument("--resume", metavar="RUN_DIR", type=Path,
                       help="continue an interrupted run from its last completed epoch")
    for f in fields:
        if f.metadata["flag"] and f.metadata["count"]:  # -q, -qq
            p.add_argument("-" + f.metadata["flag"][2], f.metadata["flag"], dest=f.name,
                           action="count", default=None, help=f.metadata["help"])
        elif f.metadata["flag"]:
            p.add_argument(f.metadata["flag"], dest=f.name, action="store_const",
                           const=not f.default, default=None, help=f.metadata["help"])


def _given_options(args: argparse.Namespace) -> Dict[str, Any]:
    """The TrainConfig options given on the command line."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
            if getattr(args, f.name, None) is not None}


def _config_from(args: argparse.Namespace) -> TrainConfig:
    """The options of --config FILE.json, overridden by the command line's."""
    values = {}
    if args.config is not None:
        try:
            values = json.loads(args.config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else \
                "nested too deeply" if isinstance(e, RecursionError) else e
            raise UsageError(f"cannot read --config {args.config}: {reason}") from None
        if not isinstance(values, dict):
            raise UsageError(f"--config {args.config} must hold a JSON object of options, "
                             f"e.g. {{\"epochs\": 3}}")
        values.pop("version", None)
    given = _given_options(args)
    values.update(given)
    try:
        return TrainConfig.from_dict(values)
    except UsageError as e:
        if args.config is None or e.option in given:
            raise
        message = str(e)
        if e.option is not None and message.startswith(option_flag(e.option) + " "):
            message = f'"{e.option}"' + message[len(option_flag(e.option)):]
        raise UsageError(f"--config {args.config}: {message}", e.option) from None


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command and its options."""
    parser = _Parser(prog=PROG, description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="show the traceback of an error (also: "
                             f"{errors.DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train_options(_command(
        sub, "train", "train a model and write a run directory",
        "MNIST by default, --dataset for another registered dataset, --data-dir for data of "
        "your own. Every option may also come from --config FILE.json (same keys, with "
        "underscores)."))

    p = _command(sub, "evaluate", "re-run the test report of a trained model, or report an "
                                  "ensemble",
                 "Several runs, or a sweep directory, are evaluated as an ensemble (the mean "
                 "of their probabilities): report.md compares each member with the ensemble.")
    p.add_argument("path", type=Path, nargs="+",
                   help="run directory or .npz checkpoint; several, or a sweep directory, "
                        "for an ensemble")
    _add_ensemble_options(p)
    p.add_argument("--out", type=Path, help="where an ensemble's report goes (default: "
                                            "SWEEP/ensemble, or ensemble/ beside the first run)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    _add_threads_option(p)

    p = _command(sub, "predict", "predict digits in images, IDX or CSV files",
                 "Prints the most likely labels with their probabilities per image. PNG/JPEG "
                 "images of your own handwriting get MNIST's preprocessing (invert, crop, fit "
                 "20x20, centre).")
    p.add_argument("model", help="run directory, .npz checkpoint or sweep directory; "
                                 "several, comma-separated (runs/a,runs/b), for an ensemble")
    p.add_argument("inputs", type=Path, nargs="+",
                   help="PNG/JPEG files or directories, IDX image files, or a Kaggle CSV "
                        "(their images are named FILE#1, FILE#2, ...); a file that cannot "
                        "be read gets its own error line and the others still run")
    _add_ensemble_options(p)
    p.add_argument("--labels", type=int, default=3, metavar="N",
                   help="labels shown per image, most likely first (default: 3)")
    p.add_argument("--top", type=int, dest="labels", action=_Deprecated, new="--labels")
    p.add_argument("--csv", type=Path, help="also write the predictions to this CSV")
    p.add_argument("--kaggle", type=Path,
                   help="for a CSV input: write a Kaggle submission (ImageId,Label) here")
    p.add_argument("--show", type=Path, metavar="DIR",
                   help="write into DIR, for each input, a PNG of the image as read beside "
                        "the 28x28 image the model saw")
    _add_threads_option(p)

    p = _command(sub, "export", "export a trained model to ONNX or as an offline web app",
                 "--onnx writes one ONNX graph from images to class probabilities, which ONNX "
                 "Runtime (or any ONNX reader) runs without this package; an ensemble is one "
                 "graph that averages its members. --web writes a static site (the draw-a-digit "
                 "page, the model and a service worker) that installs on a phone and predicts "
                 "offline.")
    p.add_argument("path", type=Path, nargs="+",
                   help="run directory or .npz checkpoint; several, or a sweep directory, "
                        "for an ensemble (one graph)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--onnx", type=Path, help="output .onnx file")
    target.add_argument("--web", type=Path, metavar="DIR",
                        help="write an installable offline web app into the new folder DIR "
                             "(host it anywhere static; see docs/phone.md)")
    _add_ensemble_options(p)

    p = _command(sub, "serve", "serve a draw-a-digit web page for a trained model",
                 "The page and POST /predict answer on --host:--port until Ctrl+C or SIGTERM, "
                 "which stop it after the requests under way are answered.")
    p.add_argument("path", type=Path, nargs="+",
                   help="run directory or .npz checkpoint; several, or a sweep directory, "
                        "for an ensemble")
    _add_ensemble_options(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    _add_threads_option(p)
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("-q", "--quiet", action="store_true", help="no line per request")

    p = _command(sub, "sweep", "run a sweep of training runs on Dask",
                 "Runs every trial of a sweep spec (YAML or JSON: the options to search, "
                 "seeds, metric; see tinygrad_mnist/app/sweep/spec.py) on a local Dask "
                 "cluster, or on an existing one with --scheduler. Running the same command "
                 "again skips finished trials.")
    p.add_argument("spec", type=Path, help="sweep spec: .yaml, .yml or .json")
    _add_cluster_options(p)
    p.add_argument("--out", type=Path, help="sweep directory (default: the spec's out, "
                                            "else sweeps/NAME)")

    p = _command(sub, "ensemble-train", "train k models with different seeds in parallel "
                                        "and evaluate their ensemble",
                 "Trains --members runs of one configuration (the default CNN unless told "
                 "otherwise) with seeds 0..k-1 as a sweep on Dask, then writes the ensemble's "
                 "report (SWEEP/ensemble/report.md). Running it again skips finished members.")
    p.add_argument("--members", type=int, default=5, help="models in the ensemble "
                                                          "(default: 5)")
    p.add_argument("--out", type=Path, help="sweep directory (default: sweeps/ensemble-K)")
    _add_cluster_options(p)
    _add_train_options(p, exclude=("seed", "out", "quiet", "overwrite"),
                       defaults={"model": models.ENSEMBLE_MODEL})
    parser.commands = sub.choices  # type: ignore[attr-defined]
    return parser


def _add_threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, metavar="N",
                   help="BLAS threads (default: the count the run was trained with, from "
                        "its config.json; 1 without one); the same count gives the same "
                        "numbers")


def _command_threads(args: argparse.Namespace) -> Optional[int]:
    """The BLAS threads of evaluate, predict and serve: --threads, else the first run's
    own (`saved_threads`), else 1. None for the other commands (train sets its own)."""
    given = getattr(args, "threads", None)
    if args.command not in ("evaluate", "predict", "serve"):
        return None
    if given is not None:
        if given < 1:
            raise UsageError(f"--threads must be at least 1, got {given}")
        return given
    first = args.model.split(",")[0] if args.command == "predict" else args.path[0]
    return saved_threads(first) or 1


def _add_ensemble_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--best-runs", type=int, metavar="K",
                   help="from a sweep directory, the K best runs by validation metric "
                        "(default: every finished run)")
    p.add_argument("--top-k", type=int, dest="best_runs", action=_Deprecated,
                   new="--best-runs")


def _add_cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run on this Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int,
                   help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--quiet", action="store_true", help="print only errors")


def _train(args: argparse.Namespace) -> int:
    from .train import TrainingDiverged, check_resume, train

    try:
        if args.resume is not None:
            given = _given_options(args)
            check_resume(args.resume, [*given, *(["config"] if args.config else [])])
            train(resume=args.resume, **given)
        else:
            train(_config_from(args))
    except TrainingDiverged as e:
        return _error(e)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .inference import resolve_runs
    from .report import evaluate, evaluate_ensemble

    runs = resolve_runs(args.path, args.best_runs)
    if len(runs) == 1 and runs[0] == args.path[0]:
        report = evaluate(args.path[0], make_plots=not args.no_plots)
    else:
        report = evaluate_ensemble(args.path, args.out, args.best_runs,
                                   make_plots=not args.no_plots)
        _print_ensemble(report, args.out or _ensemble_dir(args.path))
        return 0
    from .report import report_dir
    print(f"test accuracy {report['test_accuracy']:.2%}, loss {report['test_loss']:.4f} "
          f"(report: {report_dir(args.path[0]) / 'report.md'})")
    return 0


def _ensemble_dir(paths: List[Path]) -> Path:
    from .report import default_ensemble_dir
    return default_ensemble_dir(paths)


def _print_ensemble(report: Dict[str, Any], out: Path) -> None:
    for i, m in enumerate(report["members"], start=1):
        print(f"member {i}: {m['run']}  test accuracy {m['test_accuracy']:.2%}")
    print(f"ensemble of {report['size']}: test accuracy {report['test_accuracy']:.2%}, "
          f"loss {report['test_loss']:.4f}  (report: {out / 'report.md'})")


def _predict(args: argparse.Namespace) -> int:
    from ..atomic import atomic_write_files
    from ..data import DataError
    from .predict import kaggle_submission, predict, predictions_csv

    if args.labels < 1 or args.labels > 10:
        raise UsageError(f"--labels must be in 1..10, got {args.labels}", "labels")
    not_csv = [str(p) for p in args.inputs if p.suffix.lower() != ".csv"]
    if args.kaggle and not_csv:
        raise UsageError(f"--kaggle takes Kaggle CSV inputs only, not {', '.join(not_csv[:3])}"
                         f"; predict the other inputs without --kaggle")
    for output in (args.csv, args.kaggle):
        if output is not None and not output.parent.is_dir():
            raise FileNotFoundError(f"cannot write {output}: its directory does not exist")
    models = [Path(m) for m in args.model.split(",") if m]
    results, _ = predict(models, args.inputs, top=args.labels, top_k=args.best_runs,
                         show=args.show)
    failed = 0
    for r in results:
        if r.error:
            failed += 1
            print(f"{r.source}: error: {r.error}", file=sys.stderr)
        else:
            names = r.names or [str(k) for k, _ in r.top]
            print(f"{r.source}: " + "  ".join(f"{name} ({p:.1%})"
                                               for name, (_, p) in zip(names, r.top)))
    outputs = {}  # written together, or none of them
    if args.kaggle:
        outputs[args.kaggle] = kaggle_submission(results).encode("utf-8")
    if args.csv:
        outputs[args.csv] = predictions_csv(results, args.labels).encode("utf-8")
    atomic_write_files(outputs)
    if failed == len(results):
        raise DataError(f"none of the {len(results)} input(s) could be predicted (see the "
                        f"lines above)")
    return 0


def _export(args: argparse.Namespace) -> int:
    if args.web is not None:
        from .export_web import export_web

        files = export_web(args.path, args.web, top_k=args.best_runs)
        size = sum(f.stat().st_size for f in files)
        print(f"wrote {args.web}/ ({len(files)} files, {size / 1e6:.2f} MB); serve it with "
              f"python -m http.server --directory {args.web}")
        return 0
    from .export import export_run

    export_run(args.path, args.onnx, top_k=args.best_runs)
    print(f"wrote {args.onnx}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .serve import serve_run

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")

    serve_run(args.path, host=args.host, port=args.port, top_k=args.best_runs,
              log_requests=not args.quiet)
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .sweep import run

    result = run(args.spec, scheduler=args.scheduler, workers=args.workers, out=args.out,
                 progress=not args.quiet)
    return 1 if result.failed else 0


def _ensemble_train(args: argparse.Namespace) -> int:
    from .report import evaluate_ensemble
    from .sweep import ensemble_spec, run

    options = {k: v for k, v in _given_options(args).items()
               if k not in ("quiet", "out")}  # the sweep's own --quiet and --out
    spec = ensemble_spec(args.members, options,
                         out=str(args.out) if args.out else None,
                         name=f"ensemble-{args.members}")
    result = run(spec, scheduler=args.scheduler, workers=args.workers,
                 progress=not args.quiet)
    if result.failed:
        return _error(ValueError(f"{result.failed} member(s) failed; see "
                                 f"{result.directory / 'sweep.csv'}, then run the same "
                                 f"command again"))
    report = evaluate_ensemble(result.directory, result.directory / "ensemble")
    _print_ensemble(report, result.directory / "ensemble")
    return 0


COMMANDS: Dict[str, Callable[[argparse.Namespace], int]] = {
    "train": _train, "evaluate": _evaluate, "predict": _predict, "export": _export,
    "serve": _serve, "sweep": _sweep, "ensemble-train": _ensemble_train}


def _error(error: BaseException) -> int:
    """Print `error` as one line on stderr and return its class's exit status."""
    print(f"{ERROR_PREFIX}{errors.one_line(error)}", file=sys.stderr, flush=True)
    return errors.exit_status(error) or errors.EXIT_FAILURE


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While the command runs, SIGTERM raises `errors.Terminated` (a KeyboardInterrupt)
    in the main thread: `train` and `sweep` save and say how to resume, as on Ctrl-C,
    and `serve` stops after answering the requests under way (uvicorn catches the
    signal while it serves, then passes it on). The previous handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set in the main thread
        return

    def terminate(signum: int, frame: Any) -> None:
        raise errors.Terminated(f"terminated by signal {signum} (SIGTERM)")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command in `argv` (default: sys.argv); returns the exit status: 0, or
    that of the failure's class (see `tinygrad_mnist.errors`)."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or errors.debug_enabled()
    argv = [a for a in argv if a != "--debug"]  # accepted before or after the command
    args, extras = parser.parse_known_args(argv)
    if extras:
        parser.error(_unrecognized(extras, parser.commands.get(args.command, parser)))
    if args.command is None:
        parser.print_help()
        return errors.EXIT_USAGE
    try:
        with _sigterm_as_interrupt(), threads.limited(_command_threads(args)):
            return COMMANDS[args.command](args)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (errors.Terminated)
        if debug:
            traceback.print_exc()
        return errors.exit_status(e) or errors.EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 -- expected failures become one line
        if errors.exit_status(e) is None:
            raise  # a bug: keep its traceback
        if debug:
            traceback.print_exc()
        return _error(e)


if __name__ == "__main__":
    sys.exit(main())
