"""IMDb end to end on a tiny archive of the official layout: train, evaluate, predict."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from imdb_fixtures import separable_reviews, write_imdb_archive

from conftest import ROOT


@pytest.fixture
def tiny_imdb(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # never the user's cache
    monkeypatch.delenv("RNNLAB_DATA_DIR", raising=False)
    return write_imdb_archive(tmp_path / "aclImdb_v1.tar.gz", reviews=separable_reviews())


def imdb_args(archive, *extra) -> list[str]:
    return [
        str(ROOT / "configs/imdb_bilstm.yaml"),
        f"task.data_path={archive}",
        "task.val_size=10",
        "task.max_len=50",
        "task.eval_batch_size=16",
        "model.embedding_dim=8",
        "model.hidden_size=8",
        "model.dropout=0.0",
        "train.batch_size=8",
        "train.epochs=8",
        "train.eval_every=null",
        "train.early_stopping=null",
        "train.lr=0.02",
        "train.scheduler=none",
        "device=cpu",
        *extra,
    ]


@pytest.fixture
def trained(tiny_imdb, tmp_path, cli):
    code, out = cli("train", *imdb_args(tiny_imdb), "--runs-dir", tmp_path / "runs", "--no-progress")
    assert code == 0, out
    (run,) = (tmp_path / "runs").iterdir()
    return run


def test_train_writes_confusion_matrix_and_vocabulary(trained):
    import torch

    summary = json.loads((trained / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["task"] == "imdb"
    confusion = summary["test"]["confusion"]
    assert sum(map(sum, confusion)) == 20  # every test review scored once
    assert summary["test"]["accuracy"] >= 0.9
    assert summary["test"]["labels"] == ["negative", "positive"]
    vocab = torch.load(trained / "checkpoints/best.pt", weights_only=True)["task_state"]["vocab"]
    assert vocab[:2] == ["<pad>", "<unk>"] and "great" in vocab


def test_evaluate_prints_metrics_and_confusion(trained, cli):
    code, out = cli("evaluate", trained, "--split", "test")
    assert code == 0, out
    assert "accuracy" in out and "confusion matrix" in out and "negative" in out


def test_evaluate_reads_validation_unless_test_is_asked_for(trained, cli):
    """Choosing happens on validation, so that is what `rnnlab evaluate RUN` reads; the test
    reviews (20 here, against 10 validation ones) only with --split test."""
    import io

    from rich.console import Console

    from rnnlab.commands.evaluate import evaluate

    quiet = Console(file=io.StringIO())
    code, out = cli("evaluate", trained)
    assert code == 0, out
    assert f"{trained.name}·val" in "".join(out.split()), out  # the table's title, wrapped or not
    assert sum(map(sum, evaluate([trained], console=quiet)["confusion"])) == 10
    assert sum(map(sum, evaluate([trained], split="test", console=quiet)["confusion"])) == 20
    code, out = cli("evaluate", "--help")
    assert "Choose on val; test is the explicit choice" in " ".join(out.split()) and "default: val" in out


def test_predict_answers_with_labels_and_confidences(trained, cli):
    code, out = cli("predict", "a great film, loved it", "a bad film, hated it", "--run", trained, "--json")
    assert code == 0, out
    preds = json.loads(out)["predictions"]
    assert [p["label"] for p in preds] == ["positive", "negative"]
    # The confidence is the model's softmax for the label, recomputed here from best.pt's weights
    # and vocabulary, with the words looked up by hand; and the model is sure of these two texts.
    for p, want in zip(preds, _probabilities(trained, ["a great film, loved it", "a bad film, hated it"])):
        assert abs(p["confidence"] - max(want)) < 1e-4 and p["confidence"] > 0.9, (p, want)
        assert [p["probabilities"][name] for name in ("negative", "positive")] == pytest.approx(want, abs=1e-4)
    code, out = cli("predict", "great film", "--run", trained)
    assert code == 0 and "positive" in out and "%" in out


def _probabilities(run, texts: list[str]) -> list[list[float]]:
    """[P(negative), P(positive)] per text: tokens -> ids through the run's own vocabulary
    (unknown words -> <unk>), one forward pass each, softmax."""
    import torch

    from rnnlab.data.text import tokenize
    from rnnlab.engine import load_run_model

    _, _, model, ckpt = load_run_model(run, torch.device("cpu"))
    index = {word: i for i, word in enumerate(ckpt["task_state"]["vocab"])}
    out = []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([[index.get(word, index["<unk>"]) for word in tokenize(text)]])
            out.append(model(ids, torch.tensor([ids.size(1)])).double().softmax(-1)[0].tolist())
    return out


def test_predict_finds_the_newest_imdb_run(trained, cli, monkeypatch):
    monkeypatch.chdir(trained.parent.parent)  # runs/ is here
    code, out = cli("predict", "great film", "--json")
    assert code == 0, out
    assert json.loads(out)["run"].endswith(trained.name)


@pytest.mark.parametrize(
    "args, message",
    [
        ([""], "text 1 is empty"),
        (["   "], "text 1 is empty"),
        ([], "no text given"),
    ],
)
def test_predict_explains_bad_input(trained, cli, args, message):
    code, out = cli("predict", *args, "--run", trained)
    assert code == 2 and message in out and "Traceback" not in out


def test_predict_handles_huge_and_unknown_text(trained, cli):
    code, out = cli("predict", "zzqx " * 200_000, "--run", trained, "--json")  # 1 MB
    assert code == 0, out[:500]
    code, out = cli("predict", "qwertyuiop asdfghjkl", "--run", trained, "--json")
    assert code == 0 and json.loads(out)["predictions"][0]["known_tokens"] == 0
    code, out = cli("predict", "qwertyuiop", "--run", trained)
    assert code == 0 and "no known words" in out


def test_predict_reads_stdin_and_refuses_invalid_utf8(trained):
    ok = subprocess.run([sys.executable, "-m", "rnnlab", "predict", "--run", str(trained), "--file", "-", "--json"],
                        input=b"great film\n\nbad film\n", capture_output=True)
    assert ok.returncode == 0, ok.stderr
    assert len(json.loads(ok.stdout)["predictions"]) == 2
    bad = subprocess.run([sys.executable, "-m", "rnnlab", "predict", "--run", str(trained), "--file", "-"],
                         input=b"great \xff\xfe film\n", capture_output=True)
    assert bad.returncode == 2 and b"not valid UTF-8" in bad.stderr and b"Traceback" not in bad.stderr


def test_predict_without_an_imdb_run_says_how_to_make_one(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = cli("predict", "great movie")
    assert code == 2
    assert "no trained imdb model found" in out and "rnnlab train configs/imdb_bilstm.yaml" in out


def test_predict_on_a_run_that_cannot_classify_text(cli, tmp_path, write_config):
    from conftest import tiny_raw

    code, _ = cli("train", write_config(tiny_raw()), "--runs-dir", tmp_path / "runs")
    (run,) = (tmp_path / "runs").iterdir()
    code, out = cli("predict", "great movie", "--run", run)
    assert code == 2 and "does not classify text" in out


def test_corrupt_archive_exits_2_with_a_message(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    archive = write_imdb_archive(tmp_path / "aclImdb_v1.tar.gz")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    code, out = cli("train", *imdb_args(archive), "--runs-dir", tmp_path / "runs")
    assert code == 2 and "Traceback" not in out
    assert "aclImdb_v1.tar.gz" in out


def test_predict_finds_the_newest_classifier_inside_a_comparison_and_skips_damaged_runs(trained, tmp_path, cli):
    import shutil

    lab = tmp_path / "lab"
    shutil.copytree(trained, lab / "20990101-000000-compare-bilstm-gru" / trained.name)
    for name, summary in (("20991231-000000-imdb_a", "{not json"), ("20991231-000001-imdb_b", "[]")):
        damaged = lab / name
        (damaged / "checkpoints").mkdir(parents=True)
        (damaged / "summary.json").write_text(summary)
        (damaged / "config.yaml").write_text("task: [not, a, mapping")
        (damaged / "checkpoints" / "best.pt").write_bytes(b"not a checkpoint")
    code, out = cli("predict", "--runs-dir", lab, "--json", "great")
    assert code == 0, out
    answer = json.loads(out)
    assert answer["run"] == str(lab / "20990101-000000-compare-bilstm-gru" / trained.name)
    assert answer["predictions"][0]["label"] == "positive"
