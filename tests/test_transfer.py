"""Starting from other weights: `model.init_from` (a language model's layers into a classifier,
matched by word, name and shape) and `model.pretrained_embeddings` (GloVe-format vectors).

    python -m pytest tests/test_transfer.py
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnlab.checkpoint import load_checkpoint
from rnnlab.data.text import Vocab

from conftest import ROOT
from imdb_fixtures import FILLER, WORDS, separable_reviews, write_imdb_archive


@pytest.fixture
def archive(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RNNLAB_DATA_DIR", raising=False)
    return write_imdb_archive(tmp_path / "aclImdb_v1.tar.gz", reviews=separable_reviews())


def _classifier(archive, *extra):
    return [str(ROOT / "configs/imdb_bilstm.yaml"), f"task.data_path={archive}", "task.val_size=10", "task.max_len=50",
            "model.embedding_dim=8", "model.hidden_size=8", "train.epochs=2", "train.eval_every=null", "train.batch_size=8",
            "train.early_stopping=null", "device=cpu", "--no-progress", *extra]  # fmt: skip


@pytest.fixture
def language_model(tmp_path, cli, write_config):
    text = tmp_path / "text.txt"
    rng = np.random.default_rng(0)
    text.write_text(" ".join(rng.choice(FILLER + WORDS["pos"] + WORDS["neg"] + ["unheard"], 3000)))
    raw = {"name": "lm", "seed": 0, "device": "cpu",
           "task": {"name": "next_token", "corpus": "text_file", "text_file": str(text), "seq_len": 16},
           "model": {"name": "lstm", "input": "embedding", "embedding_dim": 8, "hidden_size": 8},
           "train": {"lr": 0.01, "batch_size": 16, "steps": 20}}  # fmt: skip
    code, out = cli("train", write_config(raw, "lm.yaml"), "--runs-dir", tmp_path / "lm", "--no-progress")
    assert code == 0, out
    (run,) = (tmp_path / "lm").iterdir()
    return run


def test_init_from_a_language_model_copies_rows_by_word_and_the_forward_direction(archive, language_model, cli, tmp_path):
    code, out = cli("train", *_classifier(archive, f"model.init_from={language_model}", "train.lr=1e-9", "train.optimizer=sgd"),
                    "--runs-dir", tmp_path / "clf")  # fmt: skip
    assert code == 0, out
    assert f"initialised from {language_model}" in " ".join(out.split()) and "fresh: layers.0.1" in out
    (run,) = (tmp_path / "clf").iterdir()
    lm, clf = load_checkpoint(language_model / "checkpoints/best.pt"), load_checkpoint(run / "checkpoints/best.pt")
    lm_vocab, clf_vocab = Vocab.from_state(lm["task_state"]["vocab"]), Vocab.from_state(clf["task_state"]["vocab"])
    assert lm_vocab != clf_vocab  # the rows must be matched by word, not by id
    shared = [w for w in clf_vocab.itos[2:] if w in lm_vocab.itos]
    assert len(shared) >= 10
    for word in shared:  # lr 1e-9: what training changed is far below the tolerance
        a = clf["model"]["embedding.weight"][clf_vocab.encode([word])[0]]
        b = lm["model"]["embedding.weight"][lm_vocab.encode([word])[0]]
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        torch.testing.assert_close(clf["model"][f"layers.0.0.{name}"], lm["model"][f"layers.0.0.{name}"], atol=1e-6, rtol=0)
        assert not torch.allclose(clf["model"][f"layers.0.1.{name}"], lm["model"][f"layers.0.0.{name}"])
    assert json.loads((run / "summary.json").read_text())["start_weights"]


def test_init_from_refuses_every_mismatch_at_once(archive, language_model, cli, tmp_path):
    code, out = cli("train", *_classifier(archive, f"model.init_from={language_model}", "model.hidden_size=16", "model.embedding_dim=4"),
                    "--runs-dir", tmp_path / "clf")  # fmt: skip
    text = " ".join(out.split())
    assert code == 2 and "Traceback" not in out
    assert "embedding.weight: 8 dimensions there, 4 here" in text and "layers.0.0.weight_hh_l0: shape (32, 8) there, (64, 16) here" in text
    code, out = cli("train", *_classifier(archive, f"model.init_from={tmp_path}"), "--runs-dir", tmp_path / "clf")
    assert code == 2 and "no checkpoints/best.pt" in out
    code, out = cli("train", *_classifier(archive, f"model.init_from={tmp_path / 'lm' / 'imdb_lm'}"), "--runs-dir", tmp_path / "clf")
    assert code == 2 and "no finished run named 'imdb_lm'" in " ".join(out.split())


def test_init_from_a_run_name_takes_the_newest_finished_run_of_that_name(archive, language_model, cli, tmp_path):
    """A shipped config can say `model.init_from: runs/imdb_lm` (no time stamp to edit in)."""
    import shutil

    older = language_model.parent / "20000101-000000-lm"
    shutil.copytree(language_model, older)
    unfinished = language_model.parent / "29991231-235959-lm"  # newest, but has no best.pt
    unfinished.mkdir()
    code, out = cli("train", *_classifier(archive, f"model.init_from={language_model.parent / 'lm'}"), "--runs-dir", tmp_path / "clf")
    assert code == 0, out
    assert f"initialised from {language_model}" in " ".join(out.split())


def test_pretrained_vectors_are_loaded_by_word_reported_and_frozen(archive, cli, tmp_path):
    rng = np.random.default_rng(1)
    words = FILLER + WORDS["pos"] + ["zyzzyva"]  # the last is in no review: not found, no harm
    vectors = {w: rng.normal(size=8).round(4) for w in words}
    glove = tmp_path / "vectors.txt"
    glove.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in vectors.items()))
    code, out = cli("train", *_classifier(archive, f"model.pretrained_embeddings={glove}", "model.freeze_embeddings=true"),
                    "--runs-dir", tmp_path / "clf")  # fmt: skip
    assert code == 0, out
    assert "words found" in out and "frozen" in out
    (run,) = (tmp_path / "clf").iterdir()
    ckpt = load_checkpoint(run / "checkpoints/best.pt")
    vocab = Vocab.from_state(ckpt["task_state"]["vocab"])
    for w in FILLER + WORDS["pos"]:
        if w in vocab.itos:
            torch.testing.assert_close(ckpt["model"]["embedding.weight"][vocab.encode([w])[0]], torch.tensor(vectors[w], dtype=torch.float32))


def test_vector_folder_format_and_mistakes(archive, cli, tmp_path):
    folder = tmp_path / "vecs"
    folder.mkdir()
    np.save(folder / "vectors.npy", np.ones((3, 8), dtype=np.float32))
    (folder / "vocab.txt").write_text("great\nbad\nfilm\n")
    code, out = cli("train", *_classifier(archive, f"model.pretrained_embeddings={folder}"), "--runs-dir", tmp_path / "a")
    assert code == 0 and "3 of" in out, out
    code, out = cli("train", *_classifier(archive, f"model.pretrained_embeddings={folder}", "model.embedding_dim=4"), "--runs-dir", tmp_path / "b")
    assert code == 2 and "set model.embedding_dim=8" in out
    bad = tmp_path / "bad.txt"
    bad.write_text("great 1 2 3\nbad 1 2\n")
    code, out = cli("train", *_classifier(archive, f"model.pretrained_embeddings={bad}"), "--runs-dir", tmp_path / "c")
    assert code == 2 and "line 2" in out and "Traceback" not in out
    code, out = cli("train", *_classifier(archive, "model.freeze_embeddings=true"), "--runs-dir", tmp_path / "d")
    assert code == 2 and "nothing to freeze" in out
    # The shipped GloVe config before its folder exists: the message says how to make it.
    code, out = cli("train", *_classifier(archive, f"model.pretrained_embeddings={tmp_path / 'glove.6B.50d'}"), "--runs-dir", tmp_path / "e")
    assert code == 2 and "no such file or folder" in out and "glove_from_kumo.py" in " ".join(out.split()), out


def test_forward_and_backward_language_models_start_the_two_directions(archive, language_model, cli, tmp_path, write_config):
    raw = {"name": "lm_backward", "seed": 1, "device": "cpu",
           "task": {"name": "next_token", "corpus": "text_file", "text_file": str(tmp_path / "text.txt"), "seq_len": 16, "reverse": True},
           "model": {"name": "lstm", "input": "embedding", "embedding_dim": 8, "hidden_size": 8},
           "train": {"lr": 0.01, "batch_size": 16, "steps": 20}}  # fmt: skip
    code, out = cli("train", write_config(raw, "lm_backward.yaml"), "--runs-dir", tmp_path / "lmb", "--no-progress")
    assert code == 0, out
    (backward,) = (tmp_path / "lmb").iterdir()
    code, out = cli("train", *_classifier(archive, f"model.init_from={language_model}", f"model.init_backward_from={backward}",
                                          "train.lr=1e-9", "train.optimizer=sgd"), "--runs-dir", tmp_path / "clf")  # fmt: skip
    assert code == 0, out
    assert "backward direction initialised from" in " ".join(out.split())
    (run,) = (tmp_path / "clf").iterdir()
    clf, fwd, bwd = (load_checkpoint(p / "checkpoints/best.pt")["model"] for p in (run, language_model, backward))
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        torch.testing.assert_close(clf[f"layers.0.0.{name}"], fwd[f"layers.0.0.{name}"], atol=1e-6, rtol=0)
        torch.testing.assert_close(clf[f"layers.0.1.{name}"], bwd[f"layers.0.0.{name}"], atol=1e-6, rtol=0)
    # A one-way classifier has no backward direction to start.
    code, out = cli("train", *_classifier(archive, f"model.init_backward_from={backward}", "model.name=lstm"), "--runs-dir", tmp_path / "x")
    assert code == 2 and "no backward direction" in out


def test_a_backward_language_model_reads_texts_from_their_end(tmp_path):
    from rnnlab.config import resolve_config
    from rnnlab.engine import build_task

    text = tmp_path / "t.txt"
    text.write_text("one two three four five six seven eight nine ten eleven twelve")
    chunks = {}
    for reverse in (False, True):
        cfg = resolve_config({"task": {"name": "next_token", "corpus": "text_file", "text_file": str(text), "seq_len": 100,
                                       "reverse": reverse, "val_fraction": 0.01, "test_fraction": 0.01},
                              "model": {"name": "lstm"}, "train": {"steps": 1}})  # fmt: skip
        chunks[reverse] = build_task(cfg)._token_sequences()
    assert chunks[True] == [chunks[False][0][::-1]]


def test_init_lr_scale_freezes_or_slows_the_started_layers_and_survives_a_resume(archive, language_model, cli, tmp_path, monkeypatch):
    """model.init_lr_scale: 0 keeps the layers init_from started exactly as the language model left
    them while the rest trains; 0.5 gives them half the learning rate, and a resumed run keeps
    the two groups (its optimizer state must fit them)."""
    import signal

    import rnnlab.engine as engine
    from rnnlab.callbacks import Callback

    code, out = cli("train", *_classifier(archive, f"model.init_from={language_model}", "model.init_lr_scale=0", "train.lr=0.01"),
                    "--runs-dir", tmp_path / "frozen")  # fmt: skip
    assert code == 0, out
    (run,) = (tmp_path / "frozen").iterdir()
    lm, clf = load_checkpoint(language_model / "checkpoints/best.pt")["model"], load_checkpoint(run / "checkpoints/best.pt")["model"]
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        assert torch.equal(clf[f"layers.0.0.{name}"], lm[f"layers.0.0.{name}"])
    fresh_start = load_checkpoint(run / "checkpoints/last.pt")["started_params"]
    assert "embedding.weight" in fresh_start and not any(n.startswith(("layers.0.1", "head")) for n in fresh_start)

    class StopAt(Callback):
        def on_step(self, run) -> None:
            if run.step == 3:
                signal.raise_signal(signal.SIGINT)

    made = engine.default_callbacks
    monkeypatch.setattr(engine, "default_callbacks", lambda *a, **k: [*made(*a, **k), StopAt()])
    args = _classifier(archive, f"model.init_from={language_model}", "model.init_lr_scale=0.5", "train.scheduler=none", "train.lr=0.003")
    code, out = cli("train", *args, "--runs-dir", tmp_path / "half")
    assert code == 130, out
    monkeypatch.setattr(engine, "default_callbacks", made)
    (run,) = (tmp_path / "half").iterdir()
    code, out = cli("train", "--resume", run, "--no-progress")
    assert code == 0, out
    groups = load_checkpoint(run / "checkpoints/last.pt")["optimizer"]["param_groups"]
    assert [g["lr"] for g in groups] == [pytest.approx(3e-3), pytest.approx(1.5e-3)]
    code, out = cli("train", *_classifier(archive, "model.init_lr_scale=0.5"), "--runs-dir", tmp_path / "x")
    assert code == 2 and "set that too" in " ".join(out.split())


@pytest.fixture
def imdb_language_model(archive, tmp_path, cli, write_config):
    """A language model of the classifier's own IMDb reviews, seed 0, val_size 10 (as _classifier)."""
    raw = {"name": "imdb_lm", "seed": 0, "device": "cpu",
           "task": {"name": "next_token", "corpus": "imdb", "data_path": str(archive), "val_size": 10, "seq_len": 8},
           "model": {"name": "lstm", "input": "embedding", "embedding_dim": 8, "hidden_size": 8},
           "train": {"lr": 0.01, "batch_size": 16, "steps": 5}}  # fmt: skip
    code, out = cli("train", write_config(raw, "imdb_lm.yaml"), "--runs-dir", tmp_path / "lm", "--no-progress")
    assert code == 0, out
    (run,) = (tmp_path / "lm").iterdir()
    return run


