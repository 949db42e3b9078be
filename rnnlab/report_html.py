"""Run reports as self-contained HTML pages (report.py writes the result tables; this, the pages).

    rnnlab report runs/<run>                 # RUN/report.html
    rnnlab report runs/<a> runs/<b>          # one page for both: runs/report-<time>.html
    rnnlab runs --html                       # runs/index.html, linking every run's report.html

A report shows the resolved config, the training and validation curves of metrics.jsonl
(interactive: hover for the values), the final table of summary.json, the checkpoints and the
status, and links to the run's inspect pages (RUN/inspect/*/index.html, from `rnnlab inspect
--html`). The data is inline and the script is assets/report.js: nothing is fetched.
"""

from __future__ import annotations

import json
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import UserError
from .gateview import page_html
from .rundir import read_metrics, write_atomic

__all__ = ["write_report", "write_runs_index", "run_dirs", "REPORT_NAME", "INDEX_NAME"]

REPORT_NAME = "report.html"
INDEX_NAME = "index.html"
_RUN_FILES = ("config.yaml", "summary.json", "metrics.jsonl")
# Not curves: where and when a row was measured, and the learning rate (a setting, shown in the table).
_NOT_CURVES = {"step", "epoch", "split", "elapsed_s", "lr", "grad_norm"}


def _is_run(path: Path) -> bool:
    return any((path / f).is_file() for f in _RUN_FILES)


def run_dirs(paths: list[Path]) -> list[Path]:
    """The runs the paths name: a run directory itself, or a folder of runs (a comparison) for
    the runs directly inside it. A path that names neither is the user's mistake."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise UserError(f"{path} is not a directory; name a run directory (`rnnlab runs` lists them)")
        if _is_run(path) and not (path / "results.csv").is_file():
            found.append(path)
            continue
        inner = sorted(p for p in path.iterdir() if p.is_dir() and _is_run(p))
        if not inner:
            raise UserError(f"{path} is not a run: it holds no config.yaml, summary.json or metrics.jsonl, "
                            "and no runs; name a run directory (`rnnlab runs` lists them)")  # fmt: skip
        found += inner
    return list(dict.fromkeys(found))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _link(target: Path, page_dir: Path) -> str:
    return Path(os.path.relpath(target, page_dir)).as_posix()


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def run_data(run: Path, page_dir: Path) -> dict[str, Any]:
    """What the report shows of one run; links relative to the page's folder `page_dir`."""
    try:
        config = (run / "config.yaml").read_text(encoding="utf-8")
    except OSError:
        config = None
    summary = _read_json(run / "summary.json")
    summary = summary if isinstance(summary, dict) else {}
    rows = read_metrics(run)
    curves: dict[str, dict[str, list[list[float]]]] = {}  # metric -> split -> [[step, value], ...]
    for r in rows:
        split, step = r.get("split"), r.get("step")
        if not isinstance(split, str) or not isinstance(step, (int, float)):
            continue
        for key, value in r.items():
            if key not in _NOT_CURVES and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                curves.setdefault(key, {}).setdefault(split, []).append([step, value])
    checkpoints = []
    for p in sorted((run / "checkpoints").glob("*.pt")) if (run / "checkpoints").is_dir() else []:
        st = p.stat()
        checkpoints.append({"name": p.name, "bytes": st.st_size, "modified": _stamp(st.st_mtime)})
    inspect = []
    for page in sorted((run / "inspect").glob("*/index.html")) if (run / "inspect").is_dir() else []:
        about = _read_json(page.parent / "summary.json") or {}
        inspect.append({"name": page.parent.name, "href": _link(page, page_dir), "input": about.get("input"),
                        "prediction": about.get("prediction")})  # fmt: skip
    lr = [[r["step"], r["lr"]] for r in rows if r.get("split") == "train" and isinstance(r.get("lr"), (int, float))]
    return {
        "name": run.name, "path": str(run), "href": _link(run, page_dir), "status": summary.get("status"),
        "summary": summary, "config": config, "curves": curves, "lr": lr, "checkpoints": checkpoints, "inspect": inspect,
    }  # fmt: skip


def write_report(runs: list[Path], out: Path | None = None) -> Path:
    """One page for the runs: RUN/report.html for one run (rewritten each time: it is derived),
    else `out` or `<parent of the first run>/report-<time>.html`, never over an existing file."""
    if out is None:
        out = runs[0] / REPORT_NAME if len(runs) == 1 else runs[0].parent / f"report-{time.strftime('%Y%m%d-%H%M%S')}.html"
        if len(runs) > 1 and out.exists():
            raise UserError(f"{out} exists; wait a second or give --out")
    elif out.exists() and out.is_dir():
        raise UserError(f"--out {out} is a directory; give a file name such as {out / 'report.html'}")
    elif out.exists():
        raise UserError(f"--out {out} exists; give a new file name (reports never overwrite a file)")
    data = {
        "kind": "report",
        "title": runs[0].name if len(runs) == 1 else f"{len(runs)} runs",
        "made": _stamp(time.time()),
        "runs": [run_data(r, out.parent) for r in runs],
    }
    _write(out, data["title"] + " · rnnlab report", data, "give a writable --out, e.g. --out /tmp/report.html")
    return out


def write_runs_index(runs_dir: Path, rows: list[dict[str, Any]]) -> tuple[Path, int]:
    """RUNS_DIR/index.html: every row of `rnnlab runs`, each run linked to its report.html,
    which is (re)written here; returns the page and how many reports were written."""
    written = 0
    shown = []
    for row in rows:
        path = runs_dir / row["path"]
        row = dict(row)
        row["href"] = _link(path, runs_dir)
        # Only into real run directories (they have checkpoints/): never into copies of a run's
        # files kept elsewhere, such as the artifacts of docs/results/ when --runs-dir is a checkout.
        if row["kind"] == "run" and row["status"] != "unreadable" and (path / "checkpoints").is_dir():
            try:
                row["report"] = _link(write_report([path], None), runs_dir)
                written += 1
            except (OSError, UserError):
                row["report"] = None  # a read-only run: the row still links its folder
        shown.append(row)
    data = {"kind": "index", "title": f"runs under {runs_dir}", "made": _stamp(time.time()), "rows": shown}
    out = runs_dir / INDEX_NAME
    _write(out, data["title"] + " · rnnlab", data, "list a writable copy of the runs directory, or drop --html")
    return out, written


def _write(out: Path, title: str, data: dict[str, Any], fix: str) -> None:
    try:
        write_atomic(out, page_html(title, data, "report.js").encode("utf-8"))
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}; {fix}") from None
