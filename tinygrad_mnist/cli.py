"""The `tinygrad-mnist` command (also `python -m tinygrad_mnist` and
`scripts/train_mnist.py`): train, evaluate, predict, export, serve."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from . import __version__, models
from .config import TrainConfig, option_flag


def _add_train_options(p: argparse.ArgumentParser) -> None:
    """The train command's options, built from the metadata of TrainConfig's fields."""
    fields = dataclasses.fields(TrainConfig)
    for f in fields:
        meta = f.metadata
        if meta["flag"]:
            continue  # on/off switches come last, after --config and --resume
        default = f.default
        if default is None and any(f.name in d for d in models.DEFAULTS.values()):
            default = ", ".join(f"{model}: {d[f.name]}" for model, d in models.DEFAULTS.items()
                                if f.name in d)
        help_text = f"{meta['help']} (default: {default})"
        if meta["type"] is bool:
            p.add_argument(option_flag(f.name), action=argparse.BooleanOptionalAction,
                           default=None, help=help_text)
        else:
            p.add_argument(option_flag(f.name), type=meta["type"], nargs=meta["nargs"],
                           default=None, help=help_text)
    p.add_argument("--config", type=Path, help="JSON file of options (command-line flags win)")
    p.add_argument("--resume", metavar="RUN_DIR", type=Path,
                   help="continue an interrupted run from its last completed epoch")
    for f in fields:
        if f.metadata["flag"]:
            p.add_argument(f.metadata["flag"], dest=f.name, action="store_const",
                           const=not f.default, default=None, help=f.metadata["help"])


def _given_options(args: argparse.Namespace) -> Dict[str, Any]:
    """The TrainConfig options given on the command line."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
            if getattr(args, f.name) is not None}


def _config_from(args: argparse.Namespace) -> TrainConfig:
    """The options of --config FILE.json, overridden by the command line's."""
    values = {}
    if args.config is not None:
        try:
            values = json.loads(args.config.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read --config {args.config}: {e}") from None
        if not isinstance(values, dict):
            raise ValueError(f"--config {args.config} must hold a JSON object")
        values.pop("version", None)
    values.update(_given_options(args))
    return TrainConfig.from_dict(values)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command and its options."""
    parser = argparse.ArgumentParser(prog="tinygrad-mnist", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train_options(sub.add_parser(
        "train", help="train a model and write a run directory",
        description="Train an MNIST classifier. Every option may also come from --config "
                    "FILE.json (same keys, with underscores)."))

    p = sub.add_parser("evaluate", help="re-run the test report of a trained model")
    p.add_argument("path", type=Path, help="run directory or .npz checkpoint")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")

    p = sub.add_parser("predict", help="predict digits in images, IDX or CSV files",
                       description="Print the top labels with probabilities per image. "
                                   "PNG/JPEG images of your own handwriting get MNIST's "
                                   "preprocessing (invert, crop, fit 20x20, centre).")
    p.add_argument("model", type=Path, help="run directory or .npz checkpoint")
    p.add_argument("inputs", type=Path, nargs="+",
                   help="PNG/JPEG files or directories, IDX image files, or a Kaggle CSV")
    p.add_argument("--top", type=int, default=3, help="labels to show per image")
    p.add_argument("--csv", type=Path, help="also write the predictions to this CSV")
    p.add_argument("--kaggle", type=Path,
                   help="for a CSV input: write a Kaggle submission (ImageId,Label) here")

    p = sub.add_parser("export", help="export a trained model to ONNX")
    p.add_argument("path", type=Path, help="run directory or .npz checkpoint")
    p.add_argument("--onnx", type=Path, required=True, help="output .onnx file")

    p = sub.add_parser("serve", help="serve a draw-a-digit web page for a trained model")
    p.add_argument("path", type=Path, help="run directory or .npz checkpoint")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    return parser


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
    from .report import evaluate

    report = evaluate(args.path, make_plots=not args.no_plots)
    print(f"test accuracy {report['test_accuracy']:.2%}, loss {report['test_loss']:.4f}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from .predict import predict, write_kaggle_submission, write_predictions_csv

    if args.top < 1 or args.top > 10:
        raise ValueError(f"--top must be in 1..10, got {args.top}")
    results, kaggle = predict(args.model, args.inputs, top=args.top)
    failed = 0
    for r in results:
        if r.error:
            failed += 1
            print(f"{r.source}: error: {r.error}", file=sys.stderr)
        else:
            print(f"{r.source}: " + "  ".join(f"{k} ({p:.1%})" for k, p in r.top))
    if args.csv:
        write_predictions_csv(results, args.csv, args.top)
    if args.kaggle:
        if not kaggle:
            raise ValueError("--kaggle needs a Kaggle-style CSV input")
        write_kaggle_submission(results, args.kaggle)
    return 1 if failed == len(results) else 0


def _export(args: argparse.Namespace) -> int:
    from .export import export_run

    export_run(args.path, args.onnx)
    print(f"wrote {args.onnx}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .serve import serve_run

    serve_run(args.path, host=args.host, port=args.port)
    return 0


COMMANDS: Dict[str, Callable[[argparse.Namespace], int]] = {
    "train": _train, "evaluate": _evaluate, "predict": _predict, "export": _export,
    "serve": _serve}


def _error(error: Exception) -> int:
    print(f"error: {error}", file=sys.stderr)
    return 1


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command in `argv` (default: sys.argv); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from .data import DataError

    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError, ImportError, DataError) as e:
        return _error(e)


if __name__ == "__main__":
    sys.exit(main())
