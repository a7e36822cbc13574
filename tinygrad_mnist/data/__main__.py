"""Command line:
``python -m tinygrad_mnist.data download [--dataset NAME] [--dir DIR] [--quiet]``."""
from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

from . import files, registry
from .errors import DataError
from .sources import ensure_dataset


def main(argv: Optional[List[str]] = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tinygrad_mnist.data",
                                     description="Fetch and verify a dataset's files ahead "
                                                 "of time.")
    commands = parser.add_subparsers(dest="command", required=True)
    dl = commands.add_parser("download", help="make sure a dataset's four files are present "
                             "and verified, downloading what is missing")
    dl.add_argument("--dataset", default="mnist", choices=list(registry.DATASETS),
                    help="which dataset (default: mnist)")
    dl.add_argument("--dir", default=None, help="directory to use (default: the dataset's "
                    "variable, e.g. $TINYGRAD_MNIST_DATA, or the user cache "
                    "~/.cache/tinygrad_mnist/NAME)")
    dl.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        directory = ensure_dataset(args.dataset, args.dir, download=True, quiet=args.quiet)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    info = registry.get_dataset(args.dataset)
    print(f"{info.title} files verified in {directory} ({time.perf_counter() - start:.1f} s):")
    for spec in info.files:
        print(f"  {files.find_file(directory, spec)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
