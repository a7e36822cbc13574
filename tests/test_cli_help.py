"""The command line's help and usage errors: each command's help starts with one line
saying what it does, no option states its default twice, every usage error starts
with `tinygrad-mnist: error:`, an unknown option gets the closest one suggested, and
predict's two "top" options have names that cannot be confused (the old spellings
still work, with a note)."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest
from PIL import Image

import tinygrad_mnist as tg
from tinygrad_mnist import errors
from tinygrad_mnist.app import cli
from tinygrad_mnist.app.config import TrainConfig
from tinygrad_mnist.models import build_model

COMMANDS = sorted(cli.build_parser().commands)  # type: ignore[attr-defined]


def run(argv: List[str], capsys: pytest.CaptureFixture) -> Tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as e:  # --help, and argparse's own errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def help_text(command: str, capsys: pytest.CaptureFixture) -> str:
    code, out, _ = run([command, "--help"] if command else ["--help"], capsys)
    assert code == 0
    return out


def option_helps(text: str) -> List[str]:
    """Each option's entry of a --help text, joined onto one line."""
    entries: List[str] = []
    for line in text.splitlines():
        if re.match(r"^  -", line):
            entries.append(line.strip())
        elif entries and line.startswith("    ") and entries[-1] is not None:
            entries[-1] += " " + line.strip()
        elif not line.strip():
            entries.append("")  # a blank line ends an entry
    return [e for e in entries if e]


def test_the_commands_are_the_expected_ones():
    assert COMMANDS == ["ensemble-train", "evaluate", "export", "predict", "serve", "sweep",
                        "train"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_starts_with_one_line_saying_what_the_command_does(command, capsys):
    text = help_text(command, capsys)
    after_usage = text.split("\n\n")[1:]    # usage, then the description's paragraphs
    summary = after_usage[0]
    assert "\n" not in summary and len(summary) <= 79, summary
    assert summary[0].isupper() and summary.endswith("."), summary
    listed = help_text("", capsys)          # the same line in `tinygrad-mnist --help`
    assert summary[:-1].lower() in " ".join(listed.split()).lower()


@pytest.mark.parametrize("command", COMMANDS)
def test_no_option_states_its_default_twice_or_as_none(command, capsys):
    text = help_text(command, capsys)
    assert "(default: None)" not in text
    for entry in option_helps(text):
        assert entry.count("default") <= 1, entry


def test_options_without_a_default_value_say_what_they_do_instead(capsys):
    entries = {e.split()[0]: e for e in option_helps(help_text("train", capsys))}
    for option, says in [("--dataset", "default: mnist"), ("--out", "default: a fresh runs/"),
                         ("--data-dir", "default: its variable"), ("--limit", "default: all"),
                         ("--image-size", "default: keep their size"),
                         ("--channels", "default: colour if any image is")]:
        assert says in entries[option], entries[option]


# ---------------------------------------------------------------- usage errors
USAGE_ERRORS = {
    "a value of the wrong type (argparse)": ["train", "--epochs", "two"],
    "a value out of range (TrainConfig)": ["train", "--epochs", "0"],
    "an unknown command": ["trian"],
    "a missing required option": ["export", "some/run"],
    "a missing argument": ["predict"],
    "an unknown option": ["evaluate", "some/run", "--no-graphs"],
    "an option of another command": ["sweep", "spec.yaml", "--epochs", "3"],
    "a bad choice": ["train", "--model", "rnn"],
    "an out-of-range port": ["serve", "some/run", "--port", "70000"],
    "a resume with other options": ["train", "--resume", "some/run", "--lr", "0.1"],
}


@pytest.mark.parametrize("argv", USAGE_ERRORS.values(), ids=USAGE_ERRORS.keys())
def test_every_usage_error_has_the_same_prefix(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(argv, capsys)
    assert code == errors.EXIT_USAGE, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinygrad-mnist: error: "), err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, suggested", [
    (["train", "--epcohs", "3"], "--epochs"),
    (["train", "--learning-rate", "0.1"], None),
    (["train", "--batchsize", "64"], "--batch-size"),
    (["predict", "run", "a.png", "--lables", "2"], "--labels"),
    (["serve", "run", "--prot", "8080"], "--port"),
    (["ensemble-train", "--member", "3", "--epcohs=2"], "--epochs"),
], ids=["transposed", "nothing close", "missing dash", "predict", "serve", "with ="])
def test_an_unknown_option_suggests_the_closest_one(argv, suggested, capsys):
    code, _, err = run(argv, capsys)
    assert code == errors.EXIT_USAGE and err.startswith("tinygrad-mnist: error: "), err
    assert "unrecognized arguments" in err
    if suggested:
        assert f"did you mean {suggested}?" in err
    else:
        assert "did you mean" not in err


# ---------------------------------------------------------------- predict's options
@pytest.fixture
def model_and_picture(tmp_path) -> Tuple[Path, Path]:
    config = TrainConfig(hidden=[16]).validate()
    checkpoint = tmp_path / "best.npz"
    tg.save({"format": "tinygrad_mnist.model", "model": build_model(config).state_dict(),
             "config": dataclasses.asdict(config), "stats": [0.1307, 0.3081], "epoch": 1,
             "val_acc": 0.5}, checkpoint)
    a = np.full((60, 60), 255, np.uint8)
    a[12:-12, 27:33] = 0
    Image.fromarray(a).save(tmp_path / "one.png")
    return checkpoint, tmp_path / "one.png"


def test_labels_and_best_runs_are_the_names_in_help(capsys):
    text = help_text("predict", capsys)
    assert "--labels N" in text and "--best-runs K" in text
    assert "--top" not in text                   # neither old spelling is advertised
    for command in ("evaluate", "export", "serve"):
        assert "--best-runs K" in help_text(command, capsys)


def test_labels_sets_the_labels_per_image(model_and_picture, capsys):
    checkpoint, picture = model_and_picture
    for n in (1, 4):
        code, out, err = run(["predict", str(checkpoint), str(picture), "--labels", str(n)],
                             capsys)
        assert code == 0 and not err
        assert out.count("%") == n, out
    code, _, err = run(["predict", str(checkpoint), str(picture), "--labels", "0"], capsys)
    assert code == errors.EXIT_USAGE and "--labels must be in 1..10" in err


@pytest.mark.parametrize("old, new, value", [("--top", "--labels", "2"),
                                             ("--top-k", "--best-runs", "1")])
def test_the_old_spellings_still_work_with_a_note(old, new, value, model_and_picture,
                                                  capsys):
    checkpoint, picture = model_and_picture
    code, expected, err = run(["predict", str(checkpoint), str(picture), new, value], capsys)
    assert code == 0 and not err
    code, out, err = run(["predict", str(checkpoint), str(picture), old, value], capsys)
    assert code == 0 and out == expected
    assert err == f"tinygrad-mnist: note: {old} is deprecated and will be removed; use {new}\n"
