"""Batches of similar lengths, so that little of a batch is padding; resumable mid-epoch.

    python -c "from rnnlab.data.bucketing import BucketBatchSampler as B; print(list(B([9, 1, 8, 2, 7, 3], 2)))"

Each epoch: shuffle all indices (seeded by seed and epoch), cut them into chunks of
`batch_size * bucket_size_multiplier`, sort each chunk by length, cut the chunks into batches,
shuffle the order of the batches. Batches are thus nearly uniform in length yet random in
content and order, and every index comes exactly once per epoch. Without shuffling (for
evaluation) the whole set is sorted by length: the least padding there is.

Several processes (world_size > 1): `batch_size` is the global batch. Every process builds the
same global batches and takes every world_size-th index of each, starting at its rank, so the
processes share each epoch without overlap and each sees the same mix of lengths. Nothing is
padded or repeated: a process's batch may hold one index fewer than another's, and when the last
global batch holds fewer indices than there are processes it is joined to the batch before it,
so all processes run the same number of steps (DDP needs that).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Iterator

import torch
from torch.nn.utils.rnn import pad_sequence

from ..errors import UserError

__all__ = ["BucketBatchSampler", "pad_batch"]

_STRUCTURE = ("num_examples", "batch_size", "world_size", "shuffle", "drop_last", "bucket_size_multiplier", "seed")


class BucketBatchSampler:
    """Yields lists of indices into `lengths`: this rank's batches of one epoch.

    `set_epoch(e)` is optional: at the end of a pass the sampler moves on to the next epoch by
    itself. It starts epoch e from its first batch, except when e is the current epoch, whose
    position it keeps: a run resumed from `state_dict()` may call `set_epoch` as usual.
    The position counts batches handed out; wrapped in a DataLoader that prefetches
    (num_workers > 0) it runs ahead of the training loop, so iterate the sampler directly (the
    data is in memory) when resuming must be exact.
    """

    def __init__(
        self,
        lengths: Sequence[int] | torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        bucket_size_multiplier: int = 50,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.lengths = torch.as_tensor(lengths, dtype=torch.long).reshape(-1)
        if batch_size < 1 or bucket_size_multiplier < 1:
            raise ValueError(f"batch_size={batch_size}, bucket_size_multiplier={bucket_size_multiplier}: both at least 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank={rank}: must be in 0..world_size-1 (world_size={world_size})")
        if batch_size % world_size:
            raise UserError(
                f"train.batch_size={batch_size} is the global batch and must divide evenly among "
                f"{world_size} processes; e.g. train.batch_size={batch_size - batch_size % world_size or world_size}"
            )
        n = len(self.lengths)
        if not drop_last and 0 < n < world_size:
            raise UserError(f"{n} examples cannot be shared among {world_size} processes: each needs at least one")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.bucket_size_multiplier = bucket_size_multiplier
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.position = 0  # batches of this epoch handed out so far

    # --- one epoch --------------------------------------------------------------------------
    def global_batches(self, epoch: int) -> list[torch.Tensor]:
        """The global batches of `epoch` (before splitting among ranks), in the order served."""
        n = len(self.lengths)
        if n == 0:
            return []
        if self.shuffle:
            g = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch))
            perm = torch.randperm(n, generator=g)
            chunk = torch.arange(n) // (self.batch_size * self.bucket_size_multiplier)
            # One stable sort by (chunk, length): ties keep the random order of the permutation.
            key = chunk * (int(self.lengths.max()) + 1) + self.lengths[perm]
            order = perm[torch.sort(key, stable=True).indices]
        else:
            order = torch.sort(self.lengths, stable=True).indices
        batches = list(order.split(self.batch_size))
        if len(batches[-1]) < self.batch_size:
            if self.drop_last:
                batches.pop()
            elif len(batches[-1]) < self.world_size and len(batches) > 1:
                last = batches.pop()
                batches[-1] = torch.cat([batches[-1], last])
        if self.shuffle and batches:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        return batches

    def batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches of `epoch`, from the first: a pure function of the settings."""
        return [b[self.rank :: self.world_size].tolist() for b in self.global_batches(epoch)]

    def __len__(self) -> int:
        full, rest = divmod(len(self.lengths), self.batch_size)
        if rest == 0 or self.drop_last:
            return full
        return full + 1 if rest >= self.world_size or full == 0 else full

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.batches(self.epoch)
        while self.position < len(batches):
            batch = batches[self.position]
            self.position += 1  # before yielding: a checkpoint taken after this step resumes after it
            yield batch
        self.epoch += 1
        self.position = 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch = epoch
            self.position = 0

    # --- resuming ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain ints and bools (fits a weights_only checkpoint); the same on every rank."""
        return {"epoch": self.epoch, "position": self.position, **{k: getattr(self, k) for k in _STRUCTURE}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        changed = [f"{k} {state[k]} -> {getattr(self, k)}" for k in _STRUCTURE if k in state and state[k] != getattr(self, k)]
        if changed:
            raise UserError(
                "cannot continue the saved batch order, these settings changed since it was saved: "
                + ", ".join(changed)
            )
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])

    @property
    def num_examples(self) -> int:
        return len(self.lengths)

    def __repr__(self) -> str:
        return (
            f"BucketBatchSampler({self.num_examples} examples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"rank {self.rank}/{self.world_size}, epoch {self.epoch}, position {self.position}/{len(self)})"
        )


def _epoch_seed(seed: int, epoch: int) -> int:
    """A 32-bit seed for (seed, epoch): torch's CPU generator keeps only 32 bits of a seed, so
    packing the two side by side into one 64-bit number would lose the seed."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{epoch}".encode(), digest_size=4).digest(), "little")


def pad_batch(seqs: Sequence[torch.Tensor], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(padded (B, T) long, padding at the end; lengths (B,) long) of 1-d id tensors."""
    if len(seqs) == 0:
        raise ValueError("pad_batch needs at least one sequence")
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    padded = pad_sequence([torch.as_tensor(s, dtype=torch.long) for s in seqs], batch_first=True, padding_value=pad_id)
    return padded, lengths
