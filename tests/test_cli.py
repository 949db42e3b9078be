"""The CLI end to end, as a user types it, in a temporary directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from rnnlab.config import load_config
from rnnlab.engine import fit

from conftest import ROOT, tiny_raw

RUN_FILES = [
    "config.yaml",
    "metrics.jsonl",
    "summary.json",
    "checkpoints/best.pt",
    "checkpoints/last.pt",
    "plots/loss.png",
    "plots/accuracy.png",
]


def only_run(runs: Path) -> Path:
    (run,) = list(runs.iterdir())
    return run


def test_train_writes_every_file_of_a_run(cli, write_config, tmp_path):
    code, out = cli("train", write_config(tiny_raw()), "--runs-dir", tmp_path / "runs", "train.steps=30")
    assert code == 0, out
    run = only_run(tmp_path / "runs")
    assert run.name.endswith("-tiny_lstm")
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    for png in ("loss", "accuracy"):
        assert (run / f"plots/{png}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["steps"] == 30 and summary["world_size"] == 1 and summary["device"] == "cpu"
    assert summary["task"] == "long_dependency" and summary["model"] == "lstm" and summary["params"] > 0
    assert {"accuracy", "loss"} <= set(summary["test"]) and {"accuracy", "loss", "step"} <= set(summary["val"])
    assert summary["wall_time_s"] > 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    for r in rows:
        if r["split"] != "test":
            assert {"step", "epoch", "split", "loss", "accuracy", "lr", "grad_norm", "elapsed_s"} <= set(r)
    assert [r["step"] for r in rows if r["split"] == "val"] == [10, 20, 30]
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["train"]["steps"] == 30 and resolved["model"]["num_layers"] == 1  # defaults filled in
    assert str(run) in out.replace("\n", "")  # the path is printed at the end


def test_checkpoints_are_self_describing_and_load_with_weights_only(write_config, tmp_path):
    result = fit(load_config(write_config(tiny_raw())), runs_dir=tmp_path, progress=False, final_table=False)
    for name in ("best.pt", "last.pt"):
        ckpt = torch.load(result.run_dir / "checkpoints" / name, weights_only=True)
        assert ckpt["format"] == "rnnlab-checkpoint-1" and ckpt["rnnlab_version"]
        assert ckpt["config"]["model"]["name"] == "lstm" and "model" in ckpt
    last = torch.load(result.run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert last["step"] == 20 and "optimizer" in last and "rng" in last


def test_evaluate_recomputes_the_test_metrics(cli, write_config, tmp_path):
    result = fit(load_config(write_config(tiny_raw())), runs_dir=tmp_path, progress=False, final_table=False)
    code, out = cli("evaluate", result.run_dir, "--split", "test")
    assert code == 0, out
    acc = result.summary["test"]["accuracy"]
    assert f"{100 * acc:.2f}%" in out


def test_runs_are_never_overwritten(write_config, tmp_path):
    cfg = load_config(write_config(tiny_raw(steps=2, eval_every=1)))
    dirs = {fit(cfg, runs_dir=tmp_path, progress=False, final_table=False).run_dir for _ in range(3)}
    assert len(dirs) == 3 and all(d.parent == tmp_path for d in dirs)


@pytest.mark.parametrize(
    "args, message",
    [
        (["model.hidden_size=-3"], "model.hidden_size = -3: Input should be greater than or equal to 1"),
        (["model.hidden=3"], "model.hidden: unknown key (did you mean 'hidden_size'?)"),
        (["train.lr=fast"], "train.lr = 'fast': Input should be a valid number"),
        (["model.name=lsmt"], "unknown model 'lsmt' (did you mean 'lstm'?)"),
        (["device=cuda"], "CUDA is not available"),
    ],
)
def test_user_mistakes_exit_2_with_a_message_and_no_traceback(cli, write_config, tmp_path, args, message):
    if message == "CUDA is not available" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, out = cli("train", write_config(tiny_raw()), "--runs-dir", tmp_path / "runs", *args)
    assert code == 2
    assert message in out
    assert "Traceback" not in out
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_missing_config_file_exits_2(cli, tmp_path):
    code, out = cli("train", tmp_path / "nope.yaml")
    assert code == 2 and "config file not found" in out


def test_config_command_prints_the_resolved_config(cli):
    code, out = cli("config", ROOT / "configs/long_dependency_lstm.yaml", "model.name=gru", "task.seq_len=100")
    assert code == 0, out
    cfg = yaml.safe_load(out)
    assert cfg["model"]["name"] == "gru" and cfg["task"]["seq_len"] == 100
    assert cfg["model"]["dropout"] == 0.0 and cfg["train"]["optimizer"] == "adam"  # defaults shown


def test_list_shows_tasks_and_models_with_defaults(cli):
    code, out = cli("list")
    assert code == 0
    for word in ("long_dependency", "seq_len = 50", "rnn", "lstm", "gru", "bilstm", "bigru", "hidden_size = 128"):
        assert word in out, word


def test_help_lists_every_command(cli):
    code, out = cli("--help")
    assert code == 0
    for command in ("train", "config", "list", "evaluate", "compare", "probe-gradients", "predict", "generate"):
        assert command in out


def test_python_dash_m_works():
    out = subprocess.run([sys.executable, "-m", "rnnlab", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("rnnlab ")


@pytest.mark.slow
def test_shipped_lstm_config_learns_the_long_dependency(tmp_path):
    result = fit(load_config(ROOT / "configs/long_dependency_lstm.yaml"), runs_dir=tmp_path, progress=False, final_table=False)
    assert result.summary["test"]["accuracy"] >= 0.99


@pytest.mark.slow
def test_shipped_rnn_config_stays_near_chance(tmp_path):
    result = fit(load_config(ROOT / "configs/long_dependency_rnn.yaml"), runs_dir=tmp_path, progress=False, final_table=False)
    assert result.summary["test"]["accuracy"] <= 0.2
