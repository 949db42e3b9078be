"""`rnnlab evaluate`: recompute a run's metrics from its best checkpoint; several runs: each
member's and their ensemble's (averaged probabilities, rnnlab/ensemble.py).

    rnnlab evaluate runs/20261124-093000-imdb_bilstm              # the validation split
    rnnlab evaluate RUN_A RUN_B RUN_C
    rnnlab evaluate runs/20261124-093000-imdb_bilstm --split test  # the final figure, once chosen
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from ..engine import evaluate as evaluate_split
from ..engine import load_run_model
from ..ensemble import check_same_examples, load_members, scores, split_probabilities
from ..errors import UserError
from ..runtime import inference_autocast, resolve_device
from ..rundir import resolve_run

__all__ = ["evaluate"]


def evaluate(runs: list[Path], *, split: str = "val", device: str = "auto", console: Console) -> dict[str, Any]:
    if split not in ("val", "test"):
        raise UserError(f"--split {split!r}: use val or test")
    if not runs:
        raise UserError("name a run directory: rnnlab evaluate runs/<run> (several runs: their ensemble)")
    if len(runs) > 1:
        return evaluate_ensemble(runs, split=split, device=device, console=console)
    run = resolve_run(runs[0])
    dev = resolve_device(device)
    cfg, task, model, _ = load_run_model(run, dev)
    # The precision the run was scored in at the end of training, so the figures agree with summary.json.
    metrics = evaluate_split(model, task, split, dev, autocast=inference_autocast(cfg.train.precision, dev)())
    table = Table(title=f"{run.name} · {split}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        if isinstance(v, float):
            table.add_row(k, f"{100 * v:.2f}%" if k.endswith("accuracy") else f"{v:.4f}")
    console.print(table)
    if "confusion" in metrics:
        _print_confusion(console, metrics["confusion"], metrics.get("labels"))
    return metrics


def _print_confusion(console: Console, matrix: list[list[int]], labels: list[str] | None) -> None:
    labels = labels or [str(i) for i in range(len(matrix))]
    table = Table(title="confusion matrix (rows: true, columns: predicted)", title_justify="left")
    table.add_column("")
    for name in labels:
        table.add_column(name, justify="right")
    for name, row in zip(labels, matrix):
        table.add_row(name, *(f"{int(v):,}" for v in row))
    console.print(table)


def evaluate_ensemble(runs: list[Path], *, split: str, device: str, console: Console) -> dict[str, Any]:
    """Each member's accuracy and loss on `split`, then the ensemble's (mean of the probabilities)."""
    dev = resolve_device(device)
    members = load_members(runs, dev)
    answers = [split_probabilities(m, split, dev) for m in members]
    check_same_examples(members, answers, split)
    labels = answers[0].labels
    table = Table(title=f"ensemble of {len(members)} runs · {split} · {len(labels):,} examples", title_justify="left")
    for col in ("run", "model", "loss", "accuracy"):
        table.add_column(col, justify="left" if col in ("run", "model") else "right")
    rows = []
    for m, a in zip(members, answers):
        s = scores(a.probs, labels)
        rows.append({"run": str(m.run), "model": m.cfg.model.name, **s})
        table.add_row(m.run.name, m.cfg.model.name, f"{s['loss']:.4f}", f"{100 * s['accuracy']:.2f}%")
    mean = torch.stack([a.probs for a in answers]).mean(0)
    ensemble = scores(mean, labels)
    table.add_row("[bold]ensemble (mean probability)[/]", "", f"{ensemble['loss']:.4f}", f"[bold]{100 * ensemble['accuracy']:.2f}%[/]")
    console.print(table)
    return {"split": split, "members": rows, "ensemble": ensemble}
