"""Run commands as separate processes, a few at a time, each with its share of the cores.

    rnnlab reproduce long_dependency_cells --jobs 2

Each job is its own process group, so a Ctrl-C in the terminal reaches this process only and
each job gets exactly one signal from here: a second one would stop a job that is still setting
up, before it could save anything. Threads are set before torch starts in the job: a thread count
torch picks for itself would oversubscribe the cores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["Proc", "run_processes", "threads_per_job"]


@dataclass
class Proc:
    argv: list[str]
    log: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    set_threads: bool = True  # False: the command chooses its own threads (a benchmark that measures them)
    returncode: int | None = None
    wall_s: float | None = None


def _without_threads(environ: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def threads_per_job(jobs: int) -> int:
    """The cores this process may use (affinity and cgroup quota), shared among the jobs."""
    from .threads import usable_cores

    return max(1, usable_cores() // max(1, jobs))


def run_processes(
    procs: Sequence[Proc],
    jobs: int,
    *,
    threads: int | None = None,
    on_start: Callable[[Proc], None] | None = None,
    on_done: Callable[[Proc], bool] | None = None,
) -> int | None:
    """Run `procs`, `jobs` at a time. `on_done` returning False stops starting new ones.

    Returns None, or the signal number that interrupted them: every running job then got that
    signal once and was waited for, so what it was saving is saved; later signals are ignored
    until then."""
    threads = threads or threads_per_job(jobs)
    base = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    pending = list(procs)
    running: dict[subprocess.Popen, tuple[Proc, Any, float]] = {}
    received: list[int] = []

    def note(sig: int, frame: Any) -> None:
        received.append(sig)

    handled = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, note) for s in handled} if main else {}
    try:
        while (pending and not received) or running:
            while pending and len(running) < jobs and not received:
                proc = pending.pop(0)
                proc.log.parent.mkdir(parents=True, exist_ok=True)
                log = proc.log.open("w")
                env = {**(base if proc.set_threads else _without_threads(os.environ)), **(proc.env or {})}
                running[subprocess.Popen(proc.argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=proc.cwd, start_new_session=True)] = (proc, log, time.monotonic())
                if on_start:
                    on_start(proc)
            if received:
                for p in running:
                    if p.poll() is None:
                        p.send_signal(received[0])
                break
            for p in [p for p in running if p.poll() is not None]:
                proc, log, started = running.pop(p)
                log.close()
                proc.returncode, proc.wall_s = p.returncode, time.monotonic() - started
                if on_done and on_done(proc) is False:
                    pending.clear()
            if running:
                time.sleep(0.1)
        # After a signal: wait for every job to save, whatever else arrives meanwhile.
        for p, (proc, log, started) in list(running.items()):
            try:
                p.wait(timeout=300)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            log.close()
            proc.returncode, proc.wall_s = p.returncode, time.monotonic() - started
            if on_done:
                on_done(proc)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return received[0] if received else None
