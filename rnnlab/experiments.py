"""Experiments declared once: what the docs' numbers come from, and whether they are still true.

    rnnlab reproduce --list
    rnnlab reproduce long_dependency_cells --seeds 3 --jobs 2
    rnnlab reproduce --check          # trains nothing: which artifacts no longer match today's configs
    rnnlab reproduce --render         # the marked blocks of README.md and docs/*.md, from the artifacts

An experiment is one small YAML file in `experiments/` of a checkout:

    title: LSTM, GRU and RNN on long-dependency recall at T = 100
    page: memory                      # the docs page (docs/memory.md) that shows it
    data: []                          # what it needs beyond rnnlab: imdb, treebank
    seeds: 3
    minutes: 2                        # expected wall time on 2 cores, every arm and seed, one job
    runs:                             # arm -> the arguments of `rnnlab train`
      lstm: long_dependency_lstm task.seq_len=100
      gru: long_dependency_gru task.seq_len=100
    report: [test.accuracy, steps]    # the columns its table shows

With `ensembles: {name: [arm, arm, ...]}` each seed's runs of those arms are also scored together
(the mean of their class probabilities, as `rnnlab evaluate RUN...`), and the best arm or ensemble
on seed `choose_on_seed`'s validation split is reported on the other seeds' test split only.

Or, for a benchmark, `script: benchmarks/train_speed.py --rounds 5` whose `key=value` lines on
stdout are its figures, with `configs:` naming the shipped configs it reads.

Its artifact is docs/results/<name>/: per arm and seed the resolved config.yaml, summary.json,
metrics.jsonl and run.json (wall time, exit code); aggregate.json (mean, std, min, max, n of every
figure per arm); provenance.json (commit, whether the tree was clean, CPU and its flags, cores,
threads, torch, Python, date). Nothing here trains: rnnlab/commands/reproduce.py runs the jobs.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .config import config_to_dict, dotted, find_config, load_config
from .errors import UserError

__all__ = [
    "Experiment",
    "Job",
    "find_root",
    "load_experiments",
    "jobs_of",
    "expected_configs",
    "stale_keys",
    "flatten_figures",
    "Figure",
    "load_figures",
    "draw_figure",
    "aggregate",
    "choose",
    "shipped_config",
    "provenance",
    "git_state",
    "render_text",
    "render_files",
    "RESULTS_DIR",
]

RESULTS_DIR = Path("docs") / "results"
# Settings that choose where and how fast a run computes, not what it computes: a change to them
# leaves an artifact current. (Thread counts change float rounding, not the experiment.)
_NOT_RESULTS = ("runtime.", "device")
# Settings added after artifacts were recorded, with the value that an artifact without them ran
# with: the change is declared here, so --check does not call every older artifact stale for it.
# model.fast_gru_backward: before it existed every GRU trained through the hand-written backward,
# so the experiments with GRU runs were rerun when it was added (and record it); nothing else used it.
# model.orthogonal_lr_scale: 1.0 is the one rate expRNN trained at before it existed.
ADDED_SETTINGS: dict[str, Any] = {"model.fast_gru_backward": False, "model.orthogonal_lr_scale": 1.0}
_BEGIN = re.compile(r"<!-- rnnlab:(table|headline|figure) ?([A-Za-z0-9_,-]*) -->\n")
_END = "<!-- rnnlab:end -->"


class Experiment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    title: str
    page: str = Field(description="the docs page that shows it: docs/<page>.md")
    data: list[Literal["imdb", "treebank", "glove"]] = []
    seeds: int = Field(3, ge=1, le=100)
    minutes: float = Field(gt=0, description="expected wall time on 2 cores, all arms and seeds, one job")
    runs: dict[str, str] = {}
    script: str | None = None
    configs: list[str] = Field([], description="shipped configs a script reads, checked for staleness")
    threads: int | None = Field(None, ge=1, le=4096, description="a script's OMP_NUM_THREADS; none: the script's own choice")
    rows: list[str] = Field([], description="a script's table rows: it prints ROW.KEY=value, and the table's ROW row shows KEY")
    report: list[str] = ["test.accuracy"]
    columns: dict[str, str] = Field({}, description="a report key -> its column's heading (the key itself when absent)")
    ensembles: dict[str, list[str]] = Field({}, description="name -> the arms whose runs of one seed are averaged, scored on val and test")
    choose_on_seed: int = Field(0, ge=0, description="with ensembles: the seed whose validation picks the best arm or ensemble; the other seeds report its test figure")

    @model_validator(mode="after")
    def _one_kind(self) -> "Experiment":
        if bool(self.runs) == bool(self.script):
            raise ValueError("give either runs (arm: rnnlab train arguments) or script, not both and not neither")
        if self.rows and not self.script:
            raise ValueError("rows are a script's (it prints ROW.KEY=value); a trained experiment's rows are its runs")
        for name, members in self.ensembles.items():
            unknown = [m for m in members if m not in self.runs]
            if name in self.runs or len(members) < 2 or unknown:
                raise ValueError(f"ensemble {name!r}: give two or more of the arms {list(self.runs)}, under a name that is not an arm's")
        if self.ensembles and self.choose_on_seed >= self.seeds:
            raise ValueError(f"choose_on_seed {self.choose_on_seed}: the seeds are 0..{self.seeds - 1}")
        return self

    @property
    def arms(self) -> list[str]:
        """The rows of its table: the trained arms, then the ensembles of them."""
        return [*self.runs, *self.ensembles] if self.runs else self.rows or ["script"]

    def entry(self, agg: dict[str, Any], arm: str, key: str) -> dict[str, float] | None:
        """The aggregate of one table cell: a script's figures all sit under "script", ROW.KEY with rows."""
        if self.script:
            return agg.get("script", {}).get(f"{arm}.{key}" if self.rows else key)
        return agg.get(arm, {}).get(key)


