"""Mixed precision: bf16 on CPUs that compute it natively, refused where it would be emulated,
`auto` choosing for the user; checkpoints stay fp32 either way.

    python -m pytest tests/test_precision.py

`RNNLAB_CPU_BF16=0|1` simulates either kind of CPU for the detection (rnnlab.runtime).
"""

from __future__ import annotations

import json

import pytest
import torch

from rnnlab.checkpoint import load_checkpoint
from rnnlab.engine import evaluate, load_run_model
from rnnlab.runtime import cpu_has_native_bf16

from conftest import tiny_raw

NATIVE = cpu_has_native_bf16()


def _only_run(runs):
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    return run


def test_bf16_on_a_cpu_without_native_bf16_is_refused(cli, tmp_path, write_config, monkeypatch):
    monkeypatch.setenv("RNNLAB_CPU_BF16", "0")
    code, out = cli("train", write_config(tiny_raw()), "train.precision=bf16", "--runs-dir", tmp_path / "runs")
    assert code == 2 and "this CPU has no native bf16 units" in out and "train.precision=fp32" in out
    assert "Traceback" not in out
    assert not (tmp_path / "runs").exists()


def test_fp16_on_cpu_is_refused(cli, tmp_path, write_config):
    code, out = cli("train", write_config(tiny_raw()), "train.precision=fp16", "--runs-dir", tmp_path / "runs")
    assert code == 2 and "fp16 needs CUDA" in out
    assert not (tmp_path / "runs").exists()


def test_auto_falls_back_to_fp32_with_a_notice(cli, tmp_path, write_config, monkeypatch):
    monkeypatch.setenv("RNNLAB_CPU_BF16", "0")
    code, out = cli("train", write_config(tiny_raw()), "train.precision=auto", "--runs-dir", tmp_path / "runs", "--no-progress")
    assert code == 0, out
    assert "fp32 (auto: this CPU has no native bf16)" in out
    summary = json.loads((_only_run(tmp_path / "runs") / "summary.json").read_text())
    assert summary["precision"] == "fp32"


@pytest.mark.skipif(not NATIVE, reason="this CPU has no native bf16 (AVX512-BF16 or AMX): bf16 training is refused here")
@pytest.mark.parametrize("precision", ["bf16", "auto"])
def test_bf16_trains_and_its_checkpoint_is_fp32(cli, tmp_path, write_config, precision):
    raw = tiny_raw(steps=60, eval_every=20, lr=0.05)
    code, out = cli("train", write_config(raw), f"train.precision={precision}", "--runs-dir", tmp_path / "runs", "--no-progress")
    assert code == 0, out
    run = _only_run(tmp_path / "runs")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["precision"] == "bf16" and summary["status"] == "completed"
    weights = load_checkpoint(run / "checkpoints" / "best.pt")["model"]
    assert all(v.dtype == torch.float32 for v in weights.values() if v.is_floating_point())
    # It learned (chance is 1/3); `rnnlab evaluate` reproduces the test figure (in the run's
    # precision), and the checkpoint scored in plain fp32 is as good.
    assert summary["test"]["accuracy"] > 0.9
    code, out = cli("evaluate", run, "--split", "test")
    assert code == 0 and f"{100 * summary['test']['accuracy']:.2f}%" in out
    _, task, model, _ = load_run_model(run, torch.device("cpu"))
    assert evaluate(model, task, "test", torch.device("cpu"))["accuracy"] > 0.9
