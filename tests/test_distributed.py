"""Data-parallel training with torchrun on CPU (gloo): two processes on halves of each global
batch must train exactly what one process trains on the whole batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import ROOT


def config(tmp_path) -> str:
    raw = {
        "name": "ddp",
        "seed": 5,
        "device": "cpu",
        "task": {"name": "long_dependency", "seq_len": 8, "num_classes": 4, "val_size": 64, "test_size": 64},
        "model": {"name": "lstm", "hidden_size": 12, "num_layers": 2, "init": "chrono"},
        "train": {"lr": 0.01, "batch_size": 16, "steps": 30, "eval_every": 10},
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def run(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


@pytest.mark.slow
def test_two_processes_on_split_batches_match_one_process_on_whole_batches(tmp_path):
    cfg = config(tmp_path)
    one = run([sys.executable, "-m", "rnnlab", "train", cfg, "--runs-dir", str(tmp_path / "one"), "--no-progress"], tmp_path)
    assert one.returncode == 0, one.stdout + one.stderr
    two = run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "rnnlab", "train", cfg, "--runs-dir", str(tmp_path / "two"), "--no-progress"],
        tmp_path,
    )  # fmt: skip
    assert two.returncode == 0, two.stdout + two.stderr
    runs = list((tmp_path / "two").iterdir())
    assert len(runs) == 1, "only rank 0 writes a run directory"
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["world_size"] == 2 and summary["steps"] == 30
    (single,) = (tmp_path / "one").iterdir()
    a = torch.load(single / "checkpoints/last.pt", weights_only=True)["model"]
    b = torch.load(runs[0] / "checkpoints/last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)
    reference = json.loads((single / "summary.json").read_text())
    assert summary["test"]["loss"] == pytest.approx(reference["test"]["loss"], abs=1e-5)
    assert two.stdout.count("completed ·") == 1, "only rank 0 prints"
