"""The user's guide (README.md and docs/*.md) says what is true:

- its Python examples run as written (the MNIST one for one epoch, with the data);
- its shell commands name real subcommands and options;
- every table of results is what `benchmarks/results.py render` draws from
  benchmarks/results.json, and every accuracy written in its prose is a recorded one;
- the README keeps the install and test line that CI runs (.ci/run).
"""
import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PAGES = {p.relative_to(ROOT).as_posix(): p.read_text()
         for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
BLOCKS = [(name, i, code) for name, text in PAGES.items()
          for i, code in enumerate(re.findall(r"```python\n(.*?)```", text, re.S))]
INSTALL_AND_TEST = 'python -m pip install -e ".[test,deploy]" && python -m pytest'


def _results_module():
    spec = importlib.util.spec_from_file_location("guide_results",
                                                  ROOT / "benchmarks" / "results.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


results = _results_module()
ENTRIES = results.load()


# ------------------------------------------------------------------------ examples
def test_the_readme_keeps_the_install_and_test_line_ci_runs():
    assert INSTALL_AND_TEST in README
    assert INSTALL_AND_TEST in (ROOT / ".ci" / "run").read_text()


def test_the_guide_has_examples():
    assert any(name == "README.md" for name, _, _ in BLOCKS)
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("name,index,code", BLOCKS, ids=[f"{n}-{i}" for n, i, _ in BLOCKS])
def test_example_runs(name, index, code, tmp_path, monkeypatch):
    if "load_mnist()" in code and not __import__("os").environ.get("TINYGRAD_MNIST_DATA"):
        pytest.skip("set TINYGRAD_MNIST_DATA to run the MNIST example")
    monkeypatch.chdir(tmp_path)
    exec(code.replace("range(3)", "range(1)"), {})  # each example stands alone


def _commands():
    """(page, argv) of every `tinygrad-mnist ...` line in the pages' shell blocks."""
    for name, text in PAGES.items():
        for block in re.findall(r"```(?:bash|sh)\n(.*?)```", text, re.S):
            for line in block.splitlines():
                for part in re.split(r"&&|;", line.split("  #")[0]):
                    if part.strip().startswith("tinygrad-mnist "):
                        yield name, shlex.split(part, comments=True)[1:]


COMMANDS = list(_commands())


def test_the_guide_shows_every_command():
    from tinygrad_mnist.app.cli import build_parser
    shown = {argv[0] for _, argv in COMMANDS}
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) <= shown


@pytest.mark.parametrize("page,argv", COMMANDS, ids=[" ".join(a) for _, a in COMMANDS])
def test_shell_command_names_real_options(page, argv):
    from tinygrad_mnist.app.cli import build_parser
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert argv[0] in sub.choices, f"{page}: no subcommand {argv[0]!r}"
    known = set(sub.choices[argv[0]]._option_string_actions)
    unknown = [w for w in argv[1:] if w.startswith("-") and w.split("=")[0] not in known]
    assert not unknown, f"{page}: `tinygrad-mnist {' '.join(argv)}`: no option {unknown}"


def test_the_predict_body_in_the_serving_guide_is_accepted():
    from tinygrad_mnist.app.serve.contract import parse_request, prepare_drawing
    body = re.search(r"-d '(\{.*?\})'", PAGES["docs/serving.md"]).group(1)
    image = prepare_drawing(parse_request(body.encode()))
    assert image.shape == (28, 28) and image.max() > 0


# --------------------------------------------------------------------------- links
def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set:
    return {_slug(h) for h in re.findall(r"^#+ (.*)$", path.read_text(), re.M)}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_links_lead_to_files_and_headings_that_exist(page):
    base = (ROOT / page).parent
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", PAGES[page]):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        file, _, anchor = target.partition("#")
        path = (base / file).resolve() if file else ROOT / page
        name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(target)
    assert not broken, f"{page}: broken links {broken}"


# ------------------------------------------------------------------------- numbers
@pytest.mark.parametrize("page", sorted(PAGES))
def test_tables_agree_with_the_results_file(page):
    text = PAGES[page]
    for name in results.BLOCK.findall(text):
        assert name[1] in results.TABLES, f"{page}: unknown results table {name[1]!r}"
    assert results.render_text(text, ENTRIES) == text, (
        f"{page}: a results table differs from benchmarks/results.json; "
        "run `python benchmarks/results.py render`")


def test_the_readme_shows_the_results_table():
    drawn = results.BLOCK.findall(README)
    assert ("<!-- results: summary -->\n", "summary") in [m[:2] for m in drawn]


def _recorded_numbers(value):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield float(value)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _recorded_numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _recorded_numbers(v)


RECORDED = {x for e in ENTRIES for x in _recorded_numbers(e["values"])}
PERCENT = re.compile(r"(\d+\.\d+)(?:–(\d+\.\d+))?\s?%")


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_accuracy_in_the_prose_is_recorded(page):
    prose = results.BLOCK.sub("", PAGES[page])
    unrecorded = []
    for match in PERCENT.finditer(prose):
        for number in filter(None, match.groups()):
            decimals = len(number.split(".")[1])
            if not any(f"{r:.{decimals}f}" == number for r in RECORDED):
                unrecorded.append(number)
    assert not unrecorded, f"{page}: not in benchmarks/results.json: {unrecorded}"


def test_every_result_names_its_machine_date_and_command():
    assert ENTRIES
    for e in ENTRIES:
        assert e["kind"] in results.KINDS and e["group"] and e["command"], e
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", e["date"]), e
        assert e["machine"]["cpu"], e
        assert e["machine"]["cores"] is None and "not recorded" in e["note"] \
            or e["machine"]["cores"] >= 1, e
        assert e["machine"]["load"] in ("quiet", "shared"), e
        assert e["values"], e


def test_the_summary_states_accuracy_as_a_range_over_the_runs():
    row = next(line for line in results.render_summary(ENTRIES).splitlines()
               if line.startswith("| MNIST, MLP"))
    mlp = [e["values"]["test_acc"] for e in ENTRIES
           if e["kind"] == "train" and e["group"] == "mnist/mlp"]
    assert f"{min(mlp):.2f}–{max(mlp):.2f} %" in row


# -------------------------------------------------------------------------- writer
def test_record_replaces_the_same_measurement_and_keeps_others(tmp_path):
    path = tmp_path / "results.json"
    kw = dict(path=path, date="2026-01-02", code="abc1234", machine_info={
        "cpu": "Test CPU", "cores": 2, "load": "quiet", "load_average": 0.1})
    for seed, acc in ((0, 98.0), (0, 98.1), (1, 98.2)):
        results.record("train", "mnist/mlp", {"seed": seed, "test_acc": acc},
                       "tinygrad-mnist train", **kw)
    saved = json.loads(path.read_text())["results"]
    assert [e["values"]["test_acc"] for e in saved] == [98.1, 98.2]
    with pytest.raises(ValueError, match="unknown kind"):
        results.record("nonsense", "g", {"x": 1}, "cmd", **kw)


def test_a_run_directory_is_recorded_from_its_report(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text(json.dumps({
        "test_accuracy": 0.98531, "val_accuracy": 0.9846, "test_loss": 0.05456,
        "training_seconds": 34.69}))
    (run / "config.json").write_text(json.dumps({"seed": 3, "threads": 1, "jit": True}))
    (run / "metrics.csv").write_text("epoch,seconds\n1,3.06\n2,2.66\n")
    values = results.run_values(run)
    assert values["test_acc"] == 98.53 and values["seed"] == 3 and values["epochs"] == 2
    assert values["epoch_seconds"] == [2.7, 3.1] and values["train_seconds"] == 34.7
