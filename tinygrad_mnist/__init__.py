"""tinygrad_mnist: a small, readable reverse-mode autodiff framework on NumPy."""
__version__ = "0.1.0"
