"""The run directory: everything a user keeps from a run, written so that nothing is lost.

    runs/20261124-093000-long_dependency_lstm/
        config.yaml  metrics.jsonl  summary.json  checkpoints/{best,last}.pt  plots/*.png
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["create_run_dir", "MetricsLog", "write_atomic", "write_json", "read_json", "read_metrics"]


def create_run_dir(parent: str | Path, name: str, stamp: str | None = None) -> Path:
    """A new `<parent>/<YYYYmmdd-HHMMSS>-<name>`; never reuses an existing directory."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    base = f"{stamp or time.strftime('%Y%m%d-%H%M%S')}-{name}"
    for i in range(1, 10_000):
        path = parent / (base if i == 1 else f"{base}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run directory under {parent}")


def write_atomic(path: Path, data: bytes) -> None:
    """Temporary file, flush and fsync, rename: a reader sees the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a run's files should read like any other
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_UMASK = os.umask(0)
os.umask(_UMASK)


def _clean(obj: Any) -> Any:
    """JSON has no NaN/inf: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(_clean(obj), indent=2) + "\n").encode())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


class MetricsLog:
    """metrics.jsonl: one JSON object per evaluation, appended and flushed as it happens."""

    def __init__(self, path: Path | None):
        self.path = path  # None: keep rows in memory only (processes other than rank 0)
        self.rows: list[dict[str, Any]] = []

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if self.path is None:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(_clean(row)) + "\n")
            f.flush()


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
