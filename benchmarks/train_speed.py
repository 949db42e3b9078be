"""Training speed on a CPU: rnnlab's training step against PyTorch's fused kernel and against the
step before the speed work of issue 15, each factor measured on its own, side by side, in random
order, on the same reviews.

    python benchmarks/train_speed.py --data ../shared/data/aclImdb_v1.tar.gz
    python benchmarks/train_speed.py --data DIR --quick task.val_size=10 task.vocab_size=200   # smoke check

Part 1, the IMDb flagship's network (configs/imdb_bilstm.yaml: embedding 128, bi-LSTM 128,
max pooling, dropout 0.3) on length-bucketed training batches, tokens per second. Every path
trains on the same reviews in each round (`--reviews` drawn afresh per round, bucketed by
rnnlab's sampler into batches of the path's size):

  (a) fused:       a plain nn.LSTM(bidirectional=True) + embedding + max pooling over the padded
                   batch, no lengths, fp32, batch B: the kernel's speed with nothing exact around it;
  (b) before:      rnnlab's training step as it was before issue 15 (batch first, the backward
                   direction reversed with gather, nn.Dropout, amax pooling), Adam's plain loop,
                   glibc's malloc as it comes, fp32, batch B;
  (b') before, memory kept: the same with rnnlab/malloc.py's setting;
  (c) now, fp32:   rnnlab's model and engine step as they are, fp32, batch B;
  (d) now, bf16:   the same under CPU bf16 autocast (where the CPU has native bf16);
  (e) now, fp32, batch `--small-batch` (64, the flagship's batch before issue 15).

B is the config's batch (256). The headline `speedup=` is (c) over (b): the same precision, batch
and reviews. The factors are reported separately: memory (b') / (b), precision (d) / (c), batch
(c) / (e). How freed memory is handled is a setting of the whole process, so (b) runs in a process
of its own and the other paths in one that keeps freed memory, as the rnnlab command does. Both
processes warm every path up first; then `--rounds` rounds (at least 5 for figures), each
visiting the two processes, and the paths inside them, in random order; medians are reported. The
fraction of the matrix-multiply peak counts the LSTM's arithmetic only (forward and backward:
about 6 x 4H(E+H) x 2 FLOPs per token per direction).

Part 2, the GRU against the LSTM, engine steps per second: a long-dependency model (hidden 32,
seq_len 100, batch 32) and the IMDb flagship's size (the flagship with model.name=bigru, on the
same IMDb batches as the bi-LSTM), fp32 and bf16, the GRU also with `model.fast_gru_backward`
(the hand-written backward: faster at small steps, but off by default because trained runs then
drift from the reference cells') and as the reference cell (models/cells.py). Paths in random
order per round, after warm-up. Issue 28 asks `gru_over_lstm_hidden32` and `gru_over_lstm_imdb`
(GRU steps/s over LSTM steps/s, fp32) >= 1; `gru_fast_backward_over_lstm_*` are the same with the option.

Threads: rnnlab's own choice (runtime.threads auto), the same for every path; the table says it.
The last line is `speedup=<(c) over (b)>`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
from rnnlab.data.bucketing import BucketBatchSampler
from rnnlab.engine import Run
from rnnlab.malloc import keep_freed_memory
from rnnlab.models.recurrent import RecurrentNet
from rnnlab.runtime import cpu_has_native_bf16

ROOT = Path(__file__).resolve().parents[1]
FUSED, BEFORE, BEFORE_KEPT, NOW_FP32, NOW_BF16, NOW_SMALL = (
    "(a) fused nn.LSTM", "(b) before", "(b') before, memory kept", "(c) now", "(d) now, bf16", "(e) now, small batch",
)  # fmt: skip
ORDER = (FUSED, BEFORE, BEFORE_KEPT, NOW_FP32, NOW_BF16, NOW_SMALL)


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


def _picked(run: Run, reviews: int, round_: int) -> torch.Tensor:
    """The reviews of round `round_` (-1: the warm-up's), the same in every process."""
    n = len(run.task.data.train.lengths)
    return torch.randperm(n, generator=torch.Generator().manual_seed(1000 + round_))[: min(reviews, n)]


def _bucketed(run: Run, picked: torch.Tensor, round_: int) -> list[Batch]:
    """`picked` in length-bucketed batches of this run's batch size (rnnlab's sampler)."""
    sampler = BucketBatchSampler(run.task.data.train.lengths[picked], run.t.batch_size, shuffle=True, seed=round_ + 1)
    return [run.task.train_batch(picked[torch.as_tensor(p)].tolist()) for p in sampler]


def _base(args: argparse.Namespace):
    changes = {"task.data_path": args.data, "device": "cpu"}
    for item in args.overrides:
        key, _, value = item.partition("=")
        changes[key] = int(value) if value.lstrip("-").isdigit() else value
    return derive_config(load_config(args.config), changes)


def _imdb_runs(args: argparse.Namespace, side: str, runs_dir: Path) -> dict[str, Run]:
    """The paths this process times: name -> run (model, optimizer and step)."""
    base = _base(args)

    def make(changes: dict) -> Run:
        run = Run(derive_config(base, changes), callbacks=[])
        run.setup(runs_dir, None)
        return run

    def before(run: Run) -> Run:
        net = BeforeNet(base.model, run.task.model_spec(), "lstm")
        net.load_state_dict(run.model.state_dict())
        _swap_model(run, net)
        return run

    fp32 = {"train.precision": "fp32"}
    if side == "before":
        return {BEFORE: before(make(fp32))}
    paths = {}
    run = make(fp32)
    m, spec = base.model, run.task.model_spec()
    torch.manual_seed(0)
    fused = FusedNet(spec.vocab_size, m.embedding_dim, m.hidden_size, m.dropout)
    _swap_model(run, fused, torch.optim.Adam(fused.parameters(), lr=run.t.lr, fused=True))
    paths[FUSED] = run
    paths[BEFORE_KEPT] = before(make(fp32))
    paths[NOW_FP32] = make(fp32)
    if cpu_has_native_bf16():
        paths[NOW_BF16] = make({"train.precision": "bf16"})
    paths[NOW_SMALL] = make({**fp32, "train.batch_size": args.small_batch})
    return paths


def _gru_runs(args: argparse.Namespace, runs_dir: Path, imdb_base) -> dict[str, Run]:
    """Part 2's paths: LSTM and GRU at hidden 32 and at the IMDb flagship's size."""
    from rnnlab.models.cells import ReferenceRecurrent

    precisions = ("fp32", "bf16") if cpu_has_native_bf16() else ("fp32",)
    runs: dict[str, Run] = {}

    def make(cfg) -> Run:
        run = Run(cfg, callbacks=[])
        run.setup(runs_dir, None)
        return run

    def swap_to_reference(run: Run) -> Run:
        for directions in run.model.layers:
            for d, layer in enumerate(directions):
                new = ReferenceRecurrent("gru", layer.input_size, layer.hidden_size, batch_first=False)
                new.load_state_dict(layer.state_dict())
                directions[d] = new
        _swap_model(run, run.model, torch.optim.Adam(run.model.parameters(), lr=run.t.lr, fused=True))
        return run

    for size in ("hidden 32", "IMDb size"):
        for cell in ("lstm", "gru"):
            for precision in precisions:
                if size == "hidden 32":
                    cfg = derive_config(load_config(ROOT / f"configs/long_dependency_{cell}.yaml"),
                                        {"task.seq_len": 100, "model.hidden_size": 32, "train.batch_size": 32,
                                         "train.precision": precision, "device": "cpu"})  # fmt: skip
                else:
                    cfg = derive_config(imdb_base, {"model.name": f"bi{cell}", "train.precision": precision})
                runs[f"{size}: {cell} {precision}"] = make(cfg)
        runs[f"{size}: gru fp32, fast_gru_backward"] = make(derive_config(runs[f"{size}: gru fp32"].cfg, {"model.fast_gru_backward": True}))
        if size == "hidden 32":
            runs[f"{size}: gru fp32, reference cell"] = swap_to_reference(make(runs[f"{size}: gru fp32"].cfg))
    return runs


def gru_part(args: argparse.Namespace, runs_dir: Path) -> dict[str, float]:
    """Engine steps per second of each part-2 path: medians of alternating rounds in random order."""
    imdb_base = _base(args)
    runs = _gru_runs(args, runs_dir, imdb_base)
    batches: dict[str, list[Batch]] = {}
    for name, r in runs.items():
        if name.startswith("hidden 32"):
            batches[name] = [b for b, _ in zip(r.task.train_batches(0), range(args.small_steps))]
        else:  # the same IMDb reviews for every path
            batches[name] = _bucketed(r, _picked(r, args.imdb_steps * r.t.batch_size, 0), 0)[: args.imdb_steps]
    for name, r in runs.items():
        _timed(r, batches[name][:2])
    rates: dict[str, list[float]] = {}
    order = random.Random(args.seed + 1)
    for _ in range(args.rounds):
        for name in order.sample(list(runs), len(runs)):
            rates.setdefault(name, []).append(len(batches[name]) / _timed(runs[name], batches[name]))
    for r in runs.values():
        r.close()
    return {name: statistics.median(rates[name]) for name in runs}


def worker(args: argparse.Namespace) -> None:
    """One side: set up and warm up, say so, then time its paths once per `round R` line read."""
    if args.side == "now":
        assert keep_freed_memory() or not sys.platform.startswith("linux"), "glibc's mallopt did not take"
    with tempfile.TemporaryDirectory() as d:
        paths = _imdb_runs(args, args.side, Path(d))
        some = next(iter(paths.values()))
        for run in paths.values():
            _timed(run, _bucketed(run, _picked(run, 2 * run.t.batch_size, -1), -1)[:2])
        info: dict = {"threads": torch.get_num_threads()}
        if args.side == "now":
            batches = _bucketed(paths[NOW_FP32], _picked(some, args.reviews, 0), 0)
            info.update({
                "peaks": {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)},
                "mean_t": statistics.mean(b.inputs.size(1) for b in batches),
                "padding": 1 - sum(int(b.lengths.sum()) for b in batches) / sum(b.inputs.numel() for b in batches),
                "n": len(batches), "batch": {name: run.t.batch_size for name, run in paths.items()},
                "precision": {name: run.precision for name, run in paths.items()},
            })  # fmt: skip
        print(json.dumps(info), flush=True)
        for line in sys.stdin:
            if line.strip() == "gru":
                print(json.dumps(gru_part(args, Path(d))), flush=True)
                continue
            round_ = int(line.split()[1])
            picked = _picked(some, args.reviews, round_)
            work = {name: _bucketed(run, picked, round_) for name, run in paths.items()}  # outside the timing
            rates = {}
            for name in random.Random(args.seed * 1000 + round_).sample(list(paths), len(paths)):
                rates[name] = sum(int(b.lengths.sum()) for b in work[name]) / _timed(paths[name], work[name])
            print(json.dumps(rates), flush=True)
        for run in paths.values():
            run.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="aclImdb_v1.tar.gz or an extracted aclImdb/")
    parser.add_argument("--config", default=str(ROOT / "configs/imdb_bilstm.yaml"), help="whose network to time")
    parser.add_argument("--reviews", type=int, default=2048, help="IMDb reviews per path and round (the same for every path)")
    parser.add_argument("--small-batch", type=int, default=64, help="path (e)'s batch: the flagship's before issue 15")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds in random order; medians are reported")
    parser.add_argument("--small-steps", type=int, default=100, help="part 2: hidden-32 steps per path and round")
    parser.add_argument("--imdb-steps", type=int, default=4, help="part 2: IMDb-sized steps per path and round")
    parser.add_argument("--seed", type=int, default=0, help="of the random visiting order")
    parser.add_argument("--quick", action="store_true", help="smoke check: 2 rounds, 64 reviews, batches of 16 and 8, few steps")
    parser.add_argument("--side", choices=("before", "now"), help=argparse.SUPPRESS)  # a worker process
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. task.val_size=10 (for a small archive)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.reviews, args.small_batch, args.small_steps, args.imdb_steps = 2, 64, 8, 5, 2
        if not any(o.startswith("train.batch_size=") for o in args.overrides):
            args.overrides.append("train.batch_size=16")
    if args.side:
        return worker(args)

    cmd = [sys.executable, __file__, *sys.argv[1:]]
    # The "before" side runs with glibc's malloc as it comes, whatever this shell asked for.
    env = {k: v for k, v in os.environ.items() if k != "RNNLAB_SYSTEM_MALLOC"}
    sides = {
        side: subprocess.Popen([*cmd, "--side", side], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        for side in ("before", "now")
    }

    def ask(side: str, what: str | None = None) -> dict:
        proc = sides[side]
        if what:
            proc.stdin.write(what + "\n")
            proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            sys.exit(f"the {side} process ended early (exit {proc.wait()})")
        return json.loads(line)

    before_info, now_info = ask("before"), ask("now")
    seen: dict[str, list[float]] = {}
    order = random.Random(args.seed)
    for r in range(args.rounds):
        rates: dict[str, float] = {}
        for side in order.sample(list(sides), 2):
            rates.update(ask(side, f"round {r}"))
        for name, rate in rates.items():
            seen.setdefault(name, []).append(rate)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n.split(' ')[0]} {rates[n]:,.0f}" for n in ORDER if n in rates)
              + " tokens/s", flush=True)  # fmt: skip
    gru = ask("now", "gru")
    for proc in sides.values():
        proc.stdin.close()
        proc.wait()

    rates = {name: statistics.median(seen[name]) for name in ORDER if name in seen}
    cfg = _base(args)
    hidden, emb = cfg.model.hidden_size, cfg.model.embedding_dim
    peaks = now_info["peaks"]
    flops_per_token = 2 * 6 * 4 * hidden * (emb + hidden)  # two directions, forward + backward
    batch_of = {**now_info["batch"], BEFORE: cfg.train.batch_size}
    precision_of = {**now_info["precision"], BEFORE: "fp32"}
    print(f"\nmatrix multiply peak (2048x2048): fp32 {peaks['fp32']:,.0f} GFLOP/s, bf16 {peaks['bf16']:,.0f} GFLOP/s; "
          f"torch threads {now_info['threads']} (before side: {before_info['threads']})")
    print(f"IMDb bi-LSTM (hidden {hidden}, embedding {emb}): {args.reviews} reviews per path and round, the same for every path "
          f"({now_info['n']} bucketed batches of {cfg.train.batch_size}), mean length {now_info['mean_t']:.0f}, padding "
          f"{now_info['padding']:.1%}; median of {args.rounds} rounds in random order")
    print(f"{'path':28}{'precision':>10}{'batch':>7}{'tokens/s':>12}{'vs (b)':>8}{'GFLOP/s':>9}{'of peak':>9}")
    for name, rate in rates.items():
        peak = peaks["bf16" if precision_of[name] == "bf16" else "fp32"]
        gflops = rate * flops_per_token / 1e9
        print(f"{name:28}{precision_of[name]:>10}{batch_of[name]:7}{rate:12,.0f}{rate / rates[BEFORE]:8.2f}{gflops:9.1f}{gflops / peak:9.1%}")
    print("factors, each alone (the same reviews):")
    print(f"  memory kept, (b') / (b):             {rates[BEFORE_KEPT] / rates[BEFORE]:.2f}")
    if NOW_BF16 in rates:
        print(f"  precision, bf16 / fp32, (d) / (c):   {rates[NOW_BF16] / rates[NOW_FP32]:.2f}")
    print(f"  batch size, {cfg.train.batch_size} / {args.small_batch}, (c) / (e):     {rates[NOW_FP32] / rates[NOW_SMALL]:.2f}")
    print("\nGRU and LSTM, engine steps per second (fp32 unless named; hidden 32: long_dependency, seq_len 100, batch 32):")
    for name, rate in gru.items():
        print(f"  {name:46}{rate:9.2f}")
    for size, key in (("hidden 32", "hidden32"), ("IMDb size", "imdb")):
        print(f"gru_over_lstm_{key}={gru[f'{size}: gru fp32'] / gru[f'{size}: lstm fp32']:.2f}")
        print(f"gru_fast_backward_over_lstm_{key}={gru[f'{size}: gru fp32, fast_gru_backward'] / gru[f'{size}: lstm fp32']:.2f}")
    print(f"speedup={rates[NOW_FP32] / rates[BEFORE]:.2f}")


if __name__ == "__main__":
    main()
