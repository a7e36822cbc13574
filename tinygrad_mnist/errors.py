"""The failures a user can fix, and the exit status of each class of them.

Every command of `tinygrad-mnist` turns an expected failure into one line on stderr,
``tinygrad-mnist: error: <the input and what is wrong>; <what to do>`` (argparse's own
usage errors start the same way), and exits with its class's
status (`exit_status`); ``--debug`` or ``TINYGRAD_MNIST_DEBUG=1`` also prints the
traceback. Anything else is a bug and keeps its traceback.

=======  ============  ============================================================
status   class         for example
=======  ============  ============================================================
1        failure       training diverged; an optional package is missing
2        usage         a bad option or ``--config`` value, an output that exists
3        data          an input file (MNIST, IDX, CSV, image) missing or invalid
4        checkpoint    a model file missing, damaged, foreign, not fitting its own
                       configuration, or giving NaN/infinite outputs
5        I/O           reading or writing failed: a missing directory, permissions,
                       a full disk, a connection lost
130      interrupted   Ctrl-C (SIGINT)
143      terminated    SIGTERM (``kill``, systemd, a container runtime, a cluster
                       scheduler), handled as Ctrl-C: a run saves its last completed
                       epoch and prints how to resume
=======  ============  ============================================================

``serve`` stops with 0 on either signal, after answering the requests under way.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple, Type

from .serialization import CheckpointError

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_DATA = 3
EXIT_CHECKPOINT = 4
EXIT_IO = 5
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process SIGTERM ended
#: Set to 1 to see the traceback of an expected failure (as ``--debug`` does).
DEBUG_ENV = "TINYGRAD_MNIST_DEBUG"
_MAX_MESSAGE = 600  # characters of one error line


class UsageError(ValueError):
    """A bad option, option value, ``--config`` value or combination of them: the
    command line has to change. `option` names the offending option, if one."""

    def __init__(self, message: str, option: Optional[str] = None) -> None:
        super().__init__(message)
        self.option = option


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by the command's handler: a KeyboardInterrupt,
    so that everything that cleans up after Ctrl-C does the same for it."""


class BrokenModelError(CheckpointError):
    """A model whose weights or outputs are NaN or infinite."""


def _exit_statuses() -> List[Tuple[Type[BaseException], int]]:
    """Class → exit status, most specific first (the first `isinstance` match wins).
    Built when needed: the data package is not imported for `--help`."""
    from .data.errors import DataError, OptionError
    return [(UsageError, EXIT_USAGE), (OptionError, EXIT_USAGE),
            (CheckpointError, EXIT_CHECKPOINT),
            (DataError, EXIT_DATA), *EXIT_STATUSES]


#: The classes after the package's own, most specific first.
EXIT_STATUSES: List[Tuple[Type[BaseException], int]] = [
    (OSError, EXIT_IO),
    (MemoryError, EXIT_FAILURE),
    (ImportError, EXIT_FAILURE),
    (ValueError, EXIT_FAILURE),
    (RuntimeError, EXIT_FAILURE),
]
#: What each status means, for ``--help``.
EXIT_MEANINGS: Dict[int, str] = {
    0: "success",
    EXIT_FAILURE: "the command failed (e.g. training diverged)",
    EXIT_USAGE: "usage: a bad option, --config value or combination",
    EXIT_DATA: "data: an input file is missing, unreadable or invalid",
    EXIT_CHECKPOINT: "checkpoint: a model file is missing, damaged or does not fit",
    EXIT_IO: "I/O: a file could not be read or written (directory, permissions, disk)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
    EXIT_TERMINATED: "terminated (SIGTERM), handled as Ctrl-C",
}


def exit_status(error: BaseException) -> Optional[int]:
    """The exit status of an expected failure, or None for anything else (a bug)."""
    if isinstance(error, Terminated):
        return EXIT_TERMINATED
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    for cls, status in _exit_statuses():
        if isinstance(error, cls):
            return status
    return None


def one_line(error: BaseException) -> str:
    """The error's message on one line (an OSError with its file name and reason, a
    MemoryError said as such), shortened to a few hundred characters."""
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename is not None else ""
        text = f"{where}{error.strerror}"
        if isinstance(error, FileNotFoundError) and error.filename is not None:
            text += "; check the path"
        elif isinstance(error, PermissionError):
            text += "; check the file's permissions"
        elif error.errno == 28:  # ENOSPC
            text += "; free some disk space and try again"
    elif isinstance(error, MemoryError):
        text = f"out of memory{': ' + str(error) if str(error) else ''}; ask for less"
    else:
        text = str(error) or type(error).__name__
    text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # printable anywhere
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE - 3] + "..."


def debug_enabled() -> bool:
    """True when ``TINYGRAD_MNIST_DEBUG`` asks for tracebacks."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")
