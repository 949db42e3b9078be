"""train.tensorboard: the run's metrics as TensorBoard scalars, read back with TensorBoard's own reader.

    python -m pytest tests/test_tensorboard.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import tiny_raw

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator", reason="pip install 'rnnlab[tensorboard]'"
)


def _scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    acc = event_accumulator.EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_scalars_equal_metrics_jsonl(cli, tmp_path, write_config):
    code, out = cli("train", write_config(tiny_raw(steps=30, eval_every=10)), "train.tensorboard=true",
                    "--runs-dir", tmp_path / "runs", "--no-progress")
    assert code == 0, out
    (run,) = (tmp_path / "runs").iterdir()
    scalars = _scalars(run)
    rows = _rows(run)
    assert {"train/loss", "train/accuracy", "train/grad_norm", "val/loss", "val/accuracy", "test/accuracy"} <= set(scalars)
    for split, name in (("val", "accuracy"), ("train", "loss"), ("val", "loss")):
        expected = [(r["step"], r[name]) for r in rows if r["split"] == split]
        got = scalars[f"{split}/{name}"]
        assert [s for s, _ in got] == [s for s, _ in expected]
        assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6)  # stored as float32


def test_resumed_run_has_each_step_once(cli, tmp_path, write_config):
    from rnnlab.engine import TrainingStopped, fit
    from rnnlab.callbacks import Callback
    from rnnlab.config import resolve_config
    import signal

    class StopAt(Callback):
        def on_step(self, run):
            if run.step == 15:
                signal.raise_signal(signal.SIGINT)

    cfg = resolve_config({**tiny_raw(steps=30, eval_every=10), "train": {**tiny_raw()["train"], "steps": 30, "eval_every": 10, "tensorboard": True}})
    with pytest.raises(TrainingStopped):
        fit(cfg, runs_dir=tmp_path / "runs", callbacks=[StopAt()])
    (run,) = (tmp_path / "runs").iterdir()
    code, out = cli("train", "--resume", run, "--no-progress")
    assert code == 0, out
    steps = [s for s, _ in _scalars(run)["val/accuracy"]]
    assert steps == [10, 20, 30]


def test_without_the_package_the_setting_is_refused(cli, tmp_path, write_config, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    code, out = cli("train", write_config(tiny_raw()), "train.tensorboard=true", "--runs-dir", tmp_path / "runs")
    assert code == 2 and "pip install 'rnnlab[tensorboard]'" in out and "Traceback" not in out
    assert not (tmp_path / "runs").exists()
