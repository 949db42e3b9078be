"""`rnnlab probe-gradients` and its config section: exact norms, files, plots, refusals."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.commands.probe import probe_batch, probe_config, probe_gradients, probe_spec, probed_models
from rnnlab.config import config_to_dict, load_probe_config
from rnnlab.engine import build_model
from rnnlab.rundir import read_json
from rnnlab.runtime import seed_everything

from conftest import ROOT
from test_compare import assert_png

PROBE_YAML = ROOT / "configs" / "probe_gradients.yaml"


def read_gradients(run: Path) -> dict[str, list[dict[str, float]]]:
    out: dict[str, list[dict[str, float]]] = {}
    with (run / "gradients.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["model"], []).append({k: float(v) for k, v in row.items() if k != "model"})
    return out


def test_the_shipped_config_is_the_flags_defaults_and_validates(cli):
    assert config_to_dict(probe_config(PROBE_YAML)) == config_to_dict(probe_config(None))
    cfg = load_probe_config(PROBE_YAML)
    assert (cfg.probe.seq_len, cfg.probe.input_size, cfg.model.hidden_size) == (50, 10, 20)  # the chapter's sizes
    assert cfg.probe.models == ["rnn", "lstm", "gru"] and cfg.probe.trials == 20 and cfg.probe.after_steps == 0
    code, out = cli("config", PROBE_YAML)
    assert code == 0 and "probe:" in out and "trials: 20" in out
    code, out = cli("list")
    assert code == 0 and "probe_gradients" in out


def test_train_refuses_a_probe_config_and_points_to_probe_gradients(cli, tmp_path):
    code, out = cli("train", PROBE_YAML, "--runs-dir", tmp_path / "runs")
    assert code == 2, out
    assert "rnnlab probe-gradients --config" in " ".join(out.split()) and "Traceback" not in out
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_probed_models_take_their_shipped_gate_init_unless_told_otherwise():
    cfgs = probed_models(probe_config(None))
    got = {n: (c.init, c.forget_bias, c.hidden_size) for n, c in cfgs.items()}
    assert got == {"rnn": ("default", 1.0, 20), "lstm": ("chrono", 1.0, 20), "gru": ("chrono", 1.0, 20)}  # issue 27: GRU chrono too
    bilstm = probed_models(probe_config(None, ["probe.models=[bilstm]"]))["bilstm"]
    assert bilstm.bidirectional and bilstm.hidden_size == 20 and bilstm.init == "chrono"  # its own defaults stay
    cfgs = probed_models(probe_config(None, ["probe.init=default"]))
    assert {c.init for c in cfgs.values()} == {"default"}
    cfgs = probed_models(probe_config(None, ["model.forget_bias=2", "probe.init=forget_bias", "probe.models=[gru]"]))
    assert (cfgs["gru"].init, cfgs["gru"].forget_bias) == ("forget_bias", 2.0)


def chapter_grad_norms(cell: type[nn.RNNBase], seed: int, x: torch.Tensor, target: torch.Tensor, loss: str) -> torch.Tensor:
    """The chapter's code, written out with plain torch modules: norm of dL/dx_t per t."""
    torch.manual_seed(seed)
    rnn = cell(x.size(-1), 4, batch_first=True)
    head = nn.Linear(4, 3)  # 3 symbols; RecurrentNet creates its head right after the recurrent layer
    rnn, head = rnn.double(), head.double()
    x = x.double().clone().requires_grad_(True)
    output, _ = rnn(x)
    value = {"sum": output.sum(), "last": output[:, -1].sum(), "task": F.cross_entropy(head(output[:, -1]), target)}[loss]
    value.backward()
    return x.grad[0].norm(dim=-1)


@pytest.mark.parametrize("loss", ["sum", "task", "last"])
def test_per_step_norms_equal_a_direct_autograd_computation(tmp_path, loss):
    cfg = probe_config(None, ["probe.models=[rnn, lstm]", "probe.seq_len=7", "probe.input_size=3", "model.hidden_size=4",
                              "probe.trials=3", "probe.init=default", f"probe.loss={loss}", "seed=5"])  # fmt: skip
    result = probe_gradients(cfg, runs_dir=tmp_path, progress=False)
    for name, cell in (("rnn", nn.RNN), ("lstm", nn.LSTM)):
        assert result.norms[name].shape == (3, 7)
        seed_everything(0)
        model = build_model(probed_models(cfg)[name], probe_spec(cfg.probe), torch.device("cpu"))
        for trial in range(3):
            batch = probe_batch(cfg.probe, cfg.seed, trial)
            x = model.embed(batch.inputs)  # the recall task's token ids -> the network's one-hot features
            assert x.shape[:2] == (1, 7) and x.is_floating_point()
            expected = chapter_grad_norms(cell, 5 + trial, x, batch.targets, loss)
            torch.testing.assert_close(result.norms[name][trial], expected, rtol=1e-9, atol=0)
        rows = read_gradients(result.run_dir)[name]
        assert [int(r["t"]) for r in rows] == list(range(7))
        median = result.norms[name].median(dim=0).values  # 3 trials: the median is one of them
        torch.testing.assert_close(torch.tensor([r["grad_norm_median"] for r in rows], dtype=torch.float64), median, rtol=1e-6, atol=0)
        assert all(r["grad_norm_p10"] <= r["grad_norm_median"] <= r["grad_norm_p90"] for r in rows)


