"""Atomic file writes: a file appears complete or not at all, never half-written.

Every file the package writes goes through `atomic_write` (bytes, or a function that
fills a binary file) or `atomic_write_text`. The content goes to a temporary file in the
target's directory and is flushed to disk, then renamed over the target with
`os.replace`, and the directory is synced so that the rename survives a crash too. On
any error (or Ctrl-C) the temporary file is removed and the target is left as it was.

The file gets the permissions a plain ``open(path, "w")`` would give it: a new file
0o666 less the umask (0o644 under the usual umask 022), an existing file its own mode.
Standard library only, so every layer of the package may use it.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable, Optional, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]
#: What to write: the bytes themselves, or a function that writes them to a binary file.
Content = Union[bytes, Callable[[BinaryIO], object]]

_TEMP_SUFFIX = ".tmp"


def atomic_write(path: PathLike, content: Content, *,
                 check: Optional[Callable[[Path], object]] = None) -> Path:
    """Write `content` to `path` atomically and return `path` as a Path.

    `content` is bytes or a function called with the open binary temporary file.
    `check`, if given, is called with the temporary file's path once it is complete
    and may reject it by raising; the target is then left untouched. The directory
    must exist."""
    path = Path(path)
    fd, temporary = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(content, (bytes, bytearray, memoryview)):
                f.write(content)
            else:
                content(f)
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(temporary)
        _keep_existing_mode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return path


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically, encoded as-is (no newline translation)."""
    return atomic_write(path, text.encode(encoding))


def _create_temporary(path: Path) -> Tuple[int, Path]:
    """Open a new, uniquely named file beside `path`. It is created with mode 0o666, so
    the kernel applies the umask exactly as for a plain open()."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}{_TEMP_SUFFIX}")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
        except FileNotFoundError:
            raise FileNotFoundError(f"cannot write {path}: its directory does not "
                                    f"exist") from None
    raise FileExistsError(f"cannot create a temporary file beside {path}")


def _keep_existing_mode(path: Path, temporary: Path) -> None:
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        return
    os.chmod(temporary, mode)


def _fsync_directory(directory: Path) -> None:
    """Persist a rename in `directory` (skipped where directories cannot be opened,
    e.g. on Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
