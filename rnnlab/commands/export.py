"""`rnnlab export`: a trained text classifier as ONNX or TorchScript, with the JSON inference needs.

    rnnlab export runs/20261124-093000-imdb_bilstm --format onnx
    rnnlab export runs/20261124-093000-imdb_bilstm --format torchscript --out model.pt

The work is in rnnlab/export.py (shared with `rnnlab predict --onnx`); docs/export.md serves it.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ..export import export_run
from ..rundir import resolve_run

__all__ = ["export"]


def export(run: Path, *, fmt: str, out: Path | None, console: Console) -> tuple[Path, Path]:
    run = resolve_run(run)
    model_path, meta_path, diff = export_run(run, fmt, out)
    console.print(f"wrote {escape(str(model_path))} and {escape(str(meta_path))}", soft_wrap=True)
    console.print(f"checked: its logits equal rnnlab's to {diff:.1e} on a batch of lengths 1 to 9", highlight=False)
    if fmt == "onnx":
        console.print(f'try it:  rnnlab predict --onnx {escape(str(model_path))} "a great film"', soft_wrap=True)
    return model_path, meta_path
