"""The chapter's long-dependency recall task: remember the symbol shown at t=0.

    rnnlab train configs/long_dependency_lstm.yaml task.seq_len=100
    rnnlab train configs/long_dependency_lstm.yaml task.distractors=true   # the honest test of memory

Input: one symbol out of `num_classes` at t=0, then `seq_len - 1` empty steps (the all-zero
vector, token id 0); the model answers at the last step. Training batches are drawn fresh from a
seeded generator; validation and test sets are fixed by the seed.

The plain task has only `num_classes` distinct inputs, so its test set repeats the training
inputs exactly and 100% cannot tell memory from memorising ten patterns. With `distractors`, the
steps after t=0 carry random symbols of a separate set (ids after the recall symbols): no two
inputs repeat, and only a model that keeps the first symbol through the noise answers right.
"""

from __future__ import annotations

from typing import Any, Iterator, Literal

import torch
from pydantic import Field

from ..config import TaskConfig
from ..contract import Batch, ModelSpec
from ..registry import TASKS
from .base import StreamingTask

__all__ = ["LongDependencyConfig", "LongDependencyTask", "recall_batch"]


class LongDependencyConfig(TaskConfig):
    name: Literal["long_dependency"] = "long_dependency"
    streaming = True
    seq_len: int = Field(50, ge=1, le=100_000, description="steps from the symbol to the answer")
    num_classes: int = Field(10, ge=2, le=10_000)
    val_size: int = Field(1000, ge=1, le=1_000_000)
    test_size: int = Field(1000, ge=1, le=1_000_000)
    distractors: bool = Field(False, description="fill the steps after t=0 with random symbols of a separate set")
    num_distractors: int = Field(8, ge=1, le=10_000, description="size of the distractor set")


def recall_batch(targets: torch.Tensor, seq_len: int, noise: torch.Tensor | None = None) -> Batch:
    """Token ids (B, seq_len): symbol k is id k+1 at t=0; the later steps are id 0 (empty) or,
    with distractors, `noise` (B, seq_len - 1) of ids beyond the recall symbols."""
    inputs = torch.zeros(targets.size(0), seq_len, dtype=torch.long)
    inputs[:, 0] = targets + 1
    if noise is not None:
        inputs[:, 1:] = noise
    return Batch(inputs, targets)


@TASKS.register("long_dependency", config=LongDependencyConfig)
class LongDependencyTask(StreamingTask):
    """Recall the first symbol after seq_len steps (the chapter's experiment)."""

    cfg: LongDependencyConfig
    backward_shortcut = "its backward direction reads the symbol at t=0 as its last step, right before the answer is taken"

    def __init__(self, cfg: LongDependencyConfig, **kw: Any):
        super().__init__(cfg, **kw)
        self.chance = 1.0 / cfg.num_classes
        self._eval: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
        for split, n in (("val", cfg.val_size), ("test", cfg.test_size)):
            g = self.eval_generator(split)
            targets = torch.randint(cfg.num_classes, (n,), generator=g)
            self._eval[split] = (targets, self._noise(n, g))

    def _noise(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        if not self.cfg.distractors:
            return None
        first = self.cfg.num_classes + 1
        return torch.randint(first, first + self.cfg.num_distractors, (n, self.cfg.seq_len - 1), generator=generator)

    def model_spec(self) -> ModelSpec:
        vocab = self.cfg.num_classes + 1 + (self.cfg.num_distractors if self.cfg.distractors else 0)
        return ModelSpec(num_outputs=self.cfg.num_classes, vocab_size=vocab, max_len=self.cfg.seq_len)

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        while True:
            targets = torch.randint(self.cfg.num_classes, (self.batch_size,), generator=self.generator)
            noise = self._noise(self.batch_size, self.generator)
            mine = self.my_share
            yield recall_batch(targets[mine], self.cfg.seq_len, noise[mine] if noise is not None else None)

    def eval_batches(self, split: str) -> Iterator[Batch]:
        targets, noise = self._eval[split]
        for part in self.eval_slices(targets.size(0)):
            yield recall_batch(targets[part], self.cfg.seq_len, noise[part] if noise is not None else None)
