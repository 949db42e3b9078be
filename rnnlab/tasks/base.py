"""What every task provides to the engine: batches, the loss, metrics, and the model's sizes.

The task owns data, vocabulary, loss and metrics; the model stays task-agnostic and is built
from the `ModelSpec` the task hands out (fairseq's "task builds the model"). A task is registered
as a class (`@TASKS.register("name", config=...)`) and built with its config section, the run's
seed and its global batch size: nothing else of the run reaches it.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..config import TaskConfig
from ..contract import IGNORE_INDEX, Batch, ModelSpec
from ..data.bucketing import BucketBatchSampler
from ..data.text import Vocab
from ..errors import UserError

__all__ = ["Task", "StreamingTask", "TokenTask", "SPLITS", "split_seeds", "bidirectional_warning"]

SPLITS = ("train", "val", "test")


def split_seeds(seed: int, streams: tuple[str, ...] = SPLITS) -> dict[str, int]:
    """One independent 64-bit seed per stream (train, val, test), all spawned from one numpy
    SeedSequence of the run's seed. Seeds such as `seed`, `seed + 1` or `seed * 7919 + 1` made
    seed 1's training stream equal seed 0's validation set; spawned children of different seeds
    never meet, so every split of every seed is its own stream."""
    children = np.random.SeedSequence(seed).spawn(len(streams))
    return {name: int(child.generate_state(1, dtype=np.uint64)[0]) for name, child in zip(streams, children)}


class Task:
    """Base class: classification with cross-entropy and accuracy; subclasses add data."""

    primary_metric = "accuracy"  # chosen on validation to pick the best checkpoint
    chance: float | None = None  # accuracy of guessing, shown beside the results
    chance_label = "chance"  # what `chance` is, on plots and in the final table
    baseline: tuple[float, str] | None = None  # (loss, what reaches it): a loss to beat, e.g. a memoryless model's
    # A memory task whose answer is taken at the last step: what a backward direction has read by
    # then, which spares a bidirectional model the memory the task is meant to measure.
    backward_shortcut: str | None = None

    def __init__(self, cfg: TaskConfig, *, seed: int = 0, batch_size: int = 32):
        self.cfg = cfg
        self.seed = seed  # seeds the task's data: the same for every model of a comparison
        self.batch_size = batch_size  # the global batch, over all processes
        self.rank, self.world_size = 0, 1

    def shard(self, rank: int, world_size: int) -> None:
        """This process's share of the training data under torchrun: a slice of each global batch."""
        if self.batch_size % world_size:
            fit = self.batch_size - self.batch_size % world_size or world_size
            raise UserError(
                f"train.batch_size = {self.batch_size} is the global batch and must divide evenly among "
                f"{world_size} processes; e.g. train.batch_size={fit}"
            )
        self.rank, self.world_size = rank, world_size

    # --- data -------------------------------------------------------------------------------
    def model_spec(self) -> ModelSpec:
        raise NotImplementedError

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        """Batches of one epoch; streaming tasks yield forever."""
        raise NotImplementedError

    def steps_per_epoch(self) -> int | None:
        return None

    def eval_batches(self, split: str) -> Iterable[Batch]:
        raise NotImplementedError

    # --- state kept in checkpoints (vocabulary, data generators) -----------------------------
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def report(self, model: torch.nn.Module, device: torch.device, console: Any) -> None:
        """Printed after the final table, e.g. a sample prediction; nothing by default."""

    # --- loss and metrics -------------------------------------------------------------------
    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch.targets.reshape(-1), ignore_index=IGNORE_INDEX)

    def batch_stats(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """Sums over the batch; `summarize` turns summed stats into metrics."""
        flat = logits.reshape(-1, logits.size(-1))
        targets = batch.targets.reshape(-1)
        valid = targets != IGNORE_INDEX
        loss_sum = F.cross_entropy(flat, targets, ignore_index=IGNORE_INDEX, reduction="sum")
        correct = ((flat.argmax(-1) == targets) & valid).sum()
        return {"loss_sum": loss_sum, "correct": correct, "count": valid.sum()}

    def summarize(self, stats: dict[str, float]) -> dict[str, Any]:
        n = max(stats["count"], 1)
        return {"loss": stats["loss_sum"] / n, "accuracy": stats["correct"] / n}


def bidirectional_warning(task: Task | type[Task], model_cfg: Any) -> str | None:
    """The warning a bidirectional model gets on a task with a backward shortcut, else None;
    `rnnlab train` prints it in the run's first lines and `rnnlab compare` beside the model."""
    if task.backward_shortcut is None or not getattr(model_cfg, "bidirectional", False):
        return None
    return (
        f"warning: {model_cfg.name} is bidirectional and the answer is taken at the last step: "
        f"{task.backward_shortcut}, so its score here is no memory result. To measure memory, use a "
        "one-directional model (lstm, gru, rnn, mingru, lru, ...); docs/memory.md: 'A bidirectional model reads the answer last'."
    )


class StreamingTask(Task):
    """A task that draws fresh training batches forever from a seeded generator, kept in
    checkpoints so that resuming is exact; validation and test sets come from streams of their
    own, so they do not depend on how many training batches were drawn."""

    def __init__(self, cfg: TaskConfig, **kw: Any):
        super().__init__(cfg, **kw)
        self._split_seeds = split_seeds(self.seed)
        self.generator = torch.Generator().manual_seed(self._split_seeds["train"])

    def eval_generator(self, split: str) -> torch.Generator:
        return torch.Generator().manual_seed(self._split_seeds[split])

    @property
    def my_share(self) -> slice:
        """This process's rows of a global batch: every process draws the same global batch and
        keeps its slice, so together they train on exactly what one process would."""
        return slice(self.rank, None, self.world_size)

    def eval_slices(self, n: int) -> Iterator[slice]:
        """The evaluation batches of a fixed set of n examples."""
        size = max(self.batch_size, 250)
        for start in range(0, n, size):
            yield slice(start, start + size)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "generator" in state:
            self.generator.set_state(state["generator"])


class TokenTask(Task):
    """A task over token sequences: a vocabulary (kept in checkpoints) and a length-bucketed
    training sampler whose place inside the epoch is kept too, so that resuming is exact."""

    _vocab: Vocab | None = None
    _sampler: BucketBatchSampler | None = None
    _sampler_state: dict[str, Any] | None = None  # restored when the sampler is first needed

    @property
    def vocab(self) -> Vocab:
        raise NotImplementedError

    def train_lengths(self) -> Any:
        """Lengths of the training examples, for bucketing."""
        raise NotImplementedError

    def train_batch(self, indices: list[int]) -> Batch:
        raise NotImplementedError

    @property
    def sampler(self) -> BucketBatchSampler:
        if self._sampler is None:
            self._sampler = BucketBatchSampler(
                self.train_lengths(), self.batch_size, shuffle=True, seed=self.seed, rank=self.rank, world_size=self.world_size
            )
            if self._sampler_state is not None:
                self._sampler.load_state_dict(self._sampler_state)
        return self._sampler

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        self.sampler.set_epoch(epoch)  # keeps the position when resuming inside this epoch
        for indices in self.sampler:
            yield self.train_batch(indices)

    def steps_per_epoch(self) -> int:
        return len(self.sampler)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"vocab": self.vocab.to_state()}
        if self._sampler is not None:
            state["sampler"] = self._sampler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "vocab" in state:
            self._vocab = Vocab.from_state(state["vocab"])
        if "sampler" in state:  # lazily: predicting from a checkpoint needs no training data
            self._sampler_state = state["sampler"]
            if self._sampler is not None:
                self._sampler.load_state_dict(self._sampler_state)
