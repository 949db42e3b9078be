"""The next-token language model: shapes, shifted targets, padding, the determined positions,
generation."""

from __future__ import annotations

import pytest
import torch

from rnnlab.config import resolve_config
from rnnlab.engine import build, fit
from rnnlab.contract import IGNORE_INDEX
from rnnlab.tasks.next_token import EOS, determined_mask

from conftest import ROOT


def raw(**task) -> dict:
    return {
        "name": "tiny_lm",
        "seed": 0,
        "device": "cpu",
        "task": {"name": "next_token", "num_sequences": 200, "min_n": 1, "max_n": 5, **task},
        "model": {"name": "lstm", "hidden_size": 16},
        "train": {"lr": 0.02, "batch_size": 16, "epochs": 2},
    }


def task_and_model(**task):
    torch.manual_seed(0)
    return build(resolve_config(raw(**task)), torch.device("cpu"))


def test_targets_are_the_inputs_shifted_by_one():
    task, _ = task_and_model()
    batch = task._batch(task.splits["train"][:16])
    for i in range(len(batch)):
        n = int(batch.lengths[i])
        assert torch.equal(batch.targets[i, : n - 1], batch.inputs[i, 1:n])
        assert (batch.targets[i, n:] == IGNORE_INDEX).all() and (batch.inputs[i, n:] == 0).all()
        assert task.vocab.decode([int(batch.targets[i, n - 1])]) == [EOS]


def test_one_hot_batches_are_batch_seq_vocab():
    task, model = task_and_model()
    batch = next(task.train_batches(0))
    feats = model.embed(batch.inputs)
    assert feats.shape == (len(batch), batch.inputs.size(1), len(task.vocab))
    assert feats.sum(-1).eq((batch.inputs != 0).float()).all()  # one 1 per real token, none at padding
    assert model(batch.inputs, batch.lengths).shape == (len(batch), batch.inputs.size(1), len(task.vocab))


def test_the_loss_ignores_padding():
    task, model = task_and_model()
    model.eval()
    batch = task._batch(task.splits["train"][:16])  # unbucketed: mixed lengths
    assert (batch.lengths < batch.inputs.size(1)).any(), "the batch must have padding to test this"
    loss = task.loss(model(batch.inputs, batch.lengths), batch)
    pad = torch.arange(batch.inputs.size(1)) >= batch.lengths.unsqueeze(1)
    scrambled = batch.inputs.masked_fill(pad, 3)
    assert torch.equal(task.loss(model(scrambled, batch.lengths), batch), loss)


def test_determined_positions_on_hand_made_sequences():
    a, b, eos = 2, 3, 4
    # a a b b EOS  -> inputs a a b b, targets a b b EOS: the 2nd b and EOS are determined.
    inputs = torch.tensor([[a, a, b, b], [a, b, 0, 0]])
    targets = torch.tensor([[a, b, b, eos], [b, eos, IGNORE_INDEX, IGNORE_INDEX]])
    assert determined_mask(inputs, targets, b, eos).tolist() == [[False, False, True, True], [False, True, False, False]]


# --- issue 27: the synthetic corpus tests on sequences training never sees -------------------------
@pytest.mark.parametrize("seed", range(5))
def test_no_validation_or_test_sequence_of_the_synthetic_corpus_is_trained_on(seed):
    # The corpus has only max_n - min_n + 1 distinct sequences: split at random, every test
    # sequence was also a training sequence and 100% determined accuracy could be memorising.
    cfg = resolve_config({**raw(), "seed": seed, "task": {"name": "next_token", "num_sequences": 2000, "min_n": 1, "max_n": 12}})
    task, _ = build(cfg, torch.device("cpu"))
    seqs = {name: {tuple(s.tolist()) for s in task.splits[name]} for name in ("train", "val", "test")}
    assert seqs["val"] and seqs["test"]
    assert not (seqs["train"] & seqs["test"]) and not (seqs["train"] & seqs["val"]) and not (seqs["val"] & seqs["test"])
    a = task.vocab.encode(["a"])[0]
    lengths = {name: {s.count(a) for s in split} for name, split in seqs.items()}
    assert {1, 12} <= lengths["train"]  # the held-out counts lie inside the trained range
    assert min(lengths["val"] | lengths["test"]) > 1 and max(lengths["val"] | lengths["test"]) < 12
    assert sum(len(task.splits[n]) for n in ("train", "val", "test")) == 2000


