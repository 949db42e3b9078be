"""A planned comparison read back from disk, and checked, before `rnnlab compare --collect` writes anything.

    rnnlab compare lstm gru --seq-len 50 --seeds 3 --plan    # writes DIR/plan.json, DIR/configs/*.yaml
    rnnlab compare --collect DIR                             # reads them back through this module

`read_plan` gives the runs of DIR/plan.json with their validated configs; `read_run` finds one
run's directory and reads its summary.json and metrics.jsonl. Every value the results are made
from is checked here, so that writing them cannot fail halfway on a file that a crash, a disk or
a hand damaged: such a run is skipped with its reason (`BadRun`), and the others are collected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import RunConfig, load_config, read_yaml
from .errors import ConfigError, UserError
from .rundir import read_json, read_metrics

__all__ = ["PlanEntry", "RunOnDisk", "BadRun", "read_plan", "read_run"]


@dataclass
class PlanEntry:
    """One run of plan.json: what compare planned, and its config from DIR/configs/."""

    name: str
    model: str
    seq_len: int | None
    seed: int
    source: str
    cfg: RunConfig


@dataclass
class RunOnDisk:
    run_dir: Path
    summary: dict[str, Any]
    history: list[dict[str, Any]]


class BadRun(Exception):
    """A planned run that cannot be collected; the message says why, without the run's name."""


def read_plan(parent: Path) -> tuple[list[PlanEntry], list[tuple[str, str]]]:
    """The runs of `parent`/plan.json, and (run, why) for each entry that cannot be used.

    UserError when plan.json is missing or is no plan at all (nothing to collect from).
    """
    path = parent / "plan.json"
    if not path.is_file():
        raise UserError(f"{parent} has no plan.json: --collect reads a directory written by rnnlab compare ... --plan (or --jobs)")
    try:
        plan = read_json(path)
    except (OSError, ValueError) as e:
        raise UserError(f"{path} is damaged ({_reason(e)}); plan the comparison again with --plan") from None
    entries = plan.get("runs") if isinstance(plan, dict) else None
    if not isinstance(entries, list):
        raise UserError(f"{path} is damaged (it holds no list of runs); plan the comparison again with --plan")
    good: list[PlanEntry] = []
    skipped: list[tuple[str, str]] = []
    for i, entry in enumerate(entries, start=1):
        name = entry.get("name") if isinstance(entry, dict) else None
        label = name if isinstance(name, str) and name.strip() else f"run {i} of plan.json"
        try:
            good.append(_plan_entry(parent, entry))
        except BadRun as e:
            skipped.append((label, str(e)))
    # One comparison is of one task; an entry of another was edited in.
    if good:
        task = good[0].cfg.task.name
        for entry in [e for e in good if e.cfg.task.name != task]:
            good.remove(entry)
            skipped.append((entry.name, f"its config is of task '{entry.cfg.task.name}', the comparison's of '{task}'"))
    return good, skipped


def _plan_entry(parent: Path, entry: Any) -> PlanEntry:
    if not isinstance(entry, dict):
        raise BadRun(f"plan.json holds {_short(entry)} where a run should be")
    name, model, source, config = (entry.get(k) for k in ("name", "model", "source", "config"))
    for key, value in (("name", name), ("model", model), ("source", source), ("config", config)):
        if not isinstance(value, str) or not value.strip():
            raise BadRun(f"plan.json gives {key} {_short(value)}, not a text")
    seq_len, seed = entry.get("seq_len"), entry.get("seed")
    if seq_len is not None and not _whole(seq_len, 1):
        raise BadRun(f"plan.json gives seq_len {_short(seq_len)}, not a whole number >= 1 (or null)")
    if not _whole(seed, 0):
        raise BadRun(f"plan.json gives seed {_short(seed)}, not a whole number >= 0")
    path = parent / config
    if not path.resolve().is_relative_to(parent.resolve()):
        raise BadRun(f"plan.json points to a config outside {parent}: {config}")
    try:
        cfg = load_config(path)
    except ConfigError as e:
        shown = "; ".join(e.problems[:3]) + (f" (and {len(e.problems) - 3} more)" if len(e.problems) > 3 else "")
        raise BadRun(f"{config} is not a valid config: {shown}") from None
    except UserError as e:
        raise BadRun(str(e)) from None
    # plan.json and the config were written together; if they disagree, one was edited.
    planned = {"name": name, "model": model, "seed": seed, "seq_len": seq_len}
    actual_len = getattr(cfg.task, "seq_len", None)
    actual = {"name": cfg.run_name, "model": cfg.model.name, "seed": cfg.seed, "seq_len": actual_len if isinstance(actual_len, int) else None}
    for key in planned:
        if planned[key] != actual[key]:
            raise BadRun(f"plan.json gives {key} {_short(planned[key])} but {config} has {_short(actual[key])}")
    return PlanEntry(name, model, seq_len, seed, source, cfg)


