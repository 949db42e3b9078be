"""`rnnlab inspect`, end to end through the CLI, on tiny runs of every kind: long-dependency (RNN,
LSTM, GRU), an IMDb-shaped archive (a two-layer bi-LSTM) and the next-token language model.

    python -m pytest tests/test_inspect.py -q
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from rnnlab.cli import app
from rnnlab.engine import load_run_model
from rnnlab.models.cells import BLOCK_NAMES, RECORDED, param_count

from conftest import ROOT, tiny_raw
from imdb_fixtures import separable_reviews, write_imdb_archive

STATE_PLOT = {"rnn": "hidden", "lstm": "cell", "gru": "hidden"}


def _train(tmp: Path, raw: dict | None = None, args: list[str] | None = None) -> Path:
    """A run trained through the CLI in its own runs directory; returns the run directory."""
    runs = tmp / "runs"
    if raw is not None:
        (tmp / "cfg.yaml").write_text(yaml.safe_dump(raw))
        args = [str(tmp / "cfg.yaml"), *(args or [])]
    result = CliRunner().invoke(app, ["train", *args, "--runs-dir", str(runs), "--no-progress"])
    assert result.exit_code == 0, result.output
    (run,) = runs.iterdir()
    return run


def _outputs(run: Path) -> list[Path]:
    return sorted((run / "inspect").iterdir())


def _check_output(out_dir: Path, cell: str, steps: int, hidden: int, panels: list[str]) -> tuple[dict, dict]:
    """Every file there, every array (steps, hidden) over the true steps, every figure in [0, 1]."""
    gates = [n for n in RECORDED[cell] if n.endswith("_gate")]
    expected = {"gates.npz", "summary.json", "memory_carriers.png", *(f"heatmap_{g}.png" for g in [*gates, STATE_PLOT[cell]])}
    if gates:
        expected.add("gate_means.png")
    assert {p.name for p in out_dir.iterdir()} == expected
    assert all((out_dir / name).stat().st_size > 1000 for name in expected)
    with np.load(out_dir / "gates.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    assert set(arrays) == {"tokens", "token_ids"} | {f"{p}.{n}" for p in panels for n in RECORDED[cell]}
    assert arrays["tokens"].shape == arrays["token_ids"].shape == (steps,)
    for key, values in arrays.items():
        if key.startswith("layer"):
            assert values.shape == (steps, hidden), key
            assert np.isfinite(values).all(), key
    summary = json.loads((out_dir / "summary.json").read_text())
    assert set(summary["gates"]) == {f"{p}.{g}" for p in panels for g in gates}
    for key, figures in summary["gates"].items():
        assert set(figures) == {"mean", "above_0.9", "below_0.1"}
        assert all(0 <= v <= 1 for v in figures.values()), (key, figures)
        assert figures["mean"] == pytest.approx(float(arrays[key].mean()), abs=1e-6)
        assert figures["above_0.9"] == pytest.approx(float((arrays[key] > 0.9).mean()))
    assert set(summary["memory_carriers"]) == set(panels)
    assert summary["steps"] == steps and summary["cell"] == cell
    assert sorted(Path(f).name for f in summary["files"]) == sorted(expected)
    return summary, arrays


def _check_parameters(summary: dict, cell: str) -> None:
    """Part 6: each layer's parameters split into its gate blocks, from the weights."""
    for row in summary["parameters"]["layers"]:
        f, h = row["input_size"], row["hidden_size"]
        assert list(row["blocks"]) == list(BLOCK_NAMES[cell]) and row["gate_blocks"] == len(BLOCK_NAMES[cell])
        assert all(n == h * (f + h) + 2 * h for n in row["blocks"].values())
        assert row["total"] == sum(row["blocks"].values()) == param_count(cell, f, h)
        assert row["same_sizes"]["gru"] * 4 == row["same_sizes"]["lstm"] * 3