def test_a_synthetic_range_too_narrow_to_hold_counts_out_is_refused_with_the_fix(cli, write_config, tmp_path):
    code, out = cli("train", write_config({**raw(), "task": {"name": "next_token", "min_n": 2, "max_n": 4}}), "--runs-dir", tmp_path)
    assert code == 2 and "Traceback" not in out
    assert "must span at least 4 counts, e.g. max_n=5" in " ".join(out.split())


def test_bidirectional_models_are_refused():
    from rnnlab.errors import UserError

    with pytest.raises(UserError, match="bidirectional"):
        build(resolve_config({**raw(), "model": {"name": "bilstm"}}), torch.device("cpu"))


def test_text_file_corpus_char_level(tmp_path):
    text = tmp_path / "tiny.txt"
    text.write_text("hello world, hello rnn. " * 40, encoding="utf-8")
    task, model = task_and_model(corpus="text_file", text_file=str(text), level="char", seq_len=16)
    assert {"h", "e", " "} <= set(task.vocab.itos)
    batch = next(task.train_batches(0))
    assert batch.inputs.size(1) <= 16
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00bad")
    from rnnlab.errors import UserError

    with pytest.raises(UserError, match="not UTF-8"):
        _ = task_and_model(corpus="text_file", text_file=str(bad))[0].vocab  # reading the file happens here


def test_generation_is_reproducible_with_a_seed(tmp_path, cli):
    result = fit(resolve_config(raw()), runs_dir=tmp_path, progress=False, final_table=False)
    assert {"perplexity", "determined_accuracy"} <= set(result.summary["test"])
    outs = [cli("generate", result.run_dir, "--seed", str(s), "--tokens", "30") for s in (7, 7, 8)]
    assert all(code == 0 for code, _ in outs), outs
    assert outs[0][1] == outs[1][1]
    code, out = cli("generate", result.run_dir, "--prompt", "a a", "--temperature", "0", "--tokens", "5")
    assert code == 0 and out.split()[:2] == ["a", "a"]


def test_generate_on_a_classifier_run_exits_2(tmp_path, cli):
    from conftest import tiny_raw

    result = fit(resolve_config(tiny_raw()), runs_dir=tmp_path, progress=False, final_table=False)
    code, out = cli("generate", result.run_dir)
    assert code == 2 and "not a language model" in out and "configs/next_token_lstm.yaml" in out


@pytest.mark.slow
def test_the_notes_setting_determines_every_determined_token(tmp_path):
    from rnnlab.config import load_config

    result = fit(load_config(ROOT / "configs/next_token_lstm.yaml"), runs_dir=tmp_path, progress=False, final_table=False)
    assert result.summary["test"]["determined_accuracy"] >= 0.99


@pytest.mark.slow
def test_generate_streams_and_ctrl_c_keeps_what_was_printed(tmp_path):
    """Text appears as it is sampled, so a user who stops a long generation keeps it."""
    import os
    import signal
    import subprocess
    import sys

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(" ".join(["the cat sat on a mat", "the dog ran to the park"] * 300))
    cfg = {**raw(corpus="text_file", text_file=str(corpus), level="char", seq_len=32), "train": {"lr": 0.02, "batch_size": 16, "steps": 20}}
    del cfg["task"]["num_sequences"], cfg["task"]["min_n"], cfg["task"]["max_n"]
    result = fit(resolve_config(cfg), runs_dir=tmp_path, progress=False, final_table=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rnnlab", "generate", str(result.run_dir), "--tokens", "100000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)  # fmt: skip
    first = proc.stdout.read(40)  # arrives long before 100,000 tokens could be sampled
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert len(first) == 40 and proc.returncode == 130
    assert b"Traceback" not in err


