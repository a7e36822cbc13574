#!/usr/bin/env python
"""Train an MNIST classifier: `python scripts/train_mnist.py --help` lists the options.

The same as `tinygrad-mnist train ...` and `python -m tinygrad_mnist train ...`.
"""
import sys

from tinygrad_mnist.app.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
