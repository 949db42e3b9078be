"""`rnnlab runs`: every run under a runs directory, one row each, with its status and best metrics.

    rnnlab runs --runs-dir runs --status completed --sort val

What is listed (`collect_runs`), searching the runs directory recursively:

- A *run* is a directory holding summary.json, config.yaml or metrics.jsonl. It is one row;
  its checkpoints/ and plots/ are not searched.
- A *compare* directory (results.csv, or a summary.json with an "aggregate") and a *probe*
  directory (task "gradient_probe", or gradients.csv) are one row each (kind "compare" /
  "probe", their models in `models`), and the runs inside them are listed too, each a row of
  its own. A comparison still training has no summary.json yet; its folder name
  (`<time>-compare-...`) still gives it a row, "running" while one of its runs is.
- Any other folder is only searched for runs. It is reported as "unreadable" when it claims to
  be a run and is not: its name has a run's `YYYYmmdd-HHMMSS-` prefix but it holds no run
  files and no runs. A *file* with such a name is "unreadable" too. Other files and folders
  (notes, plots/, hidden entries) are skipped silently, so `runs/` may hold anything else.
- "unreadable" (with a `reason`): summary.json that is not valid JSON, not an object or has no
  status; a run without summary.json whose process is gone (see below); a folder that cannot
  be listed or a summary.json that cannot be read (permissions). Never a traceback.

Is a run whose summary.json says "running" still training? (summary.json is written when the
run starts and when it ends, so a killed process leaves "running" behind.)

1. The lock file `<run>/.lock` ("HOST PID", written by training while it runs; a bare "PID"
   is read too) decides when it names a process on this host: alive -> "running"; gone (kill
   -9, a crash, a reboot) -> "stopped". A lock from another host cannot be checked from here.
2. Without a lock that decides, the newest modification time of checkpoints/last.pt,
   metrics.jsonl and summary.json decides: older than `STALE_AFTER_S` (10 minutes) ->
   "stopped?" (a guess, hence the "?"), otherwise "running". The newest of the three, not
   last.pt alone, because a live run appends metrics.jsonl at every evaluation but may write
   last.pt only at epoch ends or every `train.checkpoint_every` steps. A run evaluating less
   often than every 10 minutes therefore shows "stopped?" between evaluations.

The same rule applies to a run directory without summary.json (config.yaml is written first,
summary.json a moment later): recent or locked by a live process -> "running", else
"unreadable". For "running", "stopped" and "stopped?" runs, `steps`, `val` and `wall_time_s`
come from metrics.jsonl, so they show the progress so far.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import UserError
from ..report_html import write_runs_index
from ..rundir import partial_writes, read_json, read_metrics

__all__ = ["runs", "collect_runs", "STATUSES", "SORT_KEYS", "STALE_AFTER_S"]

STALE_AFTER_S = 600.0
STATUSES = ("running", "completed", "interrupted", "diverged", "failed", "stopped", "stopped?", "unreadable")
SORT_KEYS = ("start", "name", "task", "model", "status", "steps", "val", "test", "wall_time", "params")
_ROW_KEYS = ("kind", "name", "start", "task", "model", "models", "params", "status", "steps",
             "metric", "val", "test", "wall_time_s", "path", "reason", "partial_writes")
_RUN_NAME = re.compile(r"^(\d{8})-(\d{6})(?:-(.*))?$")
_RUN_FILES = {"summary.json", "config.yaml", "metrics.jsonl"}
_NOT_SEARCHED = {"checkpoints", "plots"}  # inside a run or a group: weights and images, never runs
_MAX_DEPTH = 8  # runs nest at most runs/compare/run or runs/probe/training/run; this only stops a runaway walk
_MAX_NOTES = 20
_HINT = "rnnlab train configs/long_dependency_lstm.yaml"
_STATUS_STYLE = {"completed": "green", "running": "cyan", "interrupted": "yellow", "stopped": "yellow",
                 "stopped?": "yellow", "diverged": "red", "failed": "red", "unreadable": "red"}


def runs(
    runs_dir: Path | str = Path("runs"),
    *,
    task: str | None = None,
    model: str | None = None,
    status: str | None = None,
    sort: str = "start",
    as_json: bool = False,
    console: Console | None = None,
    html: bool = False,
) -> list[dict[str, Any]]:
    """List the runs under `runs_dir` as a table (or a JSON list with `as_json`); returns the rows shown.
    With `html`, also RUNS_DIR/index.html of the same rows, each run's report.html written and linked.

    Filters match exactly; `model` also matches a comparison or probe that includes the model,
    and `status="stopped"` matches "stopped?" too (no quoting of the ? needed in a shell).
    Sorting: `start` is chronological (newest last, next to the prompt; a comparison comes
    right before its runs); name, task, model and status alphabetical; steps, val, test,
    wall_time and params largest first (val/test: best first, so lowest first for a loss);
    missing values always last.
    """
    console = console or Console()
    if sort not in SORT_KEYS:
        raise UserError(f"unknown sort key {sort!r}; allowed: {', '.join(SORT_KEYS)}")
    if status is not None and status not in STATUSES:
        raise UserError(f"unknown status {status!r}; allowed: {', '.join(STATUSES)}")
    runs_dir = Path(runs_dir)
    if not runs_dir.exists():
        raise UserError(f"no runs directory {runs_dir}; runs go to ./runs by default, or point --runs-dir at another "
                        f"(start one with: {_HINT})")
    if not runs_dir.is_dir():
        raise UserError(f"--runs-dir {runs_dir} is a file, not a directory")

    every = collect_runs(runs_dir)
    shown = _sorted([r for r in every if _matches(r, task, model, status)], sort)
    if html:  # the same rows as a page (rnnlab/report_html.py)
        page, reports = write_runs_index(runs_dir, shown)
        if not as_json:  # stdout holds only the JSON
            console.print(f"wrote {escape(str(page))} and {reports} run report(s); open it in a browser: "
                          f"file://{escape(str(page.resolve()))}", highlight=False, soft_wrap=True)  # fmt: skip
    if as_json:
        # console.out: no markup, highlighting or wrapping, so the output is exactly the JSON
        console.out(json.dumps(shown, indent=2), highlight=False)
        return shown
    if not every:
        console.print(f"no runs under {escape(str(runs_dir))}; start one with: {_HINT}", highlight=False, soft_wrap=True)
        return shown
    if not shown:
        filters = _filters_text(task, model, status)
        known = _known_values(every, task, model)
        console.print(f"no runs match {filters} ({_counts(every)} under {escape(str(runs_dir))}){known}", highlight=False)
        return shown
    table = _table(shown, tree=sort == "start")
    if console.is_terminal:
        console.print(table)
    else:  # a pipe or a file has no width to fit: every column whole, not cropped to 80
        from rich.measure import Measurement

        width = console.width
        console.width = max(width, Measurement.get(console, console.options.update(width=100_000), table).maximum)
        try:
            console.print(table)
        finally:
            console.width = width
    _print_notes(console, shown)
    footer = f"{_counts(shown)} under {escape(str(runs_dir))}"
    if len(shown) != len(every):
        footer += f" matching {_filters_text(task, model, status)} (of {_counts(every)})"
    console.print(f"[dim]{footer} · sorted by {sort}[/]", highlight=False)
    return shown


def collect_runs(runs_dir: Path | str, *, stale_after_s: float = STALE_AFTER_S, now: float | None = None) -> list[dict[str, Any]]:
    """One row (a dict with the keys of `_ROW_KEYS`) per run, comparison, probe and unreadable entry under `runs_dir`.

    Rows come in directory order (a group before its runs); `path` is relative to `runs_dir`.
    Missing values are None. `val`/`test` hold the task's primary metric (`metric`: accuracy
    when the run reports it, else loss) of the best validation checkpoint and of the test split.
    """
    root = Path(runs_dir)
    try:
        _list_dir(root)
    except OSError as e:
        raise UserError(f"cannot read --runs-dir {root}: {e.strerror or e}") from None
    walk = _Walk(root, stale_after_s, time.time() if now is None else now)
    # The root itself may be a run or a comparison (`--runs-dir runs/<time>-compare-...`): its row has path ".".
    walk.visit(root, depth=0, top=True)
    return walk.rows


# --- the walk -------------------------------------------------------------------------------------


@dataclass
class _Walk:
    root: Path
    stale_after_s: float
    now: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    seen: set[tuple[int, int]] = field(default_factory=set)

    def visit(self, path: Path, depth: int, top: bool = False) -> int:
        """Add the rows for `path` and below; returns how many were added."""
        if path.name.startswith(".") and not top:
            return 0
        try:
            is_dir = path.is_dir()
        except OSError:
            is_dir = False
        if not is_dir:
            if _RUN_NAME.match(path.name):
                what = "a broken link" if path.is_symlink() and not path.exists() else "a file"
                self.rows.append(self._row(path, status="unreadable", reason=f"{what}, not a run directory"))
                return 1
            return 0
        try:
            st = path.stat()
        except OSError as e:
            self.rows.append(self._row(path, status="unreadable", reason=f"cannot read: {e.strerror or e}"))
            return 1
        # Symlinked folders are followed, so a link back up must not loop.
        if (st.st_dev, st.st_ino) in self.seen or depth > _MAX_DEPTH:
            return 0
        self.seen.add((st.st_dev, st.st_ino))
        try:
            entries = _list_dir(path)
        except OSError as e:
            # It may hide runs, whatever its name: worth telling.
            self.rows.append(self._row(path, status="unreadable", reason=f"cannot list the folder: {e.strerror or e}"))
            return 1
        names = {p.name for p in entries}
        if names & _RUN_FILES:
            row = self._describe(path, names)
            _note_partial_writes(row, path)
            self.rows.append(row)
            if row["kind"] == "run" and row["status"] != "unreadable":
                return 1
            # Groups hold runs; a damaged folder may still hold intact runs.
            return 1 + self._children(entries, depth)
        at = len(self.rows)
        found = self._children(entries, depth)
        match = _RUN_NAME.match(path.name)
        if found and match and (match.group(3) or "").startswith("compare-"):
            self.rows.insert(at, self._unfinished_compare(path, self.rows[at:]))
            return found + 1
        if not found and match and not top:
            reason = "not a run directory: no summary.json, config.yaml or metrics.jsonl" + ("" if names else " (empty)")
            self.rows.append(self._row(path, status="unreadable", reason=reason))
            return 1
        return found

    def _children(self, entries: list[Path], depth: int) -> int:
        return sum(self.visit(p, depth + 1) for p in entries if p.name not in _NOT_SEARCHED)

    def _row(self, path: Path, **values: Any) -> dict[str, Any]:
        row: dict[str, Any] = dict.fromkeys(_ROW_KEYS)
        match = _RUN_NAME.match(path.name)
        row.update(kind="run", name=(match.group(3) or path.name) if match else path.name,
                   start=_start(path, match), path=_relative(path, self.root))
        row.update(values)
        return row

    def _describe(self, path: Path, names: set[str]) -> dict[str, Any]:
        summary, problem = _read_summary(path) if "summary.json" in names else (None, None)
        config = _read_config(path) if summary is None and "config.yaml" in names else {}
        kind = _kind(summary, config, names)
        row = self._row(path, kind=kind)
        if summary is None:
            # What config.yaml says is still worth showing beside a missing or damaged summary.
            task = config.get("task") if isinstance(config.get("task"), dict) else {}
            mod = config.get("model") if isinstance(config.get("model"), dict) else {}
            row.update(task=_text(task.get("name")), model=_text(mod.get("name")))
            if kind == "probe":
                row.update(models=_str_list(task.get("models")), model=_joined(_str_list(task.get("models"))))
        if problem is not None:
            row.update(status="unreadable", reason=problem)
            return row
        if summary is None:
            state, why = self._liveness(path, names)
            if state == "running":
                row.update(status="running", reason="starting: no summary.json yet")
            else:
                row.update(status="unreadable", reason=f"no summary.json, and {why}")
            if kind == "run":
                self._progress(path, row, {})
            return row
        row.update(task=_text(summary.get("task")), status=summary["status"], wall_time_s=_number(summary.get("wall_time_s")))
        if kind == "compare":
            models = _str_list(summary.get("models"))
            row.update(models=models, model=_joined(models))
        elif kind == "probe":
            models = list(summary["models"]) if isinstance(summary.get("models"), dict) else _str_list(summary.get("models"))
            row.update(models=models, model=_joined(models))
        else:
            row.update(model=_text(summary.get("model")), params=_integer(summary.get("params")),
                       steps=_integer(summary.get("steps")))
            _fill_metrics(row, summary.get("val"), summary.get("test"))
        if row["status"] == "running":
            state, why = self._liveness(path, names)
            row.update(status=state, reason=why or None)
            if kind == "run":
                self._progress(path, row, summary)
        return row

    def _liveness(self, path: Path, names: set[str]) -> tuple[str, str]:
        """("running" | "stopped" | "stopped?", why): the rule in the module docstring."""
        resume = f"; if so, resume: rnnlab train --resume {path}" if (path / "checkpoints" / "last.pt").is_file() else ""
        if ".lock" in names:
            host, pid = _lock_holder(path / ".lock")
            alive = _pid_alive(pid) if pid is not None and host in (None, socket.gethostname()) else None
            if alive:
                return "running", ""
            if alive is False:
                return "stopped", f"its training process (pid {pid}) is gone{resume.replace('; if so,', ';')}"
        times = []
        for rel in ("checkpoints/last.pt", "metrics.jsonl", "summary.json", "config.yaml"):
            try:
                times.append((path / rel).stat().st_mtime)
            except OSError:
                continue
        if not times:
            return "stopped?", "none of its files can be read"
        age = self.now - max(times)
        if age > self.stale_after_s:
            return "stopped?", f"nothing written for {_duration(age)}: its process probably died{resume}"
        return "running", ""

    def _progress(self, path: Path, row: dict[str, Any], summary: dict[str, Any]) -> None:
        """Steps, wall time and best validation so far, from metrics.jsonl (summary.json has them only at the end)."""
        rows = _read_metric_rows(path / "metrics.jsonl")
        if not rows:
            return
        steps = [r["step"] for r in rows if _integer(r.get("step")) is not None]
        if steps:
            row["steps"] = max(steps + [row["steps"] or 0])
        elapsed = [r["elapsed_s"] for r in rows if _number(r.get("elapsed_s")) is not None]
        if elapsed:
            row["wall_time_s"] = max(elapsed + [row["wall_time_s"] or 0.0])
        if isinstance(summary.get("val"), dict):
            return
        vals = [r for r in rows if r.get("split") == "val"]
        metric = "accuracy" if any(_number(r.get("accuracy")) is not None for r in vals) else "loss"
        scored = [r for r in vals if _number(r.get(metric)) is not None]
        if scored:
            best = (max if metric == "accuracy" else min)(scored, key=lambda r: r[metric])
            row.update(metric=metric, val=best[metric])

    def _unfinished_compare(self, path: Path, inner: list[dict[str, Any]]) -> dict[str, Any]:
        """A comparison folder without summary.json: still training, or stopped before it finished."""
        models = list(dict.fromkeys(r["model"] for r in inner if r["kind"] == "run" and r["model"]))
        tasks = {r["task"] for r in inner if r["task"]}
        row = self._row(path, kind="compare", models=models, model=_joined(models),
                        task=tasks.pop() if len(tasks) == 1 else None)
        if any(r["status"] == "running" for r in inner):
            row.update(status="running", reason="no summary.json yet: still training")
        else:
            row.update(status="stopped?", reason="no summary.json: the comparison did not finish (its runs are listed)")
        return row


def _note_partial_writes(row: dict[str, Any], path: Path) -> None:
    """A process killed while it wrote a checkpoint leaves the temporary file, as big as the
    checkpoint; only a run's own process may still be writing one, so a live run's are not listed."""
    if row["kind"] == "run" and row["status"] != "running":
        row["partial_writes"] = [str(p.relative_to(path)) for p in partial_writes(path)] or None


# --- reading --------------------------------------------------------------------------------------


def _list_dir(path: Path) -> list[Path]:
    with os.scandir(path) as it:
        return sorted((Path(e.path) for e in it), key=lambda p: p.name)


def _read_summary(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(summary, None) or (None, why it is unusable)."""
    try:
        summary = read_json(path / "summary.json")
    except json.JSONDecodeError as e:
        return None, f"summary.json is not valid JSON ({e.msg}, line {e.lineno})"
    except UnicodeDecodeError:
        return None, "summary.json is not text"
    except OSError as e:
        return None, f"cannot read summary.json: {e.strerror or e}"
    if not isinstance(summary, dict):
        return None, "summary.json is not a JSON object"
    if not isinstance(summary.get("status"), str):
        return None, "summary.json has no status"
    return summary, None


