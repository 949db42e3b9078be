"""The `tagging` task: CoNLL-U in, one tag per word out; vocabulary, unknown words, exact
bidirectional outputs at every real position, errors through the CLI, and train -> predict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab.config import resolve_config
from rnnlab.contract import IGNORE_INDEX, ModelSpec
from rnnlab.data.text import UNK_ID
from rnnlab.registry import MODELS, TASKS
from rnnlab.tasks.tagging import TaggingTask, split_words

from conftest import tiny_raw

TRAIN = """\
# newdoc id = d1
# sent_id = 1
# text = The dog doesn't bark.
1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_
2\tdog\tdog\tNOUN\tNN\t_\t4\tnsubj\t_\t_
3-4\tdoesn't\t_\t_\t_\t_\t_\t_\t_\t_
3\tdoes\tdo\tAUX\tVBZ\t_\t5\taux\t_\t_
4\tn't\tnot\tPART\tRB\t_\t5\tadvmod\t_\t_
5\tbark\tbark\tVERB\tVB\t_\t0\troot\t_\tSpaceAfter=No
6\t.\t.\tPUNCT\t.\t_\t5\tpunct\t_\t_

# sent_id = 2
1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_
2\tcat\tcat\tNOUN\tNN\t_\t3\tnsubj\t_\t_
2.1\tate\teat\tVERB\tVBD\t_\t_\t_\t_\t_
3\tsleeps\tsleep\tVERB\tVBZ\t_\t0\troot\t_\t_


