"""`train.precision: auto` on a CPU with native bf16: bf16 only where it is measured faster for
this model on this machine.

    rnnlab train configs/imdb_bilstm.yaml      # header: bf16 autocast (auto: 1.9x fp32's speed here)
    rnnlab train configs/long_dependency_gru.yaml train.precision=auto   # fp32 (auto: bf16 0.8x ...)

Native bf16 units (AMX, AVX512-BF16) do not make every model faster: autocast casts weights and
activations at every operation, which costs more than it saves on small matrices (the GRU at
hidden 32 trained slower in bf16, 27.7 against 32.0 steps/s), and CPUs differ (AMX against
AVX512-BF16 alone). So before training, `bf16_pays` times a few forward and backward passes of a
copy of the model on a synthetic batch of the run's size, fp32 and bf16 alternately, and takes
bf16 only when it is at least `MARGIN` faster. The real model, its gradients and every random
stream are left untouched.

A measurement that took long (a large model) is kept in $XDG_CACHE_HOME/rnnlab/precision.json
(default ~/.cache/rnnlab/), keyed by the CPU, torch's version, the model's sizes, the batch and
the thread count; a quick one is simply repeated, so tiny models never write to the cache.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

__all__ = ["MARGIN", "SMALL_WORK", "CACHE_FROM_S", "bf16_pays", "cache_path"]

MARGIN = 0.9  # bf16 must take at most 90% of fp32's time: a tie keeps fp32's exactness
# Below this many multiply-adds per time step (batch x the weights a step multiplies) fp32 is
# taken without timing: the quick start (0.18 M) measured bf16 at 0.21x fp32's speed, and timings
# of models this small swing by +-10% with the machine's load, around MARGIN.
SMALL_WORK = 1_000_000
CACHE_FROM_S = 1.0  # measurements that took longer are remembered
_MAX_STEPS = 64  # time steps of the synthetic batch: enough to show the ratio, cheap to run


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rnnlab" / "precision.json"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _key(model: torch.nn.Module, inputs: torch.Tensor, threads: int) -> str:
    sizes = sorted((name, tuple(p.shape)) for name, p in model.named_parameters())
    what = [_cpu_name(), torch.__version__, type(model).__name__, repr(getattr(model, "cfg", "")), sizes,
            tuple(inputs.shape), str(inputs.dtype), threads]  # fmt: skip
    return hashlib.sha256(json.dumps(what, default=str).encode()).hexdigest()[:24]


def _synthetic_inputs(spec: Any, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    steps = max(2, min(int(getattr(spec, "max_len", _MAX_STEPS) or _MAX_STEPS), _MAX_STEPS))
    gen = torch.Generator().manual_seed(0)
    if getattr(spec, "vocab_size", None):
        inputs = torch.randint(1, spec.vocab_size, (batch_size, steps), generator=gen)
    else:
        inputs = torch.randn(batch_size, steps, spec.input_size, generator=gen)
    return inputs, torch.full((batch_size,), steps, dtype=torch.long)


def _time_pass(model: torch.nn.Module, inputs: torch.Tensor, lengths: torch.Tensor, bf16: bool) -> float:
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = model(inputs, lengths)
    out.float().square().mean().backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def bf16_pays(model: torch.nn.Module, spec: Any, batch_size: int, threads: int, rounds: int = 3) -> tuple[bool, str]:
    """Whether bf16 autocast trains `model` faster than fp32 here, and a note that says why."""
    from .threads import step_work

    work = step_work(model, batch_size)
    if work < SMALL_WORK:  # no need to time it: casts dominate, and a timing this short is mostly noise
        return False, f"auto: fp32 for a small model ({work / 1e6:.2f} M multiply-adds per step; bf16's casts cost more than they save)"
    inputs, lengths = _synthetic_inputs(spec, batch_size)
    key = _key(model, inputs, threads)
    path = cache_path()
    try:
        known = json.loads(path.read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        known = None
    if isinstance(known, dict) and isinstance(known.get("ratio"), (int, float)):
        ratio, source = float(known["ratio"]), "measured before on this machine"
    else:
        started = time.perf_counter()
        with torch.random.fork_rng(devices=[]):  # dropout in the copy draws no numbers of the run's
            probe = copy.deepcopy(model).train()
            for _ in range(3):  # warm-up: oneDNN builds its kernels in the first calls (the first fp32 pass
                _time_pass(probe, inputs, lengths, False)  # of the quick start took 50x a later one)
                _time_pass(probe, inputs, lengths, True)
            fp32, bf16 = [], []
            for _ in range(rounds):
                fp32.append(_time_pass(probe, inputs, lengths, False))
                bf16.append(_time_pass(probe, inputs, lengths, True))
        ratio = min(bf16) / min(fp32)
        source = "measured now"
        if time.perf_counter() - started >= CACHE_FROM_S:
            _remember(path, key, ratio)
    if ratio <= MARGIN:
        return True, f"auto: bf16 {1 / ratio:.1f}x fp32's speed here, {source}"
    return False, f"auto: bf16 only {1 / ratio:.2f}x fp32's speed here, {source}"


def _remember(path: Path, key: str, ratio: float) -> None:
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
        data = data if isinstance(data, dict) else {}
        data[key] = {"ratio": ratio, "cpu": _cpu_name(), "torch": torch.__version__}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)
    except (OSError, ValueError):
        pass  # a cache that cannot be written only costs the next run its measurement
