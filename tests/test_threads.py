"""rnnlab chooses its CPU threads (issue 28): auto counts usable and idle cores and the model's
work per step; --threads, OMP_NUM_THREADS and runtime.threads win over it, in that order; the
run's header line says what was chosen and why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnnlab import threads
from rnnlab.config import resolve_config
from rnnlab.contract import ModelSpec
from rnnlab.errors import UserError
from rnnlab.models.recurrent import RecurrentConfig, RecurrentNet
from rnnlab.threads import (
    PARALLEL_WORK, cgroup_quota_cores, choose_threads, quiet_openmp_waits, request_threads, step_work, usable_cores,
)  # fmt: skip

from conftest import ROOT, tiny_raw

BIG = 100 * PARALLEL_WORK  # a model with enough work per step for every idle core


@pytest.fixture(autouse=True)
def _restore_threads():
    """Each test starts with no --threads and leaves torch's thread count as it found it."""
    before = torch.get_num_threads()
    request_threads(None)
    yield
    request_threads(None)
    torch.set_num_threads(before)


def _tiny_model() -> RecurrentNet:
    cfg = RecurrentConfig(name="lstm", hidden_size=8)
    return RecurrentNet(cfg, ModelSpec(num_outputs=3, vocab_size=5), "lstm")


def test_auto_gives_a_tiny_model_one_thread_even_with_idle_cores():
    choice = choose_threads("auto", step_work(_tiny_model(), 16), usable=8, idle=8.0, environ={})
    assert choice.threads == 1
    assert choice.note.startswith("threads 1 (auto: small model")


def test_auto_never_takes_more_threads_than_idle_cores():
    assert choose_threads("auto", BIG, usable=4, idle=4.0, environ={}).threads == 4
    assert choose_threads("auto", BIG, usable=4, idle=2.1, environ={}).note == "threads 2 (auto: 2 idle cores of 4)"
    assert choose_threads("auto", BIG, usable=2, idle=0.9, environ={}).note == "threads 1 (auto: 1 idle core of 2)"
    none_idle = choose_threads("auto", BIG, usable=2, idle=0.1, environ={})
    assert (none_idle.threads, none_idle.why) == (1, "auto: no idle core of 2")
    # idle cores beyond those this process may use (affinity, quota) do not count
    assert choose_threads("auto", BIG, usable=1, idle=8.0, environ={}).threads == 1


def test_step_work_counts_batch_times_recurrent_weights():
    model = _tiny_model()  # one LSTM: 4*8 x (5 + 8) weights per step
    assert step_work(model, 16) == 16 * 4 * 8 * (5 + 8)


def test_explicit_settings_win_over_auto_in_order_threads_flag_env_config():
    env = {"OMP_NUM_THREADS": "3"}
    assert (choose_threads(5, BIG, usable=8, idle=8.0, environ={}).threads, choose_threads(5, environ={}).why) == (5, "runtime.threads")
    assert choose_threads(5, BIG, usable=8, idle=8.0, environ=env).note == "threads 3 (OMP_NUM_THREADS)"
    assert choose_threads("auto", 1, usable=8, idle=8.0, environ=env).threads == 3  # even for a tiny model
    request_threads("2")
    assert choose_threads(5, BIG, environ=env).note == "threads 2 (--threads)"
    request_threads("auto")  # --threads auto beats OMP_NUM_THREADS too: auto decides
    assert choose_threads(5, BIG, usable=4, idle=4.0, environ=env).why == "auto: 4 idle cores"


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5", "99999"])
def test_a_bad_threads_value_is_the_users_mistake(bad: str):
    with pytest.raises(UserError, match="auto or a whole number"):
        request_threads(bad)


