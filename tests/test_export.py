"""`rnnlab export` and `rnnlab predict --onnx`: a trained IMDb model out of rnnlab, same answers.

    python -m pytest tests/test_export.py -q

Three IMDb-shaped runs trained on the tiny archive (LSTM reading its last state, GRU with mean
pooling, the flagship's bi-LSTM with max pooling) are exported; onnxruntime's and TorchScript's
logits must equal rnnlab's to 1e-5 on batches of mixed lengths, from 1 to the maximum.
"""

from __future__ import annotations

import json
import re

import pytest
import torch
from typer.testing import CliRunner

from rnnlab.cli import app
from rnnlab.data.text import tokenize
from rnnlab.engine import load_run_model
from rnnlab.export import TOKENIZER_STEPS, encode

from conftest import ROOT
from imdb_fixtures import REVIEWS, separable_reviews, write_imdb_archive
from test_imdb_task import imdb_args

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")]

RUNS = {
    "lstm": ["model.name=lstm", "model.pooling=last"],
    "gru": ["model.name=gru", "model.pooling=mean"],
    "bilstm": ["model.name=bilstm", "model.pooling=max"],  # the flagship's shape: within-length reversal + max
}
# Lengths 1 ("great"), a few in between, and the maximum: a review truncated to task.max_len=50 (head_tail).
TEXTS = [
    "great",
    "a bad film, hated it",
    "the plot was wonderful and the actor superb",
    " ".join(["the film was awful"] * 20) + " but the end is great",
    "movie",
    "<br />A <pad> story, (it's) not \"bad\"; terrible: really!",
]


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False, env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(root / "cache"))
        mp.delenv("RNNLAB_DATA_DIR", raising=False)
        archive = write_imdb_archive(root / "aclImdb_v1.tar.gz", reviews=separable_reviews())
        out = {}
        for name, extra in RUNS.items():
            # fp32: `predict --run` then computes as the export does (precision auto is bf16 on a CPU that has it).
            args = imdb_args(archive, "train.epochs=2", "train.precision=fp32", *extra)
            code, text = invoke("train", *args, "--runs-dir", root / name, "--no-progress")
            assert code == 0, text
            (out[name],) = (root / name).iterdir()
        yield out


def _rnnlab_logits(run, texts):
    """rnnlab's own answer: the run's model on the task's own encoding of the texts."""
    _, task, model, _ = load_run_model(run, torch.device("cpu"))
    batch, _ = task.encode_texts(texts)
    with torch.no_grad():
        return batch.inputs, batch.lengths, model(batch.inputs, batch.lengths).float()


