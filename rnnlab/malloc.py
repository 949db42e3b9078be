"""Keep freed memory for reuse instead of handing it back to the kernel after every step.

    rnnlab train configs/imdb_bilstm.yaml        (the CLI calls keep_freed_memory() first)

glibc's malloc serves blocks above a threshold (128 KiB, rising by itself to at most 32 MiB) with
fresh mmap()s and returns them with munmap() when freed, and it trims the top of its heap once
128 KiB there are free. A training step allocates and frees hundreds of megabytes of activations
and gradients, so every step page-faults its memory back in, zeroed by the kernel: on the IMDb
flagship (2 cores) that was 40% of the step spent in the kernel (`time` shows it as sys), and
keeping the memory made the step 1.4x faster (benchmarks/train_speed.py measures it). The cost:
a process keeps its peak memory until it exits, which a training run does anyway.

`RNNLAB_SYSTEM_MALLOC=1` leaves malloc as it is. Other C libraries (musl, macOS, Windows) are
left alone; this module imports nothing heavy, so the CLI can call it before torch loads.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["keep_freed_memory"]

# mallopt() parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Blocks up to 1 GiB come from the heap (and go back to it); larger ones still use mmap.
_MMAP_THRESHOLD = 1 << 30
_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: the largest there is, "never trim"

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed blocks (once per process); whether it took effect."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if not sys.platform.startswith("linux") or os.environ.get("RNNLAB_SYSTEM_MALLOC", "") not in ("", "0"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    return _done