def test_usable_cores_one_core_of_affinity_gives_one_thread():
    assert usable_cores(affinity={3}, quota=None) == 1
    assert usable_cores(affinity={0, 1, 2, 3}, quota=2.5) == 2  # a quota caps the cores
    assert usable_cores(affinity={0, 1, 2, 3}, quota=0.5) == 1
    # the real thing: a process pinned to one core chooses one thread for a big model
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from rnnlab.threads import choose_threads; print(choose_threads('auto', 10**12, environ={}).note)")  # fmt: skip
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this platform")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.startswith("threads 1 (auto: "), out


def test_cgroup_quota_is_read_from_v2_and_v1_files(tmp_path: Path):
    own = tmp_path / "self_cgroup"
    v2 = tmp_path / "v2"
    (v2 / "job").mkdir(parents=True)
    own.write_text("0::/job\n")
    (v2 / "job" / "cpu.max").write_text("150000 100000\n")
    assert cgroup_quota_cores(v2, own) == 1.5
    (v2 / "job" / "cpu.max").write_text("max 100000\n")
    assert cgroup_quota_cores(v2, own) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu,cpuacct" / "slot").mkdir(parents=True)
    own.write_text("4:cpu,cpuacct:/slot\n3:memory:/slot\n")
    (v1 / "cpu,cpuacct" / "slot" / "cpu.cfs_quota_us").write_text("200000\n")
    (v1 / "cpu,cpuacct" / "slot" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_quota_cores(v1, own) == 2.0
    (v1 / "cpu,cpuacct" / "slot" / "cpu.cfs_quota_us").write_text("-1\n")  # v1's "unlimited"
    assert cgroup_quota_cores(v1, own) is None
    assert cgroup_quota_cores(tmp_path / "absent", tmp_path / "absent_self") is None


def test_openmp_waits_are_quieted_only_when_the_user_chose_no_policy():
    env: dict[str, str] = {}
    assert quiet_openmp_waits(env) and env == {"GOMP_SPINCOUNT": threads.SPINCOUNT}
    for mine in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "infinity"}):
        env = dict(mine)
        assert not quiet_openmp_waits(env) and env == mine


def test_runtime_threads_in_the_config_refuses_booleans_and_zero():
    assert resolve_config({**tiny_raw(), "runtime": {"threads": 2}}).runtime.threads == 2
    assert resolve_config(tiny_raw()).runtime.threads == "auto"
    for bad in (True, 0, "many", 2.5):
        with pytest.raises(UserError, match="runtime.threads"):
            resolve_config({**tiny_raw(), "runtime": {"threads": bad}})


@pytest.mark.slow  # three tiny trainings: ~4 s on an idle machine, more on a loaded one
def test_the_header_line_shows_the_choice_and_the_run_uses_it(cli, write_config, tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    config = write_config(tiny_raw(steps=2, eval_every=2))
    code, out = cli("train", config, "--runs-dir", tmp_path / "a", "--no-progress")
    assert code == 0, out
    assert "threads 1 (auto: small model" in out
    code, out = cli("train", config, "--runs-dir", tmp_path / "b", "--no-progress", "--threads", "2")
    assert code == 0 and "threads 2 (--threads)" in out, out
    assert torch.get_num_threads() == 2
    summary = json.loads(next((tmp_path / "b").glob("*/summary.json")).read_text())
    assert summary["threads"] == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    request_threads(None)
    code, out = cli("train", config, "--runs-dir", tmp_path / "c", "--no-progress", "runtime.threads=2")
    assert code == 0 and "threads 1 (OMP_NUM_THREADS)" in out, out


def test_bad_threads_flag_exits_2_with_the_fix_and_writes_nothing(cli, write_config, tmp_path):
    config = write_config(tiny_raw(steps=2, eval_every=2))
    for command in (["train", config], ["evaluate", tmp_path / "none"], ["compare", "lstm"], ["probe-gradients"]):
        code, out = cli(*command, "--runs-dir", tmp_path / "runs", "--threads", "0") if command[0] != "evaluate" else cli(*command, "--threads", "0")
        assert code == 2, (command, out)
        assert "--threads = '0': give auto or a whole number" in out and "Traceback" not in out
    assert not (tmp_path / "runs").exists()


def test_evaluate_applies_the_runs_threads(cli, write_config, tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    raw = tiny_raw(steps=2, eval_every=2)
    assert cli("train", write_config(raw), "--runs-dir", tmp_path, "--no-progress")[0] == 0
    run = next(tmp_path.glob("*-tiny_lstm"))
    torch.set_num_threads(2)
    code, out = cli("evaluate", run, "--threads", "1")
    assert code == 0, out
    assert torch.get_num_threads() == 1  # the evaluation computed with the thread count asked for


@pytest.mark.slow
def test_compare_jobs_get_the_threads_asked_for(tmp_path):
    """compare --jobs passes --threads on to each job's process: its log's header says so."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    cmd = [sys.executable, "-m", "rnnlab", "compare", "lstm", "gru", "--steps", "2", "--hidden", "8", "--seq-len", "6",
           "--jobs", "2", "--threads", "1", "--runs-dir", str(tmp_path), "--no-progress", "train.eval_every=2"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**env, "COLUMNS": "200"}, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    logs = list(tmp_path.glob("*/logs/*.log"))
    assert len(logs) == 2
    for log in logs:
        assert "threads 1 (OMP_NUM_THREADS)" in log.read_text(), log.read_text()[:500]
