"""Training speed on a CPU: rnnlab's training step against PyTorch's fused kernel, before and
after the speed work of issue 15, in fp32 and bf16, side by side, alternating.

    python benchmarks/train_speed.py --data ../shared/data/aclImdb_v1.tar.gz

Part 1, the IMDb flagship's network (configs/imdb_bilstm.yaml: embedding 128, bi-LSTM 128,
max pooling, dropout 0.3) on length-bucketed training batches, tokens per second:

  (a) fused:     a plain nn.LSTM(bidirectional=True) + embedding + max pooling over the padded
                 batch, no lengths, fp32: the kernel's speed with nothing exact around it;
  (b) before:    rnnlab's training step as it was before issue 15: the exact path of that time
                 (batch first, the backward direction reversed with gather, nn.Dropout, amax
                 pooling), Adam's plain loop, glibc's malloc as it comes, fp32, on the
                 flagship's batches of that time (64 reviews; `--before-batch-size`), as many
                 reviews;
  (b') the same path with the memory kept (rnnlab/malloc.py), to show that share on its own;
  (c) now fp32:  rnnlab's model and engine step as they are, fp32;
  (d) now bf16:  the same under CPU bf16 autocast (train.precision=bf16).

How freed memory is handled is a setting of the whole process, so (b) runs in a process of its
own with glibc's defaults and the other paths in one that keeps freed memory, as the rnnlab
command does. The two processes take turns, `--rounds` times (each path `--batches` batches of
the config's size per round), and the medians are reported, so a neighbour's load hits every
path alike. The fraction of the matrix-multiply peak counts the LSTM's arithmetic only (forward
and backward: about 6 x 4H(E+H) x 2 FLOPs per token per direction).

Part 2, a small long-dependency model (hidden 32, seq_len 100, batch 32): steps per second of
the LSTM and the GRU through the engine's step, fp32 and bf16, and of the GRU as the reference
cell (models/cells.py) would run it.

The last line is `speedup=<(d) over (b)>`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from rnnlab.config import derive_config, load_config
from rnnlab.contract import Batch
from rnnlab.engine import Run
from rnnlab.malloc import keep_freed_memory
from rnnlab.models.recurrent import RecurrentNet

ROOT = Path(__file__).resolve().parents[1]
BEFORE, BEFORE_KEPT, FUSED, NOW_FP32, NOW_BF16 = (
    "(b) before, fp32", "(b') before, memory kept", "(a) fused nn.LSTM, fp32", "(c) now, fp32", "(d) now, bf16",
)  # fmt: skip
ORDER = (FUSED, BEFORE, BEFORE_KEPT, NOW_FP32, NOW_BF16)


def _old_reverse_padded(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """reverse_padded before issue 15: a gather with an expanded (B, T, F) index."""
    if lengths is None:
        return x.flip(1)
    steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)
    src = lengths.to(x.device).unsqueeze(1) - 1 - steps
    src = torch.where(src >= 0, src, steps)
    return x.gather(1, src.unsqueeze(-1).expand_as(x))


class BeforeNet(RecurrentNet):
    """RecurrentNet's exact path as it was before issue 15 (same parameters, so same weights):
    batch first around batch-first modules, the backward direction reversed with gather,
    nn.Dropout, amax pooling."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.drop = nn.Dropout(self.cfg.dropout)
        for m in self.recurrent_modules():
            m.batch_first = True

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h = self.drop(self.embedding(tokens))  # (B, T, E)
        for i, directions in enumerate(self.layers):
            if i > 0:
                h = self.drop(h)
            forward, _ = directions[0](h)
            if len(directions) == 2:
                backward, _ = directions[1](_old_reverse_padded(h, lengths))
                h = torch.cat([forward, _old_reverse_padded(backward, lengths)], dim=-1)
            else:
                h = forward
        mask = torch.arange(h.size(1), device=h.device).unsqueeze(0) < lengths.to(h.device).unsqueeze(1)
        return self.head(self.drop(h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)))


