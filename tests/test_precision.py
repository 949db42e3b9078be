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
def test_bf16_trains_and_its_checkpoint_is_fp32(cli, tmp_path, write_config):
    raw = tiny_raw(steps=60, eval_every=20, lr=0.05)
    code, out = cli("train", write_config(raw), "train.precision=bf16", "--runs-dir", tmp_path / "runs", "--no-progress")
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


@pytest.mark.skipif(not NATIVE, reason="this CPU has no native bf16: auto is fp32 without measuring")
def test_auto_measures_and_keeps_fp32_where_bf16_does_not_pay(cli, tmp_path, write_config, monkeypatch):
    """A tiny model: autocast's casts cost more than bf16 saves, so auto keeps fp32 without timing
    it (a timing that short is noise), says so in the header, and writes nothing to the cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code, out = cli("train", write_config(tiny_raw(steps=4, eval_every=2)), "train.precision=auto", "--runs-dir", tmp_path / "runs", "--no-progress")
    assert code == 0, out
    assert "fp32 (auto: fp32 for a small model" in " ".join(out.split())
    assert json.loads((_only_run(tmp_path / "runs") / "summary.json").read_text())["precision"] == "fp32"
    assert not (tmp_path / "cache").exists()


def test_the_measurement_leaves_the_model_and_random_streams_alone_and_is_cached(tmp_path, monkeypatch):
    """bf16_pays times a copy: the model's weights, gradients and the random state are as before;
    a measurement that took long is remembered per model size under $XDG_CACHE_HOME/rnnlab/."""
    from rnnlab import calibration
    from rnnlab.contract import ModelSpec
    from rnnlab.models.recurrent import RecurrentConfig, RecurrentNet

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(calibration, "CACHE_FROM_S", 0.0)  # remember even this quick measurement
    monkeypatch.setattr(calibration, "SMALL_WORK", 0)  # and time even this tiny model
    spec = ModelSpec(num_outputs=3, vocab_size=7, max_len=6)
    model = RecurrentNet(RecurrentConfig(name="lstm", hidden_size=8, dropout=0.2, input="embedding", embedding_dim=4), spec, "lstm")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.random.get_rng_state()
    pays, why = calibration.bf16_pays(model, spec, batch_size=4, threads=1, rounds=1)
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert "measured now" in why and isinstance(pays, bool)
    assert calibration.cache_path() == tmp_path / "cache" / "rnnlab" / "precision.json"
    assert len(json.loads(calibration.cache_path().read_text())) == 1
    assert calibration.bf16_pays(model, spec, batch_size=4, threads=1) == (pays, why.replace("measured now", "measured before on this machine"))
    # another size is another entry
    calibration.bf16_pays(model, spec, batch_size=8, threads=1, rounds=1)
    assert len(json.loads(calibration.cache_path().read_text())) == 2


def test_a_run_under_auto_is_evaluated_in_the_precision_it_measured(tmp_path):
    """precision auto times bf16 against fp32 at the start and trains in the faster; evaluate,
    predict and inspect must answer in that precision, not in bf16 because this CPU has it. The
    measurement itself varies with the machine's load, so the test sets what it found."""
    import json

    from typer.testing import CliRunner

    from rnnlab.cli import app
    from rnnlab.engine import load_run_model

    code = CliRunner().invoke(app, ["train", "long_dependency_lstm", "task.seq_len=6", "model.hidden_size=8", "train.steps=10",
                                    "train.eval_every=5", "train.precision=auto", "--runs-dir", str(tmp_path), "--no-progress"],
                              catch_exceptions=False).exit_code  # fmt: skip
    assert code == 0
    run = next(tmp_path.glob("*-long_dependency_lstm"))
    summary = json.loads((run / "summary.json").read_text())
    for measured in ("fp32", "bf16"):
        (run / "summary.json").write_text(json.dumps({**summary, "precision": measured}))
        cfg, _, _, _ = load_run_model(run, torch.device("cpu"))
        assert cfg.train.precision == measured