class Figure(BaseModel):
    """A figure drawn from several experiments' artifacts, one point per experiment and arm:
    experiments/figures/<name>.yaml, shown where a page has `<!-- rnnlab:figure <name> -->`."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    title: str
    y: str = Field(description="the figure of aggregate.json to plot, e.g. test.accuracy")
    ylabel: str
    x: dict[str, float] = Field(description="experiment -> its position on the x axis (e.g. its lag T)")
    xlabel: str
    logx: bool = False

    @property
    def path(self) -> Path:
        return RESULTS_DIR / "figures" / f"{self.name}.png"


def load_figures(root: Path) -> dict[str, Figure]:
    found: dict[str, Figure] = {}
    for path in sorted((root / "experiments" / "figures").glob("*.yaml")):
        try:
            found[path.stem] = Figure(**{**(yaml.safe_load(path.read_text(encoding="utf-8")) or {}), "name": path.stem})
        except (yaml.YAMLError, TypeError, ValidationError) as e:
            raise UserError(f"{path}: not a figure ({str(e).splitlines()[0]})") from None
    return found


def figure_series(fig: Figure, root: Path) -> dict[str, tuple[list[float], list[float], list[float], list[float]]]:
    """arm -> (x, mean, mean - std, mean + std) over the experiments that have an artifact."""
    series: dict[str, tuple[list[float], list[float], list[float], list[float]]] = {}
    for name, x in sorted(fig.x.items(), key=lambda kv: kv[1]):
        agg = _read(root / RESULTS_DIR / name / "aggregate.json") or {}
        for arm, figures in agg.items():
            if fig.y in figures:
                s = figures[fig.y]
                xs, ys, lo, hi = series.setdefault(arm, ([], [], [], []))
                xs.append(x), ys.append(s["mean"]), lo.append(s["mean"] - s["std"]), hi.append(s["mean"] + s["std"])
    return series


def draw_figure(fig: Figure, root: Path) -> Path | None:
    """The figure's PNG from today's artifacts; None when none of its experiments has one yet."""
    from .plots import ACCURACY_YLIM, line_plot

    series = figure_series(fig, root)
    if not series:
        return None
    ylim = ACCURACY_YLIM if fig.y.endswith("accuracy") else None
    return line_plot(root / fig.path, series, title=fig.title, xlabel=fig.xlabel, ylabel=fig.ylabel, logx=fig.logx, ylim=ylim)


def _figure_block(fig: Figure, root: Path, experiments: dict[str, Experiment]) -> str:
    done = [name for name in fig.x if (root / RESULTS_DIR / name / "aggregate.json").is_file()]
    waiting = [name for name in fig.x if name not in done]
    minutes = sum(experiments[name].minutes for name in waiting if name in experiments)
    if not done:
        return f"*Figure {fig.name}: not yet drawn; its experiments are not yet run ({', '.join(waiting)}; about {minutes:g} min on 2 cores).*\n"
    text = f"![{fig.title}]({fig.path.relative_to('docs')})\n\n*Mean ± std over seeds of {fig.y}, from {', '.join(done)}"
    return text + (f"; not yet run: {', '.join(waiting)}.*\n" if waiting else ".*\n")


@dataclass
class Job:
    experiment: str
    arm: str
    seed: int
    argv: list[str]  # after `rnnlab` (train) or the script's own command line
    kind: Literal["train", "script"]
    folder: Path = field(default=Path())  # <artifact>/<arm>/seed-<seed>


def find_root(start: Path | None = None) -> Path:
    """The checkout that holds experiments/: this directory or one above it."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "experiments").is_dir():
            return d
    raise UserError("no experiments/ folder here or above: run rnnlab reproduce inside a checkout of rnnlab "
                    "(git clone ...; cd rnnlab)")  # fmt: skip


