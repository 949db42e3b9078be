"""`rnnlab compare`: plans, result files, plots and refusals, with tiny settings in tmp_path."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib.image
import pytest
import torch

from rnnlab.commands.compare import RESULT_COLUMNS, parse_seq_lens, plan_runs, steps_to
from rnnlab.config import shipped_config_for
from rnnlab.engine import build
from rnnlab.errors import UserError

from conftest import ROOT

# Tiny runs: a few steps of hidden-4 networks on short sequences, small evaluation sets.
TINY = ["--steps", "4", "--hidden", "4", "task.val_size=16", "task.test_size=16", "train.eval_every=2", "--no-progress"]


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_compare_writes_one_row_per_model_seq_len_seed_and_both_plots(cli, tmp_path):
    code, out = cli("compare", "lstm", "rnn", "--seq-len", "3,5", "--seeds", "2", *TINY, "--runs-dir", tmp_path)
    assert code == 0, out
    (parent,) = tmp_path.iterdir()
    assert parent.name.endswith("-compare-lstm-rnn")
    rows = read_csv(parent / "results.csv")
    assert list(rows[0]) == RESULT_COLUMNS
    assert sorted((r["model"], int(r["seq_len"]), int(r["seed"])) for r in rows) == sorted(
        (m, n, s) for m in ("lstm", "rnn") for n in (3, 5) for s in (0, 1)
    )
    for r in rows:
        run = Path(r["run_dir"])
        assert run.parent == parent and (run / "summary.json").is_file() and (run / "checkpoints" / "best.pt").is_file()
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["steps"] == int(r["steps"]) == 4
        assert float(r["test_accuracy"]) == pytest.approx(summary["test"]["accuracy"])
        assert int(r["params"]) == summary["params"]
        assert 0 <= float(r["test_loss"]) and float(r["wall_time_s"]) > 0 and float(r["steps_per_s"]) > 0
    assert_png(parent / "plots" / "curves.png")
    assert_png(parent / "plots" / "accuracy_vs_seq_len.png")
    md = (parent / "results.md").read_text()
    assert "| lstm | 3 |" in md and "| rnn | 5 |" in md and "plots/accuracy_vs_seq_len.png" in md
    agg = json.loads((parent / "summary.json").read_text())["aggregate"]
    assert len(agg) == 4 and all(a["runs"] == 2 for a in agg)
    assert "run 8/8: rnn seq_len 5 seed 1" in out
    text = " ".join(out.split())
    assert "test acc." in text and "to 99%" in text and "mean ± std over 2 seeds" in text


def test_a_single_length_writes_curves_only(cli, tmp_path):
    code, out = cli("compare", "gru", "--seq-len", "4", *TINY, "--runs-dir", tmp_path)
    assert code == 0, out
    (parent,) = tmp_path.iterdir()
    assert len(read_csv(parent / "results.csv")) == 1
    assert_png(parent / "plots" / "curves.png")
    assert not (parent / "plots" / "accuracy_vs_seq_len.png").exists()


def test_models_start_from_their_shipped_configs_and_options_apply_to_all():
    runs = plan_runs(["lstm", "gru", "rnn", "bigru"], seq_lens=[100], seeds=2, steps=7)
    assert len(runs) == 8
    by = {(r.model, r.seed): r.cfg for r in runs}
    assert by["lstm", 0].model.init == "chrono" and by["lstm", 0].train.lr == 0.01
    assert by["gru", 0].model.init == "chrono"  # the LSTM's init rule: the cells compare, not their inits
    assert by["rnn", 0].train.lr == 0.001
    assert by["bigru", 0].model.bidirectional  # no shipped config: the LSTM's, with bigru swapped in
    assert by["bigru", 0].model.init == "chrono" and by["bigru", 0].model.hidden_size == 32
    assert all(c.task.seq_len == 100 and c.train.steps == 7 for c in by.values())
    assert {c.seed for (m, s), c in by.items() if s == 1} == {1}
    assert len({c.run_name for c in by.values()}) == 8
    # --init overrides every model's init; the other gate settings stay.
    runs = plan_runs(["lstm", "gru"], init="default", hidden=5, overrides=["train.lr=0.003"])
    assert [(r.cfg.model.init, r.cfg.model.hidden_size, r.cfg.train.lr) for r in runs] == [("default", 5, 0.003)] * 2
    assert runs[1].cfg.model.chrono_max is None  # the other gate settings stay as shipped


def test_a_base_config_applies_to_every_model():
    runs = plan_runs(["lstm", "gru"], config=ROOT / "configs" / "long_dependency_rnn.yaml")
    assert [r.cfg.model.name for r in runs] == ["lstm", "gru"]
    assert all(r.cfg.train.lr == 0.001 and r.cfg.model.init == "default" for r in runs)
    cfg, source = shipped_config_for("long_dependency", "lstm")
    assert source == "configs/long_dependency_lstm.yaml" and cfg.model.init == "chrono"
    assert len({r.cfg.run_name for r in runs}) == 2  # each run gets its own name


@pytest.mark.skipif(not (ROOT / "configs" / "imdb_lstm.yaml").exists(), reason="no shipped IMDb config")
def test_task_picks_the_shipped_config_of_that_task():
    (run,) = plan_runs(["lstm"], task="imdb")
    assert run.source == "configs/imdb_lstm.yaml" and run.cfg.task.name == "imdb"


def test_every_model_sees_the_same_data_for_a_seed():
    runs = plan_runs(["lstm", "rnn"], seq_lens=[7], seeds=2)
    batches = {}
    for r in runs:
        task, _ = build(r.cfg, torch.device("cpu"))
        it = task.train_batches(0)
        train = [next(it).inputs for _ in range(3)]
        test = [b.inputs for b in task.eval_batches("test")]
        batches[r.model, r.seed] = (train, test)
    for seed in (0, 1):
        (a_train, a_test), (b_train, b_test) = batches["lstm", seed], batches["rnn", seed]
        assert all(torch.equal(x, y) for x, y in zip(a_train + a_test, b_train + b_test))
    assert not torch.equal(batches["lstm", 0][0][0], batches["lstm", 1][0][0])


def test_steps_to_is_the_first_validation_reaching_the_threshold():
    history = [
        {"split": "train", "step": 10, "accuracy": 1.0},
        {"split": "val", "step": 10, "accuracy": 0.5},
        {"split": "val", "step": 20, "accuracy": 0.95},
        {"split": "val", "step": 30, "accuracy": 0.991},
        {"split": "test", "step": 30, "accuracy": 1.0},
    ]
    assert (steps_to(history, 0.9), steps_to(history, 0.99), steps_to(history[:3], 0.99)) == (20, 30, None)


def test_parse_seq_lens():
    assert parse_seq_lens("10, 50,100,50") == [10, 50, 100]
    assert parse_seq_lens(None) is None
    for bad in ("0", "-5", "ten", "10,,20", "1.5"):
        with pytest.raises(UserError, match="--seq-len"):
            parse_seq_lens(bad)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lstn", "gru"], "unknown model 'lstn' (did you mean 'lstm'?)"),
        (["lstm", "--seq-len", "0"], "--seq-len '0': each length must be a whole number >= 1"),
        (["lstm", "--seq-len", "10,x"], "--seq-len '10,x'"),
        (["lstm", "--seeds", "0"], "--seeds 0: must be at least 1"),
        (["lstm", "--steps", "0"], "--steps 0: must be at least 1"),
        (["lstm", "--init", "glorot"], "--init 'glorot': use one of default, forget_bias, chrono"),
        (["lstm", "lstm"], "named twice"),
        (["lstm", "seed=3"], "use --seeds"),
        (["lstm", "train.lr=-1"], "train.lr = -1: Input should be greater than 0"),
        (["lstm", "--task", "nope"], "unknown task 'nope'"),
        (["lstm", "--config", "missing.yaml"], "config file not found: missing.yaml"),
        (["train.lr=0.1"], "name at least one model"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(cli, tmp_path, args, message):
    code, out = cli("compare", *args, "--runs-dir", tmp_path)
    assert code == 2, out
    assert message in " ".join(out.split()), out
    assert "Traceback" not in out
    assert not any(tmp_path.iterdir()), "nothing may be written before the arguments are checked"


@pytest.mark.slow
def test_the_chapter_result_at_seq_len_100_lstm_and_gru_learn_rnn_stays_at_chance(cli, tmp_path):
    # The README's experiment, shortened: LSTM and GRU reach 99% within ~300 steps here.
    code, out = cli("compare", "lstm", "gru", "rnn", "--seq-len", "100", "--steps", "600", "--no-progress", "--runs-dir", tmp_path)
    assert code == 0, out
    (parent,) = tmp_path.iterdir()
    acc = {r["model"]: float(r["test_accuracy"]) for r in read_csv(parent / "results.csv")}
    assert acc["lstm"] >= 0.99 and acc["gru"] >= 0.99 and acc["rnn"] <= 0.2, acc


@pytest.mark.slow
def test_an_interrupted_compare_says_which_runs_finished_and_which_were_cut_short(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    args = ["compare", "lstm", "gru", "--seq-len", "4", "--hidden", "4", "task.val_size=16", "task.test_size=16",
            "train.eval_every=10", "train.early_stopping=null", "--no-progress", "--runs-dir", str(tmp_path)]
    # The first run is short, the second long; Ctrl-C once the second has logged a row.
    proc = subprocess.Popen([sys.executable, "-m", "rnnlab", *args, "--steps", "20000"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and len([p for p in tmp_path.glob("*/*/metrics.jsonl") if p.stat().st_size]) < 1:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    text = " ".join(err.split())
    assert "compare interrupted: 0 of 2 runs finished, 1 cut short" in text
    (parent,) = tmp_path.iterdir()
    rows = read_csv(parent / "results.csv")
    assert [(r["model"], r["status"]) for r in rows] == [("lstm", "interrupted")]
    assert json.loads((parent / "summary.json").read_text())["status"] == "interrupted"


@pytest.mark.slow
def test_a_second_sigterm_does_not_lose_what_the_first_is_saving(tmp_path):
    """Issue 27, item 14: `compare --jobs 2` gets SIGTERM twice, 50 ms apart, as a scheduler that
    repeats itself sends it. The first passes the signal on to both jobs, which finish their step and
    save; the second must not cut that short. On 2d118bf it raised KeyboardInterrupt while the jobs
    saved: exit 130, no results.csv and no summary.json."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    args = ["compare", "lstm", "gru", "--jobs", "2", "--seq-len", "4", "--hidden", "4", "--steps", "100000",
            "task.val_size=16", "task.test_size=16", "train.eval_every=10", "train.early_stopping=null",
            "--no-progress", "--runs-dir", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "rnnlab", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=tmp_path)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and len([p for p in tmp_path.glob("*/*/metrics.jsonl") if p.stat().st_size]) < 2:
        time.sleep(0.1)  # both jobs are training
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, out + err
    assert "Traceback" not in err
    assert "compare interrupted: 0 of 2 runs finished, 2 cut short" in " ".join(err.split())
    (parent,) = tmp_path.iterdir()
    rows = read_csv(parent / "results.csv")
    assert sorted((r["model"], r["status"]) for r in rows) == [("gru", "interrupted"), ("lstm", "interrupted")]
    assert (parent / "results.md").is_file()
    assert json.loads((parent / "summary.json").read_text())["status"] == "interrupted"
    for run in [p for p in parent.iterdir() if (p / "config.yaml").is_file()]:  # each job saved its step, resumable
        assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
        assert (run / "checkpoints" / "last.pt").is_file() and not (run / ".lock").exists()
