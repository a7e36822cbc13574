"""Downloading dataset files: mirrors tried in order, every file verified before it lands.

A *mirror* is any object with a ``description`` and a ``fetch(specs, directory, quiet=...)``
method that installs the files it can (through :func:`~.files.install_verified`, so only
files matching their pins ever appear) and returns one message per file it could not supply.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO, List, Protocol, Sequence

from .errors import DownloadError
from .files import ENV_VAR, FileSpec, find_file, install_verified

#: HTTP mirrors of the four MNIST ``.gz`` files, in the order they are tried (the registry,
#: :mod:`.registry`, has every dataset's).
HTTP_MIRRORS: Sequence[str] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",    # the one torchvision uses
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
#: Seconds to wait for a connection or for the next chunk of data.
HTTP_TIMEOUT = 10.0
_CHUNK = 1 << 16


class Mirror(Protocol):
    """Something that can supply dataset files (see the module docstring)."""
    description: str

    def fetch(self, specs: Sequence[FileSpec], directory: Path, *, quiet: bool) -> List[str]:
        ...


def stream_url(url: str, out: BinaryIO, *, timeout: float = HTTP_TIMEOUT, quiet: bool = False,
               desc: str = "") -> int:
    """Copy ``url`` into ``out`` with a progress bar on stderr (on a terminal); returns
    the byte count. Raises if the server sends fewer bytes than its Content-Length."""
    import urllib.request  # here, not at the top: `tinygrad-mnist --help` needs neither

    from tqdm import tqdm
    request = urllib.request.Request(url, headers={"User-Agent": "tinygrad_mnist"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        total = response.length
        received = 0
        with tqdm(total=total, desc=desc or url, unit="B", unit_scale=True, unit_divisor=1024,
                  file=sys.stderr, disable=quiet or not sys.stderr.isatty(),
                  leave=False) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received < total:
        raise DownloadError(f"{url}: connection closed after {received} of {total} bytes")
    return received


class HttpMirror:
    """A base URL serving ``<name>.gz`` for every file."""

    def __init__(self, base_url: str, timeout: float = HTTP_TIMEOUT) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.timeout = timeout
        self.description = self.base_url

    def fetch(self, specs: Sequence[FileSpec], directory: Path, *, quiet: bool) -> List[str]:
        from urllib.error import HTTPError, URLError
        problems = []
        for i, spec in enumerate(specs):
            url = f"{self.base_url}{spec.name}.gz"
            try:
                install_verified(directory, spec, lambda f: stream_url(
                    url, f, timeout=self.timeout, quiet=quiet, desc=f"{spec.name}.gz"))
            except Exception as e:  # noqa: BLE001 - any failure means: try the next mirror
                problems.append(f"{url}: {_describe(e)}")
                unreachable = isinstance(e, TimeoutError) or (
                    isinstance(e, URLError) and not isinstance(e, HTTPError))
                if unreachable:
                    problems += [f"{self.base_url}{s.name}.gz: skipped, server unreachable"
                                 for s in specs[i + 1:]]
                    break
        return problems


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def fetch_files(specs: Sequence[FileSpec], directory: Path, mirrors: Sequence[Mirror],
                *, quiet: bool = False, title: str = "MNIST", env_var: str = ENV_VAR) -> None:
    """Install every file of ``specs`` that is missing from ``directory``, trying ``mirrors``
    in order. Unless ``quiet``, says on stderr which source is tried, how each one failed
    (one line per source) and, at the end, that the files are in. Raises
    :class:`DownloadError` (one line: every attempt when ``quiet``, else a pointer to the
    lines above) if some file is still missing."""
    attempts: List[str] = []
    wanted = len([s for s in specs if find_file(directory, s) is None])
    for mirror in mirrors:
        missing = [s for s in specs if find_file(directory, s) is None]
        if not missing:
            break
        if not quiet:
            print(f"tinygrad_mnist: fetching {len(missing)} {title} file(s) from "
                  f"{mirror.description}", file=sys.stderr, flush=True)
        try:
            problems = mirror.fetch(missing, directory, quiet=quiet)
        except Exception as e:  # noqa: BLE001 - a broken mirror must not stop the others
            problems = [_describe(e)]
        attempts += [f"{mirror.description}: {p}" for p in problems]
        if not quiet and problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            print(f"  failed: {problems[0]}{more}", file=sys.stderr, flush=True)
    missing = [s for s in specs if find_file(directory, s) is None]
    if missing:
        tried = ("; ".join(attempts) or "no mirrors configured") if quiet else \
            "each source's failure is printed above"
        names = ", ".join(f"{s.name}.gz" for s in missing)
        as_published = (" (the .gz files as published: they are pinned as such)"
                        if any(s.sha256 is None for s in missing) else " (gzipped or raw IDX)")
        raise DownloadError(
            f"could not download the {title} files into {directory} (tried: {tried}). "
            f"To supply them by hand, get {names} from any {title} mirror{as_published} and "
            f"put them in {directory}, or set {env_var} to a directory that holds all four files.")
    if not quiet and wanted:
        print(f"tinygrad_mnist: {wanted} {title} file(s) downloaded and verified in "
              f"{directory}", file=sys.stderr, flush=True)
