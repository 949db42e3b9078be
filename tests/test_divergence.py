"""Divergence: a non-finite loss or gradient stops training cleanly, or is skipped on request.

    python -m pytest tests/test_divergence.py -q

No mocks: a test-only task feeds real float features (B, T, F) into a real LSTM, and from a
chosen batch on the inputs hold a NaN (the loss becomes NaN) or an inf (the loss stays finite,
because the gates saturate, but the gradient 0 * inf is NaN), so both of the engine's checks
are exercised. With value "spike" the chosen batches are finite but their loss is scaled by SPIKE,
and so is their gradient: what `train.skip_spikes` must catch.
"""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path
from typing import Any, Iterator, Literal

import pytest
import torch
import yaml
from pydantic import Field

from rnnlab.checkpoint import load_checkpoint
from rnnlab.config import RunConfig, TaskConfig, resolve_config
from rnnlab.engine import TrainingStopped, fit, load_run_model
from rnnlab.registry import TASKS
from rnnlab.contract import Batch, ModelSpec
from rnnlab.tasks.base import Task
from test_resume_random import assert_identical, one_thread, train  # noqa: F401  (one_thread: a fixture)

TASK = "zz_nonfinite_test"  # far from every real task's name, so no did-you-mean ever offers it
NEVER = 10**9
SPIKE = 1e4


class NonfiniteConfig(TaskConfig):
    name: Literal["zz_nonfinite_test"] = "zz_nonfinite_test"
    streaming = True
    seq_len: int = Field(4, ge=1)
    features: int = Field(3, ge=1)
    bad_from: int = Field(NEVER, ge=1, description="first poisoned training batch, counted from 1")
    bad_count: int = Field(NEVER, ge=0, description="poisoned batches in a row")
    value: Literal["nan", "inf", "spike"] = "nan"
    bad_eval: bool = Field(False, description="also poison one validation example")


class NonfiniteTask(Task):
    """Sign of the first feature at t=0, from (B, T, F) standard-normal features."""

    cfg: NonfiniteConfig
    chance = 0.5

    def __init__(self, cfg: NonfiniteConfig, **kw: Any):
        super().__init__(cfg, **kw)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.drawn = 0  # training batches handed out, skipped ones included
        self.spiking = False  # the batch just handed out is a spike: its loss is scaled by SPIKE
        fixed = torch.Generator().manual_seed(self.seed + 1)
        self._eval = {split: self._examples(64, fixed) for split in ("val", "test")}
        if cfg.bad_eval:
            self._eval["val"].inputs[0, 0, 0] = float(cfg.value)

    def _examples(self, n: int, generator: torch.Generator) -> Batch:
        x = torch.randn(n, self.cfg.seq_len, self.cfg.features, generator=generator)  # (B, T, F)
        return Batch(x, (x[:, 0, 0] > 0).long())

    def model_spec(self) -> ModelSpec:
        return ModelSpec(num_outputs=2, input_size=self.cfg.features, max_len=self.cfg.seq_len)

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        c = self.cfg
        while True:
            batch = self._examples(self.batch_size, self.generator)
            self.drawn += 1
            bad = c.bad_from <= self.drawn < c.bad_from + c.bad_count
            self.spiking = bad and c.value == "spike"
            if bad and not self.spiking:
                batch.inputs[0, 0, 0] = float(c.value)
            yield batch

    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        scale, self.spiking = (SPIKE if self.spiking else 1.0), False  # the training step's loss only
        return super().loss(logits, batch) * scale

    def eval_batches(self, split: str) -> Iterator[Batch]:
        yield self._eval[split]

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "drawn": self.drawn}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "generator" in state:
            self.generator.set_state(state["generator"])
            self.drawn = state["drawn"]


if TASK not in TASKS:  # a second import of this module (other import modes) must not fail

    TASKS.register(TASK, config=NonfiniteConfig, help="Test only: float features that turn NaN/inf from a chosen batch on.")(
        NonfiniteTask
    )


def raw_config(steps: int = 12, eval_every: int = 3, **task: Any) -> dict:
    return {
        "name": "nonfinite",
        "seed": 0,
        "device": "cpu",
        "task": {"name": TASK, **task},
        "model": {"name": "lstm", "hidden_size": 8},
        "train": {"lr": 0.01, "batch_size": 16, "steps": steps, "eval_every": eval_every},
    }


def only_run(runs: Path) -> Path:
    (run,) = runs.iterdir()
    return run


def strict_json(path: Path) -> Any:
    """JSON as other tools read it: NaN and Infinity are not JSON."""

    def refuse(name: str) -> None:
        raise AssertionError(f"{path.name} holds {name}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def all_finite(state: dict[str, torch.Tensor]) -> bool:
    return all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())


