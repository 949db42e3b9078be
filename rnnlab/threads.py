"""How many CPU threads a run computes with: `runtime.threads: auto | N`, `--threads`, or the
environment.

    rnnlab train long_dependency_lstm                 # header: threads 1 (auto: tiny model, ...)
    rnnlab train configs/imdb_bilstm.yaml --threads 2
    OMP_NUM_THREADS=1 rnnlab train imdb_bilstm

Who decides, first match wins: `--threads` on the command line, then `OMP_NUM_THREADS` in the
environment, then `runtime.threads` in the config; `auto` (the default) decides for itself.

Why rnnlab decides: PyTorch takes one thread per core, and OpenMP's threads spin while they wait
for each other. Beside other busy processes (a second training in another terminal, a test
suite) the threads of a small recurrent network starve each other and a step takes 2-13x as long
(issue 28: 469.6 s for the quick start, 8.7 s idle). `auto` therefore counts

  - the cores this process may use: its CPU affinity, and a cgroup CPU quota (containers);
  - how many of them are idle now: /proc/stat, sampled over ~60 ms (elsewhere the load average);
  - the work of one time step of the model built: batch x the weights a step multiplies. A step
    smaller than `PARALLEL_WORK` multiply-adds gains nothing from a second thread, even on an
    idle machine (the quick start trains faster on one);

and takes one thread per idle core for a model with enough work, never more than idle cores,
never less than one.

OpenMP's wait policy is a setting of the process that must be made before torch loads:
`quiet_openmp_waits()` (called by the CLI's main) sets GOMP_SPINCOUNT to a short spin unless the
user set a wait policy, so that threads that wait for work give their core back soon instead of
spinning against a neighbour's. Measured with benchmarks/threads_under_load.py on 2 cores that
other work kept busy: two threads took 0.07-0.11 s per quick-start step with the short spin
against 0.09-0.21 s with libgomp's default, and 2.6-3.9 s per IMDb-sized step against 5.9-18.7 s.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError

__all__ = [
    "ThreadChoice",
    "PARALLEL_WORK",
    "SPINCOUNT",
    "parse_threads",
    "request_threads",
    "requested_threads",
    "usable_cores",
    "cgroup_quota_cores",
    "idle_cores",
    "step_work",
    "choose_threads",
    "apply_threads",
    "quiet_openmp_waits",
]

# Multiply-adds of one time step (batch x weights per step) from which a second thread pays.
# The measured ends, on 2 idle cores: the quick start (batch 32 x ~5,500 weights = 0.18 M) trains
# faster on one thread (issue 28: 4.2 s against 5.2 s for 300 steps); the IMDb flagship (batch
# 256 x 2 x 131,072 = 67 M) 1.6x faster on two (docs/speed.md). The threshold sits
# between them, nearer the small end; benchmarks/threads_under_load.py checks both ends.
PARALLEL_WORK = 2_000_000

# Iterations libgomp spins before a waiting thread sleeps (its default: 300,000, i.e. up to a few
# milliseconds of a core burnt per wait). Short enough to give a shared core back at once.
SPINCOUNT = "10000"

_requested: str | int | None = None  # --threads of this process's command, when given


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    why: str  # e.g. "auto: 1 idle core", "--threads", "OMP_NUM_THREADS"

    @property
    def note(self) -> str:
        """For the run's header line: `threads 1 (auto: 1 idle core)`."""
        return f"threads {self.threads} ({self.why})"


def parse_threads(value: Any, where: str = "--threads") -> str | int:
    """'auto' or a whole number >= 1; anything else is the user's mistake, named."""
    if isinstance(value, bool):  # YAML's true is not a thread count
        raise UserError(f"{where} = {value!r}: give auto or a whole number of threads >= 1, e.g. {where.split(' ')[0]}=1")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        try:
            number = int(text)
        except ValueError:
            raise UserError(f"{where} = {value!r}: give auto or a whole number of threads >= 1, e.g. --threads 1") from None
    if not 1 <= number <= 4096:
        raise UserError(f"{where} = {value!r}: give auto or a whole number of threads from 1 to 4096")
    return number


def request_threads(value: str | int | None) -> None:
    """The command line's --threads for this process (None: not given). Beats every other source."""
    global _requested
    _requested = None if value is None else parse_threads(value)


def requested_threads() -> str | int | None:
    return _requested


def cgroup_quota_cores(root: str | Path = "/sys/fs/cgroup", self_cgroup: str | Path = "/proc/self/cgroup") -> float | None:
    """The CPU quota of this process's cgroup in cores (quota / period), or None when unlimited or
    unknown. Reads cgroup v2's cpu.max ("max 100000" or "150000 100000") and v1's
    cpu.cfs_quota_us / cpu.cfs_period_us, at this process's cgroup path and at the root."""
    root = Path(root)
    paths: list[str] = []
    try:
        for line in Path(self_cgroup).read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == "" or "cpu" in controllers.split(","):
                paths.append(path.lstrip("/"))
    except (OSError, ValueError):
        pass
    quotas = []
    for rel in [*paths, ""]:
        for base in (root / rel, root / "cpu" / rel, root / "cpu,cpuacct" / rel):
            try:
                if (base / "cpu.max").is_file():
                    quota, period = (base / "cpu.max").read_text().split()[:2]
                    if quota != "max":
                        quotas.append(int(quota) / int(period))
                elif (base / "cpu.cfs_quota_us").is_file():
                    quota = int((base / "cpu.cfs_quota_us").read_text())
                    if quota > 0:
                        quotas.append(quota / int((base / "cpu.cfs_period_us").read_text()))
            except (OSError, ValueError, ZeroDivisionError):
                continue
    quotas = [q for q in quotas if q > 0]
    return min(quotas) if quotas else None