# --- long dependency: RNN, LSTM, GRU (the GRU trained with the reference cells) ------------------------


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_long_dependency_example(tmp_path, cli, cell):
    raw = tiny_raw(cell)
    if cell == "gru":
        raw["model"]["implementation"] = "reference"
    run = _train(tmp_path, raw)
    code, out = cli("inspect", run, "--example", "3", "--split", "test", "--units", "2")
    assert code == 0, out
    (out_dir,) = _outputs(run)
    assert out_dir.name.endswith("-test-example3")
    summary, arrays = _check_output(out_dir, cell, steps=6, hidden=8, panels=["layer0.forward"])
    assert summary["trained_with"] == ("reference" if cell == "gru" else "fused")
    assert arrays["tokens"][0].startswith("symbol ") and set(arrays["tokens"][1:]) == {"·"}
    carriers = summary["memory_carriers"]["layer0.forward"]
    assert len(carriers["units"]) == 2 and len(set(carriers["units"])) == 2
    assert ("keep_gate_mean" in carriers) == (cell != "rnn")
    _check_parameters(summary, cell)
    for shown in ("memory carriers", f"parameters of each {cell} layer by gate block", str(out_dir / "summary.json")):
        assert shown in out, shown
    if cell == "lstm":
        assert "forget_gate" in out and "75% of the LSTM" in out

    # The recorded last hidden state is what the run's own (fused) model answers from.
    cfg, task, model, _ = load_run_model(run, torch.device("cpu"))
    batch = list(task.eval_batches("test"))[0]
    with torch.no_grad():
        expected = model(batch.inputs[3:4], None)
        from_record = model.head(torch.from_numpy(arrays["layer0.forward.hidden"][-1:]))
    torch.testing.assert_close(from_record, expected, atol=1e-5, rtol=1e-5)
    assert summary["prediction"]["target"] == int(batch.targets[3])


def test_a_run_named_runs_slash_name_is_inspected_and_written_into(tmp_path, cli):
    """`rnnlab inspect runs/<name>` reads the newest finished run of that name and writes its
    pictures into that run, not into a folder of the name."""
    run = _train(tmp_path, tiny_raw("lstm"))
    code, out = cli("inspect", run.parent / "tiny_lstm", "--example", "0")
    assert code == 0, out
    assert len(_outputs(run)) == 1 and not (run.parent / "tiny_lstm").exists()


def test_implementation_key_is_listed_and_validated(cli):
    code, out = cli("list")
    assert code == 0 and "implementation" in out and "reference" in out
    code, out = cli("config", ROOT / "configs" / "long_dependency_lstm.yaml", "model.implementation=slow")
    assert code == 2 and "model.implementation" in out and "Traceback" not in out


def test_an_example_comes_from_the_validation_split_unless_test_is_asked_for(tmp_path, cli):
    """Issue 27, item 4: choices are made on validation, so `inspect RUN` reads validation example 0."""
    run = _train(tmp_path, tiny_raw("lstm"))
    code, out = cli("inspect", run)
    assert code == 0, out
    (out_dir,) = _outputs(run)
    summary = json.loads((out_dir / "summary.json").read_text())
    assert out_dir.name.endswith("-val-example0") and summary["input"] == "val example 0", out_dir
    _, task, _, _ = load_run_model(run, torch.device("cpu"))
    first = next(iter(task.eval_batches("val")))
    arrays = np.load(out_dir / "gates.npz")
    assert arrays["token_ids"].tolist() == first.inputs[0].tolist()
    assert summary["prediction"]["target"] == int(first.targets[0])


def _is_bf16(values: np.ndarray) -> bool:
    """Whether every value is one that bfloat16 can hold (fp32 results almost never all are)."""
    return bool(np.array_equal(values, torch.from_numpy(values).bfloat16().float().numpy()))


def test_a_bf16_run_is_inspected_in_bf16_where_the_cpu_has_it(tmp_path, cli, monkeypatch):
    """Issue 27, item 8: inspect answers in the run's precision, as evaluate and predict do, and
    says which; on a CPU without native bf16 it falls back to fp32 and says that."""
    monkeypatch.setenv("RNNLAB_CPU_BF16", "1")  # a CPU with bf16 units (emulated where there are none)
    run = _train(tmp_path, tiny_raw("lstm", precision="bf16"))
    code, out = cli("inspect", run, "--example", "1")
    assert code == 0, out
    (bf16_dir,) = _outputs(run)
    summary, arrays = _check_output(bf16_dir, "lstm", steps=6, hidden=8, panels=["layer0.forward"])
    gates = ["input_gate", "forget_gate", "candidate", "output_gate"]  # each the output of a bf16 matmul
    assert all(_is_bf16(arrays[f"layer0.forward.{g}"]) for g in gates)  # 2d118bf: fp32 values
    assert summary["precision"] == "bf16" and "lstm cells in bf16" in out

    monkeypatch.setenv("RNNLAB_CPU_BF16", "0")  # a CPU without: fp32, said so
    code, out = cli("inspect", run, "--example", "1")
    assert code == 0 and "lstm cells in fp32 (the run's bf16 is not available on this CPU)" in out, out
    (fp32_dir,) = set(_outputs(run)) - {bf16_dir}
    summary, arrays = _check_output(fp32_dir, "lstm", steps=6, hidden=8, panels=["layer0.forward"])
    assert summary["precision"] == "fp32" and not all(_is_bf16(arrays[f"layer0.forward.{g}"]) for g in gates)