1\tdog\tdog\tNOUN\tNN\t_\t0\troot\t_\t_
"""

VAL = """\
# sent_id = v1
1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_
2\tzebra\tzebra\tNOUN\tNN\t_\t3\tnsubj\t_\t_
3\tbarks\tbark\tVERB\tVBZ\t_\t0\troot\t_\t_
"""


def _treebank(folder: Path, train: str = TRAIN, val: str = VAL, test: str = VAL) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, text in (("train", train), ("dev", val), ("test", test)):
        (folder / f"xx_tiny-ud-{split}.conllu").write_text(text, encoding="utf-8")
    return folder


def _task(folder: Path, **task) -> TaggingTask:
    raw = {**tiny_raw(), "task": {"name": "tagging", "treebank": str(folder), **task}, "model": {"name": "bilstm", "hidden_size": 8}}
    cfg = resolve_config(raw)
    return TASKS.build(cfg.task, seed=0, batch_size=2)


def test_reads_words_skipping_ranges_and_empty_nodes_and_builds_vocab_from_train(tmp_path):
    task = _task(_treebank(tmp_path / "tb"))
    train = task.splits["train"]
    assert len(train.ids) == 3  # three sentences; the comment-only block and double blank line add none
    words = task.vocab.decode(train.ids[0])
    assert words == ["The", "dog", "does", "n't", "bark", "."]  # 3-4 range skipped, its words kept
    assert task.vocab.decode(train.ids[1]) == ["The", "cat", "sleeps"]  # empty node 2.1 skipped
    assert task.vocab.itos[:2] == ["<pad>", "<unk>"]
    assert "zebra" not in task.vocab.itos  # val words never enter the vocabulary
    assert task.tag_names == sorted({"DET", "NOUN", "AUX", "PART", "VERB", "PUNCT"})
    val = task.splits["val"]
    assert val.ids[0].tolist()[1] == UNK_ID and val.unseen[0].tolist() == [False, True, True]
    assert task.model_spec().per_step and task.model_spec().num_outputs == 6


def test_min_freq_lowercase_xpos_and_max_len(tmp_path):
    folder = _treebank(tmp_path / "tb")
    task = _task(folder, min_freq=2, lowercase=True)
    assert set(task.vocab.itos[2:]) == {"the", "dog"}  # "The"+"The" and "dog"+"dog"; the rest once
    xpos = _task(folder, tag_column="xpos", max_len=2)
    assert [len(x) for x in xpos.splits["train"].ids] == [2, 2, 2, 2, 1, 1]  # every word kept, in pieces
    assert "VBZ" in xpos.tag_names and "VERB" not in xpos.tag_names


def test_untagged_words_are_ignored_and_metrics_count_real_words_only(tmp_path):
    train = TRAIN.replace("1\tdog\tdog\tNOUN", "1\tdog\tdog\t_")
    task = _task(_treebank(tmp_path / "tb", train=train))
    assert task.splits["train"].tags[2].tolist() == [IGNORE_INDEX]
    batch = next(iter(task.eval_batches("val")))
    k = len(task.tag_names)
    logits = torch.zeros(*batch.inputs.shape, k)
    logits[..., task.tag_names.index("NOUN")] = 1.0  # always NOUN: right on "zebra" only
    out = task.summarize({key: float(v) for key, v in task.batch_stats(logits, batch).items()})
    assert out["accuracy"] == pytest.approx(1 / 3)
    assert out["unk_accuracy"] == 0.5 and out["unk_words"] == 2  # zebra, barks: both <unk> (min_freq 1)
    assert out["unseen_accuracy"] == 0.5 and out["unseen_words"] == 2  # zebra, barks
    assert out["per_tag"] == {"DET": {"accuracy": 0.0, "words": 1}, "NOUN": {"accuracy": 1.0, "words": 1}, "VERB": {"accuracy": 0.0, "words": 1}}


def test_vocabulary_and_tags_travel_in_the_checkpoint_state(tmp_path):
    task = _task(_treebank(tmp_path / "tb"))
    task.model_spec()
    state = task.state_dict()
    fresh = _task(tmp_path / "nowhere")  # no data needed: predicting from a checkpoint
    fresh.load_state_dict(state)
    assert fresh.vocab == task.vocab and fresh.tag_names == task.tag_names
    batch, words = fresh.encode_words(["The dog doesn't bark."])
    assert words == [["The", "dog", "does", "n't", "bark", "."]]
    assert batch.inputs.tolist() == [task.vocab.encode(words[0])]


def test_split_words_separates_punctuation_and_clitics():
    assert split_words("I don't like U.S. films, really!") == ["I", "do", "n't", "like", "U.S.", "films", ",", "really", "!"]


def test_bidirectional_tagger_equals_packed_reference_at_every_real_position():
    torch.manual_seed(0)
    spec = ModelSpec(num_outputs=5, vocab_size=20, per_step=True, max_len=9)
    cfg = resolve_config({**tiny_raw(), "model": {"name": "bilstm", "hidden_size": 6, "num_layers": 2, "input": "embedding", "embedding_dim": 4}}).model
    model = MODELS.build(cfg, spec).eval()
    lengths = torch.tensor([9, 2, 6, 1])
    tokens = torch.randint(1, 20, (4, 9))
    tokens[torch.arange(9) >= lengths.unsqueeze(1)] = 0
    logits = model(tokens, lengths)  # (B, T, C)
    # The same weights in one fused bidirectional nn.LSTM over a PackedSequence.
    ref = nn.LSTM(4, 6, num_layers=2, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for i, directions in enumerate(model.layers):
            for d, module in enumerate(directions):
                for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(ref, f"{kind}_l{i}" + ("_reverse" if d else "")).copy_(getattr(module, kind + "_l0"))
        packed = pack_padded_sequence(model.embedding(tokens), lengths, batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(ref(packed)[0], batch_first=True, total_length=9)
        expected = model.head(out)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(logits[b, :n], expected[b, :n], rtol=1e-5, atol=1e-6)


def test_malformed_line_exits_2_naming_file_and_line(tmp_path, cli, write_config):
    bad = TRAIN.replace("2\tcat\tcat\tNOUN\tNN\t_\t3\tnsubj\t_\t_", "2\tcat\tcat\tNOUN")
    folder = _treebank(tmp_path / "tb", train=bad)
    raw = {**tiny_raw(), "task": {"name": "tagging", "treebank": str(folder)}, "model": {"name": "bilstm", "hidden_size": 8}}
    code, out = cli("train", write_config(raw), "--runs-dir", tmp_path / "runs")
    assert code == 2
    assert "xx_tiny-ud-train.conllu, line 14" in out.replace("\n", "") and "Traceback" not in out


def test_missing_data_is_a_clear_error(tmp_path, cli, write_config):
    raw = {**tiny_raw(), "task": {"name": "tagging"}, "model": {"name": "bilstm", "hidden_size": 8}}
    code, out = cli("train", write_config(raw), "--runs-dir", tmp_path / "runs")
    assert code == 2 and "task.treebank" in out


def test_train_then_predict_end_to_end(tmp_path, cli):
    folder = _treebank(tmp_path / "tb")
    runs = tmp_path / "runs"
    code, out = cli(
        "train", "configs/pos_bilstm.yaml", f"task.treebank={folder}", "model.hidden_size=8", "model.embedding_dim=8",
        "train.epochs=2", "train.eval_every=2", "train.batch_size=2", "device=cpu", "--runs-dir", runs,
    )
    assert code == 0, out
    (run,) = runs.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert {"accuracy", "unk_accuracy", "unseen_accuracy", "per_tag"} <= set(summary["test"])
    code, out = cli("predict", "--run", run, "the old man the boats")
    assert code == 0, out
    assert "old/" in out and "boats/" in out
    code, out = cli("predict", "--run", run, "--json", "the old man the boats")
    assert code == 0, out
    (pred,) = json.loads(out)["predictions"]
    assert pred["words"] == ["the", "old", "man", "the", "boats"]
    assert len(pred["tags"]) == 5 and set(pred["tags"]) <= set(summary["test"]["per_tag"]) | {"AUX", "PART", "PUNCT"}
