"""`rnnlab train`: one run of a task and a model from a YAML config, through the engine.

    rnnlab train configs/long_dependency_lstm.yaml task.seq_len=100 train.steps=500
    rnnlab train long_dependency_lstm                 # a shipped config by name, from anywhere
    rnnlab train --resume runs/20261124-093000-long_dependency_lstm
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from ..config import load_config
from ..engine import FitResult, fit
from ..errors import UserError
from ..rundir import read_json

__all__ = ["train"]


def train(
    config: Path | None, overrides: list[str], *, runs_dir: Path, resume: Path | None, progress: bool, console: Console
) -> FitResult | None:
    """Train a new run, or continue `resume`; None when a completed run was given to resume."""
    if resume is None:
        if config is None:
            raise UserError("give a CONFIG, e.g. rnnlab train configs/long_dependency_lstm.yaml (or --resume RUN_DIR)")
        return fit(load_config(config, overrides), runs_dir=runs_dir, console=console, progress=progress)
    if config is not None or overrides:
        raise UserError("--resume continues a run with its own config.yaml; give no CONFIG or overrides with it")
    if not (resume / "config.yaml").is_file():
        raise UserError(f"--resume {resume}: not a run directory (no config.yaml there)")
    status = _status(resume)
    if status == "completed":
        console.print(f"{resume} has already completed: there is nothing to resume, and nothing was changed.")
        return None
    if not (resume / "checkpoints" / "last.pt").is_file():
        raise UserError(f"--resume {resume}: no checkpoints/last.pt yet, so nothing to resume; start it again instead")
    return fit(load_config(resume / "config.yaml"), runs_dir=runs_dir, resume=resume, console=console, progress=progress)


def _status(run: Path) -> str | None:
    try:
        summary = read_json(run / "summary.json")
    except (OSError, ValueError):
        return None
    return summary.get("status") if isinstance(summary, dict) else None
