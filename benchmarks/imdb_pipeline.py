"""rnnlab's IMDb training against the chapter's loop as written, side by side in one run, on the
same reviews, in the same precision and at the same batch size.

    python benchmarks/imdb_pipeline.py --data ../shared/data/aclImdb_v1.tar.gz
    python benchmarks/imdb_pipeline.py --data ../shared/data/aclImdb_v1.tar.gz --precision bf16
    python benchmarks/imdb_pipeline.py --data DIR --quick task.val_size=10 task.vocab_size=200   # smoke check

Both sides train the same network (configs/imdb_bilstm.yaml's, reviews not truncated) and report
training samples per second:

- naive: the chapter's code path. A Dataset that tokenizes and looks up the vocabulary in
  __getitem__, a shuffled DataLoader, each batch padded to its longest review, no lengths given
  to the network (so it also computes, and pools over, the padding), an Adam step with clipping.
- rnnlab: the engine itself. A `Run` is set up exactly as `rnnlab train` sets it up (cached,
  pre-tokenized corpus, the padded formulation that reads each review's true last step, its own
  training step), fed length-bucketed batches (rnnlab's sampler) of the same reviews.

The headline `speedup_vs_naive` compares the two in the same precision (`--precision`, default
fp32, which every CPU has), at the same batch size (the config's, `--batch-size`) and on the same
reviews: each round draws `--reviews` training reviews, and every side trains on exactly those.
Two more sides measure the other factors separately, on the same reviews:

- precision: rnnlab in bf16 over rnnlab in fp32 (same batch), where the CPU has native bf16;
- batch size: rnnlab at `--batch-size` over rnnlab at `--small-batch` (64, the chapter's; same precision).

Every side is warmed up first; then `--rounds` rounds (at least 5 for figures), each visiting the
sides in a random order, and the medians are compared, so a neighbour's load hits every side
alike. The headline's ratio splits into four factors whose product it is:

    ratio = tokenization x review length x padding x time per computed token

- tokenization: the naive side's whole time over its time outside data loading (tokenizing,
  vocabulary lookup and padding in the DataLoader; rnnlab does those once, before training);
- review length: real tokens per review, naive over rnnlab (the same reviews: 1);
- padding: computed tokens per real token, naive over rnnlab (the bucketed sampler's gain);
- time per computed token: the network's step time per computed token, naive over rnnlab
  (what is left: batch shapes, the lengths-aware model, the engine's bookkeeping).

It also times the whole dataset's first preparation (read + tokenize + cache) against the cached
one. The last lines: `precision_factor=`, `batch_factor=` and `speedup_vs_naive=<ratio>` (of the
medians). The machine's load is not controlled here: run it on a quiet machine for figures.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset

from rnnlab.config import derive_config, load_config
from rnnlab.data.bucketing import BucketBatchSampler
from rnnlab.data.imdb import _read, _review_key, find_imdb, load_imdb
from rnnlab.data.text import tokenize
from rnnlab.engine import Run
from rnnlab.malloc import keep_freed_memory
from rnnlab.registry import MODELS
from rnnlab.runtime import cpu_has_native_bf16

ROOT = Path(__file__).resolve().parents[1]


class ChapterDataset(Dataset):
    """The chapter's IMDbDataset: tokenization inside __getitem__, every epoch."""

    def __init__(self, items: list[tuple[str, int]], vocab):
        self.items, self.vocab = items, vocab

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx: int):
        text, label = self.items[idx]
        return torch.tensor(self.vocab.encode(tokenize(text))), torch.tensor(label)


def collate_batch(batch):
    texts, labels = zip(*batch)
    return pad_sequence(texts, batch_first=True, padding_value=0), torch.stack(labels)


@dataclass
class Side:
    samples: int = 0
    real: int = 0  # tokens of the reviews
    computed: int = 0  # tokens the network ran over, padding included
    data_s: float = 0.0  # time spent producing batches
    step_s: float = 0.0  # time spent in training steps

    @property
    def seconds(self) -> float:
        return self.data_s + self.step_s

    @property
    def rate(self) -> float:
        return self.samples / self.seconds


def naive_round(model, optimizer, items, vocab, batch_size: int, seed: int, bf16: bool) -> Side:
    loader = DataLoader(ChapterDataset(items, vocab), batch_size=batch_size, shuffle=True, collate_fn=collate_batch,
                        generator=torch.Generator().manual_seed(seed))  # fmt: skip
    side = Side()
    model.train()
    batches = iter(loader)
    while True:
        t0 = time.perf_counter()
        try:
            inputs, labels = next(batches)
        except StopIteration:
            break
        t1 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(inputs, None)
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        side.step_s += time.perf_counter() - t1
        side.data_s += t1 - t0
        side.samples += labels.numel()
        side.computed += inputs.numel()
        side.real += int((inputs != 0).sum())
    return side


