"""Training speed per cell on long sequences: the chapter's cells against the ones that came after.

    OMP_NUM_THREADS=1 python benchmarks/cell_speed.py            # T = 1,000, the copy task's shape
    OMP_NUM_THREADS=1 python benchmarks/cell_speed.py --quick    # a smoke check in seconds

One training step (forward, backward, Adam) of a one-layer RecurrentNet per cell, like for like
(one-hot input of 10 symbols, hidden 128, batch 128, the copy task's shapes), at T + 20 steps.
Every cell runs `--reps` steps per round after a warm-up, `--rounds` rounds in a random order
each, and the median is reported in tokens per second (batch x steps / time). The parallel cells
(mingru, minlstm, lru) run as `implementation: fused` does on a CPU (a loop of in-place kernels
with a hand-written backward, rnnlab/models/scan.py); minGRU also runs its log-space parallel
scan (what a GPU runs) and its recorded steps (`implementation: reference`). Last lines:
`parallel_over_lstm=` (the fastest parallel cell's tokens/s over the LSTM's), `log_scan_over_loop=`
and `loop_over_steps=` (minGRU's forms against each other).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time

import torch

from rnnlab.config import resolve_config
from rnnlab.contract import ModelSpec
from rnnlab.registry import MODELS

CELLS = [  # (label, model, layers, implementation)
    ("rnn", "rnn", 1, "fused"),
    ("lstm", "lstm", 1, "fused"),
    ("gru", "gru", 1, "fused"),
    ("indrnn", "indrnn", 1, "fused"),
    ("exprnn", "exprnn", 1, "fused"),
    ("mingru", "mingru", 1, "fused"),
    ("minlstm", "minlstm", 1, "fused"),
    ("lru", "lru", 1, "fused"),
    ("mingru (log scan)", "mingru", 1, "fused"),
    ("mingru (steps)", "mingru", 1, "reference"),
]


def _model(name: str, layers: int, implementation: str, hidden: int, T: int) -> torch.nn.Module:
    raw = {
        "task": {"name": "copy", "seq_len": T}, "model": {"name": name, "hidden_size": hidden, "num_layers": layers,
        "implementation": implementation}, "train": {"steps": 1},
    }  # fmt: skip
    cfg = resolve_config(raw)
    return MODELS.build(cfg.model, ModelSpec(num_outputs=9, vocab_size=11, per_step=True, max_len=T + 20))


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seq-len", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="T = 50, batch 16, 2 rounds of 1 step")
    args = parser.parse_args()
    if args.quick:
        args.seq_len, args.batch, args.rounds, args.reps = 50, 16, 2, 1
    T = args.seq_len + 20
    torch.manual_seed(0)
    models, opts = {}, {}
    for label, name, layers, impl in CELLS:
        models[label] = _model(name, layers, impl, args.hidden, args.seq_len)
        if "log scan" in label:
            for m in models[label].recurrent_modules():
                m.log_space = True
        opts[label] = torch.optim.Adam(models[label].parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, 11, (args.batch, T), generator=g)
    targets = torch.randint(0, 9, (args.batch, T), generator=g)

    def step(label: str) -> None:
        out = models[label](tokens)
        loss = torch.nn.functional.cross_entropy(out.reshape(-1, 9), targets.reshape(-1))
        opts[label].zero_grad()
        loss.backward()
        opts[label].step()

    for label in models:  # warm-up: allocation, kernel choice
        step(label)
    times: dict[str, list[float]] = {label: [] for label in models}
    order = list(models)
    rng = random.Random(0)
    for _ in range(args.rounds):
        rng.shuffle(order)
        for label in order:
            start = time.perf_counter()
            for _ in range(args.reps):
                step(label)
            times[label].append((time.perf_counter() - start) / args.reps)
    print(f"{_cpu()}; {os.cpu_count()} cores, {torch.get_num_threads()} thread(s); torch {torch.__version__}")
    print(f"one layer each; T = {args.seq_len} (+20), batch {args.batch}, hidden {args.hidden}; median of {args.rounds} rounds of {args.reps} step(s), random order")
    print(f"{'cell':18} {'params':>9} {'s/step':>8} {'tokens/s':>10} {'vs lstm':>8}")
    tps = {label: args.batch * T / statistics.median(ts) for label, ts in times.items()}
    for label in models:
        params = sum(p.numel() for p in models[label].parameters())
        print(f"{label:18} {params:9,d} {statistics.median(times[label]):8.3f} {tps[label]:10,.0f} {tps[label] / tps['lstm']:8.2f}")
    best = max(tps[k] for k in ("mingru", "minlstm", "lru"))
    print(f"parallel_over_lstm={best / tps['lstm']:.2f}")
    print(f"log_scan_over_loop={tps['mingru (log scan)'] / tps['mingru']:.2f}")
    print(f"loop_over_steps={tps['mingru'] / tps['mingru (steps)']:.2f}")


if __name__ == "__main__":
    main()
