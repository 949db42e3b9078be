"""Shared test helpers: tiny configs and a CLI runner. Everything seeded, everything in tmp_path."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SHARED_IMDB = ROOT.parent / "shared" / "data" / "aclImdb_v1.tar.gz"

# A test run started in the background of a script (`python -m pytest &`) inherits SIGINT ignored,
# and so would every rnnlab process it starts: the Ctrl-C tests would wait for runs that never
# hear it. They test what a terminal gives a command, the default, so give the children that (a
# Python handler here becomes the default in a child at exec; an ignored signal stays ignored).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def tiny_raw(model: str = "lstm", **train) -> dict:
    """A long-dependency config that trains in well under a second."""
    return {
        "name": f"tiny_{model}",
        "seed": 0,
        "device": "cpu",
        "task": {"name": "long_dependency", "seq_len": 6, "num_classes": 3, "val_size": 40, "test_size": 40},
        "model": {"name": model, "hidden_size": 8, "init": "chrono"},
        "train": {"lr": 0.02, "batch_size": 16, "steps": 20, "eval_every": 10, **train},
    }


@pytest.fixture
def write_config(tmp_path: Path):
    def write(raw: dict, name: str = "cfg.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(raw))
        return path

    return write


@pytest.fixture
def cli():
    """Invoke the real Typer app; returns (exit_code, stdout + stderr)."""
    from rnnlab.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False, env={"COLUMNS": "200"})
        return result.exit_code, result.output

    return invoke