def _read_config(path: Path) -> dict[str, Any]:
    """config.yaml as a dict; {} when it cannot be read (it only fills in task and model here)."""
    try:
        config = yaml.safe_load((path / "config.yaml").read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return config if isinstance(config, dict) else {}


def _read_metric_rows(path: Path) -> list[dict[str, Any]]:
    try:
        return read_metrics(path.parent)
    except OSError:
        return []


def _kind(summary: dict[str, Any] | None, config: dict[str, Any], names: set[str]) -> str:
    task = (summary or {}).get("task")
    if task is None and isinstance(config.get("task"), dict):
        task = config["task"].get("name")
    if task == "gradient_probe" or "gradients.csv" in names:
        return "probe"
    if "results.csv" in names or (summary is not None and "aggregate" in summary):
        return "compare"
    return "run"


def _fill_metrics(row: dict[str, Any], val: Any, test: Any) -> None:
    val = val if isinstance(val, dict) else {}
    test = test if isinstance(test, dict) else {}
    for metric in ("accuracy", "loss"):
        if _number(val.get(metric)) is not None or _number(test.get(metric)) is not None:
            row.update(metric=metric, val=_number(val.get(metric)), test=_number(test.get(metric)))
            return


def _lock_holder(path: Path) -> tuple[str | None, int | None]:
    """(host, pid) from "HOST PID" (rundir.RunLock's format) or a bare "PID"; (None, None) when unusable."""
    try:
        words = path.read_text(errors="replace")[:300].split()
    except OSError:
        return None, None
    host, pid_text = (words[0], words[1]) if len(words) >= 2 else (None, words[0] if words else "")
    try:
        pid = int(pid_text)
    except ValueError:
        return None, None
    return (host, pid) if pid > 0 else (None, None)


def _pid_alive(pid: int) -> bool | None:
    """True/False when known; None when this platform cannot tell."""
    if os.name == "nt":
        return None  # os.kill(pid, 0) sends CTRL_C_EVENT on Windows instead of probing
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    except (OSError, OverflowError):
        return None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")  # a zombie has exited; only its parent has not reaped it


def _start(path: Path, match: re.Match[str] | None) -> str | None:
    if match:
        try:
            stamp = time.strptime(match.group(1) + match.group(2), "%Y%m%d%H%M%S")
            return time.strftime("%Y-%m-%dT%H:%M:%S", stamp)
        except ValueError:
            pass
    # config.yaml is the first file a run writes
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime((path / "config.yaml").stat().st_mtime))
    except OSError:
        return None


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# Values from a summary.json are shown and sorted: anything of the wrong type becomes missing.
def _number(v: Any) -> float | int | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return v if math.isfinite(v) else None


