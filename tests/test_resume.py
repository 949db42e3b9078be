"""Faults a user's training must survive: kill -9, Ctrl-C, SIGTERM; and checkpoints that would
run code when unpickled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rnnlab.checkpoint import FORMAT

from conftest import ROOT


def raw_config(steps: int = 400) -> dict:
    # Dropout, a cosine schedule and two bidirectional layers: every kind of state must resume.
    return {
        "name": "fault",
        "seed": 3,
        "device": "cpu",
        "task": {"name": "long_dependency", "seq_len": 20, "num_classes": 5, "val_size": 200, "test_size": 200},
        "model": {"name": "bilstm", "hidden_size": 16, "num_layers": 2, "dropout": 0.2, "init": "chrono"},
        "train": {"lr": 0.01, "batch_size": 16, "steps": steps, "eval_every": 20, "checkpoint_every": 25, "scheduler": "cosine"},
    }


def rnnlab(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnlab", *map(str, args)], capture_output=True, text=True, cwd=ROOT, **kw)


def start(config: Path, runs: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rnnlab", "train", str(config), "--runs-dir", str(runs), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )


def wait_for_checkpoint(runs: Path, proc: subprocess.Popen, timeout: float = 120) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = list(runs.glob("*/checkpoints/last.pt"))
        if found:
            return found[0].parents[1]
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared")


def test_result(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


test_result.__test__ = False  # a helper, not a test


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("ref")
    import yaml

    config = tmp / "fault.yaml"
    config.write_text(yaml.safe_dump(raw_config()))
    out = rnnlab("train", config, "--runs-dir", tmp / "runs", "--no-progress")
    assert out.returncode == 0, out.stdout + out.stderr
    (run,) = (tmp / "runs").iterdir()
    return {"config": config, "summary": test_result(run)}


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_matches_an_uninterrupted_run(uninterrupted, tmp_path):
    runs = tmp_path / "runs"
    proc = start(uninterrupted["config"], runs)
    run = wait_for_checkpoint(runs, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"]
    assert 0 < step < 400, "the kill must land mid-run for this test to mean anything"
    assert test_result(run)["status"] == "running"  # SIGKILL leaves no chance to write anything else
    out = rnnlab("train", "--resume", run, "--no-progress")
    assert out.returncode == 0, out.stdout + out.stderr
    resumed, reference = test_result(run), uninterrupted["summary"]
    assert resumed["status"] == "completed" and resumed["steps"] == 400
    assert resumed["test"]["loss"] == pytest.approx(reference["test"]["loss"], abs=1e-6)
    assert resumed["test"]["accuracy"] == reference["test"]["accuracy"]
    assert resumed["val"]["step"] == reference["val"]["step"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val_steps = [r["step"] for r in rows if r["split"] == "val"]
    assert val_steps == list(range(20, 401, 20)), "each evaluation logged exactly once"


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_save_a_resumable_run(uninterrupted, tmp_path, sig, code):
    runs = tmp_path / "runs"
    proc = start(uninterrupted["config"], runs)
    run = wait_for_checkpoint(runs, proc)
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == code, output
    summary = test_result(run)
    assert summary["status"] == "interrupted" and summary["steps"] < 400
    assert f"rnnlab train --resume {run}" in output
    assert "Traceback" not in output
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert last["step"] == summary["steps"]
    out = rnnlab("train", "--resume", run, "--no-progress")
    assert out.returncode == 0, out.stdout + out.stderr
    assert test_result(run)["test"]["loss"] == pytest.approx(uninterrupted["summary"]["test"]["loss"], abs=1e-6)


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def _plant_malicious_checkpoint(run: Path, marker: Path) -> None:
    (run / "checkpoints").mkdir(parents=True, exist_ok=True)
    for name in ("best.pt", "last.pt"):
        torch.save({"format": FORMAT, "model": _Payload(marker)}, run / "checkpoints" / name)
    (run / "config.yaml").write_text((ROOT / "configs" / "long_dependency_lstm.yaml").read_text())


@pytest.mark.parametrize("command", [["evaluate"], ["train", "--resume"]])
def test_a_malicious_checkpoint_is_refused_and_its_payload_never_runs(tmp_path, command):
    run, marker = tmp_path / "evil_run", tmp_path / "pwned.txt"
    _plant_malicious_checkpoint(run, marker)
    out = rnnlab(*command, run)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "refused to load" in out.stderr and "Traceback" not in out.stderr
    assert not marker.exists()


def test_truncated_checkpoint_is_a_clear_error(tmp_path, write_config):
    from conftest import tiny_raw
    from rnnlab.config import load_config
    from rnnlab.engine import fit

    result = fit(load_config(write_config(tiny_raw())), runs_dir=tmp_path, progress=False, final_table=False)
    best = result.run_dir / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:500])
    out = rnnlab("evaluate", result.run_dir)
    assert out.returncode == 2 and "truncated or corrupt" in out.stderr


def test_resume_errors_name_the_fix(tmp_path):
    out = rnnlab("train", "--resume", tmp_path)
    assert out.returncode == 2 and "not a run directory" in out.stderr
    out = rnnlab("train", "configs/long_dependency_lstm.yaml", "--resume", tmp_path)
    assert out.returncode == 2 and "give no CONFIG" in out.stderr


@pytest.mark.slow
def test_imdb_resumes_inside_an_epoch_exactly(tmp_path):
    """The bucketed sampler's place inside the epoch is part of the checkpoint."""
    import yaml
    from imdb_fixtures import separable_reviews, write_imdb_archive

    archive = write_imdb_archive(tmp_path / "aclImdb_v1.tar.gz", reviews=separable_reviews(60))
    raw = {
        "name": "imdb_fault", "seed": 1, "device": "cpu",
        "task": {"name": "imdb", "data_path": str(archive), "val_size": 10, "max_len": 40},
        "model": {"name": "bilstm", "input": "embedding", "embedding_dim": 8, "hidden_size": 8, "dropout": 0.3, "pooling": "max"},
        "train": {"lr": 0.01, "batch_size": 8, "epochs": 40, "checkpoint_every": 5, "eval_every": 7},
    }  # fmt: skip
    config = tmp_path / "imdb_fault.yaml"
    config.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    ref = rnnlab("train", config, "--runs-dir", tmp_path / "ref", "--no-progress", env=env)
    assert ref.returncode == 0, ref.stdout + ref.stderr
    (ref_run,) = (tmp_path / "ref").iterdir()

    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnlab", "train", str(config), "--runs-dir", str(runs), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env,
    )
    run = wait_for_checkpoint(runs, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    total = test_result(ref_run)["steps"]
    assert 0 < last["step"] < total
    out = rnnlab("train", "--resume", run, "--no-progress", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert test_result(run)["test"]["loss"] == pytest.approx(test_result(ref_run)["test"]["loss"], abs=1e-6)


def _race_for_locks(root: str, rounds: int, barrier, won) -> None:
    """One racer: in every round, acquire the lock of that round's run directory at the moment the
    other racer does; the winner keeps it (this process lives on), so the loser must be refused."""
    from rnnlab.errors import UserError
    from rnnlab.rundir import RunLock

    for i in range(rounds):
        barrier.wait()
        try:
            RunLock(Path(root) / str(i)).acquire()
            won[i] = 1
        except UserError:
            pass


def test_two_processes_acquiring_a_lock_at_once_never_both_get_it(tmp_path):
    """Issue 27, item 11: 1,000 rounds of two processes racing for a fresh RUN/.lock. On 2d118bf a
    just-created, still empty lock was judged stale and deleted: both won in ~3% of the rounds."""
    import multiprocessing

    rounds = 1000
    for i in range(rounds):
        (tmp_path / str(i)).mkdir()
    ctx = multiprocessing.get_context("fork")
    barrier, won = ctx.Barrier(2), [ctx.Array("i", rounds, lock=False) for _ in range(2)]
    racers = [ctx.Process(target=_race_for_locks, args=(str(tmp_path), rounds, barrier, w)) for w in won]
    for p in racers:
        p.start()
    for p in racers:
        p.join(timeout=120)
    assert [p.exitcode for p in racers] == [0, 0]
    winners = [a + b for a, b in zip(*won)]
    doubles = [i for i, n in enumerate(winners) if n > 1]
    assert doubles == [] and set(winners) == {1}, f"both processes held the lock in rounds {doubles[:20]}"