def load_experiments(root: Path) -> dict[str, Experiment]:
    found: dict[str, Experiment] = {}
    problems: list[str] = []
    for path in sorted((root / "experiments").glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            found[path.stem] = Experiment(**{**(raw or {}), "name": path.stem})
        except (yaml.YAMLError, TypeError) as e:
            problems.append(f"{path}: not a YAML mapping ({str(e).splitlines()[0]})")
        except ValidationError as e:
            problems += [f"{path}: {'.'.join(map(str, err['loc'])) or 'experiment'}: {err['msg']}" for err in e.errors()]
    if problems:
        raise UserError("experiments that do not load:\n  " + "\n  ".join(problems))
    return found


def select(experiments: dict[str, Experiment], names: list[str]) -> list[Experiment]:
    unknown = [n for n in names if n not in experiments]
    if unknown:
        from difflib import get_close_matches

        hints = [f"{n} (did you mean {', '.join(get_close_matches(n, experiments, 2))}?)" if get_close_matches(n, experiments, 2) else n for n in unknown]
        raise UserError(f"unknown experiment(s): {'; '.join(hints)}; rnnlab reproduce --list shows them all")
    return [experiments[n] for n in names]


def _train_args(spec: str) -> tuple[str, list[str]]:
    parts = shlex.split(spec)
    return parts[0], parts[1:]


def jobs_of(exp: Experiment, root: Path, seeds: int | None = None) -> list[Job]:
    out = root / RESULTS_DIR / exp.name
    if exp.script:
        return [Job(exp.name, "script", 0, shlex.split(exp.script), "script", out / "script")]
    jobs = []
    for seed in range(seeds or exp.seeds):
        for arm, spec in exp.runs.items():
            config, overrides = _train_args(spec)
            argv = ["train", config, *overrides, f"seed={seed}", f"name={exp.name}-{arm}-s{seed}"]
            jobs.append(Job(exp.name, arm, seed, argv, "train", out / arm / f"seed-{seed}"))
    return jobs


def shipped_config(name: str) -> dict[str, Any]:
    """A shipped config a script reads, resolved; a probe's (probe: section) as its file says."""
    path = find_config(name)
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return raw if isinstance(raw, dict) and "probe" in raw else config_to_dict(load_config(path))


def expected_configs(exp: Experiment, root: Path) -> dict[str, dict[str, Any]]:
    """What each job would run today, resolved: '<arm>/seed-<s>' -> config, 'configs/<x>' -> config."""
    found: dict[str, dict[str, Any]] = {}
    if exp.script:
        for name in exp.configs:
            found[f"configs/{name}"] = shipped_config(name)
        return found
    for job in jobs_of(exp, root):
        config, overrides = _train_args(exp.runs[job.arm])
        cfg = load_config(find_config(config), job.argv[2:])
        found[f"{job.arm}/seed-{job.seed}"] = config_to_dict(cfg)
    return found


def stale_keys(exp: Experiment, root: Path) -> list[str] | None:
    """Today's configs against the ones the artifact recorded, one line per changed key;
    None when the experiment has no artifact yet."""
    folder = root / RESULTS_DIR / exp.name
    if not (folder / "provenance.json").is_file():
        return None
    lines = []
    for where, now in expected_configs(exp, root).items():
        recorded_path = folder / (f"script/{where.replace('/', '_')}.yaml" if exp.script else f"{where}/config.yaml")
        if not recorded_path.is_file():
            if exp.script or where.endswith("seed-0"):
                lines.append(f"{exp.name}: {where}: not in the artifact (never run)")
            continue
        then = yaml.safe_load(recorded_path.read_text(encoding="utf-8")) or {}
        source = exp.runs[where.split("/")[0]].split()[0] if exp.runs else where.split("/", 1)[1]
        a, b = dotted(then), dotted(now)
        for key in sorted(a.keys() | b.keys()):
            if key.startswith(_NOT_RESULTS):
                continue
            was, now_value = a.get(key, ADDED_SETTINGS.get(key, "(unset)")), b.get(key, "(unset)")
            if was != now_value:
                line = f"{exp.name}: {source} {key} {was} → {now_value}"
                if line not in lines:
                    lines.append(line)
    return lines


# --- figures --------------------------------------------------------------------------------------


def flatten_figures(summary: dict[str, Any]) -> dict[str, float]:
    """The numbers of a run's summary.json, by dotted key (test.accuracy, steps, wall_time_s ...)."""
    keep = {}
    for key, value in dotted(summary).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value) and key not in ("seed", "world_size", "epochs"):
            keep[key] = float(value)
    return keep