def test_imdb_language_model_splits_whole_reviews_and_never_trains_on_held_out_reviews(tmp_path, monkeypatch):
    """The language model's chunks are cut from whole reviews of the IMDb classifier's own splits
    (same val_size and seed): training is exactly its training reviews (plus the unlabelled ones
    when asked), validation only its validation reviews, test only official test reviews. So test
    perplexity is not optimistic, and a classifier started from this model still chooses on text
    neither model trained on. The vocabulary is the classifier's; a backward model reads each
    review from its end."""
    from collections import Counter

    from imdb_fixtures import separable_reviews, write_imdb_archive

    from rnnlab.data.imdb import load_imdb, load_unlabelled

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    archive = write_imdb_archive(tmp_path / "aclImdb_v1.tar.gz", reviews=separable_reviews(per_class=40),
                                 unsup=[(0, "the film was great and awful and long")])  # fmt: skip
    classifier = load_imdb(archive, vocab_size=10_000, val_size=16, seed=3)

    def cut(split, reverse):  # every chunk of seq_len 8 + 1 of every review, as the task cuts them
        out = Counter()
        for i in range(len(split)):
            r = split.get(i).tolist()[::-1] if reverse else split.get(i).tolist()
            out.update(tuple(r[k : k + 9]) for k in range(0, len(r), 8) if len(r[k : k + 9]) >= 2)
        return out

    for unlabelled, reverse in ((False, False), (True, False), (False, True)):
        cfg = resolve_config({**raw(), "seed": 3, "task": {"name": "next_token", "corpus": "imdb", "data_path": str(archive),
                                                           "seq_len": 8, "vocab_size": 10_000, "num_sequences": 10_000,
                                                           "val_size": 16, "unlabelled": unlabelled, "reverse": reverse}})  # fmt: skip
        task, _ = build(cfg, torch.device("cpu"))
        assert task.vocab == classifier.vocab
        got = {name: Counter(tuple(s.tolist()) for s in seqs) for name, seqs in task.splits.items()}
        expected_train = cut(classifier.train, reverse)
        if unlabelled:
            expected_train += cut(load_unlabelled(archive, classifier.vocab), reverse)
        assert got["train"] == expected_train
        assert got["val"] and got["val"] <= cut(classifier.val, reverse)
        assert got["test"] and got["test"] <= cut(classifier.test, reverse)


def test_a_smaller_output_vocabulary_predicts_rare_words_as_unk(tmp_path):
    """task.output_vocab_size: the model predicts the most frequent words only (the output layer's
    cost is in proportion); inputs keep the whole vocabulary; rarer targets become <unk>."""
    from rnnlab.data.text import UNK_ID

    text = tmp_path / "t.txt"
    text.write_text(" ".join(["a"] * 50 + ["b"] * 30 + ["c"] * 20 + ["d"] * 10 + ["e"] * 5))
    task, model = task_and_model(corpus="text_file", text_file=str(text), seq_len=8, output_vocab_size=4)
    assert task.model_spec().num_outputs == 4 and task.model_spec().vocab_size == len(task.vocab) == 7
    batch = task.train_batch(list(range(len(task.splits["train"]))))
    rare = batch.inputs >= 4  # c, d, e as inputs...
    assert rare.any() and (batch.targets[:, :-1][rare[:, 1:]] == UNK_ID).all()  # ...are <unk> as targets
    assert int(batch.targets.max()) < 4
    assert model(batch.inputs, batch.lengths).shape[-1] == 4


def test_imdb_language_model_never_trains_on_an_unlabelled_twin_of_a_held_out_review(tmp_path, monkeypatch):
    """train/unsup/ repeats some validation and test reviews word for word (309 on the real
    archive); with task.unlabelled the language model leaves those out, so not one of its training
    chunks is a chunk of a review its classifier validates or tests on."""
    from imdb_fixtures import review_text, separable_reviews, write_imdb_archive

    from rnnlab.data.imdb import load_imdb

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    reviews = separable_reviews(per_class=40)
    plain = write_imdb_archive(tmp_path / "plain.tar.gz", reviews=reviews)
    split = load_imdb(plain, vocab_size=10_000, val_size=16, seed=3)
    twins = []
    for folder, held in (("train", split.val), ("test", split.test)):
        label = ("neg", "pos")[int(held.labels[0])]
        (text,) = [t for r, _, t in reviews[(folder, label)] if r == int(held.ids[0])]
        twins.append((len(twins), review_text(folder, label, int(held.ids[0]), text)))
    archive = write_imdb_archive(tmp_path / "aclImdb_v1.tar.gz", reviews=reviews, unsup=[*twins, (9, "the film was great")])
    cfg = resolve_config({**raw(), "seed": 3, "task": {"name": "next_token", "corpus": "imdb", "data_path": str(archive), "seq_len": 8,
                                                       "vocab_size": 10_000, "num_sequences": 10_000, "val_size": 16, "unlabelled": True}})  # fmt: skip
    task, _ = build(cfg, torch.device("cpu"))
    train = {tuple(s.tolist()) for s in task.splits["train"]}
    held_out = {tuple(part.get(i).tolist()[:9]) for part in (split.val, split.test) for i in range(len(part))}
    assert train.isdisjoint(held_out)
    assert tuple(task.vocab.encode("the film was great".split())) in train  # the other unlabelled review is read

