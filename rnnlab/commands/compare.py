"""`rnnlab compare`: several models side by side on the same data, every run through the one engine.

    rnnlab compare lstm gru rnn --seq-len 100 --seeds 2

Each model starts from its shipped config `configs/<task>_<model>.yaml` (long_dependency: the
settings that work, chrono init for LSTM and GRU alike; a model without one starts from
`configs/<task>_lstm.yaml`, see config.shipped_config_for), or from `--config BASE.yaml` for any
task; the options and then the `key=value` overrides apply to every run. For a given seed every model sees
the same data stream (the task's generator is seeded by the run's seed, not by the model).

    runs/<time>-compare-lstm-gru-rnn/
        <time>-lstm-seq100-seed0/ ...   one normal run directory per model x seq_len x seed
        results.csv  results.md  summary.json
        plots/curves.png  plots/accuracy_vs_seq_len.png (several lengths)
        configs/<name>.yaml  plan.json  logs/<name>.log   (--jobs N and --plan)

Three ways to run the plan: one after another in this process (default); `--jobs N` trainings
at once, each a `rnnlab train` process with its share of the cores; or `--plan`, which only
writes every run's resolved config and prints one `rnnlab train` command per run for any
scheduler, after which `--collect DIR` builds the results from the runs that have finished.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import statistics
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml
from rich.console import Console
from rich.markup import escape

from ..config import RunConfig, apply_overrides, config_to_dict, derive_config, load_config, resolve_config, shipped_config_for
from ..compare_plan import BadRun, read_plan, read_run
from ..engine import FitResult, TrainingStopped, fit
from ..rundir import first_reaching, read_json, read_metrics
from ..errors import ConfigError, UserError
from ..models.init import INIT_SCHEMES
from ..plots import ACCURACY_YLIM, line_plot
from ..registry import MODELS, TASKS, suggest
from ..report import markdown_table, print_table, write_csv
from ..rundir import create_run_dir, write_atomic, write_json
from ..tasks.base import bidirectional_warning
from ..jobs import Proc, run_processes, threads_per_job
from ..threads import requested_threads

__all__ = ["RESULT_COLUMNS", "CompareResult", "PlannedRun", "parse_seq_lens", "plan_runs", "compare", "plan", "collect", "steps_to"]

DEFAULT_TASK = "long_dependency"

RESULT_COLUMNS = [
    "model", "seq_len", "seed", "params", "test_accuracy", "test_loss", "best_val_accuracy", "steps",
    "steps_to_90", "steps_to_99", "wall_time_s", "steps_per_s", "status", "run_dir",
]  # fmt: skip


@dataclass
class PlannedRun:
    model: str
    seq_len: int | None
    seed: int
    cfg: RunConfig
    source: str


@dataclass
class CompareResult:
    run_dir: Path
    rows: list[dict[str, Any]]
    aggregate: list[dict[str, Any]]


def parse_seq_lens(text: str | None, problems: list[str] | None = None) -> list[int] | None:
    """'10,50,100' -> [10, 50, 100]; None -> None (each config's own length)."""
    if text is None:
        return None
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        # isdigit() also accepts '²' and other digit-like characters that int() refuses
        if not (part.isascii() and part.isdigit()) or int(part) < 1:
            message = f"--seq-len {text!r}: each length must be a whole number >= 1, e.g. --seq-len 50 or --seq-len 10,50,100"
            if problems is None:
                raise UserError(message)
            problems.append(message)
            return None
        if int(part) not in out:
            out.append(int(part))
    return out


def plan_runs(
    models: list[str],
    *,
    task: str | None = None,
    seq_lens: list[int] | None = None,
    seeds: int = 1,
    steps: int | None = None,
    hidden: int | None = None,
    init: str | None = None,
    config: Path | None = None,
    overrides: Iterable[str] = (),
    problems: list[str] | None = None,
) -> list[PlannedRun]:
    """Every run's validated config, before anything trains; every mistake is reported at once.

    Each model starts from `config` (with its model swapped in) or from its shipped config for
    the task (config.shipped_config_for states the rule); the options are applied to that typed
    config, then the `key=value` overrides, then each run's seed and name.
    """
    problems = list(problems or [])
    if not models:
        problems.append("name at least one model, e.g. rnnlab compare lstm gru rnn")
    unknown = [m for m in models if m not in MODELS]
    problems += [MODELS.unknown_message(m) for m in unknown]
    twice = sorted({m for m in models if models.count(m) > 1})
    if twice:
        problems.append(f"model {', '.join(repr(m) for m in twice)} named twice; name each model once")
    if not isinstance(seeds, int) or seeds < 1:
        problems.append(f"--seeds {seeds}: must be at least 1 (runs use seeds 0..K-1)")
    if steps is not None and steps < 1:
        problems.append(f"--steps {steps}: must be at least 1")
    if hidden is not None and hidden < 1:
        problems.append(f"--hidden {hidden}: must be at least 1")
    if task is not None and task not in TASKS:
        problems.append(f"--task {task!r}: {TASKS.unknown_message(task)}")
    if init is not None and init not in INIT_SCHEMES:
        problems.append(f"--init {init!r}: use one of {', '.join(INIT_SCHEMES)}{suggest(init, INIT_SCHEMES)}")
    overrides = list(overrides)
    for text in overrides:
        key = text.partition("=")[0].strip()
        if key in ("seed", "name"):
            hint = "use --seeds K (runs use seeds 0..K-1)" if key == "seed" else "compare names each run itself"
            problems.append(f"override '{text}': {hint}")
    if problems:
        raise ConfigError(problems, "for compare")
    options: dict[str, Any] = {}
    if steps is not None:
        options["train.steps"] = steps
    if hidden is not None:
        options["model.hidden_size"] = hidden
    if init is not None:
        options["model.init"] = init
    bases: dict[str, tuple[RunConfig, str]] = {}
    for model in models:
        try:
            bases[model] = _base_config(model, config, task, options, overrides)
        except ConfigError as e:
            problems += [f"{model}: {p}" for p in e.problems]
        except UserError as e:
            problems.append(f"{model}: {e}")
    lens_ok = True
    for model, (cfg, _) in bases.items():
        if seq_lens is not None and "seq_len" not in type(cfg.task).model_fields:
            problems.append(f"--seq-len: task '{cfg.task.name}' has no seq_len; leave --seq-len out")
            lens_ok = False
            break
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)), "for compare")
    runs: list[PlannedRun] = []
    for seq_len in (seq_lens if lens_ok and seq_lens else [None]):
        for seed in range(seeds):
            for model in models:
                base, source = bases[model]
                name = f"{model}-seq{seq_len}-seed{seed}" if seq_len is not None else f"{model}-seed{seed}"
                changes: dict[str, Any] = {"seed": seed, "name": name}
                if seq_len is not None:
                    changes["task.seq_len"] = seq_len
                cfg = derive_config(base, changes, source=f"for {model} ({source})")
                actual = getattr(cfg.task, "seq_len", None)
                runs.append(PlannedRun(model, actual if isinstance(actual, int) else None, seed, cfg, source))
    return runs


