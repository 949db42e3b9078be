"""The adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015; Arjovsky et al. 2016).

    rnnlab train configs/adding_lstm.yaml                    # T = 100
    rnnlab compare lstm gru rnn --task adding --seq-len 100,200,500,1000

Input: T steps of two channels: a value drawn uniformly from [0, 1], and a marker that is 1 at two
steps (one in each half of the sequence) and 0 elsewhere. Target: the sum of the two marked values.
The model answers one number at the last step; the loss is the mean squared error.

Answering 1 always (the mean of the sum) has MSE 1/6 ≈ 0.167: the baseline shown beside the
results. The accuracy reported beside the MSE is the share of answers within `tolerance` of the
sum; the constant answer 1 gets 1 - (1 - tolerance)^2 of them (7.8% at 0.04), the chance line.
The best checkpoint is chosen on the validation MSE.
"""

from __future__ import annotations

from typing import Any, Iterator, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from ..config import TaskConfig
from ..contract import Batch, ModelSpec
from ..registry import TASKS
from .base import StreamingTask

__all__ = ["AddingConfig", "AddingTask", "adding_batch"]


class AddingConfig(TaskConfig):
    name: Literal["adding"] = "adding"
    streaming = True
    seq_len: int = Field(100, ge=2, le=100_000, description="T: steps of the sequence")
    tolerance: float = Field(0.04, gt=0, lt=1, description="an answer this close to the sum counts as correct")
    val_size: int = Field(1000, ge=1, le=1_000_000)
    test_size: int = Field(1000, ge=1, le=1_000_000)


def adding_batch(n: int, seq_len: int, generator: torch.Generator) -> Batch:
    """inputs (n, T, 2): values and markers; targets (n,): the sum of the two marked values."""
    values = torch.rand(n, seq_len, generator=generator)
    half = seq_len // 2
    first = torch.randint(0, half, (n,), generator=generator)
    second = torch.randint(half, seq_len, (n,), generator=generator)
    markers = torch.zeros(n, seq_len)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]
    return Batch(torch.stack([values, markers], dim=-1), targets)


@TASKS.register("adding", config=AddingConfig)
class AddingTask(StreamingTask):
    """Add the two marked values of a long sequence: a regression task."""

    cfg: AddingConfig
    primary_metric = "loss"  # the MSE, lower is better
    chance_label = "answering 1"
    # The first marked value lies in the first half, which the backward direction reads last.
    backward_shortcut = "its backward direction reads the first half last, so each marked value is at most T/2 steps from one direction's end, half the lag"

    def __init__(self, cfg: AddingConfig, **kw: Any):
        super().__init__(cfg, **kw)
        self.chance = 1 - (1 - cfg.tolerance) ** 2  # the sum is triangular on [0, 2], density 1 at 1
        self.baseline = (1 / 6, "answering 1")  # the variance of the sum of two U(0, 1)
        self._eval = {split: adding_batch(n, cfg.seq_len, self.eval_generator(split)) for split, n in (("val", cfg.val_size), ("test", cfg.test_size))}

    def model_spec(self) -> ModelSpec:
        return ModelSpec(num_outputs=1, input_size=2, max_len=self.cfg.seq_len, output="regression")

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        while True:
            b = adding_batch(self.batch_size, self.cfg.seq_len, self.generator)
            yield Batch(b.inputs[self.my_share], b.targets[self.my_share])

    def eval_batches(self, split: str) -> Iterator[Batch]:
        b = self._eval[split]
        for part in self.eval_slices(len(b)):
            yield Batch(b.inputs[part], b.targets[part])

    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.mse_loss(logits.squeeze(-1), batch.targets)

    def batch_stats(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        err = logits.squeeze(-1) - batch.targets
        return {"loss_sum": err.square().sum(), "correct": (err.abs() < self.cfg.tolerance).sum(), "count": err.numel()}  # type: ignore[dict-item]
