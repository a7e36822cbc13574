"""`python -m tinygrad_mnist train|evaluate|predict|export|serve`."""
import sys

from .app.cli import main

sys.exit(main())