@pytest.mark.parametrize(
    "value, what",
    [("nan", "the loss is nan at step 7"), ("inf", "the gradient norm is nan at step 7")],
    ids=["nan-input-nan-loss", "inf-input-nan-gradient"],
)
def test_cli_stops_a_diverging_run_with_remedies_and_keeps_its_checkpoints(cli, write_config, tmp_path, value, what):
    runs = tmp_path / "runs"
    code, out = cli("train", write_config(raw_config(bad_from=7, value=value)), "--runs-dir", runs, "--no-progress")
    assert code == 1, out
    assert "Traceback" not in out
    flat = " ".join(out.split())  # the console may wrap the message
    assert f"training diverged: {what}." in flat
    assert "train.lr=0.001" in flat  # a tenth of the configured 0.01
    assert "train.clip_grad_norm" in flat and "train.skip_nonfinite=true" in flat

    run = only_run(runs)
    summary = strict_json(run / "summary.json")
    assert summary["status"] == "diverged"
    assert summary["steps"] == 6  # the bad step was never applied
    assert "test" not in summary  # the test split is scored only for completed runs

    best = load_checkpoint(run / "checkpoints/best.pt")
    assert best["step"] in (3, 6) and best["val"]["step"] == best["step"] == summary["val"]["step"]
    assert all_finite(best["model"])
    last = load_checkpoint(run / "checkpoints/last.pt")
    assert last["step"] == 6 and "optimizer" in last and all_finite(last["model"])

    # The kept best checkpoint rebuilds a working model from the file alone.
    cfg, task, model, _ = load_run_model(run, torch.device("cpu"))
    batch = next(iter(task.eval_batches("val")))
    with torch.inference_mode():
        assert torch.isfinite(model(batch.inputs, batch.lengths)).all()
    code, out = cli("evaluate", run, "--split", "val")
    assert code == 0 and "accuracy" in out, out


