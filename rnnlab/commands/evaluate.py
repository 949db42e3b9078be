"""`rnnlab evaluate`: recompute a run's metrics from its best checkpoint.

    rnnlab evaluate runs/20261124-093000-imdb_bilstm --split test
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..engine import evaluate as evaluate_split
from ..engine import load_run_model
from ..errors import UserError
from ..runtime import inference_autocast, resolve_device

__all__ = ["evaluate"]


def evaluate(run: Path, *, split: str, device: str, console: Console) -> dict[str, Any]:
    if split not in ("val", "test"):
        raise UserError(f"--split {split!r}: use val or test")
    if not run.is_dir():
        raise UserError(f"run directory not found: {run}")
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
