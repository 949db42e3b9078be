"""The engine's loop and its callback hooks, as a library user drives them.

    python -m pytest tests/test_engine.py

(Resume, divergence, distributed runs and hostile inputs have test modules of their own.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rnnlab.callbacks import Callback
from rnnlab.config import resolve_config
from rnnlab.engine import FitResult, Run, fit

from conftest import tiny_raw


class Recorder(Callback):
    def __init__(self, fail_at_step: int | None = None) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.fail_at_step = fail_at_step

    def on_setup(self, run: Run) -> None:
        self.events.append(("setup", run.step, run.run_dir is not None and run.run_dir.is_dir()))

    def on_step(self, run: Run) -> None:
        self.events.append(("step", run.step))
        if run.step == self.fail_at_step:
            raise RuntimeError("a callback failed")

    def on_evaluate(self, run: Run, rows: list[dict[str, Any]]) -> None:
        self.events.append(("evaluate", run.step, sorted(r["split"] for r in rows)))

    def on_end(self, run: Run, result: FitResult) -> None:
        self.events.append(("end", result.summary["status"]))

    def close(self) -> None:
        self.events.append(("close",))


def test_callbacks_are_called_in_order_with_the_run_state(tmp_path: Path) -> None:
    rec = Recorder()
    result = fit(resolve_config(tiny_raw(steps=20, eval_every=10)), runs_dir=tmp_path, callbacks=[rec])
    names = [e[0] for e in rec.events]
    assert rec.events[0] == ("setup", 0, True)
    assert names.count("step") == 20 and [e[1] for e in rec.events if e[0] == "step"] == list(range(1, 21))
    evals = [e for e in rec.events if e[0] == "evaluate"]
    # Validation at every eval_every, then the test split once, with the best checkpoint.
    assert evals == [("evaluate", 10, ["train", "val"]), ("evaluate", 20, ["train", "val"]), ("evaluate", 20, ["test"])]
    assert rec.events[-2:] == [("end", "completed"), ("close",)]
    assert result.summary["status"] == "completed"


def test_custom_callbacks_replace_the_display_but_not_the_checkpoints(tmp_path: Path) -> None:
    result = fit(resolve_config(tiny_raw(steps=10, eval_every=5)), runs_dir=tmp_path, callbacks=[])
    assert (result.run_dir / "checkpoints" / "best.pt").is_file()
    assert (result.run_dir / "summary.json").is_file()
    assert not (result.run_dir / "metrics.jsonl").exists()  # metrics.jsonl is the MetricsFile callback's


def test_a_failing_callback_still_gets_closed_and_the_run_is_not_left_running(tmp_path: Path) -> None:
    rec = Recorder(fail_at_step=3)
    with pytest.raises(RuntimeError, match="a callback failed"):
        fit(resolve_config(tiny_raw(steps=10, eval_every=5)), runs_dir=tmp_path, callbacks=[rec])
    assert rec.events[-1] == ("close",)
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert not (run_dir / ".lock").exists()
