"""Self-describing checkpoints: weights, resolved config, task state (e.g. a vocabulary), version.

    rnnlab evaluate runs/<run>      # loads checkpoints/best.pt

Loaded only with `torch.load(..., weights_only=True)`: a file that would run code when
unpickled is refused, never executed.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .errors import UserError
from .rundir import write_atomic

__all__ = ["FORMAT", "save_checkpoint", "load_checkpoint"]

FORMAT = "rnnlab-checkpoint-1"


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "rnnlab_version": __version__, **payload}, buffer)
    write_atomic(path, buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    again = f"rnnlab train {path.parent.parent / 'config.yaml'}" if path.parent.name == "checkpoints" else "rnnlab train CONFIG"
    if path.stat().st_size == 0:
        raise UserError(
            f"{path} is empty (0 bytes): whatever wrote it was cut short (rnnlab itself writes checkpoints whole or "
            f"not at all; a failed copy or a full disk leaves this). Restore it from a copy of the run, or train the run again: {again}"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise UserError(
            f"{path}: refused to load: the file holds objects other than tensors and plain data, "
            f"which could run code when unpickled ({(str(e).splitlines() or [type(e).__name__])[0][:200]}). "
            "Only load checkpoints that rnnlab wrote."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError) as e:  # a cut-short pickle: any of these
        why = (str(e).splitlines() or [type(e).__name__])[0][:200]  # an EOFError may have no text at all
        raise UserError(
            f"{path}: not a readable checkpoint (truncated or corrupt?): {why}. Restore it from a copy of the run, "
            f"or train the run again: {again}"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path}: not an rnnlab checkpoint (expected format {FORMAT})")
    return ckpt
