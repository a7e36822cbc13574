"""Atomic file writes: a file appears complete or not at all, never half-written.

Every file the package writes goes through `atomic_write` (bytes, or a function that
fills a binary file) or `atomic_write_text`; outputs of several files (a report, a
prediction CSV beside a Kaggle submission) through `atomic_write_files`, which writes
them all or none. The content goes to a temporary file in the
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
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, List, Mapping, Optional, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]
#: What to write: the bytes themselves, or a function that writes them to a binary file.
Content = Union[bytes, Callable[[BinaryIO], object]]

_TEMP_SUFFIX = ".tmp"


def _write_synced(fd: int, content: Content) -> None:
    """Write `content` (bytes, or a function of the open binary file) to the file
    descriptor `fd`, close it, and flush it to disk."""
    with os.fdopen(fd, "wb") as f:
        if isinstance(content, (bytes, bytearray, memoryview)):
            f.write(content)
        else:
            content(f)
        f.flush()
        os.fsync(f.fileno())


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
        _write_synced(fd, content)
        if check is not None:
            check(temporary)
        _keep_existing_mode(path, temporary)
        os.replace(temporary, path)
    except OSError as e:
        temporary.unlink(missing_ok=True)
        raise _naming(e, path) from e
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return path


def atomic_write_files(contents: Mapping[PathLike, Content]) -> List[Path]:
    """Write several files all or nothing: each goes to a temporary file beside its
    target and is flushed to disk; only when all of them are complete are they renamed
    over their targets, one after the other. Any error before that (a full disk, a
    missing directory, Ctrl-C) removes the temporary files and leaves every target as
    it was. Returns the paths."""
    staged: List[Tuple[Path, Path]] = []
    try:
        for target, content in contents.items():
            path = Path(target)
            fd, temporary = _create_temporary(path)
            staged.append((path, temporary))
            _write_synced(fd, content)
            _keep_existing_mode(path, temporary)
        for path, temporary in staged:
            os.replace(temporary, path)
    except BaseException as e:
        for _, temporary in staged:
            temporary.unlink(missing_ok=True)
        if isinstance(e, OSError) and staged:
            raise _naming(e, staged[-1][0]) from e
        raise
    for directory in {path.parent for path, _ in staged}:
        _fsync_directory(directory)
    return [path for path, _ in staged]


@contextmanager
def staged_directory(target: PathLike) -> Iterator[Path]:
    """A temporary directory inside `target` (which must exist) to write a multi-file
    output into, for files made by functions that take a path (plots). When the block
    ends without error, every file in it is renamed over its namesake in `target`
    (keeping that one's permissions); on any error nothing in `target` changes. The
    temporary directory is removed either way."""
    staging = Path(tempfile.mkdtemp(prefix=".staged-", suffix=_TEMP_SUFFIX, dir=target))
    try:
        yield staging
        files = sorted(p for p in staging.iterdir() if p.is_file())
        for temporary in files:
            _keep_existing_mode(Path(target) / temporary.name, temporary)
        for temporary in files:
            os.replace(temporary, Path(target) / temporary.name)
        _fsync_directory(Path(target))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically, encoded as-is (no newline translation)."""
    return atomic_write(path, text.encode(encoding))


def _naming(error: OSError, path: Path) -> OSError:
    """`error` (say a full disk's ENOSPC) with the file it was writing in its message;
    errors that already name a file are kept."""
    if error.filename is not None or not error.strerror or str(path) in str(error):
        return error
    return type(error)(error.errno, f"cannot write {path}: {error.strerror}")


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
