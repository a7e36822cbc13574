"""The README's Python examples run as written (the quick start for one epoch)."""
import os
import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, tmp_path, monkeypatch):
    code = BLOCKS[index]
    if "load_mnist()" in code and not os.environ.get("TINYGRAD_MNIST_DATA"):
        pytest.skip("set TINYGRAD_MNIST_DATA to run the MNIST example")
    monkeypatch.chdir(tmp_path)
    exec(code.replace("range(3)", "range(1)"), {})  # each example stands alone
