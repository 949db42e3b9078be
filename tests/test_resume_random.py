"""Stopping a run at seeded random steps and resuming it changes nothing: bit for bit.

    python -m pytest -q tests/test_resume_random.py

Two runs, each trained once without a stop (the reference) and once as a chain of stops and
resumes, every resume after the first continuing a resumed run:

- a long-dependency run (no epochs; evaluations every `eval_every` steps, last.pt every
  `checkpoint_every`, a cosine schedule and dropout, so every random and scheduler state matters);
- an IMDb-shaped run on a tiny archive with the plateau scheduler and early stopping, where every
  epoch end is also an evaluation step (as in configs/imdb_bilstm.yaml).

The stop steps come from `random.Random(0)` and include a step inside an evaluation window (the
training statistics gathered since the last evaluation must survive), an epoch end that is an
evaluation without a new best (the resumed run must not evaluate it again), and a step right after
last.pt was written. Most stops go through the engine's own Ctrl-C path: a callback raises SIGINT
in the training process itself at the end of the chosen step. Two are `kill -9`: a subprocess
SIGKILLs itself from a callback, once one step after a checkpoint and once while an evaluation's
rows are already in metrics.jsonl (and maybe in best.pt) but last.pt is older. Killing from inside
the process is what makes SIGKILL deterministic: the last.pt it leaves is always the one of the
last save before the chosen step, which a kill from outside could not guarantee.

After the final resume the chain must equal the reference exactly: every tensor of best.pt and
last.pt (weights, optimizer, scheduler, random states, sampler, training statistics) by
torch.equal, every other field by ==, every metrics.jsonl row in order, and summary.json; only
wall-time fields (`elapsed_s`, `wall_time_s`, `steps_per_s`) and the run directory may differ.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from imdb_fixtures import separable_reviews, write_imdb_archive

from conftest import ROOT, tiny_raw
from rnnlab.callbacks import Callback, MetricsFile
from rnnlab.config import resolve_config
from rnnlab.engine import TrainingStopped, fit

# Wall time differs between any two runs; the run directory's name holds its start time.
TIME_FIELDS = frozenset({"elapsed_s", "wall_time_s", "steps_per_s", "run_dir"})

# A kill -9 must come from inside the process to land at an exact step (see the docstring). The
# callback runs where the engine calls it: on_step after the step's update and before that step's
# evaluation and saves; on_evaluate after its rows are written and best.pt is saved, before last.pt.
KILLER = r"""
import json, os, signal, sys
import torch
torch.set_num_threads(1)
from rnnlab.callbacks import Callback, MetricsFile
from rnnlab.config import resolve_config
from rnnlab.engine import fit

raw, runs, resume, hook, at = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3] or None, sys.argv[4], int(sys.argv[5])

class Kill(Callback):
    def on_step(self, run):
        if hook == "step" and run.step == at:
            os.kill(os.getpid(), signal.SIGKILL)

    def on_evaluate(self, run, rows):
        if hook == "evaluate" and run.step == at:
            os.kill(os.getpid(), signal.SIGKILL)

fit(resolve_config(raw), runs_dir=runs, resume=resume, callbacks=[MetricsFile(), Kill()])
raise SystemExit("the run ended without being killed")
"""


class CtrlC(Callback):
    """A user's Ctrl-C during step `at`: the engine finishes the step (its evaluation and saves
    too), writes last.pt and stops, as it does for a real SIGINT."""

    def __init__(self, at: int):
        self.at = at

    def on_step(self, run) -> None:
        if run.step == self.at:
            signal.raise_signal(signal.SIGINT)  # the handler has run when this returns


@pytest.fixture
def one_thread():
    """Bit-identity holds for one thread count: the killed subprocesses run with one, so the
    in-process runs do too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train(raw: dict, runs: Path, resume: Path | None = None, stop: int | None = None) -> tuple[Path, bool]:
    """Train (or resume) in this process; stop with SIGINT at the end of step `stop`. Returns the
    run and whether it completed."""
    callbacks: list[Callback] = [MetricsFile()] + ([CtrlC(stop)] if stop is not None else [])
    try:
        result = fit(resolve_config(raw), runs_dir=runs, resume=resume, callbacks=callbacks)
    except TrainingStopped as e:
        summary = e.result.summary
        assert (e.exit_code, summary["status"], summary["steps"]) == (130, "interrupted", stop), e
        assert checkpoint(e.result.run_dir, "last")["step"] == stop
        return e.result.run_dir, False
    assert result.summary["status"] == "completed"
    return result.run_dir, True


