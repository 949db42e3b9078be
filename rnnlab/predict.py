"""Classify raw texts with a trained run.

    rnnlab predict "great movie" "terrible film, a waste of time"

Finds the newest run under runs/ whose task classifies text and which has a best checkpoint,
rebuilds task and model from that checkpoint alone (config and vocabulary are inside it), and
answers with a label and a confidence per text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .engine import load_run_model
from .errors import UserError
from .runtime import resolve_device

__all__ = ["find_latest_run", "predict_texts", "MAX_PREDICT_TOKENS"]

# Reviews in IMDb are at most ~2,700 tokens; a longer text is read up to here.
MAX_PREDICT_TOKENS = 5_000
TRAIN_HINT = "train one with: rnnlab train configs/imdb_bilstm_cpu.yaml"


def _run_task(run: Path) -> str | None:
    for name in ("summary.json", "config.yaml"):
        path = run / name
        if path.is_file():
            try:
                if name.endswith(".json"):
                    return json.loads(path.read_text()).get("task")
                import yaml

                return (yaml.safe_load(path.read_text()) or {}).get("task", {}).get("name")
            except (ValueError, OSError, AttributeError):
                return None
    return None


def find_latest_run(runs_dir: Path, task: str = "imdb") -> Path:
    """The newest run of `task` that has checkpoints/best.pt (run names start with a timestamp)."""
    if runs_dir.is_dir():
        runs = sorted((p for p in runs_dir.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True)
        for run in runs:
            if (run / "checkpoints" / "best.pt").is_file() and _run_task(run) == task:
                return run
    raise UserError(f"no trained {task} model found under {runs_dir}/; {TRAIN_HINT} (or pass --run RUN_DIR)")


def predict_texts(run: Path, texts: list[str], device: str = "auto") -> list[dict[str, Any]]:
    if not texts:
        raise UserError("no text given: pass texts as arguments, or --file F with one text per line (- reads stdin)")
    for i, text in enumerate(texts, start=1):
        if not text.strip():
            raise UserError(f"text {i} is empty; give some words to classify, e.g. rnnlab predict \"great movie\"")
    dev = resolve_device(device)
    cfg, task, model, _ = load_run_model(run, dev)
    if not hasattr(task, "encode_texts"):
        raise UserError(f"{run} is a run of task '{cfg.task.name}', which does not classify text; {TRAIN_HINT}")
    results = []
    with torch.inference_mode():
        for text in texts:
            batch, known = task.encode_texts([text], max_tokens=MAX_PREDICT_TOKENS)
            batch = batch.to(dev)
            probs = model(batch.inputs, batch.lengths).softmax(-1)[0].cpu()
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
