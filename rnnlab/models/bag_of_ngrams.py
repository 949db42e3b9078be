"""`bow`: a bag of word n-grams (fastText-style), the linear baseline the recurrent models must beat.

    rnnlab train configs/imdb_bilstm.yaml model.name=bow
    rnnlab compare bilstm bow --config configs/imdb_bilstm.yaml

The mean of the embeddings of every word and every (hashed) pair of neighbouring words of the
true, unpadded text, then a linear layer: word order counts only within a pair. On sentiment this
family is strong (NBSVM-bi, Wang & Manning 2012: 91.2% on IMDb; fastText, Joulin et al. 2016), so
it is the baseline a recurrent model has to earn its cost against. Trained by the same engine.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from ..config import ModelConfig
from ..contract import ModelSpec
from ..errors import UserError

__all__ = ["BagOfNgramsConfig", "BagOfNgrams"]

_PRIME = 1_000_003  # mixes the first word's id into the pair's hash


class BagOfNgramsConfig(ModelConfig):
    embedding_dim: int = Field(64, ge=1, le=4096)
    ngrams: int = Field(2, ge=1, le=2, description="1: words only; 2: words and hashed pairs of neighbouring words")
    buckets: int = Field(262_144, ge=1, le=16_777_216, description="hash buckets for the word pairs")
    dropout: float = Field(0.0, ge=0, lt=1, description="on the averaged vector, before the output layer")


class BagOfNgrams(nn.Module):
    def __init__(self, cfg: BagOfNgramsConfig, spec: ModelSpec):
        super().__init__()
        if spec.vocab_size is None:
            raise UserError(f"model '{cfg.name}' reads words: it needs a task with a vocabulary (imdb, tagging, next_token)")
        if spec.per_step or spec.causal:
            raise UserError(f"model '{cfg.name}' gives one output per text, not one per step; use a recurrent model (lstm, gru, ...)")
        self.cfg, self.spec = cfg, spec
        pairs = cfg.buckets if cfg.ngrams >= 2 else 0
        self.embedding = nn.Embedding(spec.vocab_size + pairs, cfg.embedding_dim)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.embedding_dim, spec.num_outputs)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        b, t = inputs.shape
        lengths = torch.full((b,), t, device=inputs.device) if lengths is None else lengths.to(inputs.device)
        steps = torch.arange(t, device=inputs.device).unsqueeze(0)
        ids, mask = inputs, steps < lengths.unsqueeze(1)
        if self.cfg.ngrams >= 2 and t > 1:
            pairs = self.spec.vocab_size + (inputs[:, :-1] * _PRIME + inputs[:, 1:]) % self.cfg.buckets
            ids = torch.cat([ids, pairs], dim=1)
            mask = torch.cat([mask, steps[:, :-1] < (lengths - 1).unsqueeze(1)], dim=1)
        m = mask.unsqueeze(-1).to(self.embedding.weight.dtype)
        mean = (self.embedding(ids) * m).sum(1) / m.sum(1).clamp_min(1)
        return self.head(self.drop(mean))
