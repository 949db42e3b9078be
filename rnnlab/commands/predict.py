"""`rnnlab predict`: label raw texts with a trained run.

    rnnlab predict "great movie" "terrible film, a waste of time"
    rnnlab predict --file reviews.txt --json

Finds the newest run under runs/ (inside compare directories too) whose task declares that it
classifies text (contract.ClassifiesText) or tags it (contract.TagsText) and which has a best
checkpoint, rebuilds task and model from that checkpoint alone (config and vocabulary are inside
it), and answers with a label and a confidence per text, or a tag per word.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..contract import ClassifiesText, TagsText
from ..engine import find_latest_run, load_run_model
from ..errors import UserError
from ..runtime import inference_autocast, resolve_device
from ..rundir import resolve_run

__all__ = ["predict", "predict_texts", "predict_onnx", "read_lines", "MAX_PREDICT_TOKENS"]

# Reviews in IMDb are at most ~2,700 tokens; a longer text is read up to here.
MAX_PREDICT_TOKENS = 5_000
TRAIN_HINT = "train one with: rnnlab train configs/imdb_bilstm.yaml"


def predict_texts(run: Path, texts: list[str], device: str = "auto") -> list[dict[str, Any]]:
    if not texts:
        raise UserError("no text given: pass texts as arguments, or --file F with one text per line (- reads stdin)")
    for i, text in enumerate(texts, start=1):
        if not text.strip():
            raise UserError(f"text {i} is empty; give some words to classify, e.g. rnnlab predict \"great movie\"")
    dev = resolve_device(device)
    cfg, task, model, _ = load_run_model(run, dev)
    autocast = inference_autocast(cfg.train.precision, dev)  # the precision it was trained and scored in
    if isinstance(task, TagsText):
        return _tag(task, model, texts, dev, autocast)
    if not isinstance(task, ClassifiesText):
        raise UserError(f"{run} is a run of task '{cfg.task.name}', which does not classify text; {TRAIN_HINT}")
    results = []
    with torch.inference_mode(), autocast():
        for text in texts:
            batch, known = task.encode_texts([text], max_tokens=MAX_PREDICT_TOKENS)
            batch = batch.to(dev)
            probs = model(batch.inputs, batch.lengths).float().softmax(-1)[0].cpu()
            label = int(probs.argmax())
            results.append(
                {
                    "text": text,
                    "label": task.labels[label],
                    "confidence": round(float(probs[label]), 4),
                    "probabilities": {name: round(float(p), 4) for name, p in zip(task.labels, probs)},
                    "known_tokens": known[0],
                    "tokens": int(batch.lengths[0]),
                }
            )
    return results


def _tag(task: TagsText, model: torch.nn.Module, texts: list[str], dev: torch.device, autocast: Any) -> list[dict[str, Any]]:
    results = []
    with torch.inference_mode(), autocast():
        for text in texts:
            batch, words = task.encode_words([text])
            batch = batch.to(dev)
            pred = model(batch.inputs, batch.lengths).argmax(-1)[0].cpu().tolist()
            results.append({"text": text, "words": words[0], "tags": [task.tag_names[i] for i in pred[: len(words[0])]]})
    return results


def read_lines(file: str) -> list[str]:
    """One text per line; blank lines are skipped. Invalid UTF-8 is an error that says where."""
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except FileNotFoundError:
        raise UserError(f"--file {file}: no such file") from None
    except OSError as e:
        raise UserError(f"--file {file}: cannot read: {e.strerror}") from None
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is not part of the first word
    except UnicodeDecodeError as e:
        where = "stdin" if file == "-" else file
        raise UserError(f"{where} is not valid UTF-8 (byte {data[e.start]:#04x} at offset {e.start}); save it as UTF-8") from None
    return [line for line in text.splitlines() if line.strip()]


def _printable(text: str) -> str:
    """Control characters (terminal escape sequences) shown as '?', so a text cannot drive the terminal."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", lambda m: " " if m.group() in "\n\t" else "?", text)


def ensemble_texts(runs: list[Path], texts: list[str], device: str = "auto") -> list[dict[str, Any]]:
    """Each text labelled by several runs at once: the mean of their class probabilities, and
    each member's answer. Every member reads the text with its own vocabulary and truncation."""
    from ..ensemble import load_members

    for i, text in enumerate(texts, start=1):
        if not text.strip():
            raise UserError(f"text {i} is empty; give some words to classify, e.g. rnnlab predict \"great movie\"")
    dev = resolve_device(device)
    members = load_members(runs, dev)
    labels = members[0].task.labels
    results = []
    with torch.inference_mode():
        for text in texts:
            each = []
            for m in members:
                batch, _ = m.task.encode_texts([text], max_tokens=MAX_PREDICT_TOKENS)
                batch = batch.to(dev)
                with m.autocast():
                    each.append(m.model(batch.inputs, batch.lengths).float().softmax(-1)[0].cpu())
            mean = torch.stack(each).mean(0)
            label = int(mean.argmax())
            results.append({
                "text": text, "label": labels[label], "confidence": round(float(mean[label]), 4),
                "probabilities": {name: round(float(p), 4) for name, p in zip(labels, mean)},
                "members": [{"run": str(m.run), "label": labels[int(p.argmax())], "confidence": round(float(p.max()), 4)}
                            for m, p in zip(members, each)],
            })  # fmt: skip
    return results