def kill_9(raw: dict, runs: Path, resume: Path | None, hook: str, at: int) -> Path:
    """Train (or resume) in a subprocess that SIGKILLs itself in callback `hook` at step `at`."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", KILLER, json.dumps(raw), str(runs), str(resume or ""), hook, str(at)]
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == -signal.SIGKILL, out.stdout + out.stderr
    if resume is None:
        (run,) = runs.iterdir()
        assert json.loads((run / "summary.json").read_text())["status"] == "running"  # nothing else got written
    else:
        run = resume
    if hook == "evaluate":
        assert any(r["step"] == at for r in metrics(run)), "the kill must land after the evaluation's rows were written"
    return run


def checkpoint(run: Path, which: str) -> dict:
    return torch.load(run / "checkpoints" / f"{which}.pt", map_location="cpu", weights_only=True)


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def differences(a: Any, b: Any, where: str) -> list[str]:
    """Every place where `a` and `b` differ, wall-time fields aside; tensors must be equal bit for bit."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
        return [] if same and torch.equal(a, b) else [f"{where}: tensors differ"]
    if isinstance(a, dict) and isinstance(b, dict):
        out = [] if a.keys() == b.keys() else [f"{where}: keys {sorted(a, key=str)} != {sorted(b, key=str)}"]
        for k in sorted(a.keys() & b.keys() - TIME_FIELDS, key=str):
            out += differences(a[k], b[k], f"{where}.{k}")
        return out
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if type(a) is not type(b) or len(a) != len(b):
            return [f"{where}: {type(a).__name__} of {len(a)} != {type(b).__name__} of {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    if type(a) is not type(b) or (a != b and not (a != a and b != b)):  # NaN equals NaN here
        return [f"{where}: {a!r} != {b!r}"]
    return []


def assert_identical(run: Path, ref: Path) -> None:
    """Everything the two runs left behind is equal bit for bit, wall times aside. A failure names
    each part that differs (metrics.jsonl, each entry of best.pt and last.pt, summary.json)."""
    found: list[str] = []

    def check(part: str, a: Any, b: Any) -> None:
        diffs = differences(a, b, part)
        if diffs:
            found.append(f"{part}: {len(diffs)} difference(s), e.g. " + "; ".join(diffs[:3]))

    rows, ref_rows = metrics(run), metrics(ref)
    keys, ref_keys = [(r["step"], r["split"]) for r in rows], [(r["step"], r["split"]) for r in ref_rows]
    i = next((i for i, (x, y) in enumerate(zip(keys, ref_keys)) if x != y), min(len(keys), len(ref_keys)))
    if keys != ref_keys:
        found.append(f"metrics.jsonl: rows (step, split) from row {i}: resumed {keys[i:i + 4]}, reference {ref_keys[i:i + 4]}")
    check("metrics.jsonl", rows[:i], ref_rows[:i])  # the rows before any missing or extra one
    for which in ("last", "best"):
        ckpt, ref_ckpt = checkpoint(run, which), checkpoint(ref, which)
        for key in sorted((ckpt.keys() | ref_ckpt.keys()) - TIME_FIELDS):
            check(f"{which}.pt[{key!r}]", ckpt.get(key), ref_ckpt.get(key))
    summary, ref_summary = (json.loads((r / "summary.json").read_text()) for r in (run, ref))
    check("summary.json", summary, ref_summary)
    assert (run / "config.yaml").read_text() == (ref / "config.yaml").read_text()
    assert not found, "the resumed run differs from the uninterrupted one:\n" + "\n".join(found)


def resume_chain(raw: dict, runs: Path, stops: list[tuple[int, str]]) -> Path:
    """Stop at each (step, how) in order, resuming after each; then train to the end."""
    run = None
    for step, how in stops:
        if how == "sigint":
            run, completed = train(raw, runs, run, stop=step)
            if completed:  # ended before `step`, e.g. early stopping counted an evaluation twice:
                return run  # the comparison with the reference says what went wrong
        else:
            before = None if run is None else checkpoint(run, "last")["step"]
            run = kill_9(raw, runs, run, how, step)
            saved = checkpoint(run, "last")["step"]
            assert saved < step and saved != before, f"the kill at step {step} must leave a newer, earlier last.pt"
    return train(raw, runs, run)[0]


def new_best_steps(rows: list[dict]) -> set[int]:
    """Steps whose validation row beat every earlier one: (accuracy, -loss), as the engine ranks."""
    best, steps = None, set()
    for r in rows:
        if r["split"] == "val":
            key = (r["accuracy"], -r["loss"])
            if best is None or key > best:
                best = key
                steps.add(r["step"])
    return steps


# --- the long-dependency run ---------------------------------------------------------------------
LD_STEPS, LD_EVAL, LD_CKPT = 240, 10, 7


def long_dependency_raw() -> dict:
    raw = tiny_raw("lstm", steps=LD_STEPS, eval_every=LD_EVAL, checkpoint_every=LD_CKPT, scheduler="cosine")
    raw["model"].update(num_layers=2, dropout=0.2)  # dropout draws random numbers at every step
    return raw


@pytest.mark.slow
def test_long_dependency_run_stopped_at_random_steps_resumes_bit_identically(tmp_path, one_thread):
    raw = long_dependency_raw()
    ref, _ = train(raw, tmp_path / "ref")
    rng = random.Random(0)
    evals = range(LD_EVAL, LD_STEPS + 1, LD_EVAL)
    # A kill while the evaluation's rows are already logged (best.pt perhaps too) but last.pt is
    # older: the resumed run must drop those rows and log them again, once.
    killed_in_eval = rng.choice([s for s in evals if 3 * LD_EVAL <= s <= LD_STEPS // 3])
    inside_window = rng.choice([s for s in range(killed_in_eval + 1, 2 * LD_STEPS // 3) if s % LD_EVAL and s % LD_CKPT])
    after_ckpt = rng.choice([s + 1 for s in range(inside_window + 1, LD_STEPS - 1) if s % LD_CKPT == 0 and s % LD_EVAL])
    # Ctrl-C in the last step, whose evaluation is done before the stop: the resumed run must not
    # evaluate again. Without epochs this is the only place where the step of the latest evaluation
    # matters; here every evaluation is a new best, so the IMDb run is the one that shows a resume
    # which guesses that step from best.pt.
    stops = [(killed_in_eval, "evaluate"), (inside_window, "sigint"), (after_ckpt, "sigint"), (LD_STEPS, "sigint")]
    assert [s for s, _ in stops] == sorted({s for s, _ in stops}), stops

    run = resume_chain(raw, tmp_path / "runs", stops)
    assert_identical(run, ref)


# --- the IMDb-shaped run -------------------------------------------------------------------------
IMDB_EVAL, IMDB_CKPT = 3, 5


@pytest.fixture
def imdb_raw(tmp_path, monkeypatch) -> dict:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # never the user's cache
    monkeypatch.delenv("RNNLAB_DATA_DIR", raising=False)
    archive = write_imdb_archive(tmp_path / "aclImdb_v1.tar.gz", reviews=separable_reviews(40))
    return {
        "name": "imdb_random_stops", "seed": 1, "device": "cpu",
        "task": {"name": "imdb", "data_path": str(archive), "val_size": 10, "max_len": 30, "eval_batch_size": 16},
        "model": {"name": "bilstm", "input": "embedding", "embedding_dim": 8, "hidden_size": 8, "dropout": 0.3, "pooling": "max"},
        # 70 training reviews in batches of 8: 9 steps an epoch, so every epoch end is an evaluation.
        "train": {"lr": 0.02, "batch_size": 8, "epochs": 30, "eval_every": IMDB_EVAL, "checkpoint_every": IMDB_CKPT,
                  "scheduler": "plateau", "plateau_factor": 0.5, "plateau_patience": 1, "early_stopping": 5},
    }  # fmt: skip


@pytest.mark.slow
def test_imdb_run_with_plateau_and_early_stopping_stopped_at_random_steps_resumes_bit_identically(tmp_path, imdb_raw, one_thread):
    ref, _ = train(imdb_raw, tmp_path / "ref")
    summary, rows = json.loads((ref / "summary.json").read_text()), metrics(ref)
    sampler = checkpoint(ref, "last")["task_state"]["sampler"]
    end, spe = summary["steps"], -(-sampler["num_examples"] // sampler["batch_size"])  # the last batch is kept
    assert summary["epochs"] < imdb_raw["train"]["epochs"], "early stopping must end the reference run"
    lrs = [r["lr"] for r in rows if r["split"] == "val"]
    assert min(lrs) < max(lrs), "the plateau scheduler must lower the learning rate in the reference run"
    # The case of issue 14 point 1: stopped at an epoch end whose evaluation found no new best, a
    # resumed run that forgets that evaluation repeats it, counting patience twice.
    epoch_ends = [s for s in range(spe, end, spe) if s % IMDB_EVAL == 0 and s not in new_best_steps(rows)]
    assert epoch_ends, "the reference run must have an epoch end whose evaluation is not a new best"

    rng = random.Random(0)
    epoch_end = rng.choice(epoch_ends)
    inside_window = rng.choice([s for s in range(2, epoch_end - 2 * IMDB_CKPT) if s % IMDB_EVAL and s % IMDB_CKPT])
    # kill -9 one step after a checkpoint_every save: the resume starts from that very last.pt.
    after_ckpt = rng.choice([s + 1 for s in range(inside_window + 1, epoch_end - 1) if s % IMDB_CKPT == 0 and s % IMDB_EVAL])
    later = rng.choice([s for s in range(epoch_end + 1, end) if s % IMDB_EVAL])
    stops = [(inside_window, "sigint"), (after_ckpt, "step"), (epoch_end, "sigint"), (later, "sigint")]
    assert [s for s, _ in stops] == sorted({s for s, _ in stops}), stops

    run = resume_chain(imdb_raw, tmp_path / "runs", stops)
    assert_identical(run, ref)
