"""Part-of-speech tagging from Universal Dependencies CoNLL-U files: one tag per word.

    rnnlab train configs/pos_bilstm.yaml task.treebank=PATH/UD_English-EWT
    rnnlab predict --run RUN "the old man the boats"

The chapter's exercise 3: a word's tag often depends on the words after it ("the old man the
boats"), which a bidirectional network reads and a one-direction network does not. The files are
read by rnnlab/data/treebank.py; words get a vocabulary built from the training file only
(`<pad>` = 0, `<unk>` = 1), so a word unseen in training reads as `<unk>`. Loss and accuracy count
real words only (padding and untagged `_` words are IGNORE_INDEX). Besides token accuracy the
task reports `unk_accuracy` (words the vocabulary does not know: unseen in training, or rarer than
`min_freq`), `unseen_accuracy` (words absent from the training file) and `per_tag` accuracy.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Iterator, Literal

import torch
from pydantic import Field

from ..config import TaskConfig
from ..contract import IGNORE_INDEX, Batch, ModelSpec, TagsText
from ..data.bucketing import pad_batch
from ..data.text import UNK_ID, Vocab
from ..data.treebank import UNTAGGED, TaggedSentences, find_treebank, read_conllu
from ..errors import UserError
from ..registry import TASKS
from .base import TokenTask

__all__ = ["TaggingConfig", "TaggingTask", "split_words"]

_SPLITS = ("train", "val", "test")
# Words as UD English tokenizes them, roughly: "don't" -> do n't, "U.S." kept, punctuation apart.
_WORD = re.compile(r"\w+(?=n't\b)|n't\b|'\w+|(?:[A-Za-z]\.){2,}|\w+(?:[-.]\w+)*|[^\w\s]")


def split_words(text: str) -> list[str]:
    """A raw text -> words, splitting off punctuation and clitics as UD English does."""
    return _WORD.findall(text)


class TaggingConfig(TaskConfig):
    name: Literal["tagging"] = "tagging"
    treebank: str | None = Field(None, description="a UD treebank folder with *-ud-{train,dev,test}.conllu files")
    train_file: str | None = Field(None, description="CoNLL-U training file (instead of task.treebank)")
    val_file: str | None = Field(None, description="CoNLL-U validation file (instead of task.treebank)")
    test_file: str | None = Field(None, description="CoNLL-U test file (instead of task.treebank)")
    tag_column: Literal["upos", "xpos"] = Field("upos", description="universal (UPOS) or language-specific (XPOS) tags")
    min_freq: int = Field(1, ge=1, le=1_000, description="training words seen fewer times read as <unk>")
    lowercase: bool = Field(False, description="lowercase words before the vocabulary")
    max_len: int = Field(200, ge=1, le=10_000, description="longer sentences are cut into pieces of this many words")
    eval_batch_size: int = Field(256, ge=1, le=100_000)


@dataclass
class _Split:
    ids: list[torch.Tensor]  # word ids of each sentence (piece)
    tags: list[torch.Tensor]  # tag ids, IGNORE_INDEX for untagged words
    unseen: list[torch.Tensor]  # True where the word does not occur in the training file
    lengths: torch.Tensor


@TASKS.register("tagging", config=TaggingConfig)
class TaggingTask(TokenTask, TagsText):
    """Part-of-speech tagging of CoNLL-U treebanks (UPOS or XPOS), one tag per word."""

    cfg: TaggingConfig
    primary_metric = "accuracy"

    def __init__(self, cfg: TaggingConfig, **kw: Any):
        super().__init__(cfg, **kw)
        self._splits: dict[str, _Split] | None = None  # loaded on first use: `predict` needs only vocab and tags
        self.tag_names: list[str] = []

    # --- data -------------------------------------------------------------------------------
    def _files(self) -> dict[str, str]:
        c = self.cfg
        given = {"train": c.train_file, "val": c.val_file, "test": c.test_file}
        # `task.treebank=~/x` reaches us unexpanded: the shell expands ~ only at a word's start.
        files: dict[str, Any] = find_treebank(os.path.expanduser(c.treebank)) if c.treebank else {}
        files.update({k: os.path.expanduser(v) for k, v in given.items() if v})
        missing = [s for s in _SPLITS if s not in files]
        if missing:
            raise UserError(
                "tagging needs CoNLL-U data: task.treebank=FOLDER (a UD treebank such as UD_English-EWT), or "
                f"task.train_file, task.val_file and task.test_file; missing: {', '.join(missing)}"
            )
        return {k: str(v) for k, v in files.items()}

    def _norm(self, word: str) -> str:
        return word.lower() if self.cfg.lowercase else word

    @property
    def splits(self) -> dict[str, _Split]:
        if self._splits is None:
            read = {s: read_conllu(p, self.cfg.tag_column) for s, p in self._files().items()}
            train = read["train"]
            counts: dict[str, int] = {}
            for sentence in train.words:
                for w in sentence:
                    w = self._norm(w)
                    counts[w] = counts.get(w, 0) + 1
            if self._vocab is None:
                kept = {w: n for w, n in counts.items() if n >= self.cfg.min_freq}
                self._vocab = Vocab.build(kept, len(kept) + 2)
            if not self.tag_names:
                # Tags are the label space, not learned: every tag of the three files is a class,
                # so a tag absent from train is scored (as an error), not dropped.
                self.tag_names = sorted({t for d in read.values() for t in d.tag_counts() if t != UNTAGGED})
            self._splits = {s: self._encode(d, counts) for s, d in read.items()}
        return self._splits

    def _encode(self, data: TaggedSentences, train_counts: dict[str, int]) -> _Split:
        tag_id = {t: i for i, t in enumerate(self.tag_names)}
        ids, tags, unseen = [], [], []
        n = self.cfg.max_len
        for words, labels in zip(data.words, data.tags):
            norm = [self._norm(w) for w in words]
            for start in range(0, len(words), n):  # pieces of at most max_len words; every word is kept
                piece = norm[start : start + n]
                ids.append(torch.tensor(self.vocab.encode(piece), dtype=torch.long))
                tags.append(torch.tensor([tag_id.get(t, IGNORE_INDEX) if t != UNTAGGED else IGNORE_INDEX
                                          for t in labels[start : start + n]], dtype=torch.long))
                unseen.append(torch.tensor([w not in train_counts for w in piece], dtype=torch.bool))
        return _Split(ids, tags, unseen, torch.tensor([len(x) for x in ids], dtype=torch.long))

    @property
    def vocab(self) -> Vocab:
        if self._vocab is None:
            self.splits
        assert self._vocab is not None
        return self._vocab

    def model_spec(self) -> ModelSpec:
        if not self.tag_names:
            self.splits
        return ModelSpec(num_outputs=len(self.tag_names), vocab_size=len(self.vocab), per_step=True, max_len=self.cfg.max_len, pad_id=0)

    @property
    def chance(self) -> float | None:  # type: ignore[override]
        """Accuracy of always answering the most frequent training tag."""
        if self._splits is None:
            return None
        tags = torch.cat(self._splits["train"].tags)
        tags = tags[tags != IGNORE_INDEX]
        return round(float(torch.bincount(tags).max()) / max(len(tags), 1), 4) if len(tags) else None

    def train_lengths(self) -> torch.Tensor:
        return self.splits["train"].lengths

    def train_batch(self, indices: list[int]) -> Batch:
        return self._batch(self.splits["train"], indices)

    def _batch(self, split: _Split, indices: list[int] | torch.Tensor) -> Batch:
        indices = [int(i) for i in indices]
        inputs, lengths = pad_batch([split.ids[i] for i in indices], pad_id=0)  # (B, T)
        targets, _ = pad_batch([split.tags[i] for i in indices], pad_id=IGNORE_INDEX)  # (B, T)
        unseen, _ = pad_batch([split.unseen[i].long() for i in indices], pad_id=0)
        return Batch(inputs, targets, lengths, extra={"unseen": unseen.bool()})

    def eval_batches(self, split: str) -> Iterator[Batch]:
        data = self.splits[split]
        order = torch.argsort(data.lengths, stable=True)  # similar lengths: little padding
        for indices in order.split(self.cfg.eval_batch_size):
            yield self._batch(data, indices)

    # --- checkpoints: the vocabulary and the tag names ----------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "tags": list(self.tag_names)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "tags" in state:
            self.tag_names = list(state["tags"])

    # --- metrics: token accuracy, unknown words, per tag -------------------------------------
    def batch_stats(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        stats = super().batch_stats(logits, batch)
        targets = batch.targets  # (B, T)
        valid = targets != IGNORE_INDEX
        right = (logits.argmax(-1) == targets) & valid
        unk = (batch.inputs == UNK_ID) & valid
        stats["unk_correct"], stats["unk_count"] = (right & unk).sum(), unk.sum()
        unseen = batch.extra.get("unseen")
        if unseen is not None:
            unseen = unseen.to(targets.device) & valid
            stats["unseen_correct"], stats["unseen_count"] = (right & unseen).sum(), unseen.sum()
        # The engine sums scalars: one count and one correct count per tag.
        k = logits.size(-1)
        counts = torch.bincount(targets[valid], minlength=k)
        correct = torch.bincount(targets[right], minlength=k)
        for i in range(k):
            stats[f"tag{i}_count"], stats[f"tag{i}_correct"] = counts[i], correct[i]
        return stats

    def summarize(self, stats: dict[str, Any]) -> dict[str, Any]:
        out = super().summarize(stats)
        for name in ("unk", "unseen"):
            if f"{name}_count" in stats:
                n = float(stats[f"{name}_count"])
                out[f"{name}_accuracy"] = float(stats[f"{name}_correct"]) / n if n else None
                out[f"{name}_words"] = int(n)
        per_tag = {}
        for i, tag in enumerate(self.tag_names):
            n = float(stats.get(f"tag{i}_count", 0))
            if n:
                per_tag[tag] = {"accuracy": round(float(stats[f"tag{i}_correct"]) / n, 4), "words": int(n)}
        if per_tag:
            out["per_tag"] = per_tag
        return out

    # --- inference on raw text -----------------------------------------------------------------
    def encode_words(self, texts: list[str]) -> tuple[Batch, list[list[str]]]:
        words = [split_words(t) or [t.strip() or "_"] for t in texts]
        ids = [torch.tensor(self.vocab.encode([self._norm(w) for w in ws]), dtype=torch.long) for ws in words]
        inputs, lengths = pad_batch(ids, pad_id=0)
        return Batch(inputs, torch.full_like(inputs, IGNORE_INDEX), lengths), words