def _base_config(model: str, config: Path | None, task: str | None, options: dict[str, Any], overrides: list[str]) -> tuple[RunConfig, str]:
    """One model's validated config with the options and overrides applied, and its source."""
    if config is not None:
        cfg, source = load_config(config), str(config)
        changes: dict[str, Any] = {"model.name": model}
        if task is not None and cfg.task.name != task:
            changes["task.name"] = task  # another task's settings would not fit
        cfg = derive_config(cfg, changes, source=f"{config} with model {model}")
    else:
        cfg, source = shipped_config_for(task or DEFAULT_TASK, model)
    missing = [k for k in options if k.split(".")[1] not in type(getattr(cfg, k.split(".")[0])).model_fields]
    if missing:
        flag = {"train.steps": "--steps", "model.hidden_size": "--hidden", "model.init": "--init"}
        raise UserError("; ".join(f"{flag[k]} does not apply: {k.split('.')[0]} '{getattr(cfg, k.split('.')[0]).name}' has no {k.split('.')[1]}" for k in missing))
    if options:
        cfg = derive_config(cfg, options, source=f"for {model} ({source} + options)")
    if overrides:
        raw = apply_overrides(config_to_dict(cfg), overrides)
        cfg = resolve_config(raw, source=f"for {model} ({source} + overrides)")
    return cfg, source


def steps_to(history: list[dict[str, Any]], threshold: float, metric: str = "accuracy") -> int | None:
    """The first evaluated step whose validation `metric` reaches `threshold`; None if never."""
    row = first_reaching(history, threshold, metric)
    return None if row is None else int(row["step"])


