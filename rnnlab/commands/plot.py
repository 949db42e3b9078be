"""`rnnlab plot`: one metric of several runs in one figure, each line labelled by what differs.

    rnnlab plot runs/<time>-long_dependency_lstm runs/<time>-long_dependency_lstm-2 --metric val.accuracy

A comparison (or probe) directory given as RUN stands for the runs inside it. The legend gives
each run's name and the config settings that differ between the runs (`legend_labels`). The
figure goes to `<parent>/plots/compare-<metric>-<time>.png` beside the runs, or to `--out FILE`;
an existing file is never overwritten.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any, Sequence

import yaml
from rich.console import Console
from rich.markup import escape

from ..errors import UserError
from ..plots import ACCURACY_YLIM, line_plot
from ..rundir import read_metrics

__all__ = ["plot", "legend_labels", "SPLITS", "X_AXES"]

SPLITS = ("train", "val", "test")
X_AXES = ("step", "epoch")
_SPLIT_WORDS = {"train": "train", "val": "validation", "test": "test"}
_NOT_METRICS = {"step", "epoch", "split", "elapsed_s"}
_IGNORED_KEYS = {"name"}  # the run's name is already the start of every label
_KEY_ORDER = ("model.", "task.", "train.", "seed")  # the settings people compare most, first
_MAX_RUNS = 20  # more lines than this are unreadable in one figure
_RUN_NAME = re.compile(r"^\d{8}-\d{6}-(.+)$")
_MISSING = object()


def plot(
    paths: Sequence[Path | str],
    *,
    metric: str = "val.accuracy",
    x: str = "step",
    out: Path | str | None = None,
    console: Console | None = None,
) -> Path:
    """Overlay `metric` (`<split>.<name>`, e.g. val.accuracy, train.loss) of the runs in `paths` against `x`.

    Writes one image and returns its path (also printed). Each line has one point per x value
    (the last row logged for it, so a resumed run does not draw back over itself).
    """
    console = console or Console()
    split, name = _parse_metric(metric)
    if x not in X_AXES:
        raise UserError(f"unknown --x {x!r}; use step or epoch")
    if not paths:
        raise UserError("give at least one run directory, e.g. rnnlab plot runs/<time>-<name> runs/<time>-<other>")
    if out is not None:
        out = _check_out(Path(out))
    run_dirs = _expand([Path(p) for p in paths])

    series_points = []
    logged = 0
    for run in run_dirs:
        rows = _read_rows(run)
        points = _points(rows, split, name, x)
        if not points:
            raise UserError(_missing_metric(run, rows, metric))
        series_points.append(points)
        logged = max(logged, sum(1 for r in rows if r.get("split") == split))
    # Step-based training logs epoch 0 on every row: each line would shrink to a single point.
    if x == "epoch" and logged > 1 and all(len(p) == 1 for p in series_points):
        raise UserError(f"every {split} row of these runs has the same epoch: they train by steps; use --x step")

    configs = [_read_config(run) for run in run_dirs]
    names = [_run_name(run, cfg) for run, cfg in zip(run_dirs, configs)]
    labels = legend_labels(list(zip(names, configs)))
    series = {label: ([p[0] for p in pts], [p[1] for p in pts], None, None) for label, pts in zip(labels, series_points)}

    summaries = [_read_summary(run) for run in run_dirs]
    chances = {s.get("chance") for s in summaries if isinstance(s.get("chance"), (int, float)) and not isinstance(s.get("chance"), bool)}
    hline = (chances.pop(), "chance") if name == "accuracy" and len(chances) == 1 else None
    accuracy_like = name == "accuracy" or name.endswith("_accuracy")
    tasks = {c["task"].get("name") if c and isinstance(c.get("task"), dict) else None for c in configs}
    what = f"{_SPLIT_WORDS[split]} {name}"
    title = f"{tasks.pop()}: {what}" if len(tasks) == 1 and None not in tasks else what

    target = _reserve(out if out is not None else _default_out(run_dirs, metric), exact=out is not None)
    try:
        line_plot(target, series, title=title, xlabel=x, ylabel=what, hline=hline, ylim=ACCURACY_YLIM if accuracy_like else None)
    except BaseException:
        target.unlink(missing_ok=True)  # the reserved, empty file
        raise
    console.print(f"{len(run_dirs)} run{'s' if len(run_dirs) != 1 else ''}, {escape(metric)} against {x}: "
                  f"[bold]{escape(str(target))}[/]", highlight=False, soft_wrap=True)
    return target


def legend_labels(runs: Sequence[tuple[str, dict[str, Any] | None]], *, max_keys: int = 3) -> list[str]:
    """One label per `(name, config)`: the name, then the config settings that differ between the runs.

    Configs are compared flattened to dotted keys (model.init, train.lr, seed, ...); `name` is
    ignored, a key missing from one config counts as a difference ("unset"), and a difference
    the names already show (model.name=lstm for "lstm-seed0" against "gru-seed0") is left out.
    At most `max_keys` settings are shown, model.* first, then task.*, train.*, seed; the rest
    as "+N more". A run without a config is labelled by its name alone and not compared.
    Labels that would still be equal get " (2)", " (3)", ... so no line loses its entry.
    """
    flat = [_flatten(cfg) if isinstance(cfg, dict) else None for _, cfg in runs]
    known = [f for f in flat if f is not None]
    keys: list[str] = []
    for f in known:
        keys.extend(k for k in f if k not in keys and k not in _IGNORED_KEYS)
    keys.sort(key=_key_rank)  # stable: config order within each group

    differing = []
    for key in keys:
        values = [f.get(key, _MISSING) for f in known]
        # 1 and 1.0 are one setting written two ways; True and 1 are not
        if all(v == values[0] and isinstance(v, bool) == isinstance(values[0], bool) for v in values):
            continue
        named = [(name, f.get(key, _MISSING)) for (name, _), f in zip(runs, flat) if f is not None]
        if all(isinstance(v, str) and len(v) > 1 and v in _tokens(name) for name, v in named):
            continue
        differing.append(key)

    labels = []
    for (name, _), f in zip(runs, flat):
        if f is None or not differing:
            labels.append(name)
            continue
        parts = [f"{k}={_fmt_value(f.get(k, _MISSING))}" for k in differing[:max_keys]]
        if len(differing) > max_keys:
            parts.append(f"+{len(differing) - max_keys} more")
        labels.append(f"{name} · {', '.join(parts)}")

    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return unique


# --- which runs -----------------------------------------------------------------------------------


def _expand(paths: list[Path]) -> list[Path]:
    """Run directories for the paths given; a folder of runs (a comparison) stands for its runs."""
    found: list[Path] = []
    for p in paths:
        if not p.exists():
            raise UserError(f"{p}: no such run directory")
        if not p.is_dir():
            raise UserError(f"{p}: a file, not a run directory; give the run's folder, e.g. runs/<time>-<name>")
        if (p / "metrics.jsonl").is_file():
            found.append(p)
            continue
        inner = _runs_inside(p)
        if not inner:
            why = ("a gradient probe has no training curves (see its plots/gradient_norms.png)"
                   if (p / "gradients.csv").is_file() else "run directories hold metrics.jsonl, config.yaml and summary.json")
            raise UserError(f"{p}: not a run directory (no metrics.jsonl) and no runs inside; {why}")
        found.extend(inner)
    unique: dict[Path, Path] = {}
    for run in found:
        unique.setdefault(run.resolve(), run)  # a run given twice, or also through its comparison, is one line
    if len(unique) > _MAX_RUNS:
        raise UserError(f"{len(unique)} runs: too many lines for one figure (at most {_MAX_RUNS}); name the runs to compare")
    return list(unique.values())


def _runs_inside(folder: Path) -> list[Path]:
    """Runs one level down (a comparison) or two (a probe's training/ folder)."""
    runs = []
    for child in _subdirs(folder):
        if (child / "metrics.jsonl").is_file():
            runs.append(child)
        elif child.name not in ("plots", "checkpoints"):
            runs.extend(c for c in _subdirs(child) if (c / "metrics.jsonl").is_file())
    return runs


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


# --- reading --------------------------------------------------------------------------------------


def _parse_metric(metric: str) -> tuple[str, str]:
    split, dot, name = metric.partition(".")
    if not dot or not name:
        hint = f" (did you mean val.{metric}?)" if metric and metric not in SPLITS else ""
        raise UserError(f"--metric {metric!r}: write it as <split>.<name>, e.g. val.accuracy or train.loss{hint}")
    if split not in SPLITS:
        raise UserError(f"--metric {metric!r}: unknown split {split!r}; use {', '.join(SPLITS)} (e.g. val.{name})")
    return split, name


def _read_rows(run: Path) -> list[dict[str, Any]]:
    try:
        return read_metrics(run)
    except OSError as e:
        raise UserError(f"{run}/metrics.jsonl: cannot read it ({e.strerror or e})") from None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _points(rows: list[dict[str, Any]], split: str, name: str, x: str) -> list[tuple[float, float]]:
    by_x: dict[float, float] = {}
    for r in rows:
        if r.get("split") == split and _is_number(r.get(name)) and _is_number(r.get(x)):
            by_x[r[x]] = r[name]
    return sorted(by_x.items())


def _missing_metric(run: Path, rows: list[dict[str, Any]], metric: str) -> str:
    have = sorted({f"{r.get('split')}.{k}" for r in rows if r.get("split") in SPLITS
                   for k, v in r.items() if k not in _NOT_METRICS and _is_number(v)}, key=_metric_rank)
    if not have:
        return f"{run}: no {metric}: its metrics.jsonl holds no metrics yet"
    return f"{run}: no {metric} in metrics.jsonl; it has {', '.join(have)}"


def _metric_rank(m: str) -> tuple[int, str]:
    split = m.partition(".")[0]
    return (SPLITS.index(split) if split in SPLITS else len(SPLITS), m)


def _read_config(run: Path) -> dict[str, Any] | None:
    try:
        cfg = yaml.safe_load((run / "config.yaml").read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return cfg if isinstance(cfg, dict) else None


def _read_summary(run: Path) -> dict[str, Any]:
    try:
        summary = json.loads((run / "summary.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


def _run_name(run: Path, cfg: dict[str, Any] | None) -> str:
    if cfg and isinstance(cfg.get("name"), str) and cfg["name"]:
        return cfg["name"]
    match = _RUN_NAME.match(run.name)
    return match.group(1) if match else run.name


# --- labels ---------------------------------------------------------------------------------------


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            flat.update(_flatten(v, key + "."))
        else:
            flat[key] = v
    return flat


def _key_rank(key: str) -> int:
    for i, start in enumerate(_KEY_ORDER):
        if key.startswith(start):
            return i
    return len(_KEY_ORDER)


def _tokens(name: str) -> set[str]:
    return {t for t in re.split(r"[-_.· ]+", name) if t}


def _fmt_value(v: Any) -> str:
    if v is _MISSING:
        return "unset"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ",".join(_fmt_value(i) for i in v)
    text = str(v)
    return text if len(text) <= 24 else text[:23] + "…"


# --- where the figure goes ------------------------------------------------------------------------


def _check_out(out: Path) -> Path:
    from matplotlib.backend_bases import FigureCanvasBase

    kinds = FigureCanvasBase.get_supported_filetypes()
    if out.suffix.lower().lstrip(".") not in kinds:
        raise UserError(f"--out {out}: give a file name ending in an image type: .png, .pdf, .svg, .jpg, ...")
    if out.exists() or out.is_symlink():
        raise UserError(f"--out {out}: the file exists and plot never overwrites; choose another name or delete it")
    return out


def _default_out(runs: list[Path], metric: str) -> Path:
    """`<parent>/plots/compare-<metric>-<time>.png`, parent = the runs' common folder."""
    parents = {r.resolve().parent for r in runs}
    if len(parents) == 1:
        base = runs[0].parent  # as the user wrote it, so the printed path looks familiar
    else:
        base = Path(os.path.commonpath([str(r.resolve()) for r in runs]))
        if base == Path(base.anchor) or base == Path.home():
            raise UserError("these runs share no folder to put the plot in; give --out FILE")
        try:
            base = base.relative_to(Path.cwd().resolve())  # printed as the user would type it
        except ValueError:
            pass
    return base / "plots" / f"compare-{metric}-{time.strftime('%Y%m%d-%H%M%S')}.png"


def _reserve(target: Path, *, exact: bool) -> Path:
    """Create the file empty and exclusively, so that neither a file already there nor a concurrent plot is overwritten.

    `exact` (--out): that name or a UserError. Otherwise a taken name moves on to -2, -3, ...
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create {target.parent}: {e.strerror or e}") from None
    for i in range(1, 1000):
        path = target if i == 1 else target.with_name(f"{target.stem}-{i}{target.suffix}")
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return path
        except FileExistsError:
            if exact:
                raise UserError(f"--out {target}: the file exists and plot never overwrites; choose another name or delete it") from None
        except OSError as e:
            raise UserError(f"cannot write {path}: {e.strerror or e}") from None
    raise UserError(f"no free file name like {target}; clean up {target.parent}")