def test_probe_cli_writes_csv_plot_summary_and_table(cli, tmp_path):
    code, out = cli("probe-gradients", "--models", "rnn,gru", "--seq-len", "9", "--trials", "4", "--hidden", "5",
                    "--input-size", "3", "--runs-dir", tmp_path, "--no-progress")  # fmt: skip
    assert code == 0, out
    (run,) = tmp_path.iterdir()
    assert run.name.endswith("-probe_gradients")
    grads = read_gradients(run)
    assert set(grads) == {"rnn", "gru"} and all(len(rows) == 9 for rows in grads.values())
    with (run / "gradients.csv").open() as f:
        header = f.readline().strip().split(",")
    assert header[:5] == ["model", "t", "grad_norm_median", "grad_norm_p10", "grad_norm_p90"]
    assert_png(run / "plots" / "gradient_norms.png")
    summary = read_json(run / "summary.json")
    assert summary["seq_len"] == 9 and summary["trials"] == 4 and summary["loss"] == "task"
    gru = summary["models"]["gru"]
    assert gru["norm_t0"] == pytest.approx(grads["gru"][0]["grad_norm_median"], rel=1e-6)
    assert gru["norm_last"] == pytest.approx(grads["gru"][8]["grad_norm_median"], rel=1e-6)
    assert gru["ratio_first_last"] == pytest.approx(gru["norm_t0"] / gru["norm_last"])
    assert (run / "config.yaml").is_file()
    text = " ".join(out.split())
    assert "t = 0" in text and "t = 4" in text and "t = 8" in text and "ratio" in text and "chrono" in text


def test_the_chapter_result_vanilla_rnn_vanishes_orders_of_magnitude_more_than_lstm(tmp_path):
    cfg = probe_config(None, ["probe.trials=5"])
    summary = probe_gradients(cfg, runs_dir=tmp_path, progress=False).summary["models"]
    assert summary["rnn"]["ratio_first_last"] < 1e-6
    assert summary["lstm"]["ratio_first_last"] > 1e-3 and summary["gru"]["ratio_first_last"] > 1e-3
    # The chapter's own loss (sum of every output) includes the direct term at each t: no vanishing shows.
    sums = probe_gradients(probe_config(None, ["probe.trials=5", "probe.loss=sum"]), runs_dir=tmp_path, progress=False)
    assert sums.summary["models"]["rnn"]["ratio_first_last"] > 0.1


def test_after_steps_trains_through_fit_and_probes_the_last_weights(tmp_path):
    overrides = ["probe.models=[lstm]", "probe.seq_len=5", "probe.input_size=3", "model.hidden_size=4", "probe.trials=2",
                 "train.batch_size=8", "probe.after_steps=3"]  # fmt: skip
    cfg = probe_config(None, overrides)
    result = probe_gradients(cfg, runs_dir=tmp_path, progress=False)
    info = result.summary["models"]["lstm"]
    trained = Path(info["trained_run"])
    assert trained.parent == result.run_dir / "training"
    train_summary = read_json(trained / "summary.json")
    assert train_summary["task"] == "long_dependency" and train_summary["steps"] == 3
    # The probed network is the one in checkpoints/last.pt.
    from rnnlab.engine import load_run_model

    _, _, model, _ = load_run_model(trained, torch.device("cpu"), which="last")
    from rnnlab.commands.probe import step_grad_norms

    model = model.double()
    torch.testing.assert_close(result.norms["lstm"][1], step_grad_norms(model, cfg.probe, probe_batch(cfg.probe, cfg.seed, 1)))
    fresh = probe_gradients(probe_config(None, [*overrides[:-1], "probe.after_steps=0"]), runs_dir=tmp_path, progress=False)
    assert not torch.allclose(fresh.norms["lstm"][1], result.norms["lstm"][1])  # training changed the network


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "rnn,lstn"], "unknown model 'lstn' (did you mean 'lstm'?)"),
        (["--seq-len", "0"], "probe.seq_len = 0"),
        (["--trials", "0"], "probe.trials = 0"),
        (["--loss", "mean"], "probe.loss = 'mean'"),
        (["--init", "glorot"], "probe.init = 'glorot'"),
        (["--config", str(ROOT / "configs" / "long_dependency_lstm.yaml")], "not a gradient probe"),
        (["--config", "nope.yaml"], "config file not found"),
        (["probe.bogus=1"], "probe.bogus: unknown key"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(cli, tmp_path, args, message):
    code, out = cli("probe-gradients", *args, "--runs-dir", tmp_path)
    assert code == 2, out
    assert message in " ".join(out.split()), out
    assert "Traceback" not in out and not any(tmp_path.iterdir())
