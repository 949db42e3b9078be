"""The memory benchmarks: long_dependency with distractors, the copying-memory task, the adding
problem. Their batches have the published layout, the baselines are what a memoryless model gets,
the three data streams never share an input, resuming is exact, and each trains end to end."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from test_resume_random import assert_identical, one_thread, train  # noqa: F401  (one_thread: a fixture)

from rnnlab.config import resolve_config
from rnnlab.engine import build_task
from rnnlab.errors import ConfigError
from rnnlab.tasks.adding import adding_batch
from rnnlab.tasks.copy_memory import copy_batch


def task_of(raw_task: dict, batch_size: int = 32, seed: int = 0):
    cfg = resolve_config({"task": raw_task, "model": {"name": "lstm"}, "seed": seed, "train": {"batch_size": batch_size, "steps": 10}})
    return build_task(cfg)


def rows(batches) -> set[tuple]:
    return {tuple(x.flatten().tolist()) for b in batches for x in b.inputs}


def train_rows(task, n_batches: int) -> set[tuple]:
    it = task.train_batches(0)
    return rows(next(it) for _ in range(n_batches))


# --- long_dependency with distractors --------------------------------------------------------------
def test_plain_recall_has_only_num_classes_distinct_inputs_so_test_repeats_training():
    task = task_of({"name": "long_dependency", "seq_len": 20, "num_classes": 10})
    assert len(train_rows(task, 20)) == 10
    assert rows(task.eval_batches("test")) <= train_rows(task, 20)


def test_distractors_fill_the_later_steps_with_symbols_of_their_own_set():
    task = task_of({"name": "long_dependency", "seq_len": 30, "num_classes": 10, "distractors": True, "num_distractors": 8})
    batch = next(task.train_batches(0))
    assert batch.inputs.shape == (32, 30)
    assert torch.equal(batch.inputs[:, 0], batch.targets + 1)  # the symbol to recall, ids 1..10
    later = batch.inputs[:, 1:]
    assert later.min() >= 11 and later.max() <= 18  # distractor ids follow the recall symbols
    assert len(set(later.flatten().tolist())) == 8
    assert task.model_spec().vocab_size == 19  # empty + 10 symbols + 8 distractors


def test_distractor_streams_share_no_input():
    task = task_of({"name": "long_dependency", "seq_len": 12, "num_classes": 5, "distractors": True, "val_size": 300, "test_size": 300})
    train, val, test = train_rows(task, 30), rows(task.eval_batches("val")), rows(task.eval_batches("test"))
    assert len(val) == 300 and len(test) == 300  # no input repeats within a split either
    assert not (train & val) and not (train & test) and not (val & test)


# --- copy -----------------------------------------------------------------------------------------
def test_copy_batch_layout_symbols_blanks_marker_then_recall():
    symbols = torch.tensor([[3, 1, 8, 2, 2, 5, 7, 4, 6, 1]])
    b = copy_batch(symbols, seq_len=7, num_symbols=8)
    x, y = b.inputs[0].tolist(), b.targets[0].tolist()
    assert len(x) == len(y) == 7 + 20
    assert x[:10] == symbols[0].tolist()
    assert x[10:16] == [0] * 6  # T - 1 blanks
    assert x[16] == 9  # the marker, once
    assert x[17:] == [0] * 10 and x.count(9) == 1
    assert y[:17] == [0] * 17 and y[17:] == symbols[0].tolist()  # blanks until the marker, then the symbols


def test_copy_task_batches_and_memoryless_baseline():
    task = task_of({"name": "copy", "seq_len": 100})
    batch = next(task.train_batches(0))
    assert batch.inputs.shape == batch.targets.shape == (32, 120)
    assert torch.equal(batch.targets[:, -10:], batch.inputs[:, :10])
    assert task.baseline[0] == pytest.approx(10 * math.log(8) / 120) and task.chance == 1 / 8
    # A memoryless model: certain of the blank before the marker, uniform over the 8 symbols after.
    logits = torch.full((32, 120, 9), -1e9)
    logits[:, :110, 0] = 0.0
    logits[:, 110:, 1:] = 0.0
    metrics = task.summarize({k: float(v) for k, v in task.batch_stats(logits, batch).items()})
    assert metrics["loss"] == pytest.approx(task.baseline[0], rel=1e-6)
    assert task.loss(logits, batch).item() == pytest.approx(task.baseline[0], rel=1e-6)
    # Accuracy counts the 10 recalled symbols only: answering them right is 100% whatever the blanks.
    perfect = torch.nn.functional.one_hot(batch.targets, 9).float() * 50
    perfect[:, :110] = 0.0
    assert task.summarize({k: float(v) for k, v in task.batch_stats(perfect, batch).items()})["accuracy"] == 1.0


def test_min_train_lag_draws_one_lag_per_training_batch_and_leaves_val_and_test_alone():
    plain = task_of({"name": "copy", "seq_len": 12, "val_size": 50, "test_size": 50})
    mixed = task_of({"name": "copy", "seq_len": 12, "min_train_lag": 3, "val_size": 50, "test_size": 50})
    lags = []
    for batch in (next(mixed.train_batches(0)) for _ in range(60)):
        lag = batch.inputs.size(1) - 20  # the batch is as long as its lag needs
        lags.append(lag)
        symbols = batch.inputs[:, :10]
        assert torch.equal(batch.inputs, copy_batch(symbols, lag, 8).inputs)  # the plain layout at that lag
        assert torch.equal(batch.targets, copy_batch(symbols, lag, 8).targets)
    assert set(lags) == set(range(3, 13))
    for split in ("val", "test"):
        assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(plain.eval_batches(split), mixed.eval_batches(split), strict=True))
        assert next(mixed.eval_batches(split)).inputs.size(1) == 32  # always T = 12


def test_min_train_lag_longer_than_the_lag_is_refused():
    with pytest.raises(ConfigError) as e:
        task_of({"name": "copy", "seq_len": 10, "min_train_lag": 11})
    assert "min_train_lag (11) must not exceed seq_len (10)" in str(e.value)


def test_copy_streams_share_no_input():
    task = task_of({"name": "copy", "seq_len": 5, "val_size": 200, "test_size": 200})
    train, val, test = train_rows(task, 30), rows(task.eval_batches("val")), rows(task.eval_batches("test"))
    assert not (train & val) and not (train & test) and not (val & test)


# --- adding ---------------------------------------------------------------------------------------
def test_adding_batch_has_two_markers_one_per_half_and_the_target_is_their_sum():
    b = adding_batch(500, 40, torch.Generator().manual_seed(0))
    assert b.inputs.shape == (500, 40, 2) and b.targets.shape == (500,)
    values, markers = b.inputs[..., 0], b.inputs[..., 1]
    assert values.min() >= 0 and values.max() <= 1
    assert torch.equal(markers.sum(1), torch.full((500,), 2.0))
    assert torch.equal(markers[:, :20].sum(1), torch.ones(500))  # one in each half
    assert torch.allclose((values * markers).sum(1), b.targets)


def test_adding_baselines_are_those_of_answering_one():
    task = task_of({"name": "adding", "seq_len": 50, "test_size": 20_000}, batch_size=1000)
    spec = task.model_spec()
    assert (spec.output, spec.num_outputs, spec.input_size) == ("regression", 1, 2)
    ones = {k: 0.0 for k in ("loss_sum", "correct", "count")}
    for b in task.eval_batches("test"):
        for k, v in task.batch_stats(torch.ones(len(b), 1), b).items():
            ones[k] += float(v)
    metrics = task.summarize(ones)
    assert task.baseline[0] == pytest.approx(1 / 6)
    assert metrics["loss"] == pytest.approx(1 / 6, abs=0.01)  # the variance of the sum of two U(0, 1)
    assert metrics["accuracy"] == pytest.approx(task.chance, abs=0.01) and task.chance == pytest.approx(0.0784)
    assert task.primary_metric == "loss"  # the best checkpoint is the lowest validation MSE


def test_adding_streams_share_no_input():
    task = task_of({"name": "adding", "seq_len": 8, "val_size": 100, "test_size": 100})
    train, val, test = train_rows(task, 10), rows(task.eval_batches("val")), rows(task.eval_batches("test"))
    assert not (train & val) and not (train & test) and not (val & test)


# --- end to end -----------------------------------------------------------------------------------
def raw(task: dict, model: str = "lstm", steps: int = 60, **train_kw) -> dict:
    return {
        "name": f"{task['name']}_{model}", "seed": 0, "device": "cpu", "task": {"val_size": 200, "test_size": 200, **task},
        "model": {"name": model, "hidden_size": 24, "init": "chrono"},
        "train": {"lr": 0.01, "batch_size": 32, "steps": steps, "eval_every": 10, "checkpoint_every": 7, **train_kw},
    }  # fmt: skip


MEMORY_TASKS = {
    "distractors": {"name": "long_dependency", "seq_len": 8, "num_classes": 4, "distractors": True},
    "copy": {"name": "copy", "seq_len": 4, "copy_len": 3, "num_symbols": 4},
    "copy_mixed_lags": {"name": "copy", "seq_len": 4, "copy_len": 3, "num_symbols": 4, "min_train_lag": 1},
    "adding": {"name": "adding", "seq_len": 8},
}


@pytest.mark.parametrize("name", MEMORY_TASKS)
def test_a_run_of_each_task_stopped_and_resumed_equals_one_never_stopped(name, tmp_path, one_thread):
    config = raw(MEMORY_TASKS[name], steps=40)
    ref, _ = train(config, tmp_path / "ref")
    run, completed = train(config, tmp_path / "runs", stop=17)  # between a checkpoint and an evaluation
    assert not completed
    run, completed = train(config, tmp_path / "runs", run)
    assert completed
    assert_identical(run, ref)


@pytest.mark.parametrize(
    ("name", "steps", "check"),
    [
        ("distractors", 300, lambda test, task: test["accuracy"] >= 0.95),
        ("copy", 600, lambda test, task: test["accuracy"] >= 0.8 and test["loss"] < task["baseline_loss"] / 3),
        ("adding", 400, lambda test, task: test["loss"] < task["baseline_loss"] / 4),
    ],
)
def test_a_small_lstm_learns_each_task_far_past_its_baseline(name, steps, check, cli, write_config, tmp_path):
    code, out = cli("train", write_config(raw(MEMORY_TASKS[name], steps=steps)), "--runs-dir", tmp_path / "r", "--no-progress")
    assert code == 0, out
    (run,) = (tmp_path / "r").iterdir()
    import json

    summary = json.loads((run / "summary.json").read_text())
    assert check(summary["test"], summary), summary["test"]
    label = {"distractors": "chance", "copy": "memoryless", "adding": "answering 1"}[name]
    assert label in out  # the baseline is printed beside the results
    assert (run / "plots" / "loss.png").is_file()


def test_compare_sweeps_lags_of_the_copy_task_and_draws_the_baseline(cli, tmp_path):
    code, out = cli("compare", "lstm", "rnn", "--task", "copy", "--seq-len", "3,6", "--steps", "20", "--hidden", "8",
                    "task.val_size=50", "task.test_size=50", "--runs-dir", tmp_path / "r", "--no-progress")  # fmt: skip
    assert code == 0, out
    (parent,) = (tmp_path / "r").iterdir()
    results = list(csv.DictReader((parent / "results.csv").open()))
    assert sorted((r["model"], r["seq_len"]) for r in results) == [("lstm", "3"), ("lstm", "6"), ("rnn", "3"), ("rnn", "6")]
    assert (parent / "plots" / "accuracy_vs_seq_len.png").is_file()
    assert "memoryless: 12.5% (loss 0.9041 at 3, 0.7998 at 6)" in (parent / "results.md").read_text().lower()  # 10 ln 8 / (T + 20)


# --- issue 27: the streams of different seeds never meet --------------------------------------------
# Settings under which two equal sequences by chance are out of the question (8^19 distractor
# strings, 8^20 copy strings, real-valued adding inputs): a shared sequence means shared streams.
RICH_STREAMS = {
    "long_dependency": {"name": "long_dependency", "seq_len": 20, "num_classes": 10, "distractors": True},
    "copy": {"name": "copy", "seq_len": 3, "copy_len": 20, "num_symbols": 8},
    "adding": {"name": "adding", "seq_len": 6},
}


def _splits(raw_task: dict, seed: int) -> dict[str, set[tuple]]:
    task = task_of({**raw_task, "val_size": 64, "test_size": 64}, batch_size=32, seed=seed)
    return {"train": train_rows(task, 4), "val": rows(task.eval_batches("val")), "test": rows(task.eval_batches("test"))}


@pytest.mark.parametrize("name", RICH_STREAMS)
def test_no_split_of_seeds_0_to_9_shares_a_sequence_with_another(name):
    # Seeds were seed, seed*7919+1, seed*7919+2: seed 1's first training batch was seed 0's
    # validation set, seed 2's its test set; now every (seed, split) is its own spawned stream.
    seen: dict[tuple, tuple[int, str]] = {}
    for seed in range(10):
        for split, sequences in _splits(RICH_STREAMS[name], seed).items():
            for seq in sequences:
                other = seen.setdefault(seq, (seed, split))
                assert other == (seed, split), f"seed {seed} {split} repeats a sequence of seed {other[0]} {other[1]}"
    assert len(seen) == 10 * (4 * 32 + 64 + 64)  # and no split repeats a sequence of its own


@pytest.mark.parametrize("name", RICH_STREAMS)
def test_the_same_seed_draws_the_same_streams(name):
    assert _splits(RICH_STREAMS[name], 3) == _splits(RICH_STREAMS[name], 3)


# --- issue 27: a bidirectional model reads the answer last ------------------------------------------
def test_a_bidirectional_model_on_long_dependency_is_warned_in_the_runs_first_lines(cli, write_config, tmp_path):
    config = {**raw({"name": "long_dependency", "seq_len": 6}, model="bilstm", steps=2), "name": "bi"}
    code, out = cli("train", write_config(config), "--runs-dir", tmp_path / "r", "--no-progress")
    assert code == 0, out
    head = " ".join(out[: out.index("val (best")].split())  # the header and its notes, before any result
    assert "warning: bilstm is bidirectional" in head and "one-directional model (lstm, gru, rnn, mingru, lru, ...)" in head
    (run,) = (tmp_path / "r").iterdir()
    import json

    assert "backward direction reads the symbol" in json.loads((run / "summary.json").read_text())["warning"]
    code, out = cli("train", write_config(raw({"name": "long_dependency", "seq_len": 6}, steps=2)), "--runs-dir", tmp_path / "r2", "--no-progress")
    assert code == 0 and "warning" not in out  # a one-directional model reads in order: no warning


def test_compare_warns_beside_a_bidirectional_model_on_an_answer_at_end_task(cli, tmp_path):
    code, out = cli("compare", "bilstm", "lstm", "--task", "adding", "--seq-len", "6", "--steps", "2", "--hidden", "8",
                    "task.val_size=20", "task.test_size=20", "--runs-dir", tmp_path, "--no-progress")  # fmt: skip
    assert code == 0, out
    flat = " ".join(out.split())
    assert flat.count("warning: bilstm is bidirectional") >= 1 and "warning: lstm" not in flat
    assert "half the lag" in flat
    (parent,) = tmp_path.iterdir()
    import json

    assert "warning: bilstm is bidirectional" in (parent / "results.md").read_text()  # kept beside the results
    assert list(json.loads((parent / "summary.json").read_text())["warnings"]) == ["bilstm"]


def test_the_copy_tasks_recall_steps_get_nothing_from_the_backward_direction():
    """Why `copy` gets no warning: its answers are read per step, and at the recall steps the
    backward direction has read only blanks (what follows them), whatever the data symbols were."""
    from rnnlab.engine import build_model

    task = task_of({"name": "copy", "seq_len": 5, "copy_len": 4})
    cfg = resolve_config({"task": {"name": "copy"}, "model": {"name": "bilstm", "hidden_size": 8}, "train": {"steps": 1}})
    model = build_model(cfg.model, task.model_spec(), torch.device("cpu"))
    a, b = next(task.eval_batches("val")).inputs[:2], next(task.eval_batches("test")).inputs[:2]
    assert not torch.equal(a[:, :4], b[:, :4])  # different data symbols
    with torch.no_grad():
        out_a, out_b = model.encode(model.embed(a)), model.encode(model.embed(b))
    recall = slice(-4, None)
    assert torch.equal(out_a[:, recall, 8:], out_b[:, recall, 8:])  # backward half: the same
    assert not torch.equal(out_a[:, recall, :8], out_b[:, recall, :8])  # forward half: memory
    assert task.backward_shortcut is None


# --- issue 27: LSTM and GRU get the same init rule on the memory tasks --------------------------------
@pytest.mark.parametrize("task", ["long_dependency", "copy", "adding"])
def test_compare_lstm_gru_gives_both_cells_chrono_init_set_to_the_lag(task):
    from rnnlab.commands.compare import plan_runs
    from rnnlab.engine import build_model

    runs = plan_runs(["lstm", "gru"], task=task, seq_lens=[1000])
    assert [r.cfg.model.init for r in runs] == ["chrono", "chrono"]
    for r in runs:
        spec = build_task(r.cfg).model_spec()
        net = build_model(r.cfg.model.model_copy(update={"hidden_size": 64}), spec, torch.device("cpu"))
        h = 64
        keep = net.layers[0][0].bias_ih_l0[h : 2 * h]  # LSTM forget gate, GRU update gate
        # log U(1, T - 1): spread up to log 999 = 6.9, not one fixed value such as 3
        assert keep.min() >= 0 and keep.max() > 5 and keep.std() > 0.5, (r.model, keep)
