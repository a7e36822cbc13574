"""The `tinygrad-mnist` command (also `python -m tinygrad_mnist` and
`scripts/train_mnist.py`): train, evaluate, predict, export, serve."""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from pathlib import Path
from typing import List, Optional

from . import __version__

HELP = {
    "model": "architecture: mlp (fully connected) or cnn (convolutional)",
    "hidden": "hidden layer sizes of the MLP (of the CNN's fully connected part), e.g. 512 256",
    "epochs": "passes over the training split",
    "batch_size": "images per optimizer step",
    "optimizer": "sgd, momentum (SGD, 0.9), nesterov, rmsprop, adam or adamw",
    "lr": "(peak) learning rate",
    "schedule": "learning-rate schedule over the run: none, step (÷10 each third), "
                "cosine or onecycle",
    "weight_decay": "L2 penalty (decoupled for adamw)",
    "l1": "L1 penalty coefficient added to the loss",
    "dropout": "dropout probability after each hidden layer (0 disables)",
    "label_smoothing": "label smoothing for the cross-entropy loss",
    "init": "weight initialisation: he, xavier, lecun or normal (N(0, 0.01))",
    "val_size": "images held out of the 60,000 training images for validation",
    "seed": "random seed: the same seed gives the same numbers",
    "data_dir": "directory with the MNIST IDX files (default: $TINYGRAD_MNIST_DATA, "
                "then the user cache, downloading if needed)",
    "out": "run directory (default: a fresh runs/YYYYmmdd-HHMMSS)",
    "limit": "train on only the first N training images, for quick tries",
    "augment": "randomly shift training images by up to 2 pixels (--no-augment: off)",
}


def _train_parser(sub: argparse._SubParsersAction) -> None:
    from . import models
    from .train import TrainConfig

    p = sub.add_parser("train", help="train a model and write a run directory",
                       description="Train an MNIST classifier. Every option may also come "
                                   "from --config FILE.json (same keys, with underscores).")
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("plots", "quiet"):
            continue
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if default is None and f.name in ("hidden", "augment"):
            default = ", ".join(f"{m}: {d[f.name]}" for m, d in models.DEFAULTS.items())
        help_text = f"{HELP[f.name]} (default: {default})"
        if "bool" in str(f.type):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                           help=help_text)
        elif f.name == "hidden":
            p.add_argument(flag, type=int, nargs="+", default=None, help=help_text)
        else:
            kind = {"int": int, "float": float}.get(str(f.type).replace("Optional[", "")
                                                      .rstrip("]"), str)
            p.add_argument(flag, type=kind, default=None, help=help_text)
    p.add_argument("--config", type=Path, help="JSON file of options (command-line flags win)")
    p.add_argument("--resume", metavar="RUN_DIR", type=Path,
                   help="continue an interrupted run from its last completed epoch")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--quiet", action="store_true", help="print only errors")


def _config_from(args: argparse.Namespace):
    from .train import TrainConfig

    values = {}
    if args.config is not None:
        try:
            values = json.loads(args.config.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read --config {args.config}: {e}") from None
        if not isinstance(values, dict):
            raise ValueError(f"--config {args.config} must hold a JSON object")
        values.pop("version", None)
    for f in dataclasses.fields(TrainConfig):
        given = getattr(args, f.name, None)
        if given is not None and f.name not in ("plots", "quiet"):
            values[f.name] = given
    values["plots"] = not args.no_plots and values.get("plots", True)
    values["quiet"] = args.quiet or values.get("quiet", False)
    return TrainConfig.from_dict(values)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinygrad-mnist", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _train_parser(sub)

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


def _predict(args: argparse.Namespace) -> int:
    from .predict import predict

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
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["source"] + [c for i in range(1, args.top + 1)
                                     for c in (f"label_{i}", f"prob_{i}")] + ["error"])
            for r in results:
                w.writerow([r.source] + [v for k, p in r.top for v in (k, f"{p:.6f}")]
                           + [""] * (2 * (args.top - len(r.top))) + [r.error or ""])
    if args.kaggle:
        if not kaggle:
            raise ValueError("--kaggle needs a Kaggle-style CSV input")
        with open(args.kaggle, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["ImageId", "Label"])
            for i, r in enumerate(results, start=1):
                w.writerow([i, r.top[0][0]])
    return 1 if failed == len(results) else 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from .data import DataError
    from .train import TrainConfig, TrainingDiverged

    try:
        if args.command == "train":
            from .train import RESUME_OPTIONS, train
            if args.resume is not None:
                given = {"epochs": args.epochs, "quiet": args.quiet or None,
                         "plots": False if args.no_plots else None}
                given = {k: v for k, v in given.items() if v is not None}
                others = [f.name for f in dataclasses.fields(TrainConfig)
                          if f.name not in RESUME_OPTIONS and getattr(args, f.name, None)
                          is not None]
                if others or args.config:
                    raise ValueError("--resume continues with the run's saved options; "
                                     "only --epochs, --quiet and --no-plots may be given")
                train(resume=args.resume, **given)
            else:
                train(_config_from(args))
        elif args.command == "evaluate":
            from .train import evaluate
            report = evaluate(args.path, make_plots=not args.no_plots)
            print(f"test accuracy {report['test_accuracy']:.2%}, "
                  f"loss {report['test_loss']:.4f}")
        elif args.command == "predict":
            return _predict(args)
        elif args.command == "export":
            from .export import to_onnx
            from .models import LAYOUTS
            from .train import load_trained
            trained = load_trained(args.path)
            layout = LAYOUTS[trained.config.model]
            shape = (1, 784) if layout == "flat" else (1, 1, 28, 28)
            to_onnx(trained.model, args.onnx, shape, mean=trained.stats.mean,
                    std=trained.stats.std)
            print(f"wrote {args.onnx}")
        elif args.command == "serve":
            from .serve import serve_run
            serve_run(args.path, host=args.host, port=args.port)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError, ImportError, DataError, TrainingDiverged) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
