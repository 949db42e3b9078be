"""rnnlab/malloc.py: freed memory is kept for the next step instead of being page-faulted back in.

    python -m pytest tests/test_malloc.py
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# A process that allocates and frees a 64 MiB tensor thirty times, as training steps do with their
# activations; it prints the minor page faults of the last ten rounds (glibc settles in a few).
_STEPS = """
import resource, sys
from rnnlab.malloc import keep_freed_memory
kept = keep_freed_memory()
import torch
for _ in range(20):
    torch.ones(16 * 2**20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.ones(16 * 2**20)
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(env_extra: dict[str, str]) -> tuple[bool, int]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **env_extra}
    if not env_extra:
        env.pop("RNNLAB_SYSTEM_MALLOC", None)
    out = subprocess.run([sys.executable, "-c", _STEPS], env=env, capture_output=True, text=True, check=True, timeout=120)
    kept, faults = out.stdout.split()
    return kept == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc is tuned on Linux only")
def test_kept_memory_is_reused_without_page_faults_and_the_opt_out_restores_glibc():
    kept, faults = _faults({})
    system_kept, system_faults = _faults({"RNNLAB_SYSTEM_MALLOC": "1"})
    if not kept:
        pytest.skip("this Linux has no glibc mallopt (e.g. musl)")
    assert not system_kept
    # glibc's default maps and unmaps the 64 MiB block every round: 16,384 faults of 4 KiB each.
    assert system_faults > 10 * 8_000, system_faults
    assert faults < system_faults / 20, (faults, system_faults)