def predict(
    texts: list[str], *, run: Path | list[Path] | None, file: str | None, as_json: bool, runs_dir: Path, device: str, console: Console
) -> list[dict[str, Any]]:
    """The command: find the run (or take several: an ensemble), label the texts, print a table (or JSON)."""
    all_texts = list(texts) + (read_lines(file) if file is not None else [])
    if not all_texts:
        raise UserError('no text given: rnnlab predict "great movie", or --file F with one text per line (- = stdin)')
    runs = [run] if isinstance(run, Path) else list(run or [])
    if len(runs) > 1:
        results = ensemble_texts(runs, all_texts, device)
        if as_json:
            print(json.dumps({"runs": [str(r) for r in runs], "predictions": results}, indent=2))
        else:
            _print_labels(console, f"predictions of an ensemble of {len(runs)} runs", results)
        return results
    run_dir = runs[0] if runs else find_latest_run(runs_dir, (ClassifiesText, TagsText), "imdb model", "nor any other run that classifies or tags text; " + TRAIN_HINT)
    run_dir = resolve_run(run_dir)
    results = predict_texts(run_dir, all_texts, device)
    if as_json:
        print(json.dumps({"run": str(run_dir), "predictions": results}, indent=2))
        return results
    if results and "tags" in results[0]:
        for r in results:
            line = " ".join(f"{escape(_printable(w))}[dim]/{t}[/]" for w, t in zip(r["words"], r["tags"]))
            console.print(line, soft_wrap=True)
        return results
    _print_labels(console, f"predictions of {run_dir.name}", results)
    return results


def predict_onnx(path: Path, texts: list[str], *, file: str | None, as_json: bool, console: Console) -> list[dict[str, Any]]:
    """`--onnx PATH`: the exported model (rnnlab export) on onnxruntime, with its JSON alone; one
    padded batch of all the texts."""
    import numpy as np

    from ..export import encode, load_metadata, onnx_logits, onnx_session

    all_texts = list(texts) + (read_lines(file) if file is not None else [])
    if not all_texts:
        raise UserError(f'no text given: rnnlab predict --onnx {path} "great movie", or --file F with one text per line')
    for i, text in enumerate(all_texts, start=1):
        if not text.strip():
            raise UserError(f"text {i} is empty; give some words to classify, e.g. rnnlab predict \"great movie\"")
    meta = load_metadata(path)
    if meta.get("format", "onnx") != "onnx":  # the TorchScript export's JSON beside a .pt
        raise UserError(f"{path} is a {meta['format']} export; --onnx takes the .onnx file of rnnlab export RUN --format onnx "
                        f"(a TorchScript model loads with torch.jit.load('{path}'), see docs/export.md)")  # fmt: skip
    tokens, lengths = encode(meta, all_texts, max_tokens=MAX_PREDICT_TOKENS)
    logits = onnx_logits(onnx_session(path), tokens, lengths).astype(np.float64)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    labels = meta["labels"]
    results = [
        {"text": text, "label": labels[int(p.argmax())], "confidence": round(float(p.max()), 4),
         "probabilities": {name: round(float(q), 4) for name, q in zip(labels, p)},
         "known_tokens": int((row[:n] > meta["unk_id"]).sum()), "tokens": int(n)}
        for text, p, row, n in zip(all_texts, probs, tokens, lengths)
    ]  # fmt: skip
    if as_json:
        print(json.dumps({"onnx": str(path), "predictions": results}, indent=2))
    else:
        _print_labels(console, f"predictions of {path} (onnxruntime)", results)
    return results


def _print_labels(console: Console, title: str, results: list[dict[str, Any]]) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("text", overflow="fold", max_width=60)
    table.add_column("label")
    table.add_column("confidence", justify="right")
    for r in results:
        short = r["text"] if len(r["text"]) <= 120 else r["text"][:117] + "..."
        note = "" if r.get("known_tokens", 1) else "  [dim](no known words: a guess)[/]"
        color = "green" if r["label"] == "positive" else "red"
        table.add_row(escape(_printable(short)), f"[{color}]{r['label']}[/]{note}", f"{100 * r['confidence']:.1f}%")
    console.print(table)
