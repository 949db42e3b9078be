"""Train a config with model.implementation=fused, then =reference (same seed), and print both test
losses; `--onednn-off` first turns PyTorch's oneDNN (mkldnn) CPU kernels off, so that nn.LSTM runs
PyTorch's native CPU kernel, whose arithmetic the reference cells repeat step by step.

    OMP_NUM_THREADS=1 python docs/results/inspect_speed/same_seed.py configs/long_dependency_lstm.yaml --onednn-off
"""

import sys
import tempfile

import torch

from rnnlab.config import derive_config, load_config
from rnnlab.engine import fit

torch.backends.mkldnn.enabled = "--onednn-off" not in sys.argv
cfg = load_config(sys.argv[1])
for impl in ("fused", "reference"):
    with tempfile.TemporaryDirectory() as runs:
        result = fit(derive_config(cfg, {"model.implementation": impl}), runs_dir=runs, callbacks=[])
    print(f"{sys.argv[1]} {impl}: test loss {result.summary['test']['loss']!r} (oneDNN {'on' if torch.backends.mkldnn.enabled else 'off'})")