def script_figures(stdout: str) -> dict[str, float]:
    """`key=value` lines a benchmark prints, numbers only."""
    found = {}
    for m in re.finditer(r"^([A-Za-z_][\w.]*)=(-?[0-9.]+(?:e-?\d+)?)\s*$", stdout, re.M):
        found[m.group(1)] = float(m.group(2))
    return found


def aggregate(per_seed: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    keys = sorted({k for d in per_seed for k in d})
    out = {}
    for key in keys:
        xs = [d[key] for d in per_seed if key in d]
        out[key] = {
            "mean": statistics.fmean(xs),
            "std": statistics.stdev(xs) if len(xs) > 1 else 0.0,
            "min": min(xs),
            "max": max(xs),
            "n": len(xs),
        }
    return out


# --- provenance -----------------------------------------------------------------------------------


def git_state(root: Path) -> tuple[str | None, bool]:
    """(commit, clean): clean means no change to a tracked file (new untracked files do not count)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None, False
    return commit, not dirty


def _cpu() -> dict[str, Any]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    return {
        "model": model,
        "amx": "amx_bf16" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "cores": usable,
    }


def provenance(root: Path, *, allow_dirty: bool, threads: int | str, jobs: int) -> dict[str, Any]:
    import torch

    commit, clean = git_state(root)
    return {
        "commit": commit,
        "clean_tree": clean,
        "allowed_dirty": allow_dirty and not clean,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": _cpu(),
        "threads_per_job": threads,
        "jobs": jobs,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": "rnnlab " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    }


# --- rendering ------------------------------------------------------------------------------------


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _fmt(key: str, s: dict[str, float]) -> str:
    pct = key.endswith("accuracy") or key.endswith("recall")
    small = abs(s["mean"]) < 0.1 or key.endswith("loss")
    scale, unit, digits = (100.0, "%", 2) if pct else (1.0, "", 4 if small else 2 if abs(s["mean"]) < 100 else 0)
    if not pct and s["std"] == 0 and float(s["mean"]).is_integer():  # a count (units, steps): no decimals
        digits = 0
    mean, std = s["mean"] * scale, s["std"] * scale
    if not pct and 0 < abs(mean) < 1e-3:  # gradient norms of 1e-12: digits after the point would show 0
        return f"{mean:.2e}" + (f" ± {std:.1e}" if s["n"] > 1 else "")
    text = f"{mean:,.{digits}f}{unit}"
    if s["n"] > 1:
        text += f" ± {std:,.{digits}f}"
    return text


def _of(k: int, n: int) -> str:
    """A figure not every seed has (steps to 99% where only some reached it) says how many."""
    return f" ({k} of {n})" if k < n else ""


def _table(exp: Experiment, root: Path) -> str:
    folder = root / RESULTS_DIR / exp.name
    agg, prov = _read(folder / "aggregate.json"), _read(folder / "provenance.json")
    head = f"**{exp.title}** (`rnnlab reproduce {exp.name}`)\n\n"
    if not agg or not prov:
        return head + f"*Not yet run (about {exp.minutes:g} min on 2 cores).*\n"
    n = max((s["n"] for arm in agg.values() for s in arm.values()), default=0)
    lines = [head + "| " + " | ".join(["", *(exp.columns.get(k, k) for k in exp.report)]) + " |", "| --- |" + " ---: |" * len(exp.report)]
    for arm in exp.arms:
        entries = [exp.entry(agg, arm, k) for k in exp.report]
        cells = [_fmt(k, e) + _of(e["n"], n) if e else "–" for k, e in zip(exp.report, entries)]
        lines.append("| " + " | ".join([arm, *cells]) + " |")
    choice = _read(folder / "choice.json") if exp.ensembles else None
    if choice:
        lines += ["", _choice_line(choice)]
    cpu = prov.get("cpu", {})
    flags = ", ".join(f for f in ("amx", "avx512_bf16") if cpu.get(f)) or "no bf16 units"
    lines.append("")
    threads = prov.get("threads_per_job", "?")
    threads_text = f"threads: {threads}" if isinstance(threads, str) else f"{threads} thread(s) a job"
    if exp.script and exp.script.startswith("rnnlab "):
        what = f"one run of `{exp.script}`"
    elif exp.script:
        what = "one run of the benchmark (it repeats its own rounds)"
    else:
        what = f"mean ± std over {n} seeds" if n > 1 else "one seed"
    lines.append(
        f"*{what}; [artifact](results/{exp.name}/), commit "
        f"`{(prov.get('commit') or '?')[:7]}`{' (uncommitted changes)' if prov.get('allowed_dirty') else ''}, "
        f"{cpu.get('model', '?')} ({flags}), {cpu.get('cores', '?')} cores, {threads_text}, "
        f"torch {prov.get('torch', '?')}, {prov.get('date', '?')[:10]}.*"
    )
    return "\n".join(lines) + "\n"


def _choice_line(choice: dict[str, Any]) -> str:
    seeds = choice["report_seeds"]
    report = choice.get("test.accuracy")
    told = (f"its test accuracy on seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}, whose runs took no part "
            f"in the choice: **{_fmt('test.accuracy', report)}**" if report else "no other seed to report it on")  # fmt: skip
    return (f"Chosen on seed {choice['chosen_on_seed']}'s validation reviews alone: **{choice['chosen']}** "
            f"({_fmt('val.accuracy', {'mean': choice['candidates'][choice['chosen']], 'std': 0.0, 'n': 1})} there); {told}.")


def choose(exp: Experiment, per_seed: dict[str, dict[int, dict[str, float]]]) -> dict[str, Any] | None:
    """The arm or ensemble with the best validation accuracy on seed `choose_on_seed`, and its test
    accuracy on the other seeds: a figure that the choice did not see (issue 26, point 6)."""
    if not exp.ensembles:
        return None
    seed = exp.choose_on_seed
    candidates = {arm: figures[seed]["val.accuracy"] for arm, figures in per_seed.items() if "val.accuracy" in figures.get(seed, {})}
    if not candidates:
        return None
    chosen = max(candidates, key=lambda arm: candidates[arm])
    others = sorted(s for s in per_seed[chosen] if s != seed and "test.accuracy" in per_seed[chosen][s])
    out: dict[str, Any] = {"chosen_on_seed": seed, "candidates": candidates, "chosen": chosen, "report_seeds": others}
    if others:
        out["test.accuracy"] = aggregate([{"x": per_seed[chosen][s]["test.accuracy"]} for s in others])["x"]
    return out


def _headline(experiments: dict[str, Experiment], root: Path) -> str:
    lines = ["| experiment | page | result |", "| --- | --- | --- |"]
    for exp in experiments.values():
        agg = _read(root / RESULTS_DIR / exp.name / "aggregate.json")
        key = exp.report[0]
        if agg and exp.script and not exp.rows:
            entry = exp.entry(agg, "script", key)
            result = f"{key} = {_fmt(key, entry)}" if entry else "–"
        elif agg:
            found = [(arm, exp.entry(agg, arm, key)) for arm in exp.arms]
            result = f"{key}: " + ", ".join(f"{arm} {_fmt(key, e)}" for arm, e in found if e)
        if not agg:
            result = f"not yet run (`rnnlab reproduce {exp.name}`, ~{exp.minutes:g} min)"
        lines.append(f"| {exp.title} | [{exp.page}](docs/{exp.page}.md) | {result} |")
    return "\n".join(lines) + "\n"


def render_text(text: str, experiments: dict[str, Experiment], root: Path, where: str) -> str:
    """`text` with every marked block re-rendered from the artifacts."""
    out, pos = [], 0
    for m in _BEGIN.finditer(text):
        if m.start() < pos:
            continue
        end = text.find(_END, m.end())
        if end < 0:
            raise UserError(f"{where}: '{m.group(0).strip()}' has no '{_END}' after it")
        kind, name = m.group(1), m.group(2)
        if kind == "table":
            body = _table(select(experiments, [name])[0], root)
        elif kind == "figure":
            figures = load_figures(root)
            if name not in figures:
                raise UserError(f"{where}: no experiments/figures/{name}.yaml for '{m.group(0).strip()}'")
            body = _figure_block(figures[name], root, experiments)
        else:
            body = _headline(experiments, root)
        out += [text[pos : m.end()], body]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def render_files(root: Path) -> list[Path]:
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.is_file()]