# --- IMDb-shaped archive: a two-layer bi-LSTM, texts and examples; a bag of words for the errors ----------


@pytest.fixture(scope="module")
def imdb_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inspect_imdb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp / "cache"))  # never the user's cache
        mp.delenv("RNNLAB_DATA_DIR", raising=False)
        archive = write_imdb_archive(tmp / "aclImdb_v1.tar.gz", reviews=separable_reviews())
        common = [f"task.data_path={archive}", "task.val_size=10", "train.epochs=1", "train.eval_every=null",
                  "train.early_stopping=null", "train.batch_size=8", "device=cpu"]  # fmt: skip
        bilstm = _train(tmp / "bilstm", args=[str(ROOT / "configs" / "imdb_bilstm.yaml"), *common, "model.embedding_dim=6",
                        "model.hidden_size=5", "model.num_layers=2", "task.max_len=50", "task.vocab_size=30"])  # fmt: skip
        bow = _train(tmp / "bow", args=[str(ROOT / "configs" / "imdb_bow.yaml"), *common, "model.embedding_dim=4", "model.buckets=50"])
        yield {"bilstm": bilstm, "bow": bow}


BILSTM_PANELS = ["layer0.forward", "layer0.backward", "layer1.forward", "layer1.backward"]


def test_imdb_texts_one_output_each(imdb_runs, cli):
    run = imdb_runs["bilstm"]
    texts = ["A great film, I loved it!", "Dull $5 film: a waste of time, bad bad bad"]
    code, out = cli("inspect", run, *texts)
    assert code == 0, out
    outputs = _outputs(run)
    assert [p.name.split("-", 2)[2] for p in outputs] == ["text-a-great-film-i", "text-dull-5-film-a"]
    _, task, _, _ = load_run_model(run, torch.device("cpu"))
    for out_dir, text in zip(outputs, texts):
        batch, _ = task.encode_texts([text])
        steps = int(batch.lengths[0])
        summary, arrays = _check_output(out_dir, "lstm", steps=steps, hidden=5, panels=BILSTM_PANELS)
        assert list(arrays["tokens"]) == task.vocab.decode(batch.inputs[0, :steps])
        assert summary["prediction"]["label"] in ("positive", "negative")
        _check_parameters(summary, "lstm")
        layers = summary["parameters"]["layers"]
        assert [r["input_size"] for r in layers] == [6, 6, 10, 10]  # layer 1 reads both directions


def test_imdb_deciders_add_up_to_the_models_margin_at_the_words_where_units_peak(imdb_runs, cli):
    """Max pooling makes the answer a sum over units, each won at one word: the summary's terms
    must add up to the model's own logit margin, and each word be where its unit peaks."""
    run = imdb_runs["bilstm"]
    text = "A great film, I loved it!"
    before = set(_outputs(run)) if (run / "inspect").exists() else set()
    code, out = cli("inspect", run, text, "--units", "3")
    assert code == 0, out
    assert "the deciders" in out
    (out_dir,) = set(_outputs(run)) - before
    summary = json.loads((out_dir / "summary.json").read_text())
    arrays = np.load(out_dir / "gates.npz")
    d = summary["deciders"]
    cfg, task, model, _ = load_run_model(run, torch.device("cpu"))
    batch, _ = task.encode_texts([text])
    with torch.inference_mode():
        logits = model(batch.inputs, batch.lengths)[0].float()
    assert d["answer"] == int(logits.argmax()) and summary["prediction"]["label"] == task.labels[d["answer"]]
    assert d["margin"] == pytest.approx(float(logits[d["answer"]] - logits[1 - d["answer"]]), abs=1e-3)
    assert len(d["towards"]) == len(d["against"]) == 3
    assert [u["term"] for u in d["towards"]] == sorted((u["term"] for u in d["towards"]), reverse=True)
    for u in d["towards"] + d["against"]:  # layer 1 is the last layer: the one that is pooled
        series = arrays[f"{u['where']}.hidden"][:, u["unit"]]
        assert u["where"].startswith("layer1.") and int(series.argmax()) == u["step"]
        assert u["pooled"] == pytest.approx(float(series.max()), abs=1e-4)
        assert u["token"] == str(arrays["tokens"][u["step"]])


