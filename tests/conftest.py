"""Shared pytest configuration: hypothesis profiles, opt-in markers, and a scoped
`Function.registry` for tests that define their own Functions."""
import contextlib
import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=50, deadline=None)
# The long run of tests/test_fuzz.py (its quick one, in every profile, is 200 examples).
settings.register_profile("fuzz", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def _use_cached_mnist() -> None:
    """Tests that need the real MNIST files look at TINYGRAD_MNIST_DATA; when it is unset
    and the user cache (~/.cache/tinygrad_mnist/mnist) holds the four files, verified
    against their pins, point it there so that those tests run instead of skipping."""
    if os.environ.get("TINYGRAD_MNIST_DATA"):
        return
    try:
        from tinygrad_mnist.data import default_cache_dir, ensure_mnist
        directory = ensure_mnist(default_cache_dir(), download=False, quiet=True)
    except Exception:  # noqa: BLE001 -- no verified cache: those tests skip, saying why
        return
    os.environ["TINYGRAD_MNIST_DATA"] = str(directory)


_use_cached_mnist()


def pytest_addoption(parser):
    parser.addoption("--run-network", action="store_true", default=False,
                     help="run tests that reach the real internet")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-network"):
        return
    skip = pytest.mark.skip(reason="needs the internet; opt in with --run-network")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


PACKAGE = "tinygrad_mnist"


@contextlib.contextmanager
def scoped_registry():
    """Snapshot `Function.registry` and restore it on exit, so a Function subclass
    defined inside the block (which `__init_subclass__` registers under its class
    name) is forgotten afterwards, and one that shadowed a real op's name (say a test
    `class Add(Function)`) gives the name back to the real op.

    One exception to the exact restore: a Function of the package itself that
    registered inside the block (its module was first imported there, as
    `all_functions()` in test_gradients.py does) stays. A module registers its
    Functions once per process, at import, so dropping it would hide that op from the
    every-op-is-checked test for the rest of the session. Yields the registry."""
    from tinygrad_mnist.autograd import Function
    registry = Function.registry
    saved = dict(registry)
    try:
        yield registry
    finally:
        added = {name: cls for name, cls in registry.items() if name not in saved and
                 (cls.__module__ == PACKAGE or cls.__module__.startswith(PACKAGE + "."))}
        registry.clear()
        registry.update(saved)
        registry.update(added)


@pytest.fixture(autouse=True)
def function_registry():
    """`Function.registry` inside `scoped_registry()`: Functions a test defines are
    gone from the registry when it ends. Autouse, so no test can leak one; tests that
    define Functions also name it, to say so."""
    with scoped_registry() as registry:
        yield registry
