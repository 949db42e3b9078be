"""What a run refuses, or cleans up, before it goes on: an edited config on --resume, the files a
kill -9 left half-written, and the out-of-memory error that a smaller setting would avoid.

    rnnlab train --resume runs/20261124-093000-copy_lstm
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from .config import config_to_dict, dotted, resolve_config
from .errors import UserError
from .rundir import partial_writes

__all__ = ["out_of_memory", "remove_partial_writes", "refuse_edited_config"]


def out_of_memory(e: BaseException) -> bool:
    """torch's allocators raise a RuntimeError (CPU: "can't allocate memory"; CUDA and MPS: an
    OutOfMemoryError, "out of memory"); Python's, a MemoryError."""
    if isinstance(e, MemoryError) or isinstance(e, getattr(torch, "OutOfMemoryError", MemoryError)):
        return True
    text = str(e).lower()
    return isinstance(e, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


def remove_partial_writes(run_dir: Path) -> list[str]:
    """Delete the temporary files of checkpoint and summary writes a kill -9 cut short (each as
    big as a checkpoint); a line for the log when there were any."""
    removed = []
    for path in partial_writes(run_dir):
        try:
            size = path.stat().st_size
            path.unlink()
        except OSError:
            continue
        removed.append(f"{path.relative_to(run_dir)} ({size / 1e6:.1f} MB)")
    return [f"removed {len(removed)} unfinished write(s) of an earlier process: {', '.join(removed)}"] if removed else []


# Where and how a machine runs it, not what the run is: a run may be resumed on another machine.
_RESUMABLE_ELSEWHERE = ("device", "runtime.")


def refuse_edited_config(started: Any, now: dict[str, Any], run_dir: Path) -> None:
    """--resume continues the run that last.pt holds, with the config it started with; a
    config.yaml edited since would train the rest of the run on other settings."""
    if not isinstance(started, dict):
        return  # load_run_model and the state dicts above judge a damaged checkpoint
    try:  # through today's defaults, so that a key added since does not count as an edit
        started = config_to_dict(resolve_config(started))
    except UserError:
        pass
    before, after = dotted(started), dotted(now)
    changed = [k for k in sorted(before.keys() | after.keys()) if before.get(k) != after.get(k) and not k.startswith(_RESUMABLE_ELSEWHERE)]
    if not changed:
        return
    shown = "; ".join(f"{k}: {_yaml_value(after.get(k))} now, {_yaml_value(before.get(k))} when it started" for k in changed[:5])
    more = f" (and {len(changed) - 5} more)" if len(changed) > 5 else ""
    raise UserError(
        f"--resume {run_dir}: config.yaml was edited after the run started ({shown}{more}); resuming would train the "
        f"rest of the run on other settings. Restore config.yaml ({changed[0]}: {_yaml_value(before.get(changed[0]))}) "
        f"to resume, or start a new run with the new settings: rnnlab train {run_dir / 'config.yaml'}"
    )


def _yaml_value(v: Any) -> str:
    return yaml.safe_dump(v, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()
