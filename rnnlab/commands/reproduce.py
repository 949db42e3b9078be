"""`rnnlab reproduce`: rerun the docs' experiments over several seeds, check and render their pages.

    rnnlab reproduce --list
    rnnlab reproduce long_dependency_cells --seeds 3 --jobs 2
    rnnlab reproduce --check
    rnnlab reproduce --render

The experiments are declared in experiments/*.yaml (see rnnlab/experiments.py); their artifacts go
to docs/results/<name>/, and only from a clean tree unless --allow-dirty, which the artifact records.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import UserError
from ..experiments import (
    RESULTS_DIR,
    Experiment,
    Job,
    aggregate,
    choose,
    draw_figure,
    load_figures,
    find_root,
    flatten_figures,
    git_state,
    jobs_of,
    load_experiments,
    provenance,
    render_files,
    render_text,
    script_figures,
    select,
    shipped_config,
    stale_keys,
)
from ..jobs import Proc, run_processes, threads_per_job
from ..rundir import create_run_dir, first_reaching, read_metrics, write_atomic, write_json

__all__ = ["list_experiments", "check", "render", "reproduce"]


def list_experiments(names: list[str], console: Console) -> None:
    root = find_root()
    experiments = load_experiments(root)
    table = Table(title=f"{len(experiments)} experiments (experiments/*.yaml)", title_justify="left")
    table.add_column("experiment", ratio=1)
    table.add_column("page", no_wrap=True)
    table.add_column("seeds", justify="right", no_wrap=True)
    table.add_column("min", justify="right", no_wrap=True)
    table.add_column("artifact", no_wrap=True)
    total = 0.0
    for exp in select(experiments, names) if names else experiments.values():
        prov = _read(root / RESULTS_DIR / exp.name / "provenance.json")
        made = f"{(prov.get('commit') or '?')[:7]} {prov.get('date', '')[:10]}" if prov else "not run"
        runs = ", ".join(exp.runs) if exp.runs else exp.script or ""
        data = f"; needs {', '.join(exp.data)}" if exp.data else ""
        what = f"[bold]{escape(exp.name)}[/]\n{escape(exp.title)}\n[dim]{escape(runs)}{escape(data)}[/]"
        table.add_row(what, exp.page, str(exp.seeds if exp.runs else 1), f"{exp.minutes:g}", made)
        total += exp.minutes
    console.print(table)
    console.print(f"expected wall time for all: {total:g} min on 2 cores, one job at a time", highlight=False)


def check(names: list[str], console: Console) -> int:
    """Exit code: 0 when nothing is stale, 1 otherwise."""
    root = find_root()
    experiments = load_experiments(root)
    chosen = select(experiments, names) if names else list(experiments.values())
    stale, unrun = [], []
    for exp in chosen:
        lines = stale_keys(exp, root)
        if lines is None:
            unrun.append(exp.name)
        elif lines:
            stale.append((exp.name, lines))
    for name, lines in stale:
        for line in lines:
            console.print(f"stale  {line}", highlight=False, soft_wrap=True)
    if unrun:
        console.print(f"{len(unrun)} not yet run: {', '.join(unrun)}", highlight=False, soft_wrap=True)
    if stale:
        console.print(f"{len(stale)} stale: rerun them with `rnnlab reproduce {' '.join(n for n, _ in stale)}`, "
                      "or revert the config change", highlight=False, soft_wrap=True)  # fmt: skip
        return 1
    console.print(f"{len(chosen) - len(unrun)} artifacts match today's configs", highlight=False)
    return 0


def render(console: Console, *, write: bool = True) -> list[Path]:
    """Re-render the marked blocks; returns the files whose text changed (written unless not `write`)."""
    root = find_root()
    experiments = load_experiments(root)
    changed = []
    for path in render_files(root):
        text = path.read_text(encoding="utf-8")
        new = render_text(text, experiments, root, str(path.relative_to(root)))
        if new != text:
            changed.append(path)
            if write:
                write_atomic(path, new.encode("utf-8"))
    if write:  # the figures the pages show, drawn again from today's artifacts
        for fig in load_figures(root).values():
            if draw_figure(fig, root) is not None:
                console.print(f"drew {fig.path}", highlight=False)
    if write:
        console.print(f"rendered {len(changed)} page(s): {', '.join(str(p.relative_to(root)) for p in changed) or 'no change'}", highlight=False)
    return changed


def reproduce(names: list[str], *, seeds: int | None, jobs: int, allow_dirty: bool, runs_dir: Path | None, console: Console,
              threads: int | None = None) -> None:
    root = find_root()
    experiments = load_experiments(root)
    if not names:
        raise UserError("name the experiments to run, e.g. rnnlab reproduce long_dependency_cells; rnnlab reproduce --list shows them")
    chosen = select(experiments, names)
    _own_code(root)
    commit, clean = git_state(root)
    if not clean and not allow_dirty:
        raise UserError("the tree has uncommitted changes: an artifact must name the code that made it. "
                        "Commit first, or give --allow-dirty (the artifact then says so)")  # fmt: skip
    if jobs < 1:
        raise UserError(f"--jobs {jobs}: give 1 or more")
    if threads is None and os.environ.get("OMP_NUM_THREADS", "").strip().isdigit():  # the user's choice, as compare takes it
        threads = max(1, int(os.environ["OMP_NUM_THREADS"]))
    threads = threads if threads is not None else threads_per_job(jobs)
    data_env = _data_env({d for e in chosen for d in e.data}, root)
    parent = create_run_dir(runs_dir or root / "runs", "reproduce")
    expected = sum(e.minutes * ((seeds or e.seeds) / e.seeds if e.runs else 1) for e in chosen)
    console.print(f"reproduce {', '.join(e.name for e in chosen)}: about {expected:.0f} min on 2 cores; "
                  f"{jobs} job(s) at once, {threads} thread(s) each; runs and logs in {parent}", highlight=False, soft_wrap=True)  # fmt: skip
    prov = provenance(root, allow_dirty=allow_dirty, threads=threads, jobs=jobs)
    for exp in chosen:
        _run_one(exp, root, parent, seeds=seeds, jobs=jobs, threads=threads, prov=prov, data_env=data_env, console=console)
    console.print("next: rnnlab reproduce --render, to update the pages from the new artifacts", highlight=False)


def _own_code(root: Path) -> None:
    """The jobs run this checkout's code (python -m rnnlab from it): so must the command that checks
    and records them, or one artifact would mix two versions of rnnlab."""
    import rnnlab

    here = Path(rnnlab.__file__).resolve().parent
    if here != (root / "rnnlab").resolve():
        raise UserError(f"this rnnlab is {here}, not the checkout's {root / 'rnnlab'}: an artifact must come from the code it "
                        f"describes. Install the checkout (cd {root} && pip install -e .), then run reproduce again")  # fmt: skip


def _data_env(needs: set[str], root: Path) -> dict[str, str]:
    """What the jobs need to find their data, or a UserError that says how to provide it."""
    env: dict[str, str] = {}
    if "imdb" in needs:
        from ..data.imdb import ARCHIVE_NAME

        candidates = [os.environ.get("RNNLAB_DATA_DIR"), str(Path.home() / ".cache" / "rnnlab"), str(root.parent / "shared" / "data")]
        found = next((c for c in candidates if c and (Path(c) / ARCHIVE_NAME).is_file() or c and (Path(c) / "aclImdb").is_dir()), None)
        if found is None:
            raise UserError(f"these experiments need the IMDb archive ({ARCHIVE_NAME}): put it in a folder and set "
                            "RNNLAB_DATA_DIR=/that/folder (https://ai.stanford.edu/~amaas/data/sentiment/)")  # fmt: skip
        env["RNNLAB_DATA_DIR"] = str(Path(found).resolve())
    if "treebank" in needs and not (Path.home() / ".cache" / "rnnlab" / "silver_pos").is_dir():
        raise UserError("these experiments need the silver part-of-speech corpus: build it with "
                        "pip install -e '.[bench]' && python benchmarks/make_silver_pos.py")  # fmt: skip
    if "glove" in needs and not (root / "glove.6B.50d").exists():  # where configs/imdb_bilstm_glove.yaml looks: the checkout
        raise UserError("these experiments need glove.6B.50d: pip install -e '.[glove]' && python benchmarks/glove_from_kumo.py")
    return env


def _run_one(exp: Experiment, root: Path, parent: Path, *, seeds: int | None, jobs: int, threads: int, prov: dict[str, Any],
             data_env: dict[str, str], console: Console) -> None:
    todo = jobs_of(exp, root, seeds)
    staging = root / RESULTS_DIR / f".{exp.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    procs, by_proc = [], {}
    for job in todo:
        log = parent / "logs" / f"{exp.name}-{job.arm}-seed{job.seed}.log"
        if job.kind == "train":
            argv = [sys.executable, "-m", "rnnlab", *job.argv, "--runs-dir", str(parent), "--no-progress", "--threads", str(threads)]
        elif job.argv[0] == "rnnlab":
            # A runs directory of its own: the one run in it is this job's, whose summary.json holds its figures.
            argv = [sys.executable, "-m", "rnnlab", *job.argv[1:], "--runs-dir", str(parent / f"{exp.name}-script"), "--threads", str(threads)]
        else:
            argv = [sys.executable, str(root / job.argv[0]), *job.argv[1:]]
        imdb = data_env.get("RNNLAB_DATA_DIR", "")
        argv = [a.replace("{imdb}", str(Path(imdb) / "aclImdb_v1.tar.gz")) for a in argv]
        script_threads = {"OMP_NUM_THREADS": str(exp.threads), "MKL_NUM_THREADS": str(exp.threads)} if exp.threads else {}
        # A benchmark keeps what it draws in the artifact's files/ (the pages link to it).
        files = {"RNNLAB_ARTIFACT_DIR": str(staging / "script" / "files")} if job.kind == "script" and job.argv[0] != "rnnlab" else {}
        proc = Proc(argv, log, env={**data_env, **script_threads, **files}, cwd=root, set_threads=job.kind == "train" or job.argv[0] == "rnnlab")
        procs.append(proc)
        by_proc[id(proc)] = job
    failures: list[str] = []

    def done(proc: Proc) -> bool:
        job = by_proc[id(proc)]
        folder = staging / job.folder.relative_to(root / RESULTS_DIR / exp.name)
        ok = _save_job(job, proc, folder, parent, root)
        what = f"{exp.name} {job.arm} seed {job.seed}"
        if ok:
            console.print(f"  {what}: done in {proc.wall_s:.1f}s", highlight=False)
            return True
        failures.append(f"{what}: exit {proc.returncode}, see {proc.log}")
        console.print(f"[yellow]  {what}: failed (exit {proc.returncode}); see {proc.log}[/]", highlight=False)
        return proc.returncode != 2  # a user's mistake (e.g. missing data) would repeat in every job

    signum = run_processes(procs, jobs, threads=threads, on_done=done)
    if signum is not None:
        raise UserError(f"interrupted: {exp.name} was not written; the finished jobs are in {staging}", exit_code=128 + signum)
    if failures:
        raise UserError(f"{exp.name} was not written ({len(failures)} job(s) failed):\n  " + "\n  ".join(failures), exit_code=1)
    per_seed: dict[str, dict[int, dict[str, float]]] = {}
    for job in todo:
        folder = staging / job.folder.relative_to(root / RESULTS_DIR / exp.name)
        per_seed.setdefault(job.arm, {})[job.seed] = json.loads((folder / "figures.json").read_text())
    answers: dict[tuple[str, str], Any] = {}
    for name, members in exp.ensembles.items():
        for seed in sorted({job.seed for job in todo}):
            # the trainings are done: the scoring may use every core the jobs had
            per_seed.setdefault(name, {})[seed] = _score_ensemble(exp, name, members, seed, parent, staging, threads * jobs, console,
                                                                  answers, data_env)  # fmt: skip
    write_json(staging / "aggregate.json", {arm: aggregate(list(rows.values())) for arm, rows in per_seed.items()})
    choice = choose(exp, per_seed)
    if choice:
        write_json(staging / "choice.json", choice)
    if exp.script:  # the configs the script reads, resolved, for --check
        for name in exp.configs:
            text = yaml.safe_dump(shipped_config(name), sort_keys=False)
            write_atomic(staging / "script" / f"configs_{name}.yaml", text.encode())
    own_choice = exp.script and not exp.script.startswith("rnnlab ")  # rnnlab commands get --threads like trainings
    threads = (exp.threads or "the script's own choice") if own_choice else prov["threads_per_job"]
    write_json(staging / "provenance.json", {**prov, "threads_per_job": threads, "seeds": 1 if exp.script else seeds or exp.seeds,
                                             "experiment": exp.model_dump(exclude={"name"})})  # fmt: skip
    final = root / RESULTS_DIR / exp.name
    if final.exists():
        old = root / RESULTS_DIR / f".{exp.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        staging.rename(final)
        shutil.rmtree(old)
    else:
        staging.rename(final)
    console.print(f"[green]{exp.name}[/]: {final.relative_to(root)}/ written", highlight=False)


def _score_ensemble(exp: Experiment, name: str, members: list[str], seed: int, parent: Path, staging: Path, threads: int,
                    console: Console, answers: dict[tuple[str, str], Any], data_env: dict[str, str]) -> dict[str, float]:  # fmt: skip
    """The mean probability of one seed's member runs, on val and on test, as `rnnlab evaluate RUN...`
    computes it. `answers` keeps each run's probabilities per split: a run is in several ensembles.
    Here, in this process, the members read their data where the jobs did (`data_env`)."""
    from unittest.mock import patch  # the standard library's set-and-restore of os.environ

    with patch.dict(os.environ, data_env):
        return _scored_ensemble(exp, name, members, seed, parent, staging, threads, console, answers)


def _scored_ensemble(exp: Experiment, name: str, members: list[str], seed: int, parent: Path, staging: Path, threads: int,
                     console: Console, answers: dict[tuple[str, str], Any]) -> dict[str, float]:  # fmt: skip
    import torch

    from ..ensemble import check_same_examples, load_members, scores, split_probabilities

    torch.set_num_threads(threads)
    device = torch.device("cpu")
    runs = [sorted(parent.glob(f"*-{exp.name}-{arm}-s{seed}"))[-1] for arm in members]
    summary: dict[str, Any] = {"members": members, "runs": [run.name for run in runs]}
    started = time.monotonic()
    members = load_members(runs, device)
    for split in ("val", "test"):
        for member in members:
            if (str(member.run), split) not in answers:
                answers[(str(member.run), split)] = split_probabilities(member, split, device)
        mine = [answers[(str(m.run), split)] for m in members]
        check_same_examples(members, mine, split)
        summary[split] = scores(torch.stack([a.probs for a in mine]).mean(0), mine[0].labels)
    figures = flatten_figures({"val": summary["val"], "test": summary["test"]})
    folder = staging / name / f"seed-{seed}"
    write_json(folder / "summary.json", summary)
    write_json(folder / "figures.json", figures)
    console.print(f"  {exp.name} {name} seed {seed}: val {100 * figures['val.accuracy']:.2f}%, test "
                  f"{100 * figures['test.accuracy']:.2f}% ({time.monotonic() - started:.1f}s)", highlight=False)  # fmt: skip
    return figures


def _save_job(job: Job, proc: Proc, folder: Path, parent: Path, root: Path) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    record = {"argv": job.argv, "exit_code": proc.returncode, "wall_s": round(proc.wall_s or 0.0, 3)}
    if job.kind == "script":
        out = proc.log.read_text(errors="replace") if proc.log.is_file() else ""
        shutil.copyfile(proc.log, folder / "stdout.txt")
        figures = script_figures(out)
        summaries = sorted(parent.glob(f"{job.experiment}-script/*/summary.json")) if job.argv[0] == "rnnlab" else []
        if summaries:  # an rnnlab command (probe-gradients): its summary.json, as a training's
            summary = json.loads(summaries[-1].read_text())
            summary.pop("run_dir", None)
            write_json(folder / "summary.json", summary)
            figures.update(flatten_figures(summary))
            for plot in sorted((summaries[-1].parent / "plots").glob("*.png")):  # the pages link to them
                (folder / "plots").mkdir(exist_ok=True)
                shutil.copyfile(plot, folder / "plots" / plot.name)
    else:
        name = job.argv[-1].split("=", 1)[1]
        runs = sorted(parent.glob(f"*-{name}"))
        if proc.returncode != 0 or not runs or not (runs[-1] / "summary.json").is_file():
            write_json(folder / "run.json", record)
            return False
        run = runs[-1]
        for f in ("config.yaml", "summary.json", "metrics.jsonl"):
            shutil.copyfile(run / f, folder / f)
        summary = json.loads((run / "summary.json").read_text())
        summary.pop("run_dir", None)  # a temporary path: it would differ on every rerun
        write_json(folder / "summary.json", summary)
        figures = flatten_figures(summary)
        reached = first_reaching(read_metrics(run), 0.99)
        if reached is not None:  # the memory tasks' "steps and wall time to 99%"; absent when never reached
            figures["steps_to_99"], figures["seconds_to_99"] = float(reached["step"]), float(reached["elapsed_s"])
    figures["wall_s"] = record["wall_s"]
    write_json(folder / "run.json", record)
    write_json(folder / "figures.json", figures)
    return proc.returncode == 0


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
