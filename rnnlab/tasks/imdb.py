"""IMDb sentiment classification on the real Large Movie Review Dataset (Maas et al. 2011).

    rnnlab train configs/imdb_bilstm.yaml task.data_path=../shared/data/aclImdb_v1.tar.gz

The archive is read once and cached tokenized (rnnlab/data/imdb.py); batches come from a
length-bucketed sampler, so almost no compute goes to padding, and the recurrent network reads
each review's true last token in both directions (models/recurrent.py). Model selection uses a
validation split carved from train; the 25,000 test reviews are scored once, at the end.
"""

from __future__ import annotations

from typing import Any, Iterator, Literal

import torch
from pydantic import Field

from ..config import TaskConfig
from ..contract import Batch, ClassifiesText, ModelSpec
from ..data.bucketing import pad_batch
from ..data.imdb import ImdbData, load_imdb
from ..data.text import Vocab, tokenize, truncate
from ..registry import TASKS
from .base import TokenTask

__all__ = ["ImdbConfig", "ImdbTask", "LABELS"]

LABELS = ["negative", "positive"]


class ImdbConfig(TaskConfig):
    name: Literal["imdb"] = "imdb"
    data_path: str | None = Field(
        None, description="aclImdb_v1.tar.gz or an extracted aclImdb/; else $RNNLAB_DATA_DIR, then ~/.cache/rnnlab"
    )
    vocab_size: int = Field(10_000, ge=3, le=1_000_000, description="most frequent training tokens, <pad> and <unk> included")
    max_len: int | None = Field(None, ge=1, le=100_000, description="truncate reviews to this many tokens; null = keep all")
    truncation: Literal["head", "head_tail"] = Field("head", description="keep the start, or the start and the end")
    val_size: int = Field(2_500, ge=2, le=24_000, description="validation reviews carved from train (stratified)")
    eval_batch_size: int = Field(256, ge=1, le=100_000)


@TASKS.register("imdb", config=ImdbConfig)
class ImdbTask(TokenTask, ClassifiesText):
    """Sentiment of IMDb movie reviews (positive/negative), the real aclImdb archive."""

    cfg: ImdbConfig
    chance = 0.5
    labels = LABELS

    def __init__(self, cfg: ImdbConfig, **kw: Any):
        super().__init__(cfg, **kw)
        self._data: ImdbData | None = None  # loaded on first use: `predict` needs only the vocabulary

    # --- data -------------------------------------------------------------------------------
    @property
    def data(self) -> ImdbData:
        if self._data is None:
            c = self.cfg
            self._data = load_imdb(
                c.data_path, vocab_size=c.vocab_size, max_len=c.max_len, truncation=c.truncation, val_size=c.val_size, seed=self.seed
            )
            self._vocab = self._data.vocab
        return self._data

    @property
    def vocab(self) -> Vocab:
        if self._vocab is None:
            self._vocab = self.data.vocab
        return self._vocab

    def train_lengths(self) -> torch.Tensor:
        return self.data.train.lengths

    def train_batch(self, indices: list[int]) -> Batch:
        return self._batch(self.data.train, indices)

    def model_spec(self) -> ModelSpec:
        return ModelSpec(num_outputs=2, vocab_size=len(self.vocab), max_len=self.cfg.max_len or 256, pad_id=0)

    def _batch(self, split: Any, indices: list[int] | torch.Tensor) -> Batch:
        inputs, lengths, labels = split.batch(indices, pad_id=0)
        index = torch.as_tensor(indices, dtype=torch.long)
        # The reviews' positions in the split: ensembles line up their members' answers by them.
        # And which reviews they are: at the same positions, two runs split with other seeds hold
        # other reviews, with the same labels.
        return Batch(inputs, labels, lengths, extra={"index": index, "example": split.review_keys(index)})

    def eval_batches(self, split: str) -> Iterator[Batch]:
        data = getattr(self.data, split)
        order = torch.argsort(data.lengths, stable=True)  # similar lengths: little padding
        for indices in order.split(self.cfg.eval_batch_size):
            yield self._batch(data, indices)

    # --- metrics: accuracy plus the confusion matrix ----------------------------------------
    def batch_stats(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        stats = super().batch_stats(logits, batch)
        pred = logits.argmax(-1)
        for t in (0, 1):
            for p in (0, 1):
                stats[f"c{t}{p}"] = ((batch.targets == t) & (pred == p)).sum()
        return stats

    def summarize(self, stats: dict[str, float]) -> dict[str, Any]:
        out = super().summarize(stats)
        if "c00" in stats:
            out["confusion"] = [[int(stats[f"c{t}{p}"]) for p in (0, 1)] for t in (0, 1)]
            out["labels"] = LABELS
        return out

    # --- inference on raw text -----------------------------------------------------------------
    def encode_texts(self, texts: list[str], max_tokens: int | None = None) -> tuple[Batch, list[int]]:
        """Texts -> a padded batch, and how many tokens of each the vocabulary knows."""
        ids = []
        known = []
        limit = min(x for x in (self.cfg.max_len, max_tokens, 10**9) if x is not None)
        for text in texts:
            tokens = truncate(self.vocab.encode(tokenize(text)), limit, self.cfg.truncation)  # as in training
            tokens = tokens or [1]  # nothing left: one <unk>, so that every length is >= 1
            ids.append(torch.tensor(tokens, dtype=torch.long))
            known.append(sum(1 for t in tokens if t > 1))
        inputs, lengths = pad_batch(ids, pad_id=0)
        return Batch(inputs, torch.zeros(len(texts), dtype=torch.long), lengths), known