def test_imdb_example_has_its_true_length(imdb_runs, cli):
    run = imdb_runs["bilstm"]
    code, out = cli("inspect", run, "--example", "2", "--split", "val", "--units", "3")
    assert code == 0, out
    (out_dir,) = [p for p in _outputs(run) if p.name.endswith("val-example2")]
    _, task, _, _ = load_run_model(run, torch.device("cpu"))
    length = int(task.data.val.lengths[2])
    summary, arrays = _check_output(out_dir, "lstm", steps=length, hidden=5, panels=BILSTM_PANELS)
    inputs, _, labels = task.data.val.batch([2], pad_id=0)
    assert arrays["token_ids"].tolist() == inputs[0, :length].tolist()
    assert summary["prediction"]["target"] == task.labels[int(labels[0])]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--example", "5000"], "--example 5000: the val split has 10 examples (0 to 9); choose one of those"),
        (["--example", "5000", "--split", "test"], "--example 5000: the test split has 20 examples (0 to 19); choose one of those"),
        (["--example", "-1"], "--example -1"),
        (["   "], "text 1 is empty"),
        (["good", "--example", "0"], "not both"),
        (["--split", "train"], "use val or test"),
        (["--units", "0"], "--units 0"),
    ],
    ids=["example-out-of-range", "example-out-of-range-of-test", "negative-example", "empty-text", "text-and-example", "bad-split", "no-units"],
)
def test_user_mistakes_exit_2_without_a_traceback(imdb_runs, cli, args, message):
    code, out = cli("inspect", imdb_runs["bilstm"], *args)
    assert code == 2 and message in out and "Traceback" not in out, out


def test_runs_that_cannot_be_inspected(imdb_runs, cli, tmp_path):
    code, out = cli("inspect", imdb_runs["bow"], "great film")
    assert code == 2 and "no recurrent cells" in out and "Traceback" not in out, out
    assert not (imdb_runs["bow"] / "inspect").exists()

    copy = tmp_path / "copy"
    shutil.copytree(imdb_runs["bilstm"], copy, ignore=shutil.ignore_patterns("best.pt", "inspect"))
    code, out = cli("inspect", copy)
    assert code == 2 and "no checkpoints/best.pt" in out and f"rnnlab train --resume {copy}" in out, out

    code, out = cli("inspect", tmp_path / "nowhere")
    assert code == 2 and "run directory not found" in out and "Traceback" not in out


def test_text_on_a_task_that_reads_none(tmp_path, cli):
    run = _train(tmp_path, tiny_raw("lstm", steps=10))
    code, out = cli("inspect", run, "hello")
    assert code == 2 and "reads no text" in out and "--example 0" in out and "Traceback" not in out, out
    assert not (run / "inspect").exists()  # refused before anything is written


# --- next-token language model ---------------------------------------------------------------------


def test_next_token_text_and_example(tmp_path, cli):
    raw = {
        "name": "tiny_lm", "seed": 0, "device": "cpu",
        "task": {"name": "next_token", "num_sequences": 100, "min_n": 1, "max_n": 4},
        "model": {"name": "lstm", "hidden_size": 6},
        "train": {"lr": 0.02, "batch_size": 16, "epochs": 1},
    }  # fmt: skip
    run = _train(tmp_path, raw)
    code, out = cli("inspect", run, "a a a b")
    assert code == 0, out
    (text_dir,) = _outputs(run)
    summary, arrays = _check_output(text_dir, "lstm", steps=4, hidden=6, panels=["layer0.forward"])
    assert list(arrays["tokens"]) == ["a", "a", "a", "b"]
    assert summary["prediction"]["next_token"] in ("a", "b", "EOS", "<unk>", "<pad>")

    code, out = cli("inspect", run, "--example", "0", "--split", "val", "--units", "10")  # more units than there are: all 6
    assert code == 0, out
    example_dir = [p for p in _outputs(run) if p != text_dir][0]
    _, task, _, _ = load_run_model(run, torch.device("cpu"))
    first = next(iter(task.eval_batches("val")))
    length = int(first.lengths[0])
    summary, arrays = _check_output(example_dir, "lstm", steps=length, hidden=6, panels=["layer0.forward"])
    assert arrays["token_ids"].tolist() == first.inputs[0, :length].tolist()
    assert sorted(summary["memory_carriers"]["layer0.forward"]["units"]) == list(range(6))