def read_run(parent: Path, name: str) -> RunOnDisk | None:
    """Run `name`'s newest directory in `parent` with its summary and history; None when it has
    not started (no directory, or no summary.json yet); BadRun when its files are damaged."""
    run_dir = _run_dir(parent, name)
    if run_dir is None or not (run_dir / "summary.json").exists():
        return None
    try:
        summary = read_json(run_dir / "summary.json")
    except (OSError, ValueError) as e:
        raise BadRun(f"{run_dir.name}/summary.json: {_reason(e)}") from None
    try:
        history = read_metrics(run_dir)
    except OSError as e:
        raise BadRun(f"{run_dir.name}/metrics.jsonl: {_reason(e)}") from None
    problem = _summary_problem(summary) or _history_problem(history)
    if problem:
        raise BadRun(f"{run_dir.name}/{problem}")
    return RunOnDisk(run_dir, summary, history)


def _run_dir(parent: Path, name: str) -> Path | None:
    """The newest `<time>-<name>` directory whose config.yaml names the run; BadRun when the
    newest such directory's config.yaml cannot be read (an older run is not silently taken instead)."""
    try:
        candidates = sorted(
            (d for d in parent.iterdir() if d.name.endswith(f"-{name}") and d.is_dir() and (d / "config.yaml").is_file()),
            key=lambda d: d.name, reverse=True,
        )  # fmt: skip
    except OSError as e:  # a folder without permission to look inside
        raise BadRun(f"cannot look for its directory: {e.strerror or e}") from None
    for d in candidates:
        try:
            config = read_yaml(d / "config.yaml")
        except UserError as e:
            raise BadRun(str(e).replace(str(d / "config.yaml"), f"{d.name}/config.yaml")) from None
        if config.get("name") == name:
            return d
    return None


def _summary_problem(summary: Any) -> str | None:
    """What in summary.json the results could not be made from, or None."""
    if not isinstance(summary, dict):
        return f"summary.json holds {_short(summary)}, not a JSON object"
    if not isinstance(summary.get("status"), str):
        return "summary.json has no status"
    for key in ("params", "steps"):
        if summary.get(key) is not None and not _whole(summary[key], 0):
            return f"summary.json: {key} is {_short(summary[key])}, not a whole number"
    for key in ("wall_time_s", "steps_per_s", "chance", "baseline_loss"):
        if summary.get(key) is not None and not _real(summary[key], 0):
            return f"summary.json: {key} is {_short(summary[key])}, not a number >= 0"
    if summary.get("chance_label") is not None and not isinstance(summary["chance_label"], str):
        return f"summary.json: chance_label is {_short(summary['chance_label'])}, not a text"
    for split in ("val", "test"):
        part = summary.get(split)
        if part is None:
            continue
        if not isinstance(part, dict):
            return f"summary.json: {split} is {_short(part)}, not an object"
        problem = _metric_problem(part, f"{split}.")
        if problem:
            return f"summary.json: {problem}"
    return None


def _history_problem(history: list[dict[str, Any]]) -> str | None:
    """The validation rows are what the curves and steps-to-90% are drawn from."""
    for i, row in enumerate(history, start=1):
        if row.get("split") != "val" or row.get("accuracy") is None:
            continue
        problem = _metric_problem(row, "") or (None if _whole(row.get("step"), 0) else f"step is {_short(row.get('step'))}, not a whole number")
        if problem:
            return f"metrics.jsonl row {i} (validation): {problem}"
    return None


def _metric_problem(part: dict[str, Any], prefix: str) -> str | None:
    accuracy, loss = part.get("accuracy"), part.get("loss")
    if accuracy is not None and not (_real(accuracy, 0) and accuracy <= 1):
        return f"{prefix}accuracy is {_short(accuracy)}, not a number from 0 to 1"
    if loss is not None and not _real(loss, None, finite=False):  # a diverged run's loss may be inf
        return f"{prefix}loss is {_short(loss)}, not a number"
    return None


def _whole(v: Any, low: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _real(v: Any, low: float | None, finite: bool = True) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        v = float(v)
    except OverflowError:  # an int too big for a float
        return False
    return (math.isfinite(v) or not finite) and (low is None or v >= low)


def _short(value: Any) -> str:
    text = "null" if value is None else repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _reason(e: Exception) -> str:
    if isinstance(e, UnicodeDecodeError):
        return f"not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})"
    if isinstance(e, OSError):
        return f"cannot be read: {e.strerror or e}"
    return f"not valid JSON: {e}"
