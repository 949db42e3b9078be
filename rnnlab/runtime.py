"""Seeding and device selection, shared by every command."""

from __future__ import annotations

import os
import platform
import random
import subprocess
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable

import torch

from .config import DEVICE_PATTERN, DEVICES
from .errors import UserError

__all__ = [
    "seed_everything",
    "resolve_device",
    "DEVICES",
    "rng_state",
    "set_rng_state",
    "Dist",
    "setup_distributed",
    "teardown_distributed",
    "cpu_has_native_bf16",
    "autocast_for",
]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # numpy is optional for rnnlab itself
        pass
    os.environ.setdefault("PYTHONHASHSEED", str(seed))




def resolve_device(name: str) -> torch.device:
    """`auto` = cuda -> mps -> cpu; an unknown or unavailable device is a user error.

    Only the devices rnnlab runs on are accepted: torch also parses xpu, hpu, meta and others,
    and they fail later with an AssertionError, a missing module or a tensor without data."""
    if not isinstance(name, str) or not DEVICE_PATTERN.fullmatch(name):
        raise UserError(f"device = {name!r}: not a device rnnlab runs on; use {DEVICES}")
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_ok else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"device = {name!r}: CUDA is not available on this machine; use device=auto or device=cpu")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise UserError(f"device = {name!r}: only {count} CUDA device(s) here; use cuda:0 to cuda:{count - 1}")
    if name == "mps" and not mps_ok:
        raise UserError("device = 'mps': Apple's MPS backend is not available here; use device=auto or device=cpu")
    return torch.device(name)


def rng_state() -> dict:
    """Every global random state, in a form `torch.load(weights_only=True)` accepts."""
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np

        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state["numpy"] = (kind, torch.from_numpy(keys.astype("int64")), pos, has_gauss, gauss)
    except ImportError:
        pass
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        import numpy as np

        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, gauss))


@dataclass(frozen=True)
class Dist:
    """Where this process stands in a `torchrun` job; rank 0 of 1 for a plain run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup_distributed(device_name: str) -> tuple[Dist, torch.device]:
    """Join the process group torchrun describes (WORLD_SIZE, RANK, LOCAL_RANK); nccl on CUDA,
    gloo on CPU. Without torchrun: one process, the device `device_name` names."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Dist(), resolve_device(device_name)
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and (device_name == "auto" or device_name.startswith("cuda"))
    if device_name == "mps":
        raise UserError("device = 'mps' cannot run several processes; use device=cpu with torchrun")
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise UserError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA device(s): "
                "start at most that many processes per node (--nproc-per-node)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", device_id=device if use_cuda else None)
    return Dist(rank, world_size, local_rank), device



def teardown_distributed(dist_info: Dist) -> None:
    """Every rank meets at a barrier, then leaves the process group: without this, one process
    could exit while another still tears down gloo, which aborts it ("terminate called without an
    active exception") and fails the whole torchrun job."""
    if not dist_info.enabled:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX on x86, FEAT_BF16 on Arm).

    `RNNLAB_CPU_BF16=0|1` overrides the detection (tests simulate both kinds of CPU with it).
    Without native units PyTorch emulates bf16, which is slower than fp32, not faster.
    """
    forced = os.environ.get("RNNLAB_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        if platform.system() == "Linux":
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith(("flags", "Features")):
                        flags = set(line.split(":", 1)[1].split())
                        return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
        if platform.system() == "Darwin":
            out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True, timeout=5)
            return out.stdout.strip() == "1"
    except (OSError, subprocess.SubprocessError):
        pass
    return False


def autocast_for(precision: str, device: torch.device) -> tuple[Callable[[], Any], Any, str, str]:
    """(a context factory for the forward pass, a gradient scaler or None, a note for the log,
    the precision that runs: fp32, bf16 or fp16).

    Weights, optimizer state and checkpoints stay fp32; only the forward pass runs in lower
    precision. CUDA: bf16 or fp16 (fp16 with a gradient scaler). CPU: bf16 on CPUs that compute
    it natively. `auto`: bf16 where the device computes it natively, else fp32 with a note.
    """
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return (lambda: torch.autocast("cuda", dtype=torch.bfloat16)), None, "bf16 autocast (auto)", "bf16"
        if device.type == "cpu" and cpu_has_native_bf16():
            return (lambda: torch.autocast("cpu", dtype=torch.bfloat16)), None, "bf16 autocast (auto)", "bf16"
        return nullcontext, None, f"fp32 (auto: this {device.type.upper()} has no native bf16)", "fp32"
    if precision == "fp32":
        return nullcontext, None, "", "fp32"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    if device.type == "cuda":
        scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        return (lambda: torch.autocast("cuda", dtype=dtype)), scaler, precision, precision
    if device.type == "cpu" and precision == "bf16":
        if not cpu_has_native_bf16():
            raise UserError(
                "train.precision = 'bf16': this CPU has no native bf16 units (AVX512-BF16 or AMX), so bf16 would be "
                "emulated and slower than fp32; use train.precision=fp32 (or auto: bf16 only where it is native)"
            )
        return (lambda: torch.autocast("cpu", dtype=torch.bfloat16)), None, "bf16 autocast", "bf16"
    raise UserError(
        f"train.precision = {precision!r} is not available on {device.type}: bf16 needs CUDA or a CPU with native bf16, "
        "fp16 needs CUDA; use train.precision=fp32"
    )


def inference_autocast(precision: str, device: torch.device) -> Callable[[], Any]:
    """The forward pass's context for evaluating or using a trained run: the precision it trained
    in where this device has it, else fp32 (always a correct answer, only slower)."""
    try:
        return autocast_for(precision, device)[0]
    except UserError:
        return nullcontext