def test_fit_raises_training_stopped_with_the_run_result(tmp_path):
    cfg = resolve_config(raw_config(bad_from=5))
    with pytest.raises(TrainingStopped) as e:
        fit(cfg, runs_dir=tmp_path, progress=False, final_table=False)
    stopped = e.value
    assert stopped.exit_code == 1
    assert stopped.result.summary["status"] == "diverged" and stopped.result.summary["steps"] == 4
    assert "at step 5" in str(stopped)
    assert json.loads((stopped.result.run_dir / "summary.json").read_text())["status"] == "diverged"
    # metrics.jsonl holds only what happened before the bad step, all finite.
    rows = [json.loads(line) for line in (stopped.result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "val"] == [3]


@pytest.mark.parametrize("bad_from, bad_count", [(5, 3), (1, 1), (12, 2)], ids=["middle", "first-batch", "last-steps"])
def test_skip_nonfinite_skips_exactly_the_bad_batches_and_completes(cli, write_config, tmp_path, bad_from, bad_count):
    runs = tmp_path / "runs"
    raw = raw_config(bad_from=bad_from, bad_count=bad_count)
    raw["train"]["skip_nonfinite"] = True
    code, out = cli("train", write_config(raw), "--runs-dir", runs, "--no-progress")
    assert code == 0, out
    said = f"{bad_count} batch skipped" if bad_count == 1 else f"{bad_count} batches skipped"
    assert said in " ".join(out.split())  # on the terminal, not only in summary.json
    run = only_run(runs)
    summary = strict_json(run / "summary.json")
    assert summary["status"] == "completed"
    assert summary["skipped_batches"] == bad_count
    assert summary["steps"] == 12  # skipped batches are not steps
    assert math.isfinite(summary["test"]["loss"])
    last = load_checkpoint(run / "checkpoints/last.pt")
    assert all_finite(last["model"]) and last["task_state"]["drawn"] == 12 + bad_count


def test_divergence_at_the_first_step_leaves_a_consistent_run(cli, write_config, tmp_path):
    runs = tmp_path / "runs"
    code, out = cli("train", write_config(raw_config(bad_from=1)), "--runs-dir", runs, "--no-progress")
    assert code == 1 and "Traceback" not in out, out
    assert "the loss is nan at step 1" in " ".join(out.split())
    run = only_run(runs)
    summary = strict_json(run / "summary.json")
    assert summary["status"] == "diverged" and summary["steps"] == 0 and summary["val"] is None
    assert not (run / "checkpoints/best.pt").exists()
    assert load_checkpoint(run / "checkpoints/last.pt")["step"] == 0
    code, out = cli("evaluate", run)  # nothing to evaluate: said, not crashed
    assert code == 2 and "checkpoint not found" in out and "Traceback" not in out


def test_divergence_message_does_not_promise_a_missing_best_checkpoint(cli, write_config, tmp_path):
    code, out = cli("train", write_config(raw_config(bad_from=1)), "--runs-dir", tmp_path / "runs", "--no-progress")
    assert code == 1
    assert not (only_run(tmp_path / "runs") / "checkpoints/best.pt").exists()
    assert "best checkpoint so far is kept" not in " ".join(out.split())


def test_a_diverged_run_resumes_past_the_bad_batch(cli, write_config, tmp_path):
    runs = tmp_path / "runs"
    code, _ = cli("train", write_config(raw_config(bad_from=7, bad_count=1)), "--runs-dir", runs, "--no-progress")
    assert code == 1
    run = only_run(runs)
    # last.pt was saved after the bad batch was drawn: resuming continues with the next one,
    # which is clean, and the run completes in the same directory.
    code, out = cli("train", "--resume", run, "--no-progress")
    assert code == 0, out
    summary = strict_json(run / "summary.json")
    assert summary["status"] == "completed" and summary["steps"] == 12


def test_nan_in_validation_data_is_recorded_as_null_not_as_invalid_json(tmp_path):
    cfg = resolve_config(raw_config(bad_eval=True))
    result = fit(cfg, runs_dir=tmp_path, progress=False, final_table=False)
    summary = strict_json(result.run_dir / "summary.json")
    assert summary["status"] == "completed" and summary["val"]["loss"] is None
    for line in (result.run_dir / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda name: pytest.fail(f"metrics.jsonl holds {name}"))
    assert (result.run_dir / "plots/accuracy.png").is_file()


class _Hung(Exception):
    pass


def test_skipping_every_batch_does_not_loop_forever(tmp_path):
    raw = raw_config(bad_from=3)  # every batch from the third on is bad
    raw["train"]["skip_nonfinite"] = True
    cfg = resolve_config(raw)

    def hung(signum: int, frame: Any) -> None:
        raise _Hung

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, 3.0)  # ~1 ms per skipped batch: thousands of skips
    try:
        with pytest.raises(TrainingStopped) as e:
            fit(cfg, runs_dir=tmp_path, progress=False, final_table=False)
    except _Hung:
        pytest.fail("still skipping non-finite batches after 3 s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert e.value.result.summary["status"] == "diverged"


def test_the_test_task_stays_out_of_the_shipped_vocabulary(cli):
    """Registering it must not disturb the registry tests, `rnnlab list` or did-you-mean."""
    from rnnlab.registry import MODELS, suggest

    assert MODELS.names()[:5] == ["rnn", "lstm", "gru", "bilstm", "bigru"]
    assert TASKS.names()[-1] == TASK and "long_dependency" in TASKS
    code, out = cli("list")
    assert code == 0 and "long_dependency" in out
    for typo, meant in (("long_dep", "long_dependency"), ("imbd", "imdb"), ("next_tokn", "next_token")):
        assert suggest(typo, TASKS.names()) == f" (did you mean '{meant}'?)"
    assert yaml.safe_load(yaml.safe_dump(raw_config()))["task"]["name"] == TASK


# --- train.skip_spikes: finite gradients far above the recent ones ---------------------------------
def spike_config(skip_spikes: float | None, bad_count: int = 3) -> dict:
    # The guard needs a full window of norms (engine.SPIKE_WINDOW = 100) before it judges one.
    raw = raw_config(steps=140, eval_every=20, bad_from=121, bad_count=bad_count, value="spike")
    raw["train"]["skip_spikes"] = skip_spikes
    return raw


def train_rows(run: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r for r in rows if r["split"] == "train"}


def test_the_test_spikes_are_spikes_and_without_the_guard_they_are_applied(tmp_path):
    result = fit(resolve_config(spike_config(None)), runs_dir=tmp_path, progress=False, final_table=False)
    assert result.summary["skipped_batches"] == 0
    rows = train_rows(result.run_dir)
    assert rows[140]["grad_norm"] > 100 * rows[120]["grad_norm"]  # the mean over steps 121-140
    assert "spikes_skipped" not in rows[140]  # a column only where the guard is on


def test_skip_spikes_skips_exactly_the_spiking_batches(tmp_path):
    result = fit(resolve_config(spike_config(10)), runs_dir=tmp_path, progress=False, final_table=False)
    summary = result.summary
    assert summary["status"] == "completed" and summary["steps"] == 140  # skipped batches are not steps
    assert summary["skipped_batches"] == 3
    rows = train_rows(result.run_dir)
    assert {step: r["spikes_skipped"] for step, r in rows.items()} == {20: 0, 40: 0, 60: 0, 80: 0, 100: 0, 120: 0, 140: 3}
    assert rows[140]["grad_norm"] < 10 * rows[120]["grad_norm"]  # the applied steps' norms only
    assert load_checkpoint(result.run_dir / "checkpoints/last.pt")["task_state"]["drawn"] == 143


def test_skip_spikes_leaves_a_run_without_spikes_as_it_was(tmp_path):
    guarded = fit(resolve_config(spike_config(10, bad_count=0)), runs_dir=tmp_path / "a", progress=False, final_table=False)
    plain = fit(resolve_config(spike_config(None, bad_count=0)), runs_dir=tmp_path / "b", progress=False, final_table=False)
    assert guarded.summary["skipped_batches"] == 0
    assert guarded.summary["test"] == plain.summary["test"]


def test_a_run_with_skip_spikes_stopped_and_resumed_equals_one_never_stopped(tmp_path, one_thread):
    # Stopped after the window filled and before the spikes: the window must come back from last.pt.
    config = spike_config(10)
    ref, _ = train(config, tmp_path / "ref")
    run, completed = train(config, tmp_path / "runs", stop=110)
    assert not completed
    run, completed = train(config, tmp_path / "runs", run)
    assert completed
    assert_identical(run, ref)
