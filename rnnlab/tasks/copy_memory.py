"""The copying-memory task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016; Tallec & Ollivier 2018).

    rnnlab train configs/copy_lstm.yaml                      # T = 100
    rnnlab compare lstm gru rnn --task copy --seq-len 100,200,500,1000

Input: `copy_len` data symbols from an alphabet of `num_symbols`, then T - 1 blanks, a marker, and
`copy_len` more blanks (T + 2 * copy_len steps). Target: blank at every step until the marker, then
the data symbols in order. The loss is the cross-entropy of every step; the primary metric is the
accuracy on the recalled symbols alone.

A model with no memory answers blank until the marker and then guesses uniformly: its loss is
copy_len * ln(num_symbols) / (T + 2 * copy_len) (10 ln 8 / (T + 20) with the defaults) and its
recall accuracy 1 / num_symbols. Both are shown beside the results. Every batch is drawn fresh, so
no input repeats between training and test.

Token ids: 0 blank, 1..num_symbols the symbols, num_symbols + 1 the marker. Classes: 0 blank,
1..num_symbols the symbols.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from ..config import TaskConfig
from ..contract import Batch, ModelSpec
from ..registry import TASKS
from .base import StreamingTask

__all__ = ["CopyConfig", "CopyTask", "copy_batch"]


class CopyConfig(TaskConfig):
    name: Literal["copy"] = "copy"
    streaming = True
    seq_len: int = Field(100, ge=1, le=100_000, description="T: steps from the last data symbol to the marker")
    num_symbols: int = Field(8, ge=2, le=1000, description="alphabet of the data symbols")
    copy_len: int = Field(10, ge=1, le=1000, description="data symbols to remember")
    val_size: int = Field(1000, ge=1, le=1_000_000)
    test_size: int = Field(1000, ge=1, le=1_000_000)
    min_train_lag: int | None = Field(
        None, ge=1, le=100_000,
        description="train on lags drawn uniformly from min_train_lag..seq_len, one per batch (a shorter lag, a shorter batch); validation and test keep seq_len; null = always seq_len",
    )  # fmt: skip

    @model_validator(mode="after")
    def _check(self) -> "CopyConfig":
        if self.min_train_lag is not None and self.min_train_lag > self.seq_len:
            raise ValueError(f"min_train_lag ({self.min_train_lag}) must not exceed seq_len ({self.seq_len})")
        return self


def copy_batch(symbols: torch.Tensor, seq_len: int, num_symbols: int) -> Batch:
    """symbols (B, L) in 1..num_symbols -> inputs and targets (B, T + 2L)."""
    b, n = symbols.shape
    total = seq_len + 2 * n
    inputs = torch.zeros(b, total, dtype=torch.long)
    inputs[:, :n] = symbols
    inputs[:, n + seq_len - 1] = num_symbols + 1  # the marker: "copy now"
    targets = torch.zeros(b, total, dtype=torch.long)
    targets[:, n + seq_len :] = symbols
    return Batch(inputs, targets)


@TASKS.register("copy", config=CopyConfig)
class CopyTask(StreamingTask):
    """Repeat the first `copy_len` symbols after a marker, T steps later."""

    cfg: CopyConfig
    chance_label = "memoryless"

    def __init__(self, cfg: CopyConfig, **kw: Any):
        super().__init__(cfg, **kw)
        self.chance = 1.0 / cfg.num_symbols
        total = cfg.seq_len + 2 * cfg.copy_len
        self.baseline = (cfg.copy_len * math.log(cfg.num_symbols) / total, "memoryless")
        self._eval = {split: self._symbols(n, self.eval_generator(split)) for split, n in (("val", cfg.val_size), ("test", cfg.test_size))}

    def _symbols(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(1, self.cfg.num_symbols + 1, (n, self.cfg.copy_len), generator=generator)

    def model_spec(self) -> ModelSpec:
        c = self.cfg
        return ModelSpec(num_outputs=c.num_symbols + 1, vocab_size=c.num_symbols + 2, per_step=True,
                         max_len=c.seq_len + 2 * c.copy_len)  # fmt: skip

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        c = self.cfg
        while True:
            symbols = self._symbols(self.batch_size, self.generator)
            lag = c.seq_len
            if c.min_train_lag is not None:
                # One lag per batch, not one per sequence: then a batch is only as long as its
                # lag needs, T / 2 + 2 * copy_len steps on average instead of T + 2 * copy_len.
                lag = int(torch.randint(c.min_train_lag, c.seq_len + 1, (1,), generator=self.generator))
            yield copy_batch(symbols[self.my_share], lag, c.num_symbols)

    def eval_batches(self, split: str) -> Iterator[Batch]:
        symbols = self._eval[split]
        for part in self.eval_slices(symbols.size(0)):
            yield copy_batch(symbols[part], self.cfg.seq_len, self.cfg.num_symbols)

    def batch_stats(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        recall = slice(logits.size(1) - self.cfg.copy_len, None)
        loss_sum = F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch.targets.reshape(-1), reduction="sum")
        correct = (logits[:, recall].argmax(-1) == batch.targets[:, recall]).sum()
        return {"loss_sum": loss_sum, "steps": batch.targets.numel(), "correct": correct,
                "count": batch.targets[:, recall].numel()}  # type: ignore[dict-item]  # fmt: skip

    def summarize(self, stats: dict[str, float]) -> dict[str, Any]:
        return {"loss": stats["loss_sum"] / max(stats["steps"], 1), "accuracy": stats["correct"] / max(stats["count"], 1)}
