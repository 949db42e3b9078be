"""Ensembles (`rnnlab evaluate RUN RUN ...`, `rnnlab predict --run A --run B`): the mean of the
members' class probabilities, lined up example by example, members reading with their own vocabularies.

    python -m pytest tests/test_ensemble.py
"""

from __future__ import annotations

import json

import pytest
import torch

from rnnlab.ensemble import load_members, scores, split_probabilities

from conftest import ROOT, tiny_raw
from imdb_fixtures import separable_reviews, write_imdb_archive


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A bi-LSTM and a bag of words on the same tiny archive, with different vocabularies."""
    from typer.testing import CliRunner

    from rnnlab.cli import app

    tmp = tmp_path_factory.mktemp("ensemble")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp / "cache"))  # never the user's cache
        mp.delenv("RNNLAB_DATA_DIR", raising=False)
        archive = write_imdb_archive(tmp / "aclImdb_v1.tar.gz", reviews=separable_reviews())
        common = [f"task.data_path={archive}", "task.val_size=10", "train.epochs=6", "train.eval_every=null",
                  "train.early_stopping=null", "train.lr=0.02", "train.batch_size=8", "device=cpu", "--no-progress"]
        runs = {}
        for name, config, extra in (("bilstm", "imdb_bilstm.yaml", ["model.embedding_dim=8", "model.hidden_size=8", "task.max_len=50", "task.vocab_size=30"]),
                                    ("bow", "imdb_bow.yaml", ["model.embedding_dim=8", "model.buckets=500"])):  # fmt: skip
            result = CliRunner().invoke(app, ["train", str(ROOT / "configs" / config), *extra, *common, "--runs-dir", str(tmp / name)])
            assert result.exit_code == 0, result.output
            (runs[name],) = (tmp / name).iterdir()
        yield runs


def test_members_line_up_by_example_and_the_ensemble_is_their_mean(two_runs, cli):
    dev = torch.device("cpu")
    members = load_members(list(two_runs.values()), dev)
    (pa, la, ea), (pb, lb, eb) = (split_probabilities(m, "test", dev) for m in members)
    assert torch.equal(ea, eb)
    assert torch.equal(la, lb) and len(la) == 20
    # Line-up check: each member's accuracy from the lined-up answers equals its own evaluation.
    for m, (p, labels) in zip(members, ((pa, la), (pb, lb))):
        summary = json.loads((m.run / "summary.json").read_text())
        assert scores(p, labels)["accuracy"] == pytest.approx(summary["test"]["accuracy"])
    code, out = cli("evaluate", *two_runs.values(), "--split", "test")
    assert code == 0, out
    expected = scores((pa + pb) / 2, la)
    assert f"{100 * expected['accuracy']:.2f}%" in out.split("ensemble")[-1]
    assert f"{expected['loss']:.4f}" in out.split("ensemble")[-1]


def test_runs_are_named_by_their_run_name_the_newest_finished_one(two_runs, cli):
    """`rnnlab evaluate runs/imdb_bilstm runs/imdb_bow`, typed before the runs exist (a pipeline of
    shipped configs), reads the newest finished run of each name; an unknown name is refused."""
    named = [run.parent / run.name.split("-", 2)[2] for run in two_runs.values()]  # <runs dir>/<name>
    code, by_name = cli("evaluate", *named, "--split", "test")
    code_dirs, by_dir = cli("evaluate", *two_runs.values(), "--split", "test")
    assert code == code_dirs == 0, by_name
    assert by_name.split("ensemble")[-1] == by_dir.split("ensemble")[-1]
    code, out = cli("evaluate", named[0].parent / "no_such_run")
    assert code == 2 and "no finished run named 'no_such_run'" in " ".join(out.split()), out


def test_predict_averages_the_members(two_runs, cli):
    text = "great wonderful film"
    code, out = cli("predict", "--run", two_runs["bilstm"], "--run", two_runs["bow"], "--json", text)
    assert code == 0, out
    (answer,) = json.loads(out)["predictions"]
    singles = []
    for run in two_runs.values():
        code, one = cli("predict", "--run", run, "--json", text)
        singles.append(json.loads(one)["predictions"][0]["probabilities"])
    for label in ("positive", "negative"):
        assert answer["probabilities"][label] == pytest.approx((singles[0][label] + singles[1][label]) / 2, abs=2e-4)
    assert [m["run"] for m in answer["members"]] == [str(r) for r in two_runs.values()]


def test_runs_of_different_tasks_are_refused(two_runs, cli, tmp_path):
    from rnnlab.config import resolve_config
    from rnnlab.engine import fit

    other = fit(resolve_config(tiny_raw()), runs_dir=tmp_path, progress=False, final_table=False).run_dir
    code, out = cli("evaluate", two_runs["bow"], other)
    assert code == 2 and "must share the task" in out and "Traceback" not in out
    code, out = cli("evaluate", two_runs["bow"], tmp_path / "missing")
    assert code == 2 and "not found" in out


def test_runs_that_validate_on_other_reviews_are_refused_whatever_their_labels(two_runs, cli, tmp_path, monkeypatch):
    """Two runs that differ only in `seed` carve other validation reviews out of train, but the
    reviews are stored by label, so their validation labels agree position by position: only the
    reviews' identities tell. Their validation answers cannot be averaged; on the official test
    reviews (the same for every seed) they can."""
    from typer.testing import CliRunner

    from rnnlab.cli import app

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # never the user's cache
    monkeypatch.delenv("RNNLAB_DATA_DIR", raising=False)
    first = two_runs["bilstm"]
    cfg = first / "config.yaml"
    result = CliRunner().invoke(app, ["train", str(cfg), "seed=1", "--runs-dir", str(tmp_path / "runs"), "--no-progress"])
    assert result.exit_code == 0, result.output
    (other,) = (tmp_path / "runs").iterdir()
    code, out = cli("evaluate", first, other, "--split", "val")
    text = " ".join(out.split())
    assert code == 2 and "Traceback" not in out, out
    assert "were scored on different val examples" in text and "seed 0 vs 1" in text, out
    assert "ensemble runs with the same seed, task.val_size and task.data_path, or use --split test" in text, out
    code, out = cli("evaluate", first, other, "--split", "test")
    assert code == 0 and "ensemble (mean probability)" in out, out
    dev = torch.device("cpu")
    a, b = (split_probabilities(m, "val", dev) for m in load_members([first, other], dev))
    assert torch.equal(a.labels, b.labels) and not torch.equal(a.examples, b.examples)  # what fooled the label check