def test_line_plots_count_whole_steps_and_name_a_short_texts_tokens():
    from rnnlab.inspect_plots import MAX_LINE_TOKENS, _step_axis
    from rnnlab.plots import plt

    fig, (short, long, symbols) = plt.subplots(3)
    tokens = ["a", "great", "$5", "film"]
    for ax, toks, is_text in ((short, tokens, True), (long, ["w"] * (MAX_LINE_TOKENS + 1), True), (symbols, ["3", "0", "0"], False)):
        ax.plot(range(len(toks)), range(len(toks)))
        _step_axis(ax, toks, is_text)
    fig.canvas.draw()
    assert [t.get_text() for t in short.get_xticklabels()] == tokens  # as written: "$5" is no math markup
    for ax in (long, symbols):
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
        assert ax.get_xlabel() == "t"
    plt.close(fig)


# --- part-of-speech tagging: free text, tokenized as the task does, one tag per word -------------------

TREEBANK = {
    "train": "1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\n2\tdog\tdog\tNOUN\tNN\t_\t3\tnsubj\t_\t_\n"
             "3\tbarks\tbark\tVERB\tVBZ\t_\t0\troot\t_\t_\n4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_\n\n"
             "1\tA\ta\tDET\tDT\t_\t2\tdet\t_\t_\n2\tcat\tcat\tNOUN\tNN\t_\t3\tnsubj\t_\t_\n"
             "3\tsleeps\tsleep\tVERB\tVBZ\t_\t0\troot\t_\t_\n\n",
    "dev": "1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\n2\tcat\tcat\tNOUN\tNN\t_\t3\tnsubj\t_\t_\n"
           "3\tbarks\tbark\tVERB\tVBZ\t_\t0\troot\t_\t_\n\n",
}  # fmt: skip


def test_a_tagging_run_reads_free_text_and_shows_each_words_tag(tmp_path, cli):
    """Issue 27, item 26: a tagging run reads text, split into words as the task splits them (an
    unknown word reads as <unk>), and shows each word's tag: the run's own model's answer."""
    folder = tmp_path / "tb"
    folder.mkdir()
    for split, text in (*TREEBANK.items(), ("test", TREEBANK["dev"])):
        (folder / f"xx_tiny-ud-{split}.conllu").write_text(text, encoding="utf-8")
    raw = {"name": "tiny_pos", "seed": 0, "device": "cpu", "task": {"name": "tagging", "treebank": str(folder)},
           "model": {"name": "bilstm", "hidden_size": 8, "embedding_dim": 8},
           "train": {"lr": 0.05, "batch_size": 2, "steps": 30, "eval_every": 10}}  # fmt: skip
    run = _train(tmp_path, raw)
    text = "The zebra doesn't bark."
    code, out = cli("inspect", run, text)
    assert code == 0, out
    (out_dir,) = _outputs(run)
    summary, arrays = _check_output(out_dir, "lstm", steps=6, hidden=8, panels=["layer0.forward", "layer0.backward"])
    words = ["The", "zebra", "does", "n't", "bark", "."]
    pred = summary["prediction"]
    assert pred["words"] == list(arrays["tokens"]) == words
    _, task, model, _ = load_run_model(run, torch.device("cpu"))
    batch, _ = task.encode_words([text])
    assert arrays["token_ids"].tolist() == batch.inputs[0].tolist() and arrays["token_ids"][1] == 1  # zebra: <unk>
    with torch.inference_mode():
        expected = [task.tag_names[int(j)] for j in model(batch.inputs, batch.lengths)[0].argmax(-1)]
    assert pred["tags"] == expected and len(pred["probabilities"]) == 6
    assert " ".join(f"{w}/{t}" for w, t in zip(words, expected)) in out

    code, out = cli("inspect", run, "--example", "0")  # an example: its gold tags beside the answer
    assert code == 0, out
    (example_dir,) = set(_outputs(run)) - {out_dir}
    pred = json.loads((example_dir / "summary.json").read_text())["prediction"]
    assert pred["words"] == ["The", "cat", "barks"] and pred["target"] == ["DET", "NOUN", "VERB"]
    assert f"{sum(t == g for t, g in zip(pred['tags'], pred['target']))} of 3 tagged words right" in out
