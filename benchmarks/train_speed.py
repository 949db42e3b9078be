"""Training speed on a CPU: rnnlab's training step against PyTorch's fused kernel, before and
after the speed work of issue 15, in fp32 and bf16, side by side in one process.

    python benchmarks/train_speed.py --data ../shared/data/aclImdb_v1.tar.gz

Part 1, the IMDb flagship's network (configs/imdb_bilstm.yaml: embedding 128, bi-LSTM 128,
max pooling, dropout 0.5) on the same length-bucketed training batches, tokens per second:

  (a) fused:     a plain nn.LSTM(bidirectional=True) + embedding + max pooling over the padded
                 batch, no lengths, fp32: the kernel's speed with nothing exact around it;
  (b) before:    rnnlab's exact path as it was before issue 15 (the backward direction reversed
                 with gather, nn.Dropout), through the engine's own training step, fp32, on the
                 flagship's batches of that time (64 reviews; `--before-batch-size`), as many reviews;
  (c) now fp32:  rnnlab's model and engine step as they are, fp32;
  (d) now bf16:  the same under CPU bf16 autocast (train.precision=bf16).

Paths (a), (c) and (d) train on the same `--batches` batches of the config's size per round; the paths take turns `--rounds`
times and the medians are reported, so a neighbour's load hits every path alike. The fraction of
the matrix-multiply peak counts the LSTM's arithmetic only (forward and backward: about
6 x 4H(E+H) x 2 FLOPs per token per direction).

Part 2, a small long-dependency model (hidden 32, seq_len 100, batch 32): steps per second of
the LSTM and the GRU through the engine's step, fp32 and bf16, and of the GRU as the reference
cell (models/cells.py) would run it.

The last line is `speedup=<(d) over (b)>`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from rnnlab.config import derive_config, load_config
from rnnlab.contract import Batch
from rnnlab.engine import Run
from rnnlab.models.recurrent import RecurrentNet

ROOT = Path(__file__).resolve().parents[1]


def _old_reverse_padded(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """reverse_padded before issue 15: a gather with an expanded (B, T, F) index."""
    if lengths is None:
        return x.flip(1)
    steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)
    src = lengths.to(x.device).unsqueeze(1) - 1 - steps
    src = torch.where(src >= 0, src, steps)
    return x.gather(1, src.unsqueeze(-1).expand_as(x))


class BeforeNet(RecurrentNet):
    """RecurrentNet's exact path as it was before issue 15 (same parameters, so same weights)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.drop = nn.Dropout(self.cfg.dropout)

    def encode(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h = feats
        for i, directions in enumerate(self.layers):
            if i > 0:
                h = self.drop(h)
            forward, _ = directions[0](h)
            if len(directions) == 2:
                backward, _ = directions[1](_old_reverse_padded(h, lengths))
                h = torch.cat([forward, _old_reverse_padded(backward, lengths)], dim=-1)
            else:
                h = forward
        return h


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
        return self.head(self.drop(out.amax(1)))


def _swap_model(run: Run, model: nn.Module) -> None:
    """Train `model` with the engine's step, its optimizer and clipping unchanged."""
    run.model = run.net = model
    run.params = [p for p in model.parameters() if p.requires_grad]
    run.optimizer = torch.optim.Adam(run.params, lr=run.t.lr)


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


def imdb_part(args: argparse.Namespace, runs_dir: Path) -> tuple[dict[str, float], tuple]:
    base = derive_config(load_config(args.config), {"task.data_path": args.data, "device": "cpu"})
    before_cfg = {"train.precision": "fp32", "train.batch_size": args.before_batch_size}
    runs: dict[str, Run] = {}
    for name, changes in (("(a) fused nn.LSTM, fp32", {"train.precision": "fp32"}), ("(b) before, fp32", before_cfg),
                          ("(c) now, fp32", {"train.precision": "fp32"}), ("(d) now, bf16", {"train.precision": "bf16"})):
        run = Run(derive_config(base, changes), callbacks=[])
        run.setup(runs_dir, None)
        runs[name] = run
    first = next(iter(runs.values()))
    m, spec = base.model, first.task.model_spec()
    torch.manual_seed(0)
    _swap_model(runs["(a) fused nn.LSTM, fp32"], FusedNet(spec.vocab_size, m.embedding_dim, m.hidden_size, m.dropout))
    before = BeforeNet(m, spec, "lstm")
    before.load_state_dict(runs["(b) before, fp32"].model.state_dict())
    _swap_model(runs["(b) before, fp32"], before)

    def draw(run: Run, reviews: int) -> tuple[list[Batch], list[Batch]]:
        it = iter(run.task.train_batches(0))
        warm = [next(it) for _ in range(2)]
        out: list[Batch] = []
        while sum(len(b) for b in out) < reviews:
            out.append(next(it))
        return warm, out

    warm, batches = draw(first, args.batches * base.train.batch_size)
    # The path before issue 15 trains on the flagship's batches of that time (smaller), as many reviews.
    before_warm, before_batches = draw(runs["(b) before, fp32"], sum(len(b) for b in batches))
    own = {name: (before_warm, before_batches) if name.startswith("(b)") else (warm, batches) for name in runs}
    tokens = {name: sum(int(b.lengths.sum()) for b in bs) for name, (_, bs) in own.items()}
    for name, run in runs.items():
        _timed(run, own[name][0])
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(args.rounds):
        for name, run in runs.items():
            seconds[name].append(_timed(run, own[name][1]))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n.split(')')[0]})" f" {tokens[n] / s[-1]:,.0f}" for n, s in seconds.items()) + " tokens/s")
    for run in runs.values():
        run.close()
    rates = {name: tokens[name] / statistics.median(s) for name, s in seconds.items()}
    mean_t = statistics.mean(b.inputs.size(1) for b in batches)
    padding = 1 - tokens["(c) now, fp32"] / sum(b.inputs.numel() for b in batches)
    return rates, (m.hidden_size, m.embedding_dim, mean_t, padding, len(batches), base.train.batch_size, len(before_batches))


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
    ref = runs["gru fp32"]
    cfg = derive_config(ref.cfg, {})
    run = Run(cfg, callbacks=[])
    run.setup(runs_dir, None)
    layer = run.model.layers[0][0]
    cell = ReferenceRecurrent("gru", layer.input_size, layer.hidden_size)
    cell.load_state_dict(layer.state_dict())
    run.model.layers[0][0] = cell
    _swap_model(run, run.model)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="aclImdb_v1.tar.gz or an extracted aclImdb/")
    parser.add_argument("--config", default=str(ROOT / "configs/imdb_bilstm.yaml"), help="whose network to time")
    parser.add_argument("--batches", type=int, default=12, help="IMDb batches (of the config's size) per path and round")
    parser.add_argument("--before-batch-size", type=int, default=64, help="path (b)'s batch size: the flagship's before issue 15")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are reported")
    parser.add_argument("--small-steps", type=int, default=100, help="long-dependency steps per path and round")
    args = parser.parse_args()

    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    with tempfile.TemporaryDirectory() as d:
        rates, (hidden, emb, mean_t, padding, n, bs, n_before) = imdb_part(args, Path(d))
        small = long_dependency_part(args, Path(d))

    flops_per_token = 2 * 6 * 4 * hidden * (emb + hidden)  # two directions, forward + backward
    print(f"\nmatrix multiply peak (2048x2048): fp32 {peaks['fp32']:,.0f} GFLOP/s, bf16 {peaks['bf16']:,.0f} GFLOP/s; "
          f"torch threads {torch.get_num_threads()}")
    print(f"IMDb bi-LSTM (hidden {hidden}, embedding {emb}): {n} bucketed batches of {bs} (path (b): {n_before} of "
          f"{args.before_batch_size}, the flagship's batch before issue 15), mean length {mean_t:.0f}, padding {padding:.1%}; "
          f"median of {args.rounds} alternating rounds")
    print(f"{'path':28}{'tokens/s':>12}{'vs (b)':>8}{'GFLOP/s':>9}{'of peak':>9}")
    for name, rate in rates.items():
        peak = peaks["bf16" if "bf16" in name else "fp32"]
        gflops = rate * flops_per_token / 1e9
        print(f"{name:28}{rate:12,.0f}{rate / rates['(b) before, fp32']:8.2f}{gflops:9.1f}{gflops / peak:9.1%}")
    print(f"\nlong dependency (hidden 32, seq_len 100, batch 32), engine steps per second:")
    for name, rate in small.items():
        print(f"  {name:28}{rate:8.1f}")
    print(f"  GRU / LSTM time per step, fp32: {small['lstm fp32'] / small['gru fp32']:.2f}x")
    print(f"speedup={rates['(d) now, bf16'] / rates['(b) before, fp32']:.2f}")


if __name__ == "__main__":
    main()