def _row(run: PlannedRun, result: FitResult) -> dict[str, Any]:
    s = result.summary
    test = s.get("test") or {}
    val = s.get("val") or {}
    return {
        "model": run.model,
        "seq_len": run.seq_len,
        "seed": run.seed,
        "params": s.get("params"),
        "test_accuracy": test.get("accuracy"),
        "test_loss": test.get("loss"),
        "best_val_accuracy": val.get("accuracy"),
        "steps": s.get("steps"),
        "steps_to_90": steps_to(result.history, 0.90),
        "steps_to_99": steps_to(result.history, 0.99),
        "wall_time_s": s.get("wall_time_s"),
        "steps_per_s": s.get("steps_per_s"),
        "status": s.get("status"),
        "run_dir": str(result.run_dir),
        "_history": result.history,
        "_chance": s.get("chance"),
        "_chance_label": s.get("chance_label", "chance"),
        "_baseline_loss": s.get("baseline_loss"),
    }


def _mean(xs: list[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def _aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model x seq_len: mean and spread over seeds."""
    groups: dict[tuple[str, int | None], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["seq_len"]), []).append(r)
    out = []
    for (model, seq_len), rs in groups.items():
        accs = [r["test_accuracy"] for r in rs if r["test_accuracy"] is not None]
        agg: dict[str, Any] = {
            "model": model,
            "seq_len": seq_len,
            "runs": len(rs),
            "params": rs[0]["params"],
            "test_accuracy_mean": _mean(accs),
            "test_accuracy_std": statistics.stdev(accs) if len(accs) > 1 else (0.0 if accs else None),
            "test_accuracy_min": min(accs) if accs else None,
            "test_accuracy_max": max(accs) if accs else None,
            "wall_time_s_mean": _mean([r["wall_time_s"] for r in rs if r["wall_time_s"] is not None]),
            "steps_per_s_mean": _mean([r["steps_per_s"] for r in rs if r["steps_per_s"] is not None]),
        }
        for k in ("steps_to_90", "steps_to_99"):
            reached = [r[k] for r in rs if r[k] is not None]
            agg[f"{k}_mean"] = _mean(reached)
            agg[f"{k}_reached"] = len(reached)
        out.append(agg)
    return out


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _acc_cell(a: dict[str, Any]) -> str:
    if a["test_accuracy_mean"] is None:
        return "—"
    if a["runs"] == 1:
        return _pct(a["test_accuracy_mean"])
    return f"{100 * a['test_accuracy_mean']:.1f} ± {100 * a['test_accuracy_std']:.1f}%"


def _steps_cell(a: dict[str, Any], key: str) -> str:
    reached, mean = a[f"{key}_reached"], a[f"{key}_mean"]
    if not reached:
        return "—"
    partial = f" ({reached}/{a['runs']})" if reached < a["runs"] else ""
    return f"{mean:,.0f}{partial}"


def _num(x: float | None, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


_TABLE_HEAD = ["model", "seq_len", "params", "test accuracy", "steps to 90%", "steps to 99%", "wall time / run", "steps/s"]


def _table_cells(a: dict[str, Any]) -> list[str]:
    return [
        a["model"],
        "—" if a["seq_len"] is None else str(a["seq_len"]),
        f"{a['params']:,}" if a["params"] is not None else "—",
        _acc_cell(a),
        _steps_cell(a, "steps_to_90"),
        _steps_cell(a, "steps_to_99"),
        _num(a["wall_time_s_mean"], ".1f") + ("s" if a["wall_time_s_mean"] is not None else ""),
        _num(a["steps_per_s_mean"], ",.0f"),
    ]


def _chance_label(rows: list[dict[str, Any]]) -> str:
    """What the task calls its chance accuracy ("chance", the copy task's "memoryless", ...)."""
    return next((r["_chance_label"] for r in rows if r.get("_chance_label")), "chance")


def _baselines(rows: list[dict[str, Any]]) -> str:
    """The task's baseline loss per length, e.g. the copy task's memoryless 10 ln 8 / (T + 20)."""
    per_len = {r["seq_len"]: r["_baseline_loss"] for r in rows if r.get("_baseline_loss") is not None}
    if not per_len:
        return ""
    shown = ", ".join(f"{v:.4f}" + (f" at {n}" if n is not None and len(per_len) > 1 else "") for n, v in sorted(per_len.items(), key=lambda kv: kv[0] or 0))
    return f" (loss {shown})"


def _write_markdown(path: Path, title: str, aggregate: list[dict[str, Any]], rows: list[dict[str, Any]], chance: float | None, plots: list[Path]) -> None:
    lines = [f"# {title}", ""]
    seeds = max((a["runs"] for a in aggregate), default=1)
    lines.append(
        f"Test accuracy: mean ± std over {seeds} seed(s). Steps to 90%/99%: the first validation at that accuracy, "
        "mean over the seeds that reached it ((k/n): only k of n seeds did; —: none)."
    )
    if chance is not None:
        label = _chance_label(rows)
        lines.append(f"{label[0].upper()}{label[1:]}: {100 * chance:.1f}%{_baselines(rows)}.")
    lines += ["", *markdown_table(_TABLE_HEAD, [_table_cells(a) for a in aggregate])]
    run_rows = [
        [r["model"], str(r["seq_len"]) if r["seq_len"] is not None else "—", str(r["seed"]), _pct(r["test_accuracy"]),
         str(r["steps"]), r["status"], Path(r["run_dir"]).name]
        for r in rows
    ]  # fmt: skip
    lines += ["", "## Runs", "", *markdown_table(["model", "seq_len", "seed", "test accuracy", "steps", "status", "run"], run_rows)]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in plots]
    write_atomic(path, ("\n".join(lines) + "\n").encode())


def _curve_series(rows: list[dict[str, Any]], label_of) -> dict[str, tuple]:
    """Validation accuracy against step: mean over seeds with a min-max band, per label."""
    series: dict[str, tuple] = {}
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(label_of(r), []).append(r)
    for label, rs in groups.items():
        by_step: dict[int, list[float]] = {}
        for r in rs:
            for h in r["_history"]:
                if h.get("split") == "val" and h.get("accuracy") is not None:
                    by_step.setdefault(int(h["step"]), []).append(h["accuracy"])
        if not by_step:
            continue
        steps = sorted(by_step)
        # Seeds that stopped early simply drop out of the later steps' mean.
        ys = [statistics.fmean(by_step[s]) for s in steps]
        if len(rs) > 1:
            series[label] = (steps, ys, [min(by_step[s]) for s in steps], [max(by_step[s]) for s in steps])
        else:
            series[label] = (steps, ys, None, None)
    return series


def _plots(parent: Path, rows: list[dict[str, Any]], aggregate: list[dict[str, Any]], models: list[str], chance: float | None, task: str) -> list[Path]:
    plots_dir = parent / "plots"
    hline = (chance, _chance_label(rows)) if chance else None
    seeds = len({r["seed"] for r in rows})
    band = f"\nmean over {seeds} seeds, band: min–max" if seeds > 1 else ""
    lens = sorted({r["seq_len"] for r in rows if r["seq_len"] is not None})
    written = []
    # One line per model: with several lengths, curves.png shows the longest (the hardest) and
    # curves_seq_len_<N>.png each length; a dozen overlaid lines would be unreadable.
    for n in lens if len(lens) > 1 else []:
        sub = _curve_series([r for r in rows if r["seq_len"] == n], lambda r: r["model"])
        written.append(line_plot(plots_dir / f"curves_seq_len_{n}.png", sub, title=f"{task}, seq_len {n}: validation accuracy{band}",
                                 xlabel="step", ylabel="validation accuracy", hline=hline, ylim=ACCURACY_YLIM))
    shown = [r for r in rows if not lens or r["seq_len"] == lens[-1]]
    at = f", seq_len {lens[-1]}" if lens else ""
    series = _curve_series(shown, lambda r: r["model"])
    title = f"{task}{at}: validation accuracy{band}"
    written.insert(0, line_plot(plots_dir / "curves.png", series, title=title, xlabel="step", ylabel="validation accuracy", hline=hline, ylim=ACCURACY_YLIM))
    if len(lens) > 1:
        series = {}
        for m in models:
            pts = sorted(((a["seq_len"], a) for a in aggregate if a["model"] == m and a["test_accuracy_mean"] is not None), key=lambda p: p[0])
            if pts:
                xs = [p[0] for p in pts]
                series[m] = (
                    xs,
                    [p[1]["test_accuracy_mean"] for p in pts],
                    [p[1]["test_accuracy_min"] for p in pts] if seeds > 1 else None,
                    [p[1]["test_accuracy_max"] for p in pts] if seeds > 1 else None,
                )
        written.insert(1, line_plot(plots_dir / "accuracy_vs_seq_len.png", series, title=f"{task}: test accuracy against sequence length{band}",
                                    xlabel="seq_len", ylabel="test accuracy", hline=hline, ylim=ACCURACY_YLIM))
    return written


def compare(
    runs: list[PlannedRun],
    *,
    runs_dir: str | Path = "runs",
    console: Console | None = None,
    progress: bool = True,
    jobs: int = 1,
) -> CompareResult:
    """Train the runs `plan_runs` made through `fit` (or `jobs` at once, each in a `rnnlab train`
    process); write the results and plots; print the table."""
    console = console or Console()
    if jobs < 1:
        raise UserError(f"--jobs {jobs}: must be at least 1")
    models = list(dict.fromkeys(r.model for r in runs))
    seeds = len({r.seed for r in runs})
    fresh_runs_dir = not Path(runs_dir).exists()
    parent = create_run_dir(runs_dir, f"compare-{'-'.join(models)}")
    sources = {}
    for r in runs:
        sources.setdefault(r.model, r.source)
    console.print(
        f"[bold]compare[/] {', '.join(models)} · {len(runs)} runs "
        f"({_n(len(models), 'model')} × {_n(len({r.seq_len for r in runs}), 'length')} × {_n(seeds, 'seed')}) · [bold]{parent}[/]"
    )
    for m, src in sources.items():
        c = next(r.cfg for r in runs if r.model == m)
        console.print(
            f"  [cyan]{m}[/]: {src} · init {getattr(c.model, 'init', '—')} · hidden {getattr(c.model, 'hidden_size', '—')} "
            f"· lr {c.train.lr:g} · up to {c.train.steps or '—'} steps", highlight=False
        )
        warning = bidirectional_warning(TASKS.get(c.task.name).builder, c.model)
        if warning:
            console.print(f"    [yellow]{warning}[/]", highlight=False, soft_wrap=True)
    started = time.perf_counter()
    if jobs > 1:
        with _Stop().installed() as stop:
            try:
                rows, stopped = _run_in_processes(runs, parent, jobs, console, progress, stop)
            except UserError:
                _discard(parent, fresh_runs_dir)
                raise
            return _write_results(parent, runs, rows, models, seeds, sources, console, started, stopped)
    rows: list[dict[str, Any]] = []
    stopped: TrainingStopped | None = None
    for i, run in enumerate(runs, start=1):
        what = f"{run.model} seq_len {run.seq_len} seed {run.seed}" if run.seq_len is not None else f"{run.model} seed {run.seed}"
        try:
            result = fit(run.cfg, runs_dir=parent, console=console, progress=progress, final_table=False, label=f"run {i}/{len(runs)}: {what}")
        except TrainingStopped as e:
            result = e.result
            if e.exit_code != 1:  # interrupted: keep what is done, then stop
                rows.append(_row(run, result))
                stopped = e
                break
            console.print(f"[yellow]{run.model}: {e}[/]")  # diverged or failed: recorded, the others go on
        except UserError:
            if not rows:  # nothing of value yet (e.g. the data is missing): leave no empty folder behind
                _discard(parent, fresh_runs_dir)
            raise
        rows.append(_row(run, result))
    with _Stop().installed():  # a signal now is noted only: the runs are saved, and their results must be too
        return _write_results(parent, runs, rows, models, seeds, sources, console, started, stopped)


# SIGHUP: the terminal closed; handled like SIGTERM.
_STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)


class _Stop:
    """SIGINT, SIGTERM and SIGHUP while compare's jobs run and its results are written. The handler
    only notes the first signal; the loop that waits for the jobs reads it, passes it on to each
    job once and waits for them to save. Any later signal is ignored: obeying it (a KeyboardInterrupt
    raised while the jobs save, or the default SIGTERM) would lose what the first is saving, the
    jobs' last checkpoints and the comparison's results.csv, results.md and summary.json."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def _note(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum

    @contextmanager
    def installed(self) -> Iterator["_Stop"]:
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield self
            return
        previous = {s: signal.signal(s, self._note) for s in _STOP_SIGNALS}
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


def _discard(parent: Path, fresh_runs_dir: bool) -> None:
    """Remove a comparison that produced nothing, and the runs directory if this call made it."""
    if any(p.is_dir() and (p / "summary.json").is_file() for p in parent.iterdir()):
        return
    shutil.rmtree(parent, ignore_errors=True)
    if fresh_runs_dir:
        try:
            parent.parent.rmdir()  # only when empty
        except OSError:
            pass


def _write_results(parent: Path, runs: list[PlannedRun], rows: list[dict[str, Any]], models: list[str], seeds: int,
                   sources: dict[str, str], console: Console, started: float, stopped: TrainingStopped | None,
                   missing: list[str] | None = None, wall: float | None = None) -> CompareResult:  # fmt: skip
    finished = [r for r in rows if r["status"] in ("completed", "diverged", "failed")]
    aggregate = _aggregate(finished)
    chance = next((r["_chance"] for r in rows if r["_chance"] is not None), None)
    task_name = runs[0].cfg.task.name
    plots = _plots(parent, finished, aggregate, models, chance, task_name) if finished else []
    write_csv(parent / "results.csv", rows, RESULT_COLUMNS)
    title = f"rnnlab compare {' '.join(models)} · {task_name}"
    _write_markdown(parent / "results.md", title, aggregate, rows, chance, plots)
    warnings = {r.model: w for r in runs if (w := bidirectional_warning(TASKS.get(r.cfg.task.name).builder, r.cfg.model))}
    if warnings:  # beside the results as well: such a score is no memory result
        with (parent / "results.md").open("a", encoding="utf-8") as f:
            f.write("".join(f"\n> {w}\n" for w in warnings.values()))
    public_rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    wall = round(time.perf_counter() - started, 3) if wall is None else wall
    write_json(
        parent / "summary.json",
        {
            "status": "interrupted" if stopped else ("incomplete" if missing else "completed"),
            "task": task_name,
            "models": models,
            "seq_lens": sorted({r.seq_len for r in runs if r.seq_len is not None}),
            "seeds": seeds,
            "configs": sources,
            **({"warnings": warnings} if warnings else {}),
            "chance": chance,
            "planned_runs": len(runs),
            "finished_runs": len(finished),
            "missing_runs": missing or [],
            "wall_time_s": wall,
            "aggregate": aggregate,
            "runs": public_rows,
        },
    )
    table_title = title + (f" · test accuracy: mean ± std over {seeds} seeds" if seeds > 1 else "")
    print_table(console, table_title, ["model", "seq_len", "params", "test acc.", "to 90%", "to 99%", "time/run", "steps/s"],
                [_table_cells(a) for a in aggregate])  # fmt: skip
    notes = ["to 90%/99%: steps until validation accuracy first reached it (— never; (k/n): only k of n seeds did)"]
    if chance is not None and not math.isnan(chance):
        notes.insert(0, f"{_chance_label(rows)} {100 * chance:.1f}%" + _baselines(rows))
    console.print(f"[dim]{' · '.join(notes)}[/]")
    for w in warnings.values():
        console.print(f"[yellow]{w}[/]", highlight=False, soft_wrap=True)
    console.print(f"{len(finished)} of {len(runs)} runs finished in {wall:.0f}s · results: [bold]{parent}[/] (results.csv, results.md, plots/)")
    if stopped:
        cut = len(rows) - len(finished)
        raise TrainingStopped(
            f"compare interrupted: {len(finished)} of {len(runs)} runs finished"
            + (f", {cut} cut short (kept in results.csv with status interrupted, left out of the table)" if cut else "")
            + f"; results so far are in {parent}",
            stopped.exit_code,
            stopped.result,
        )
    return CompareResult(parent, public_rows, aggregate)


# --- several processes, and plans for other schedulers --------------------------------------------


def _write_plan(parent: Path, runs: list[PlannedRun]) -> list[Path]:
    """configs/<name>.yaml per run (resolved: nothing left to defaults that could change) and
    plan.json, which `collect` reads back."""
    folder = parent / "configs"
    folder.mkdir(exist_ok=True)
    paths = []
    for run in runs:
        path = folder / f"{run.cfg.run_name}.yaml"
        write_atomic(path, yaml.safe_dump(config_to_dict(run.cfg), sort_keys=False).encode())
        paths.append(path)
    write_json(parent / "plan.json", {
        "runs": [{"name": r.cfg.run_name, "model": r.model, "seq_len": r.seq_len, "seed": r.seed, "source": r.source,
                  "config": str(p.relative_to(parent))} for r, p in zip(runs, paths)],
    })  # fmt: skip
    return paths


def _run_dir_of(parent: Path, name: str) -> Path | None:
    """The newest run directory in `parent` whose config.yaml names the run `name`."""
    found = []
    for d in parent.iterdir() if parent.is_dir() else []:
        if d.is_dir() and d.name.endswith(f"-{name}") and (d / "config.yaml").is_file():
            try:
                if (yaml.safe_load((d / "config.yaml").read_text()) or {}).get("name") == name:
                    found.append(d)
            except (OSError, yaml.YAMLError):
                continue
    return max(found, key=lambda d: d.name) if found else None


def _row_from_disk(run: PlannedRun, run_dir: Path) -> dict[str, Any] | None:
    try:
        summary = read_json(run_dir / "summary.json")
        history = read_metrics(run_dir)
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict):
        return None
    return _row(run, FitResult(run_dir, summary, history))


def _train_command(config: Path, parent: Path) -> list[str]:
    return ["rnnlab", "train", str(config), "--runs-dir", str(parent), "--no-progress"]


def _run_in_processes(runs: list[PlannedRun], parent: Path, jobs: int, console: Console, progress: bool,
                      stop: _Stop) -> tuple[list[dict[str, Any]], TrainingStopped | None]:  # fmt: skip
    """Each run a `rnnlab train` process, `jobs` at a time, through the runner `rnnlab reproduce`
    uses too (rnnlab/jobs.py: one process group per job, threads set before torch starts, a signal
    passed on once and the jobs waited for while they save)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    configs = _write_plan(parent, runs)
    logs = parent / "logs"
    logs.mkdir(exist_ok=True)
    requested, inherited = requested_threads(), os.environ.get("OMP_NUM_THREADS", "").strip()
    if isinstance(requested, int):  # --threads N: each job gets N
        threads = requested
    elif inherited.isdigit() and int(inherited) > 0 and requested is None:  # the user's OMP_NUM_THREADS, passed on
        threads = int(inherited)
    else:  # auto: the cores this process may use, shared (jobs deciding alone, at once, would all take them)
        threads = threads_per_job(jobs)
    console.print(f"  {jobs} jobs at once, {threads} thread(s) each; logs in {logs}", highlight=False)
    of_proc: dict[int, PlannedRun] = {}
    procs = []
    for run, config in zip(runs, configs):
        proc = Proc([sys.executable, "-m", "rnnlab", *_train_command(config, parent)[1:]], logs / f"{run.cfg.run_name}.log")
        of_proc[id(proc)] = run
        procs.append(proc)
    order = {id(r): i for i, r in enumerate(runs)}
    done: dict[int, dict[str, Any]] = {}
    user_error: list[str] = []
    running: list[str] = []
    bar = Progress(TextColumn("[bold blue]runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.fields[info]}"), console=console, disable=not progress)  # fmt: skip
    task = bar.add_task("runs", total=len(runs), info="")

    def started(proc: Proc) -> None:
        running.append(of_proc[id(proc)].cfg.run_name)
        bar.update(task, info=", ".join(running))

    def finished(proc: Proc) -> bool:
        run = of_proc[id(proc)]
        running.remove(run.cfg.run_name)
        bar.update(task, info=", ".join(running))
        if proc.returncode == 2:  # a user's mistake (e.g. missing data): the others would fail alike
            user_error.append(_last_error(proc.log))
            return False
        run_dir = _run_dir_of(parent, run.cfg.run_name)
        row = _row_from_disk(run, run_dir) if run_dir is not None else None
        if row is not None:
            done[order[id(run)]] = row
            acc = row["test_accuracy"]
            console.print(f"  {run.cfg.run_name}: {row['status']}" + (f", test accuracy {100 * acc:.1f}%" if acc is not None else "")
                          + f" ({row['wall_time_s'] or 0:.1f}s)", highlight=False)  # fmt: skip
        else:
            console.print(f"[yellow]  {run.cfg.run_name}: exited with code {proc.returncode} without a run; see {proc.log}[/]")
        bar.advance(task)
        return True

    signum = stop.signum  # a signal while the plan was written: nothing is started
    if signum is None:
        with bar:  # run_processes takes the signals over while the jobs run (and gives them back)
            signum = run_processes(procs, jobs, threads=threads, on_start=started, on_done=finished)
    stopped = None
    if signum is not None:
        stopped = TrainingStopped("compare interrupted", 128 + signum, None)  # type: ignore[arg-type]
    if user_error:
        if done:  # finished runs are kept; the comparison's results are not written
            raise UserError(f"{user_error[0]} (the runs that finished are kept in {parent})")
        raise UserError(user_error[0])
    return [done[i] for i in sorted(done)], stopped


def _last_error(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors[-1][len("error:"):].strip() if errors else (lines[-1] if lines else f"a run failed; see {log}"))


def plan(runs: list[PlannedRun], *, runs_dir: str | Path = "runs", console: Console | None = None) -> Path:
    """Write the comparison's directory with every run's config and print one command per run."""
    console = console or Console()
    models = list(dict.fromkeys(r.model for r in runs))
    parent = create_run_dir(runs_dir, f"compare-{'-'.join(models)}")
    configs = _write_plan(parent, runs)
    console.print(f"# {len(runs)} runs planned in {parent}; run these anywhere that sees this directory, then:", highlight=False, soft_wrap=True)
    console.print(f"#   rnnlab compare --collect {parent}", highlight=False, soft_wrap=True)
    for config in configs:
        console.print(" ".join(_train_command(config, parent)), highlight=False, soft_wrap=True)
    return parent


def collect(parent: Path, *, console: Console | None = None) -> CompareResult:
    """results.csv, results.md and the plots from the planned runs in `parent` that have run.

    Every file is read and checked first (compare_plan.py). A run whose files are damaged is
    skipped with a line naming it and the problem; when no run is left to collect, nothing is
    written (earlier results stay as they were) and the UserError lists why.
    """
    console = console or Console()
    parent = Path(parent)
    if not parent.is_dir():
        raise UserError(f"no comparison directory {parent}")
    entries, skipped = read_plan(parent)
    planned = len(entries) + len(skipped)
    runs = [PlannedRun(e.model, e.seq_len, e.seed, e.cfg, e.source) for e in entries]
    rows, missing = [], []
    for run in runs:
        try:
            found = read_run(parent, run.cfg.run_name)
        except BadRun as e:
            skipped.append((run.cfg.run_name, str(e)))
            continue
        if found is None:
            missing.append(run.cfg.run_name)
        else:
            rows.append(_row(run, FitResult(found.run_dir, found.summary, found.history)))
    for name, why in skipped:
        console.print(f"[yellow]skipped {escape(name)}: {escape(why)}[/]", highlight=False, soft_wrap=True)
    if not rows:
        if skipped:
            raise UserError(f"nothing collected from {parent}: {len(skipped)} of {planned} planned runs skipped (see above), "
                            f"{len(missing)} not started; results.csv, results.md and summary.json were left as they were. "
                            f"Repair or re-run the skipped runs (rnnlab train {parent / 'configs'}/RUN.yaml --runs-dir {parent}), "
                            "then collect again")  # fmt: skip
        raise UserError(f"none of the {len(runs)} planned runs in {parent} has started; run the commands rnnlab compare --plan printed")
    models = list(dict.fromkeys(r.model for r in runs))
    sources = {}
    for r in runs:
        sources.setdefault(r.model, r.source)
    wall = sum(r["wall_time_s"] or 0 for r in rows)
    # A skipped run is missing from the results as much as one not started: the summary says "incomplete".
    result = _write_results(parent, runs, rows, models, len({r.seed for r in runs}), sources, console, time.perf_counter(),
                            None, missing=missing + [name for name, _ in skipped], wall=round(wall, 3))  # fmt: skip
    unfinished = [r["run_dir"] for r in rows if r["status"] not in ("completed", "diverged", "failed")]
    if missing:
        console.print(f"[yellow]missing ({len(missing)} of {planned}, not started yet): {', '.join(missing)}[/]", highlight=False)
    if skipped:
        console.print(f"[yellow]skipped ({len(skipped)}, damaged; see above): {escape(', '.join(name for name, _ in skipped))}[/]", highlight=False)
    if unfinished:
        console.print(f"[yellow]not finished ({len(unfinished)}; resume with rnnlab train --resume RUN): "
                      f"{', '.join(Path(u).name for u in unfinished)}[/]", highlight=False)  # fmt: skip
    return result
