"""Exceptions raised by :mod:`tinygrad_mnist.data`; every message names the file and the problem."""
import pickle


class DataError(Exception):
    """Base class of every data-loading error."""


class IDXError(DataError, ValueError):
    """An IDX file is malformed: bad magic number, dimensions or byte count."""


class ChecksumError(DataError, ValueError):
    """A file's SHA-256 does not match its pin."""


class CSVError(DataError, ValueError):
    """A Kaggle digit-recognizer CSV has bad columns, dtypes or values."""


class DownloadError(DataError, RuntimeError):
    """No mirror could supply the files."""


class UnsafePickleError(DataError, pickle.UnpicklingError):
    """A pickle asked for something other than plain NumPy arrays."""


class OptionError(ValueError):
    """A loading option that does not fit the data asked for (say, an image size for
    MNIST's fixed 28×28 files); `option` names it."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option
