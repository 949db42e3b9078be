"""What tasks and models agree on, owned by neither: the model's sizes, a batch, and the
capabilities a task can declare.

    rnnlab list          # every task and model builds on these

A task hands the engine `Batch`es and a `ModelSpec`; a model is built from the spec alone, so
`models/` never imports `tasks/`. Commands that need more than training (`predict`, `generate`)
find a task by what it declares it can do (`ClassifiesText`, `GeneratesText`), not by its name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

__all__ = ["Batch", "ModelSpec", "IGNORE_INDEX", "ClassifiesText", "GeneratesText", "TagsText"]

IGNORE_INDEX = -100  # targets at padded positions; cross_entropy skips them


@dataclass
class ModelSpec:
    """Sizes the model must match. Token inputs give `vocab_size`, real-valued inputs `input_size`."""

    num_outputs: int
    vocab_size: int | None = None
    input_size: int | None = None
    per_step: bool = False  # one prediction per time step (language model, tagging) or per sequence
    max_len: int = 100  # typical sequence length: the T_max of chrono initialisation
    pad_id: int = 0
    # A causal task predicts step t+1 from steps <= t: a model that reads ahead (bidirectional)
    # would see the answer.
    causal: bool = False
    output: Literal["classes", "regression"] = "classes"


@dataclass
class Batch:
    inputs: torch.Tensor  # (B, T) token ids, or (B, T, F) features
    targets: torch.Tensor  # (B,) or (B, T) with IGNORE_INDEX at padding
    lengths: torch.Tensor | None = None  # (B,) true lengths; None when no padding
    extra: dict[str, Any] = field(default_factory=dict)

    def to(self, device: torch.device) -> "Batch":
        lengths = self.lengths.to(device) if self.lengths is not None else None
        return Batch(self.inputs.to(device), self.targets.to(device), lengths, self.extra)

    def __len__(self) -> int:
        return self.inputs.size(0)


class ClassifiesText(ABC):
    """A task whose model labels a whole text: `rnnlab predict TEXT...` uses it."""

    labels: list[str]

    @abstractmethod
    def encode_texts(self, texts: list[str], max_tokens: int | None = None) -> tuple[Batch, list[int]]:
        """Texts -> a padded batch, and how many tokens of each the vocabulary knows."""


class TagsText(ABC):
    """A task whose model labels every word of a text: `rnnlab predict` prints word/tag pairs."""

    tag_names: list[str]

    @abstractmethod
    def encode_words(self, texts: list[str]) -> tuple[Batch, list[list[str]]]:
        """Texts -> a padded batch, and the words of each text as the model reads them."""


class GeneratesText(ABC):
    """A task whose model continues a text token by token: `rnnlab generate RUN` uses it."""

    @abstractmethod
    def prompt_ids(self, prompt: str | None) -> list[int]:
        """The prompt as token ids (a default start when None)."""

    @abstractmethod
    def join(self, ids: list[int], after: int | None = None) -> str:
        """Token ids -> readable text; `after` is the token before them, so that text can be
        printed piece by piece: join(a + b) == join(a) + join(b, after=a[-1])."""

    @property
    @abstractmethod
    def stop_id(self) -> int | None:
        """The token that ends a sequence, if the corpus has one."""

    never_sample: tuple[int, ...] = (0, 1)  # <pad> and <unk>