def test_init_from_refuses_a_language_model_that_split_imdb_otherwise(archive, imdb_language_model, cli, tmp_path):
    """A language model trains on the classifier's training reviews of its own seed and val_size:
    a classifier of another seed, val_size or archive would choose on reviews it was started from.
    `compare --seeds 2 --config configs/imdb_bilstm_pretrained.yaml` did that for seed 1."""
    other = write_imdb_archive(tmp_path / "other" / "aclImdb_v1.tar.gz")  # other reviews
    copy = tmp_path / "copy" / "aclImdb_v1.tar.gz"  # the same reviews, elsewhere
    copy.parent.mkdir()
    copy.write_bytes(archive.read_bytes())
    start = f"model.init_from={imdb_language_model}"
    for extra, messages in ((["seed=1"], ["seed: 0 there, 1 here", "rnnlab train configs/imdb_lm.yaml seed=1", "(seed=0)"]),
                            (["task.val_size=12"], ["task.val_size: 10 there, 12 here", "task.val_size=12"]),
                            ([f"task.data_path={other}", "seed=2"], [f"task.data_path: {archive} there, {other} here", "seed: 0 there, 2 here"])):  # fmt: skip
        code, out = cli("train", *_classifier(archive, start, *extra), "--runs-dir", tmp_path / "clf")
        text = " ".join(out.split())
        assert code == 2 and "Traceback" not in out, out
        assert "that run split the IMDb reviews otherwise than this one" in text, out
        assert all(m in text for m in messages), out
        assert not (tmp_path / "clf").exists() or not any((tmp_path / "clf").iterdir())
    for data in (archive, copy):
        code, out = cli("train", *_classifier(archive, start, f"task.data_path={data}"), "--runs-dir", tmp_path / "clf")
        assert code == 0 and f"initialised from {imdb_language_model}" in " ".join(out.split()), out
