"""`rnnlab compare`: several models side by side on the same data, every run through the one engine.

    rnnlab compare lstm gru rnn --seq-len 100 --seeds 2

Each model starts from its shipped config `configs/long_dependency_<model>.yaml` (the settings
that work: LSTM chrono init, GRU update-gate bias 3), or from `--config BASE.yaml` for any task;
the options and `key=value` overrides then apply to every run. For a given seed every model sees
the same data stream (the task's generator is seeded by the run's seed, not by the model).

    runs/<time>-compare-lstm-gru-rnn/
        <time>-lstm-seq100-seed0/ ...   one normal run directory per model x seq_len x seed
        results.csv  results.md  summary.json
        plots/curves.png  plots/accuracy_vs_seq_len.png (several lengths)
"""

from __future__ import annotations

import csv
import io
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from rich import box
from rich.console import Console
from rich.table import Table

from .config import RunConfig, apply_overrides, read_yaml, resolve_config
from .engine import FitResult, TrainingStopped, fit
from .errors import ConfigError, UserError
from .plots import ACCURACY_YLIM, line_plot
from .registry import MODELS
from .rundir import create_run_dir, write_atomic, write_json

__all__ = [
    "SHIPPED_CONFIGS",
    "BASE_CONFIG",
    "RESULT_COLUMNS",
    "CompareResult",
    "PlannedRun",
    "parse_seq_lens",
    "model_raw_config",
    "plan_runs",
    "compare",
    "steps_to",
]

# The configs next to the package (a source checkout); a model without one uses BASE_CONFIG.
SHIPPED_CONFIGS = Path(__file__).resolve().parent.parent / "configs"

# For models without a shipped long-dependency config (e.g. bigru): the shipped configs' settings.
BASE_CONFIG: dict[str, Any] = {
    "task": {"name": "long_dependency", "seq_len": 50, "num_classes": 10},
    "model": {"name": "lstm", "hidden_size": 32},
    "train": {
        "optimizer": "adam",
        "lr": 0.01,
        "batch_size": 32,
        "steps": 1500,
        "clip_grad_norm": 5.0,
        "eval_every": 50,
        "early_stopping": 10,
    },
}

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


def parse_seq_lens(text: str | None) -> list[int] | None:
    """'10,50,100' -> [10, 50, 100]; None -> None (each config's own length)."""
    if text is None:
        return None
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise UserError(f"--seq-len {text!r}: each length must be a whole number >= 1, e.g. --seq-len 50 or --seq-len 10,50,100")
        if int(part) not in out:
            out.append(int(part))
    return out


def model_raw_config(model: str, base: Path | None = None, task: str | None = None) -> tuple[dict[str, Any], str]:
    """The raw config one model starts from, and where it came from (for the log).

    `base` if given; else the shipped configs/<task>_<model>.yaml (task: long_dependency unless
    named); else BASE_CONFIG (with the named task's defaults).
    """
    task = task or "long_dependency"
    if base is not None:
        raw, source = read_yaml(base), str(base)
    else:
        shipped = SHIPPED_CONFIGS / f"{task}_{model}.yaml"
        if shipped.is_file():
            raw, source = read_yaml(shipped), f"configs/{shipped.name}"
        else:
            raw, source = apply_overrides(BASE_CONFIG, []), f"built-in settings (no configs/{shipped.name})"
            if task != "long_dependency":
                raw["task"] = {"name": task}
    section = raw.get("model")
    if isinstance(section, str):
        section = {"name": section}
    raw["model"] = {**(section if isinstance(section, dict) else {}), "name": model}
    raw.pop("name", None)  # each run gets its own name below
    return raw, source


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
) -> list[PlannedRun]:
    """Every run's validated config, before anything trains: a mistake stops it at once."""
    if not models:
        raise UserError("name at least one model, e.g. rnnlab compare lstm gru rnn")
    for m in models:
        MODELS.get(m)  # unknown name -> UserError with did-you-mean
    if len(set(models)) != len(models):
        twice = sorted({m for m in models if models.count(m) > 1})
        raise UserError(f"model {', '.join(repr(m) for m in twice)} named twice; name each model once")
    if not isinstance(seeds, int) or seeds < 1:
        raise UserError(f"--seeds {seeds}: must be at least 1 (runs use seeds 0..K-1)")
    if steps is not None and steps < 1:
        raise UserError(f"--steps {steps}: must be at least 1")
    if hidden is not None and hidden < 1:
        raise UserError(f"--hidden {hidden}: must be at least 1")
    overrides = list(overrides)
    for text in overrides:
        key = text.partition("=")[0].strip()
        if key in ("seed", "name"):
            hint = "use --seeds K (runs use seeds 0..K-1)" if key == "seed" else "compare names each run itself"
            raise UserError(f"override '{text}': {hint}")
    options: list[str] = []
    if steps is not None:
        options.append(f"train.steps={steps}")
    if hidden is not None:
        options.append(f"model.hidden_size={hidden}")
    if init is not None:
        options.append(f"model.init={init}")
    runs: list[PlannedRun] = []
    for seq_len in seq_lens or [None]:
        for seed in range(seeds):
            for model in models:
                raw, source = model_raw_config(model, config, task)
                if task is not None and (raw.get("task") or {}).get("name") != task:
                    raw["task"] = {"name": task}  # another task's settings would not fit
                length = [f"task.seq_len={seq_len}"] if seq_len is not None else []
                name = f"{model}-seq{seq_len}-seed{seed}" if seq_len is not None else f"{model}-seed{seed}"
                raw = apply_overrides(raw, [*length, *options, *overrides, f"seed={seed}", f"name={name}"])
                what = f"for {model} ({source} + options and overrides)"
                try:
                    cfg = resolve_config(raw, source=what)
                except ConfigError as e:
                    if seq_len is not None and any(p.startswith("task.seq_len: unknown key") for p in e.problems):
                        raise UserError(f"--seq-len: task '{raw['task'].get('name')}' has no seq_len; leave --seq-len out\n{e}") from None
                    raise
                actual = getattr(cfg.task, "seq_len", None)
                runs.append(PlannedRun(model, actual if isinstance(actual, int) else None, seed, cfg, source))
    return runs