@pytest.mark.parametrize("name", list(RUNS))
def test_onnx_logits_equal_rnnlab_on_mixed_lengths(runs, name, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install 'rnnlab[export]'")
    from rnnlab.export import onnx_logits, onnx_session

    out = tmp_path / "model.onnx"
    code, text = invoke("export", runs[name], "--format", "onnx", "--out", out)
    assert code == 0, text
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["labels"] == ["negative", "positive"] and meta["max_len"] == 50 and meta["truncation"] == "head_tail"
    session = onnx_session(out)
    for texts in (TEXTS, TEXTS[1:2], TEXTS[::-1][:4]):  # batch sizes 6, 1 and 4, in other orders
        inputs, lengths, want = _rnnlab_logits(runs[name], texts)
        assert {1, 50} <= set(lengths.tolist()) or len(texts) < 6
        # The JSON alone encodes the texts as rnnlab does.
        tokens, lens = encode(meta, texts)
        assert tokens.tolist() == inputs.tolist() and lens.tolist() == lengths.tolist()
        got = torch.from_numpy(onnx_logits(session, tokens, lens))
        assert torch.allclose(got, want, atol=1e-5, rtol=0), (got - want).abs().max()


@pytest.mark.parametrize("name", list(RUNS))
def test_torchscript_logits_equal_rnnlab_on_mixed_lengths(runs, name, tmp_path):
    out = tmp_path / "model.pt"
    code, text = invoke("export", runs[name], "--format", "torchscript", "--out", out)
    assert code == 0, text
    scripted = torch.jit.load(str(out))
    for texts in (TEXTS, TEXTS[1:2], TEXTS[::-1][:4]):
        inputs, lengths, want = _rnnlab_logits(runs[name], texts)
        with torch.no_grad():
            got = scripted(inputs, lengths)
        assert torch.allclose(got, want, atol=1e-5, rtol=0), (got - want).abs().max()


def test_predict_onnx_answers_as_predict_on_the_run(runs, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install 'rnnlab[export]'")
    code, text = invoke("export", runs["bilstm"], "--format", "onnx")  # default: RUN/export/onnx/model.onnx
    assert code == 0, text
    onnx = runs["bilstm"] / "export" / "onnx" / "model.onnx"
    assert onnx.is_file() and onnx.with_suffix(".json").is_file()
    code, text = invoke("predict", *TEXTS, "--onnx", onnx, "--json")
    assert code == 0, text
    served = json.loads(text)["predictions"]
    code, text = invoke("predict", *TEXTS, "--run", runs["bilstm"], "--json")
    assert code == 0, text
    for a, b in zip(served, json.loads(text)["predictions"]):
        assert a["label"] == b["label"] and a["tokens"] == b["tokens"] and a["known_tokens"] == b["known_tokens"]
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-4)


def test_an_export_is_never_overwritten_and_a_non_text_run_is_refused(runs, tmp_path, cli, write_config):
    from conftest import tiny_raw

    out = tmp_path / "m.pt"
    assert invoke("export", runs["lstm"], "--format", "torchscript", "--out", out)[0] == 0
    before = out.read_bytes()
    code, text = invoke("export", runs["lstm"], "--format", "torchscript", "--out", out)
    assert code == 2 and "never overwritten" in text and "Traceback" not in text
    assert out.read_bytes() == before
    code, text = invoke("export", runs["lstm"], "--format", "tflite")
    assert code == 2 and "use onnx or torchscript" in text
    code, text = cli("train", write_config(tiny_raw()), "--runs-dir", tmp_path / "ld", "--no-progress")
    assert code == 0, text
    (ld,) = (tmp_path / "ld").iterdir()
    code, text = invoke("export", ld, "--format", "torchscript")
    assert code == 2 and "does not classify text" in text
    assert not (ld / "export").exists()


def test_the_jsons_tokenizer_steps_are_rnnlabs_tokenizer():
    texts = [review for items in REVIEWS.values() for _, _, review in items] + [
        'A <br/>B<br>c<br "/>d <BR />E', "it's (really) good!?; yes: no.", 'say "hi", "<br />"', "\t tabs\nand\r\nlines  ",
    ]
    for text in texts:
        out = text
        for op, *args in TOKENIZER_STEPS:
            out = out.lower() if op == "lower" else re.sub(args[0], args[1], out) if op == "regex" else out.replace(*args)
        assert out.split() == tokenize(text), text


def test_the_docs_onnxruntime_snippet_serves_as_predict_does(runs, tmp_path, monkeypatch, capsys):
    """docs/export.md's snippet, run as written there, next to an export of the bi-LSTM."""
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install 'rnnlab[export]'")
    doc = (ROOT / "docs" / "export.md").read_text()
    (snippet,) = [block for block in re.findall(r"```python\n(.*?)```", doc, re.S) if "onnxruntime" in block]
    assert len(snippet.strip().splitlines()) <= 20
    assert invoke("export", runs["bilstm"], "--format", "onnx", "--out", tmp_path / "model.onnx")[0] == 0
    monkeypatch.chdir(tmp_path)
    space: dict = {}
    exec(compile(snippet, "docs/export.md", "exec"), space)
    code, text = invoke("predict", *TEXTS, "--onnx", tmp_path / "model.onnx", "--json")
    assert code == 0, text
    for text_, want in zip(TEXTS, json.loads(text)["predictions"]):
        label, probs = space["classify"](text_)
        assert label == want["label"] and probs == pytest.approx(list(want["probabilities"].values()), abs=1e-4)


def test_predict_onnx_names_a_missing_model_or_json(runs, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install 'rnnlab[export]'")
    code, text = invoke("predict", "--onnx", tmp_path / "none.onnx", "great")
    assert code == 2 and "no such file" in text and "rnnlab export" in text and "Traceback" not in text
    out = tmp_path / "m.onnx"
    assert invoke("export", runs["gru"], "--out", out)[0] == 0
    out.with_suffix(".json").unlink()
    code, text = invoke("predict", "--onnx", out, "great")
    assert code == 2 and "m.json: missing" in text and "Traceback" not in text
    code, text = invoke("predict", "--onnx", out, "--run", runs["gru"], "great")
    assert code == 2 and "without --run" in text


def test_out_may_name_a_folder_and_predict_onnx_names_a_torchscript_file_for_what_it_is(runs, tmp_path):
    """--out DIR/ puts model.<ext> and its JSON inside DIR; a .pt given to --onnx is called a TorchScript export."""
    folder = tmp_path / "exports"
    code, text = invoke("export", runs["gru"], "--format", "torchscript", "--out", f"{folder}/")
    assert code == 0, text
    assert (folder / "model.pt").is_file() and (folder / "model.json").is_file()
    code, text = invoke("predict", "--onnx", folder / "model.pt", "great")
    assert code == 2 and "is a torchscript export" in text and "--format onnx" in text and "Traceback" not in text