def _affinity() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return set(range(os.cpu_count() or 1))


def usable_cores(affinity: set[int] | None = None, quota: float | None | str = "read") -> int:
    """Cores this process may run on: its affinity, capped by a cgroup quota (at least 1)."""
    cores = len(affinity if affinity is not None else _affinity())
    q = cgroup_quota_cores() if quota == "read" else quota
    if q is not None:
        cores = min(cores, max(1, math.floor(q + 0.01)))  # 1.5 CPUs of quota: one thread runs without throttling
    return max(1, cores)


def _cpu_times(cpus: set[int]) -> dict[int, tuple[int, int]] | None:
    """cpu -> (idle jiffies incl. iowait, total jiffies) from /proc/stat."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    out = {}
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
            out[int(name[3:])] = (values[3] + values[4], sum(values))
    return out or None


def idle_cores(cpus: set[int] | None = None, sample_s: float = 0.06) -> float:
    """How many of `cpus` (default: this process's) sat idle over the next `sample_s` seconds;
    without /proc/stat, the cores minus the 1-minute load average."""
    cpus = cpus if cpus is not None else _affinity()
    before = _cpu_times(cpus)
    if before is not None:
        time.sleep(sample_s)
        after = _cpu_times(cpus)
        if after is not None:
            idle = 0.0
            for cpu, (i0, t0) in before.items():
                i1, t1 = after.get(cpu, (i0, t0))
                idle += (i1 - i0) / (t1 - t0) if t1 > t0 else 1.0  # no tick in the window: nothing ran
            return idle
    try:
        return max(0.0, len(cpus) - os.getloadavg()[0])
    except (AttributeError, OSError):
        return float(len(cpus))


def step_work(model: Any, batch_size: int) -> int:
    """Multiply-adds of one time step: batch x the weights a step multiplies (the recurrent
    modules' input and hidden matrices; for a model without any, its linear layers')."""
    from torch import nn

    recurrent = [m for m in model.modules() if hasattr(m, "weight_hh_l0")]
    if recurrent:
        weights = sum(m.weight_ih_l0.numel() + m.weight_hh_l0.numel() for m in recurrent)
    else:
        weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    return batch_size * weights


def choose_threads(
    configured: str | int = "auto",
    work: int | None = None,
    *,
    usable: int | None = None,
    idle: float | None = None,
    environ: dict[str, str] | None = None,
) -> ThreadChoice:
    """The thread count and why: --threads, then OMP_NUM_THREADS, then runtime.threads, then auto.
    `work` is step_work() of the model (None: unknown, as for a command that has built none)."""
    env = os.environ if environ is None else environ
    requested = _requested
    if isinstance(requested, int):
        return ThreadChoice(requested, "--threads")
    if requested is None:
        omp = env.get("OMP_NUM_THREADS", "").strip()
        if omp:
            try:
                n = int(omp.split(",")[0])  # "4,2" sets nested levels; the first is ours
                if n >= 1:
                    return ThreadChoice(n, "OMP_NUM_THREADS")
            except ValueError:
                pass  # OpenMP ignores a value it cannot read; so do we
        if isinstance(configured, int):
            return ThreadChoice(configured, "runtime.threads")
    usable = usable_cores() if usable is None else usable
    if work is not None and work < PARALLEL_WORK:
        return ThreadChoice(1, f"auto: small model, {work / 1e6:.2g} M multiply-adds per step")
    free = idle_cores(sample_s=0.06) if idle is None else idle
    n_idle = min(usable, max(0, math.floor(free + 0.25)))  # a core 80% idle counts as idle
    threads = max(1, n_idle)
    if n_idle == 0:
        why = f"auto: no idle core of {usable}"
    else:
        why = f"auto: {n_idle} idle core{'s' if n_idle > 1 else ''}" + (f" of {usable}" if n_idle < usable else "")
    return ThreadChoice(threads, why)


def apply_threads(choice: ThreadChoice) -> ThreadChoice:
    """Make torch compute with choice.threads threads (intra-op; MKL and OpenMP alike)."""
    import torch

    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)
    return choice


def quiet_openmp_waits(environ: dict[str, str] | None = None) -> bool:
    """Before torch loads: waiting OpenMP threads spin briefly, then sleep (GOMP_SPINCOUNT), unless
    the user chose a wait policy (OMP_WAIT_POLICY or GOMP_SPINCOUNT). Whether it set anything."""
    env = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        return False
    env["GOMP_SPINCOUNT"] = SPINCOUNT
    return True