def steps_to(history: list[dict[str, Any]], threshold: float, metric: str = "accuracy") -> int | None:
    """The first evaluated step whose validation `metric` reaches `threshold`; None if never."""
    for row in history:
        value = row.get(metric)
        if row.get("split") == "val" and value is not None and value >= threshold:
            return int(row["step"])
    return None


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


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r[k]) for k in RESULT_COLUMNS})
    write_atomic(path, buffer.getvalue().encode())


def _write_markdown(path: Path, title: str, aggregate: list[dict[str, Any]], rows: list[dict[str, Any]], chance: float | None, plots: list[Path]) -> None:
    lines = [f"# {title}", ""]
    seeds = max((a["runs"] for a in aggregate), default=1)
    lines.append(
        f"Test accuracy: mean ± std over {seeds} seed(s). Steps to 90%/99%: the first validation at that accuracy, "
        "mean over the seeds that reached it ((k/n): only k of n seeds did; —: none)."
    )
    if chance is not None:
        lines.append(f"Chance: {100 * chance:.1f}%.")
    lines += ["", "| " + " | ".join(_TABLE_HEAD) + " |", "|" + "---|" * len(_TABLE_HEAD)]
    lines += ["| " + " | ".join(_table_cells(a)) + " |" for a in aggregate]
    lines += ["", "## Runs", "", "| model | seq_len | seed | test accuracy | steps | status | run |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['seq_len'] if r['seq_len'] is not None else '—'} | {r['seed']} | {_pct(r['test_accuracy'])} "
            f"| {r['steps']} | {r['status']} | {Path(r['run_dir']).name} |"
        )
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
    hline = (chance, "chance") if chance else None
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
) -> CompareResult:
    """Train the runs `plan_runs` made through `fit`; write the results and plots; print the table."""
    console = console or Console()
    models = list(dict.fromkeys(r.model for r in runs))
    seeds = len({r.seed for r in runs})
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
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
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
            console.print(f"[yellow]{run.model}: {e}[/]")  # diverged: recorded, the others go on
        rows.append(_row(run, result))
    aggregate = _aggregate(rows)
    chance = next((r["_chance"] for r in rows if r["_chance"] is not None), None)
    task_name = runs[0].cfg.task.name
    plots = _plots(parent, rows, aggregate, models, chance, task_name) if rows else []
    _write_csv(parent / "results.csv", rows)
    title = f"rnnlab compare {' '.join(models)} · {task_name}"
    _write_markdown(parent / "results.md", title, aggregate, rows, chance, plots)
    public_rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    write_json(
        parent / "summary.json",
        {
            "status": "interrupted" if stopped else "completed",
            "task": task_name,
            "models": models,
            "seq_lens": sorted({r.seq_len for r in runs if r.seq_len is not None}),
            "seeds": seeds,
            "configs": sources,
            "chance": chance,
            "wall_time_s": round(time.perf_counter() - started, 3),
            "aggregate": aggregate,
            "runs": public_rows,
        },
    )
    _print_table(console, title, aggregate, chance, seeds)
    console.print(f"{len(rows)} runs in {time.perf_counter() - started:.0f}s · results: [bold]{parent}[/] (results.csv, results.md, plots/)")
    if stopped:
        raise TrainingStopped(f"compare interrupted after {len(rows)} of {len(runs)} runs; results so far are in {parent}", stopped.exit_code, stopped.result)
    return CompareResult(parent, public_rows, aggregate)


def _print_table(console: Console, title: str, aggregate: list[dict[str, Any]], chance: float | None, seeds: int) -> None:
    # Short headers and no side borders: the table fits an 80-column terminal.
    if seeds > 1:
        title += f" · test accuracy: mean ± std over {seeds} seeds"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    heads = ["model", "seq_len", "params", "test acc.", "to 90%", "to 99%", "time/run", "steps/s"]
    for i, head in enumerate(heads):
        table.add_column(head, justify="left" if i == 0 else "right")
    for a in aggregate:
        table.add_row(*_table_cells(a))
    console.print(table)
    notes = ["to 90%/99%: steps until validation accuracy first reached it (— never; (k/n): only k of n seeds did)"]
    if chance is not None and not math.isnan(chance):
        notes.insert(0, f"chance {100 * chance:.1f}%")
    console.print(f"[dim]{' · '.join(notes)}[/]")