def rnnlab_round(run: Run, picked: torch.Tensor, seed: int) -> Side:
    """The engine's step over length-bucketed batches (rnnlab's sampler) of the reviews `picked`."""
    side = Side()
    train = run.task.data.train
    sampler = BucketBatchSampler(train.lengths[picked], run.t.batch_size, shuffle=True, seed=seed)
    for positions in sampler:
        t0 = time.perf_counter()
        batch = run.task.train_batch(picked[torch.as_tensor(positions)].tolist())
        t1 = time.perf_counter()
        run._train_step(batch, False)  # the engine's own step: forward, loss, backward, clip, Adam, statistics
        side.step_s += time.perf_counter() - t1
        side.data_s += t1 - t0
        side.samples += batch.targets.numel()
        side.computed += batch.inputs.numel()
        side.real += int(batch.lengths.sum())
    return side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="aclImdb_v1.tar.gz or an extracted aclImdb/")
    parser.add_argument("--reviews", type=int, default=1024, help="training reviews per side and round (the same for every side)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, each visiting the sides in a random order; medians are compared")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="of both sides of the headline")
    parser.add_argument("--batch-size", type=int, default=None, help="of both sides of the headline (default: the config's)")
    parser.add_argument("--small-batch", type=int, default=64, help="the batch-size factor's other side (the chapter's 64)")
    parser.add_argument("--config", default=str(ROOT / "configs/imdb_bilstm.yaml"), help="whose model to train")
    parser.add_argument("--seed", type=int, default=0, help="of the reviews drawn and the order of the sides")
    parser.add_argument("--quick", action="store_true", help="smoke check: 2 rounds of 64 reviews, batches of 16 and 8")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. task.val_size=10 (for a small archive)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.reviews, args.batch_size, args.small_batch = 2, 64, args.batch_size or 16, 8
    keep_freed_memory()  # as the rnnlab command does
    changes = {"task.data_path": args.data, "task.max_len": None, "device": "cpu", "train.precision": "fp32"}
    for item in args.overrides:
        key, _, value = item.partition("=")
        changes[key] = value if not value.lstrip("-").isdigit() else int(value)
    if args.batch_size:
        changes["train.batch_size"] = args.batch_size
    cfg = derive_config(load_config(args.config), changes)
    batch = cfg.train.batch_size
    bf16_ok = cpu_has_native_bf16()
    if args.precision == "bf16" and not bf16_ok:
        parser.error("--precision bf16: this CPU has no native bf16")

    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        load_imdb(args.data, vocab_size=cfg.task.vocab_size, val_size=cfg.task.val_size, cache_dir=cache)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_imdb(args.data, vocab_size=cfg.task.vocab_size, val_size=cfg.task.val_size, cache_dir=cache)
        cached = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as runs_dir:
        def make(precision: str, batch_size: int) -> Run:
            run = Run(derive_config(cfg, {"train.precision": precision, "train.batch_size": batch_size}), callbacks=[])
            run.setup(Path(runs_dir), None)
            return run

        runs = {"rnnlab": make(args.precision, batch)}
        other = "fp32" if args.precision == "bf16" else "bf16"
        if bf16_ok:
            runs[f"rnnlab, {other}"] = make(other, batch)
        runs[f"rnnlab, batch {args.small_batch}"] = make(args.precision, args.small_batch)
        try:
            first_run = runs["rnnlab"]
            vocab, train = first_run.task.vocab, first_run.task.data.train
            texts = {}  # review key -> (text, label) of the training reviews
            for _, label, rid, _, text in _read(find_imdb(args.data), splits=("train",), unsup=False):
                texts[int(_review_key(torch.tensor(label), torch.tensor(rid)))] = (text, label)
            keys = train.review_keys().tolist()
            torch.manual_seed(cfg.seed)
            naive_model = MODELS.build(cfg.model, first_run.task.model_spec())
            naive_opt = torch.optim.Adam(naive_model.parameters(), lr=cfg.train.lr)

            def sides_for(picked: torch.Tensor, seed: int) -> dict[str, Callable[[], Side]]:
                items = [texts[keys[i]] for i in picked.tolist()]
                out = {"naive": lambda: naive_round(naive_model, naive_opt, items, vocab, batch, seed, args.precision == "bf16")}
                for name, run in runs.items():
                    out[name] = lambda run=run: rnnlab_round(run, picked, seed)
                return out

            gen = torch.Generator().manual_seed(args.seed)
            reviews = min(args.reviews, len(keys))
            for side in sides_for(torch.randperm(len(keys), generator=gen)[: min(2 * batch, len(keys))], -1).values():
                side()  # warm-up: kernels chosen, memory allocated, caches filled
            order = random.Random(args.seed)
            results: dict[str, list[Side]] = {}
            for r in range(args.rounds):
                picked = torch.randperm(len(keys), generator=gen)[:reviews]
                sides = sides_for(picked, r)
                names = order.sample(list(sides), len(sides))
                for name in names:
                    results.setdefault(name, []).append(sides[name]())
                print(f"round {r + 1}/{args.rounds} ({' -> '.join(names)}): "
                      + ", ".join(f"{n} {results[n][-1].rate:.1f}" for n in sides) + " samples/s", flush=True)  # fmt: skip
        finally:
            for run in runs.values():
                run.close()

    def med(sides: list[Side], f) -> float:
        return statistics.median(f(s) for s in sides)

    naive, ours = results["naive"], results["rnnlab"]
    n_rate, r_rate = med(naive, lambda s: s.rate), med(ours, lambda s: s.rate)
    tokenization = med(naive, lambda s: s.seconds / s.step_s) / med(ours, lambda s: s.seconds / s.step_s)
    length = med(naive, lambda s: s.real / s.samples) / med(ours, lambda s: s.real / s.samples)
    padding = med(naive, lambda s: s.computed / s.real) / med(ours, lambda s: s.computed / s.real)
    per_token = med(naive, lambda s: s.step_s / s.computed) / med(ours, lambda s: s.step_s / s.computed)

    m = cfg.model
    print(f"\nmodel: {m.name}, hidden {m.hidden_size}, {m.num_layers} layer(s), pooling {m.pooling}; no truncation; "
          f"{reviews} reviews per side and round (the same for every side), {args.rounds} rounds; torch threads {torch.get_num_threads()}")  # fmt: skip
    print(f"{'median of the rounds':28}{'samples/s':>11}{'data s':>9}{'step s':>9}{'padding':>9}{'tokens/review':>15}{'µs/token':>10}"
          f"{'precision':>11}{'batch':>7}")
    labels = {"naive": "naive (chapter loop)", "rnnlab": "rnnlab (engine step)"}  # the headline's two sides
    for name in ["naive", *runs]:
        sides, run = results[name], runs.get(name)
        precision = args.precision if run is None else run.precision
        size = batch if run is None else run.t.batch_size
        print(f"{labels.get(name, name):28}{med(sides, lambda s: s.rate):11.1f}{med(sides, lambda s: s.data_s):9.2f}"
              f"{med(sides, lambda s: s.step_s):9.2f}{med(sides, lambda s: 1 - s.real / s.computed):9.1%}"
              f"{med(sides, lambda s: s.real / s.samples):15.0f}{med(sides, lambda s: 1e6 * s.step_s / s.computed):10.1f}"
              f"{precision:>11}{size:7}")  # fmt: skip
    print(f"breakdown of the ratio: tokenization {tokenization:.2f} x review length {length:.2f} x padding {padding:.2f} "
          f"x time per computed token {per_token:.2f} = {tokenization * length * padding * per_token:.2f} "
          f"(medians of ratios, so the product is close to, not exactly, the ratio of the medians)")
    print(f"preparation of all 50,000 labelled reviews: first {first:.1f} s, cached {cached:.2f} s")
    bf16_side = f"rnnlab, {other}"
    print(f"precision_factor: rnnlab in bf16 over fp32, batch {batch}; batch_factor: rnnlab at batch {batch} over "
          f"{args.small_batch}, {args.precision}; speedup_vs_naive: {args.precision}, batch {batch}, the same reviews")
    if bf16_side in results:
        ratio = med(results[bf16_side], lambda s: s.rate) / r_rate
        print(f"precision_factor={ratio if other == 'bf16' else 1 / ratio:.2f}")
    print(f"batch_factor={r_rate / med(results[f'rnnlab, batch {args.small_batch}'], lambda s: s.rate):.2f}")
    print(f"speedup_vs_naive={r_rate / n_rate:.2f}")


if __name__ == "__main__":
    main()