class FusedNet(nn.Module):
    """The same sizes on nn.LSTM(bidirectional=True), blind to lengths: the kernel's speed."""

    def __init__(self, vocab: int, emb: int, hidden: int, p: float):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb, padding_idx=0)
        self.lstm = nn.LSTM(emb, hidden, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(p)
        self.head = nn.Linear(2 * hidden, 2)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        out, _ = self.lstm(self.drop(self.embedding(tokens)))
        return self.head(self.drop(out.max(1).values))


def _swap_model(run: Run, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
    """Train `model` with the engine's step and clipping; Adam as given (default: the plain loop)."""
    run.model = run.net = model
    run.params = [p for p in model.parameters() if p.requires_grad]
    run.optimizer = optimizer or torch.optim.Adam(run.params, lr=run.t.lr)


def _timed(run: Run, batches: list[Batch]) -> float:
    start = time.perf_counter()
    for b in batches:
        run._train_step(b, False)  # the engine's own step: forward, loss, backward, clip, Adam, statistics
    return time.perf_counter() - start


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def _draw(run: Run, reviews: int) -> tuple[list[Batch], list[Batch]]:
    """Two warm-up batches, then batches until they hold `reviews` reviews: the same for every
    process, since the sampler is seeded by the config's seed."""
    it = iter(run.task.train_batches(0))
    warm = [next(it) for _ in range(2)]
    out: list[Batch] = []
    while sum(len(b) for b in out) < reviews:
        out.append(next(it))
    return warm, out


def _imdb_runs(args: argparse.Namespace, side: str, runs_dir: Path) -> dict[str, tuple[Run, list[Batch], list[Batch]]]:
    """The paths this process times: name -> (run, warm-up batches, timed batches)."""
    base = derive_config(load_config(args.config), {"task.data_path": args.data, "device": "cpu"})
    reviews = args.batches * base.train.batch_size

    def make(changes: dict) -> Run:
        run = Run(derive_config(base, changes), callbacks=[])
        run.setup(runs_dir, None)
        return run

    def before(run: Run) -> Run:
        net = BeforeNet(base.model, run.task.model_spec(), "lstm")
        net.load_state_dict(run.model.state_dict())
        _swap_model(run, net)
        return run

    before_cfg = {"train.precision": "fp32", "train.batch_size": args.before_batch_size}
    if side == "before":
        run = before(make(before_cfg))
        return {BEFORE: (run, *_draw(run, reviews))}
    paths = {}
    run = make({"train.precision": "fp32"})
    m, spec = base.model, run.task.model_spec()
    torch.manual_seed(0)
    fused = FusedNet(spec.vocab_size, m.embedding_dim, m.hidden_size, m.dropout)
    _swap_model(run, fused, torch.optim.Adam(fused.parameters(), lr=run.t.lr, fused=True))
    paths[FUSED] = run
    paths[BEFORE_KEPT] = before(make(before_cfg))
    paths[NOW_FP32] = make({"train.precision": "fp32"})
    paths[NOW_BF16] = make({"train.precision": "bf16"})
    return {name: (r, *_draw(r, reviews)) for name, r in paths.items()}


def long_dependency_part(args: argparse.Namespace, runs_dir: Path) -> dict[str, float]:
    from rnnlab.models.cells import ReferenceRecurrent

    rates: dict[str, list[float]] = {}
    runs: dict[str, Run] = {}
    for cell in ("lstm", "gru"):
        for precision in ("fp32", "bf16"):
            cfg = derive_config(load_config(ROOT / f"configs/long_dependency_{cell}.yaml"),
                                {"task.seq_len": 100, "model.hidden_size": 32, "train.batch_size": 32,
                                 "train.precision": precision, "device": "cpu"})
            run = Run(cfg, callbacks=[])
            run.setup(runs_dir, None)
            runs[f"{cell} {precision}"] = run
    run = Run(derive_config(runs["gru fp32"].cfg, {}), callbacks=[])
    run.setup(runs_dir, None)
    layer = run.model.layers[0][0]
    cell = ReferenceRecurrent("gru", layer.input_size, layer.hidden_size, batch_first=layer.batch_first)
    cell.load_state_dict(layer.state_dict())
    run.model.layers[0][0] = cell
    _swap_model(run, run.model, run.optimizer)
    runs["gru fp32, reference cell"] = run
    batches = {name: [b for b, _ in zip(r.task.train_batches(0), range(args.small_steps))] for name, r in runs.items()}
    for name, r in runs.items():
        _timed(r, batches[name][:3])
    for _ in range(args.rounds):
        for name, r in runs.items():
            rates.setdefault(name, []).append(len(batches[name]) / _timed(r, batches[name]))
    for r in runs.values():
        r.close()
    return {name: statistics.median(v) for name, v in rates.items()}


def worker(args: argparse.Namespace) -> None:
    """One side: set up, say so, then time its paths once per line read from stdin."""
    if args.side == "now":
        assert keep_freed_memory() or not sys.platform.startswith("linux"), "glibc's mallopt did not take"
    with tempfile.TemporaryDirectory() as d:
        paths = _imdb_runs(args, args.side, Path(d))
        for run, warm, _ in paths.values():
            _timed(run, warm)
        info = {}
        if args.side == "now":
            _, _, batches = paths[NOW_FP32]
            info = {
                "peaks": {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)},
                "mean_t": statistics.mean(b.inputs.size(1) for b in batches),
                "padding": 1 - sum(int(b.lengths.sum()) for b in batches) / sum(b.inputs.numel() for b in batches),
                "n": len(batches), "threads": torch.get_num_threads(),
            }  # fmt: skip
        else:
            info = {"n_before": len(paths[BEFORE][2])}
        print(json.dumps(info), flush=True)
        for line in sys.stdin:
            if line.strip() == "small":
                print(json.dumps(long_dependency_part(args, Path(d))), flush=True)
                continue
            rates = {}
            for name, (run, _, batches) in paths.items():
                rates[name] = sum(int(b.lengths.sum()) for b in batches) / _timed(run, batches)
            print(json.dumps(rates), flush=True)
        for run, _, _ in paths.values():
            run.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="aclImdb_v1.tar.gz or an extracted aclImdb/")
    parser.add_argument("--config", default=str(ROOT / "configs/imdb_bilstm.yaml"), help="whose network to time")
    parser.add_argument("--batches", type=int, default=8, help="IMDb batches (of the config's size) per path and round")
    parser.add_argument("--before-batch-size", type=int, default=64, help="path (b)'s batch size: the flagship's before issue 15")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians are reported")
    parser.add_argument("--small-steps", type=int, default=100, help="long-dependency steps per path and round")
    parser.add_argument("--side", choices=("before", "now"), help=argparse.SUPPRESS)  # a worker process
    args = parser.parse_args()
    if args.side:
        return worker(args)

    cmd = [sys.executable, __file__, *sys.argv[1:]]
    # The "before" side runs with glibc's malloc as it comes, whatever this shell asked for.
    env = {k: v for k, v in os.environ.items() if k != "RNNLAB_SYSTEM_MALLOC"}
    sides = {
        side: subprocess.Popen([*cmd, "--side", side], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        for side in ("before", "now")
    }

    def ask(side: str, what: str = "round") -> dict:
        proc = sides[side]
        if what:
            proc.stdin.write(what + "\n")
            proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            sys.exit(f"the {side} process ended early (exit {proc.wait()})")
        return json.loads(line)

    before_info, now_info = ask("before", ""), ask("now", "")
    seconds: dict[str, list[float]] = {}
    for r in range(args.rounds):
        rates = {**ask("before"), **ask("now")}
        for name, rate in rates.items():
            seconds.setdefault(name, []).append(rate)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n.split(' ')[0]} {rates[n]:,.0f}" for n in ORDER) + " tokens/s", flush=True)
    small = ask("now", "small")
    for proc in sides.values():
        proc.stdin.close()
        proc.wait()

    rates = {name: statistics.median(seconds[name]) for name in ORDER}
    cfg = load_config(args.config)
    hidden, emb, bs = cfg.model.hidden_size, cfg.model.embedding_dim, cfg.train.batch_size
    peaks = now_info["peaks"]
    flops_per_token = 2 * 6 * 4 * hidden * (emb + hidden)  # two directions, forward + backward
    print(f"\nmatrix multiply peak (2048x2048): fp32 {peaks['fp32']:,.0f} GFLOP/s, bf16 {peaks['bf16']:,.0f} GFLOP/s; "
          f"torch threads {now_info['threads']}")
    print(f"IMDb bi-LSTM (hidden {hidden}, embedding {emb}): {now_info['n']} bucketed batches of {bs} (path (b): "
          f"{before_info['n_before']} of {args.before_batch_size}, the flagship's batch before issue 15), mean length "
          f"{now_info['mean_t']:.0f}, padding {now_info['padding']:.1%}; median of {args.rounds} alternating rounds")
    print(f"{'path':28}{'tokens/s':>12}{'vs (b)':>8}{'GFLOP/s':>9}{'of peak':>9}")
    for name in ORDER:
        rate = rates[name]
        peak = peaks["bf16" if "bf16" in name else "fp32"]
        gflops = rate * flops_per_token / 1e9
        print(f"{name:28}{rate:12,.0f}{rate / rates[BEFORE]:8.2f}{gflops:9.1f}{gflops / peak:9.1%}")
    print("\nlong dependency (hidden 32, seq_len 100, batch 32), engine steps per second:")
    for name, rate in small.items():
        print(f"  {name:28}{rate:8.1f}")
    print(f"  GRU / LSTM time per step, fp32: {small['lstm fp32'] / small['gru fp32']:.2f}x")
    print(f"speedup={rates[NOW_BF16] / rates[BEFORE]:.2f}")


if __name__ == "__main__":
    main()
