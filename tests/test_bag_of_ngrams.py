"""`bow`, the bag-of-n-grams baseline: word pairs carry order, padding changes nothing, and it
trains through the same engine and commands as the recurrent models.

    python -m pytest tests/test_bag_of_ngrams.py
"""

from __future__ import annotations

import json

import pytest
import torch

from rnnlab.config import resolve_config
from rnnlab.contract import ModelSpec
from rnnlab.registry import MODELS

from conftest import ROOT, tiny_raw
from imdb_fixtures import separable_reviews, write_imdb_archive

SPEC = ModelSpec(num_outputs=2, vocab_size=10, max_len=8)


def _bow(**params) -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS.build(resolve_config({**tiny_raw(), "model": {"name": "bow", "embedding_dim": 8, **params}}).model, SPEC)


def _order_data() -> tuple[torch.Tensor, torch.Tensor]:
    """Label 0: word 2 comes right before word 3; label 1: right after. The same words either way."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(4, 10, (64, 6), generator=g)
    y = torch.arange(64) % 2
    at = torch.randint(0, 5, (64,), generator=g)
    for i in range(64):
        x[i, at[i]], x[i, at[i] + 1] = (2, 3) if y[i] == 0 else (3, 2)
    return x, y


def _fit(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(model(x, None), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (model(x, None).argmax(-1) == y).float().mean().item()


def test_word_pairs_see_order_that_single_words_cannot():
    x, y = _order_data()
    assert _fit(_bow(ngrams=2), x, y) == 1.0
    assert _fit(_bow(ngrams=1), x, y) <= 0.75  # the same bag of words for both labels


def test_padding_changes_nothing():
    model = _bow().eval()
    x = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[5, 6, 7, 0, 0, 0]])
    assert torch.allclose(model(x, torch.tensor([3])), model(padded, torch.tensor([3])), atol=1e-6)


def test_refuses_tasks_it_cannot_serve(cli, tmp_path, write_config):
    next_token = {"task": {"name": "next_token", "corpus": "synthetic"}, "model": {"name": "bow"}, "train": {"steps": 5}}
    code, out = cli("train", write_config(next_token), "--runs-dir", tmp_path / "r")
    assert code == 2 and "one output per text" in out and "Traceback" not in out
    code, out = cli("probe-gradients", "--models", "bow", "--runs-dir", tmp_path)
    assert code == 2 and "no recurrent state" in out


def test_trains_on_imdb_and_predicts(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RNNLAB_DATA_DIR", raising=False)
    archive = write_imdb_archive(tmp_path / "aclImdb_v1.tar.gz", reviews=separable_reviews())
    code, out = cli("train", ROOT / "configs/imdb_bow.yaml", "model.embedding_dim=16", "model.buckets=1000",
                    f"task.data_path={archive}", "task.val_size=10", "train.epochs=15", "train.eval_every=null",
                    "train.early_stopping=null", "train.lr=0.02", "train.batch_size=8", "device=cpu",
                    "--runs-dir", tmp_path / "runs", "--no-progress")  # fmt: skip
    assert code == 0, out
    (run,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["model"] == "bow" and summary["test"]["accuracy"] >= 0.9
    code, out = cli("predict", "--run", run, "--json", "good")
    assert code == 0, out
