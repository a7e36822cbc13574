"""`python -m tinygrad_mnist train|evaluate|predict|export|serve`."""
import sys

from .cli import main

sys.exit(main())
