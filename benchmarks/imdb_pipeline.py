"""rnnlab's IMDb pipeline against the chapter's loop as written, side by side in one run.

    python benchmarks/imdb_pipeline.py --data ../shared/data/aclImdb_v1.tar.gz

Both sides train the same model (configs/imdb_bilstm_cpu.yaml's network) on the same training
reviews with the same batch size and no truncation, for one pass each, and report training
samples per second:

- naive: the chapter's code path. A Dataset that tokenizes and looks up the vocabulary in
  __getitem__, a shuffled DataLoader, each batch padded to its longest review, no lengths given
  to the network (so it also computes, and pools over, the padding).
- rnnlab: the cached, pre-tokenized corpus, the length-bucketed sampler, one-gather batching and
  the exact padded formulation that reads each review's true last step.

It also times the whole dataset's first preparation (read + tokenize + cache) against the
cached one. The last line is `speedup_vs_naive=<ratio>`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset

from rnnlab.config import load_config
from rnnlab.data.bucketing import BucketBatchSampler, pad_batch
from rnnlab.data.imdb import iter_reviews, load_imdb
from rnnlab.data.text import tokenize
from rnnlab.registry import MODELS
from rnnlab.contract import ModelSpec

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


def train_pass(model, batches, lengths_given: bool) -> tuple[int, float, int]:
    """One pass of Adam steps; returns (samples, seconds, padded tokens computed)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    samples = computed = 0
    start = time.perf_counter()
    for inputs, labels, lengths in batches:
        logits = model(inputs, lengths if lengths_given else None)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        samples += labels.numel()
        computed += inputs.numel()
    return samples, time.perf_counter() - start, computed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="aclImdb_v1.tar.gz or an extracted aclImdb/")
    parser.add_argument("--reviews", type=int, default=2000, help="training reviews per side")
    parser.add_argument("--config", default=str(ROOT / "configs/imdb_bilstm_cpu.yaml"), help="whose model to train")
    args = parser.parse_args()
    cfg = load_config(args.config)

    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        load_imdb(args.data, vocab_size=cfg.task.vocab_size, cache_dir=cache)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        data = load_imdb(args.data, vocab_size=cfg.task.vocab_size, cache_dir=cache)  # no truncation
        cached = time.perf_counter() - t0

    texts = [(text, label) for _, label, text in iter_reviews(args.data, splits=("train",))]
    pick = torch.randperm(len(texts), generator=torch.Generator().manual_seed(0))[: args.reviews].tolist()
    items = [texts[i] for i in pick]
    # rnnlab's side: the same reviews, tokenized once up front, exactly what its cache holds.
    ids = [torch.tensor(data.vocab.encode(tokenize(text))) for text, _ in items]
    labels = torch.tensor([label for _, label in items])
    lengths = torch.tensor([len(x) for x in ids])
    spec = ModelSpec(num_outputs=2, vocab_size=len(data.vocab), max_len=256)
    batch_size = cfg.train.batch_size

    def fresh_model():
        torch.manual_seed(0)
        return MODELS.build(cfg.model, spec)

    # naive: the chapter's loop
    loader = DataLoader(ChapterDataset(items, data.vocab), batch_size=batch_size, shuffle=True, collate_fn=collate_batch,
                        generator=torch.Generator().manual_seed(0))
    naive_batches = ((x, y, None) for x, y in loader)
    n_samples, n_time, n_computed = train_pass(fresh_model(), naive_batches, lengths_given=False)

    # rnnlab: pre-tokenized ids, bucketed batches, exact lengths
    sampler = BucketBatchSampler(lengths, batch_size, seed=0)

    def rnnlab_batches():
        for idx in sampler:
            x, n = pad_batch([ids[i] for i in idx])
            yield x, labels[idx], n

    r_samples, r_time, r_computed = train_pass(fresh_model(), rnnlab_batches(), lengths_given=True)
    real = int(lengths.sum())

    naive_rate, rnnlab_rate = n_samples / n_time, r_samples / r_time
    print(f"model: {cfg.model.name}, hidden {cfg.model.hidden_size}, {cfg.model.num_layers} layer(s), "
          f"pooling {cfg.model.pooling}; {args.reviews} reviews, batch {batch_size}, no truncation, torch threads {torch.get_num_threads()}")
    print(f"{'':28}{'samples/s':>12}{'seconds':>10}{'padding':>10}")
    print(f"{'naive (chapter loop)':28}{naive_rate:12.1f}{n_time:10.1f}{1 - real / n_computed:10.1%}")
    print(f"{'rnnlab pipeline':28}{rnnlab_rate:12.1f}{r_time:10.1f}{1 - real / r_computed:10.1%}")
    print(f"preparation of all 50,000 labelled reviews: first {first:.1f} s, cached {cached:.2f} s")
    print(f"speedup_vs_naive={rnnlab_rate / naive_rate:.2f}")


if __name__ == "__main__":
    main()
