"""`rnnlab compare --jobs N`, `--plan` and `--collect`: the same results as a plain compare, by other routes.

    python -m pytest tests/test_compare_sweeps.py

Jobs run as `rnnlab train` processes; their results must equal the in-process runs' figures.
Threads differ (a job gets its share of the cores), so losses agree to float tolerance and
accuracies, steps and steps-to-threshold exactly.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT

TINY = ["--seq-len", "4", "--seeds", "2", "--steps", "40", "--hidden", "6", "task.val_size=32", "task.test_size=32",
        "train.eval_every=10", "--no-progress"]  # fmt: skip
EXACT = ("model", "seq_len", "seed", "params", "test_accuracy", "best_val_accuracy", "steps", "steps_to_90", "steps_to_99", "status")


def _rows(parent: Path) -> list[dict[str, str]]:
    with (parent / "results.csv").open(newline="") as f:
        return sorted(csv.DictReader(f), key=lambda r: (r["model"], r["seq_len"], r["seed"]))


def _same_figures(a: Path, b: Path) -> None:
    ra, rb = _rows(a), _rows(b)
    assert [{k: r[k] for k in EXACT} for r in ra] == [{k: r[k] for k in EXACT} for r in rb]
    assert [float(r["test_loss"]) for r in ra] == pytest.approx([float(r["test_loss"]) for r in rb], abs=1e-4)


def _rnnlab(*args: str, cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "rnnlab", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600, **kw)


def _run_side_by_side(commands: list[str], cwd: Path) -> None:
    """The printed commands at once, one thread each, as a user with two cores would run them."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    jobs = [subprocess.Popen([sys.executable, "-m", "rnnlab", *line.split()[1:]], cwd=cwd, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for line in commands]  # fmt: skip
    for job, line in zip(jobs, commands):
        _, err = job.communicate(timeout=600)
        assert job.returncode == 0, f"{line}\n{err}"


@pytest.mark.slow
def test_jobs_give_the_same_results_as_one_process(cli, tmp_path):
    code, out = cli("compare", "lstm", "gru", *TINY, "--runs-dir", tmp_path / "one")
    assert code == 0, out
    code, out = cli("compare", "lstm", "gru", *TINY, "--jobs", "2", "--runs-dir", tmp_path / "two")
    assert code == 0, out
    assert "2 jobs at once" in out and "4 of 4 runs finished" in out
    (one,), (two,) = (tmp_path / "one").iterdir(), (tmp_path / "two").iterdir()
    _same_figures(one, two)
    assert (two / "plots" / "curves.png").is_file() and (two / "results.md").is_file()
    assert len(list((two / "logs").glob("*.log"))) == 4


@pytest.mark.slow
def test_plan_then_the_printed_commands_then_collect_equals_compare(cli, tmp_path):
    code, out = cli("compare", "lstm", "gru", *TINY, "--runs-dir", tmp_path / "plain")
    assert code == 0, out
    done = _rnnlab("compare", "lstm", "gru", *TINY, "--plan", "--runs-dir", str(tmp_path / "planned"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    commands = [line for line in done.stdout.splitlines() if line.startswith("rnnlab train ")]
    assert len(commands) == 4
    (parent,) = (tmp_path / "planned").iterdir()
    assert not (parent / "results.csv").exists()

    # Half of them, then --collect: the finished ones are collected, the rest named as missing.
    _run_side_by_side(commands[:2], cwd=tmp_path)
    done = _rnnlab("compare", "--collect", str(parent), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "missing (2 of 4" in done.stdout
    summary = json.loads((parent / "summary.json").read_text())
    assert summary["status"] == "incomplete" and len(summary["missing_runs"]) == 2

    _run_side_by_side(commands[2:], cwd=tmp_path)
    done = _rnnlab("compare", "--collect", str(parent), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((parent / "summary.json").read_text())["status"] == "completed"
    (plain,) = (tmp_path / "plain").iterdir()
    _same_figures(plain, parent)


def test_collect_refuses_what_is_not_a_plan(cli, tmp_path):
    code, out = cli("compare", "--collect", tmp_path)
    assert code == 2 and "plan.json" in out
    code, out = cli("compare", "lstm", "--collect", tmp_path)
    assert code == 2 and "without models" in out
    code, out = cli("compare", "lstm", "--jobs", "0", "--steps", "2", "--runs-dir", tmp_path / "r")
    assert code == 2 and "--jobs 0" in out


def test_a_users_mistake_in_a_job_stops_the_comparison_and_leaves_nothing(cli, tmp_path):
    code, out = cli("compare", "lstm", "gru", "--task", "imdb", "task.data_path=/nonexistent/aclImdb_v1.tar.gz",
                    "--jobs", "2", "--runs-dir", tmp_path / "r", "--no-progress")
    assert code == 2 and "Traceback" not in out, out
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


@pytest.mark.slow
def test_ctrl_c_stops_every_job_keeps_finished_runs_and_writes_results(tmp_path):
    args = ["compare", "lstm", "gru", "--seq-len", "4", "--seeds", "2", "--hidden", "6", "task.val_size=32",
            "task.test_size=32", "train.eval_every=10", "--no-progress", "--jobs", "2", "--runs-dir", str(tmp_path / "r")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    # Four long runs, two at a time: the first two are cut short, the other two never start.
    proc = subprocess.Popen([sys.executable, "-m", "rnnlab", *args, "--steps", "20000", "train.early_stopping=null"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env,
                            start_new_session=True)  # fmt: skip
    deadline = time.time() + 120
    # Stop as soon as both first jobs have their run directories: one may still be setting up,
    # the moment a second SIGINT once turned into a run left "running" without a checkpoint.
    while time.time() < deadline and len(list((tmp_path / "r").glob("*/*/config.yaml"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: every process of its group
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, out + err
    (parent,) = (tmp_path / "r").iterdir()
    rows = list(csv.DictReader((parent / "results.csv").open()))
    assert rows and all(r["status"] == "interrupted" for r in rows), [(r["model"], r["seed"], r["status"], r["steps"]) for r in rows]
    assert json.loads((parent / "summary.json").read_text())["status"] == "interrupted"
    assert "compare interrupted" in err
    for r in rows:  # each interrupted job saved a resumable checkpoint
        assert (Path(r["run_dir"]) / "checkpoints" / "last.pt").is_file()