def _integer(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _str_list(v: Any) -> list[str] | None:
    return [x for x in v if isinstance(x, str)] if isinstance(v, list) else None


def _joined(models: list[str] | None) -> str | None:
    return ",".join(models) if models else None


# --- filtering and sorting ------------------------------------------------------------------------


def _matches(row: dict[str, Any], task: str | None, model: str | None, status: str | None) -> bool:
    if task is not None and row["task"] != task:
        return False
    if model is not None and row["model"] != model and model not in (row["models"] or []):
        return False
    if status is not None and row["status"] != status and not (status == "stopped" and row["status"] == "stopped?"):
        return False
    return True


def _sorted(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    # Chronological first, so every other key breaks its ties by start time.
    rows = sorted(rows, key=lambda r: (r["start"] is None, r["start"] or "", r["path"]))
    if key == "start":
        return rows
    if key in ("name", "task", "model", "status"):
        return sorted(rows, key=lambda r: (r[key] is None, (r[key] or "").lower()))
    if key in ("val", "test"):
        def best_first(r: dict[str, Any]) -> tuple[bool, bool, float]:
            v = r[key]
            if v is None:
                return (True, True, 0.0)
            return (False, r["metric"] != "accuracy", -v if r["metric"] == "accuracy" else v)
        return sorted(rows, key=best_first)
    field_ = "wall_time_s" if key == "wall_time" else key
    return sorted(rows, key=lambda r: (r[field_] is None, -(r[field_] or 0)))


def _filters_text(task: str | None, model: str | None, status: str | None) -> str:
    parts = [f"--{k} {v}" for k, v in (("task", task), ("model", model), ("status", status)) if v is not None]
    return " ".join(parts)


def _known_values(rows: list[dict[str, Any]], task: str | None, model: str | None) -> str:
    hints = []
    if task is not None:
        hints.append("tasks here: " + (", ".join(sorted({r["task"] for r in rows if r["task"]})) or "none"))
    if model is not None:
        hints.append("models here: " + (", ".join(sorted({r["model"] for r in rows if r["model"] and r["kind"] == "run"})) or "none"))
    return ("; " + "; ".join(hints)) if hints else ""


# --- printing -------------------------------------------------------------------------------------


def _counts(rows: Iterable[dict[str, Any]]) -> str:
    rows = list(rows)
    n_runs = sum(r["kind"] == "run" and r["status"] != "unreadable" for r in rows)
    parts = [_plural(n_runs, "run")]
    for kind, word in (("compare", "comparison"), ("probe", "probe")):
        n = sum(r["kind"] == kind and r["status"] != "unreadable" for r in rows)
        if n:
            parts.append(_plural(n, word))
    n_bad = sum(r["status"] == "unreadable" for r in rows)
    if n_bad:
        parts.append(f"{n_bad} unreadable")
    return ", ".join(parts)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _table(rows: list[dict[str, Any]], tree: bool) -> Table:
    # The path names the run (its time and name) and is what evaluate/plot take, so it is the
    # first column and the only one allowed to wrap; the rest stays narrow to fit 120 columns.
    # In chronological order a group's runs follow it, so they show only the part below it.
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    table.add_column("run", overflow="fold", min_width=20)
    for head in ("task", "model", "params", "status", "steps", "val", "test", "time"):
        text = head in ("task", "model")  # may wrap in a narrow terminal; numbers never do
        table.add_column(head, justify="left" if text or head == "status" else "right", no_wrap=not text, overflow="fold")
    open_groups: list[str] = []
    for r in rows:
        group = r["kind"] != "run"
        shown = r["path"]
        if tree:
            while open_groups and not r["path"].startswith(open_groups[-1] + "/"):
                open_groups.pop()
            if open_groups:
                shown = "  " * len(open_groups) + r["path"][len(open_groups[-1]) + 1:]
            if group:
                open_groups.append(r["path"])
        path = escape(shown + ("/" if group else ""))
        style = _STATUS_STYLE.get(r["status"] or "", "")
        status = escape(r["status"] or "—")
        table.add_row(
            f"[bold]{path}[/]" if group else path,
            escape(r["task"] or "—"),
            escape(r["model"] or "—"),
            _count(r["params"]),
            f"[{style}]{status}[/]" if style else status,
            _count(r["steps"]),
            _metric(r["val"], r["metric"]),
            _metric(r["test"], r["metric"]),
            _duration(r["wall_time_s"]) if r["wall_time_s"] is not None else "—",
        )
    return table


def _print_notes(console: Console, rows: list[dict[str, Any]]) -> None:
    """Why a row is unreadable or stopped: too long for a table cell."""
    notes = [r for r in rows if r["reason"] and r["status"] in ("unreadable", "stopped", "stopped?")]
    for r in notes[:_MAX_NOTES]:
        style = _STATUS_STYLE[r["status"]]
        console.print(f"[{style}]{escape(r['status'])}[/] {escape(r['path'])}: {escape(r['reason'])}", highlight=False, soft_wrap=True)
    if len(notes) > _MAX_NOTES:
        console.print(f"... and {len(notes) - _MAX_NOTES} more (rnnlab runs --json shows every reason)", highlight=False)
    for r in [r for r in rows if r["partial_writes"]][:_MAX_NOTES]:
        files = r["partial_writes"]
        console.print(
            f"[yellow]unfinished writes[/] {escape(r['path'])}: {len(files)} temporary file(s) of a process killed while it "
            f"wrote ({escape(', '.join(files))}); nothing reads them: delete them, or resume the run (rnnlab train "
            "--resume), which removes them", highlight=False, soft_wrap=True,
        )  # fmt: skip


# Cells stay a few characters wide whatever a summary.json holds (`wall_time_s: 1e300` once
# printed 300 digits and squeezed every other column away): out-of-range values read "?" or "> ...".
def _count(n: int | None) -> str:
    if n is None:
        return "—"
    if n < 0:
        return "?"
    if n < 100_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1e3:.0f}k"
    if n < 1e9:
        return f"{n / 1e6:.1f}M"
    return f"{n / 1e9:.1f}B" if n < 1e12 else "> 999B"


def _metric(v: float | None, metric: str | None) -> str:
    if v is None:
        return "—"
    if metric == "accuracy":
        return f"{100 * v:.1f}%" if 0 <= v <= 1 else "?"
    return f"loss {v:.3g}"


_YEAR_S = 365.25 * 86400


def _duration(seconds: Any) -> str:
    """12.5s, 3.2m, 5.0h, 4.1d, 2.3y; "> 1000y" past a thousand years; "?" for what is no duration
    (negative, NaN, text). Big ints are compared, never divided, so they cannot overflow a float."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds != seconds or seconds < 0:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds < 2 * _YEAR_S:
        return f"{seconds / 86400:.1f}d"
    return f"{seconds / _YEAR_S:.1f}y" if seconds < 1000 * _YEAR_S else "> 1000y"
