"""rnnlab's IMDb training against the chapter's loop as written, side by side in one run.

    python benchmarks/imdb_pipeline.py --data ../shared/data/aclImdb_v1.tar.gz

Both sides train the same network (configs/imdb_bilstm.yaml's, with reviews not truncated)
with the same batch size, and report training samples per second:

- naive: the chapter's code path. A Dataset that tokenizes and looks up the vocabulary in
  __getitem__, a shuffled DataLoader, each batch padded to its longest review, no lengths given
  to the network (so it also computes, and pools over, the padding), an Adam step with clipping.
- rnnlab: the engine itself. A `Run` is set up exactly as `rnnlab train` sets it up (cached,
  pre-tokenized corpus, length-bucketed sampler, the padded formulation that reads each review's
  true last step) and its own training step is called on the task's own batches.

The two sides take turns, `--rounds` times (default 3), each round `--reviews` reviews per side,
and the medians are compared, so that a neighbour's load on the machine hits both sides alike.
The breakdown then splits the ratio into four factors whose product it is:

    ratio = tokenization x review length x padding x time per computed token

- tokenization: the naive side's whole time over its time outside data loading (tokenizing,
  vocabulary lookup and padding in the DataLoader; rnnlab does those once, before training);
- review length: real tokens per review, naive over rnnlab (both draw random training reviews: ~1);
- padding: computed tokens per real token, naive over rnnlab (the bucketed sampler's gain);
- time per computed token: the network's step time per computed token, naive over rnnlab
  (what is left: batch shapes, the lengths-aware model, the engine's bookkeeping).

It also times the whole dataset's first preparation (read + tokenize + cache) against the
cached one. The last line is `speedup_vs_naive=<ratio>` (the ratio of the medians).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset

from rnnlab.config import derive_config, load_config
from rnnlab.contract import Batch
from rnnlab.data.imdb import iter_reviews, load_imdb
from rnnlab.data.text import tokenize
from rnnlab.engine import Run
from rnnlab.registry import MODELS

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


def naive_round(model, optimizer, items, vocab, batch_size: int, seed: int) -> Side:
    loader = DataLoader(ChapterDataset(items, vocab), batch_size=batch_size, shuffle=True, collate_fn=collate_batch,
                        generator=torch.Generator().manual_seed(seed))
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
        loss = torch.nn.functional.cross_entropy(model(inputs, None), labels)
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


def rnnlab_round(run: Run, reviews: int, epoch: int) -> Side:
    side = Side()
    batches = iter(run.task.train_batches(epoch))
    while side.samples < reviews:
        t0 = time.perf_counter()
        batch: Batch = next(batches)
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
    parser.add_argument("--reviews", type=int, default=640, help="training reviews per side and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are compared")
    parser.add_argument("--config", default=str(ROOT / "configs/imdb_bilstm.yaml"), help="whose model to train")
    args = parser.parse_args()
    cfg = derive_config(load_config(args.config), {"task.data_path": args.data, "task.max_len": None, "device": "cpu"})

    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        load_imdb(args.data, vocab_size=cfg.task.vocab_size, cache_dir=cache)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_imdb(args.data, vocab_size=cfg.task.vocab_size, cache_dir=cache)
        cached = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as runs_dir:
        run = Run(cfg, callbacks=[])
        run.setup(Path(runs_dir), None)
        try:
            vocab = run.task.vocab
            texts = [(text, label) for _, label, text in iter_reviews(args.data, splits=("train",))]
            torch.manual_seed(cfg.seed)
            naive_model = MODELS.build(cfg.model, run.task.model_spec())
            naive_opt = torch.optim.Adam(naive_model.parameters(), lr=cfg.train.lr)
            naive: list[Side] = []
            ours: list[Side] = []
            for r in range(args.rounds):
                pick = torch.randperm(len(texts), generator=torch.Generator().manual_seed(r))[: args.reviews].tolist()
                naive.append(naive_round(naive_model, naive_opt, [texts[i] for i in pick], vocab, cfg.train.batch_size, r))
                ours.append(rnnlab_round(run, args.reviews, epoch=r))
                print(f"round {r + 1}/{args.rounds}: naive {naive[-1].rate:6.1f} samples/s, rnnlab {ours[-1].rate:6.1f} samples/s")
        finally:
            run.close()

    def med(sides: list[Side], f) -> float:
        return statistics.median(f(s) for s in sides)

    n_rate, r_rate = med(naive, lambda s: s.rate), med(ours, lambda s: s.rate)
    tokenization = med(naive, lambda s: s.seconds / s.step_s) / med(ours, lambda s: s.seconds / s.step_s)
    length = med(naive, lambda s: s.real / s.samples) / med(ours, lambda s: s.real / s.samples)
    padding = med(naive, lambda s: s.computed / s.real) / med(ours, lambda s: s.computed / s.real)
    per_token = med(naive, lambda s: s.step_s / s.computed) / med(ours, lambda s: s.step_s / s.computed)

    m = cfg.model
    print(f"\nmodel: {m.name}, hidden {m.hidden_size}, {m.num_layers} layer(s), pooling {m.pooling}; batch {cfg.train.batch_size}, "
          f"no truncation; {args.reviews} reviews per side and round, {args.rounds} rounds; torch threads {torch.get_num_threads()}")
    print(f"{'median of the rounds':28}{'samples/s':>11}{'data s':>9}{'step s':>9}{'padding':>9}{'tokens/review':>15}{'µs/token':>10}")
    for name, sides in (("naive (chapter loop)", naive), ("rnnlab (engine step)", ours)):
        print(f"{name:28}{med(sides, lambda s: s.rate):11.1f}{med(sides, lambda s: s.data_s):9.2f}{med(sides, lambda s: s.step_s):9.2f}"
              f"{med(sides, lambda s: 1 - s.real / s.computed):9.1%}{med(sides, lambda s: s.real / s.samples):15.0f}"
              f"{med(sides, lambda s: 1e6 * s.step_s / s.computed):10.1f}")
    print(f"breakdown of the ratio: tokenization {tokenization:.2f} x review length {length:.2f} x padding {padding:.2f} "
          f"x time per computed token {per_token:.2f} = {tokenization * length * padding * per_token:.2f} "
          f"(medians of ratios, so the product is close to, not exactly, the ratio of the medians)")
    print(f"preparation of all 50,000 labelled reviews: first {first:.1f} s, cached {cached:.2f} s")
    print(f"speedup_vs_naive={r_rate / n_rate:.2f}")


if __name__ == "__main__":
    main()
