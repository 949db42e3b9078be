"""The chapter's gradient probe as a task: what the probe feeds each model, and which loss it differentiates.

    rnnlab probe-gradients --config configs/probe_gradients.yaml

A config with `task: {name: gradient_probe}` describes a probe, not a training run: `rnnlab
probe-gradients` (rnnlab/probe.py) reads it and measures the norm of dL/dx_t for every step t.
`rnnlab train` refuses it with a pointer to that command.

Inputs and losses (`loss`):
  task  the long-dependency recall input (one symbol one-hot at t=0, zeros after) and the
        cross-entropy of the model's answer at the last step: how much the answer can still
        learn from step t. The default.
  sum   the chapter's literal probe: random normal inputs and the sum of the recurrent outputs at
        every step. dL/dx_t then includes the direct term d(out_t)/dx_t, so it hardly shrinks even
        when long-range gradients vanish; kept to reproduce the chapter.
  last  random normal inputs and the sum of the outputs at the last step only: the chapter's idea
        without the direct terms.
"""

from __future__ import annotations

from typing import Any, Iterator, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator

from ..config import RunConfig, TaskConfig
from ..errors import UserError
from ..registry import MODELS, TASKS
from .base import Batch, ModelSpec, Task
from .long_dependency import recall_batch

__all__ = ["GradientProbeConfig", "GradientProbeTask", "PROBE_LOSSES", "PROBE_INITS"]

PROBE_LOSSES = ("task", "sum", "last")
PROBE_INITS = ("shipped", "default", "forget_bias", "chrono")


class GradientProbeConfig(TaskConfig):
    name: Literal["gradient_probe"] = "gradient_probe"
    models: list[str] = Field(["rnn", "lstm", "gru"], min_length=1, description="registered models to probe")
    seq_len: int = Field(50, ge=2, le=100_000, description="steps T; norms are reported for t = 0..T-1")
    input_size: int = Field(10, ge=2, le=65_536, description="input features (= symbols of the recall task)")
    loss: Literal["task", "sum", "last"] = Field("task", description="task: recall cross-entropy; sum: the chapter's sum of outputs; last: sum of the last outputs")
    trials: int = Field(20, ge=1, le=100_000, description="seeds (fresh weights and inputs); median and 10-90% spread")
    after_steps: int = Field(0, ge=0, le=10**7, description="0 = probe at initialisation; N = after N training steps on long_dependency")
    init: Literal["shipped", "default", "forget_bias", "chrono"] = Field(
        "shipped", description="gate init of every probed model; shipped = its configs/long_dependency_<model>.yaml"
    )

    @field_validator("models")
    @classmethod
    def _models(cls, v: list[str]) -> list[str]:
        unknown = [m for m in v if m not in MODELS]
        if unknown:
            raise ValueError("; ".join(MODELS.unknown_message(m) for m in unknown))
        if len(set(v)) != len(v):
            raise ValueError("each model once")
        return v


class GradientProbeTask(Task):
    """Hands out probe inputs and the probe's loss; it has no training data of its own."""

    cfg: GradientProbeConfig

    def __init__(self, cfg: GradientProbeConfig, run: RunConfig):
        super().__init__(cfg, run)
        self.chance = 1.0 / cfg.input_size

    def model_spec(self) -> ModelSpec:
        c = self.cfg
        if c.loss == "task":
            # Exactly a long_dependency model with num_classes = input_size, so that a network
            # trained there (`after_steps`) and one fresh from initialisation are the same thing.
            return ModelSpec(num_outputs=c.input_size, vocab_size=c.input_size + 1, max_len=c.seq_len)
        # The chapter's probe: real-valued features of `input_size` (nn.RNN(input_size, hidden)).
        return ModelSpec(num_outputs=c.input_size, input_size=c.input_size, max_len=c.seq_len)

    def probe_batch(self, trial: int, features: int | None = None) -> Batch:
        """One trial's input, drawn from its own seeded stream: the same for every model.

        `task`: the recall sequence as token ids (1, T), encoded as long_dependency does; the
        model's own `embed` turns them into its input features. `sum`/`last`: standard normal
        features (1, T, features), `features` defaulting to input_size.
        """
        c = self.cfg
        g = torch.Generator().manual_seed(self.seed * 100_003 + trial)
        target = torch.randint(c.input_size, (1,), generator=g)
        if c.loss == "task":
            return recall_batch(target, c.seq_len)
        return Batch(torch.randn(1, c.seq_len, features or c.input_size, generator=g), target)

    def probe_loss(self, model: torch.nn.Module, feats: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The scalar whose gradient with respect to `feats` (B, T, F) is probed."""
        if self.cfg.loss == "task":
            return F.cross_entropy(model.forward_features(feats), batch.targets)
        out = model.encode(feats)  # (B, T, dirs * H): the last layer's outputs at every step
        if self.cfg.loss == "sum":
            return out.sum()
        return model.final_states(out, None).sum()

    # A probe config reaches the engine only by mistake (`rnnlab train configs/probe_gradients.yaml`).
    # `fit` asks for the epoch length before it creates a run directory, so refusing here leaves
    # no half-made run behind.
    def steps_per_epoch(self) -> int | None:
        raise UserError(
            "task 'gradient_probe' describes a gradient probe, not a training run: "
            "run it with `rnnlab probe-gradients --config <this file>`"
        )

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        self.steps_per_epoch()
        yield from ()

    def eval_batches(self, split: str) -> Iterator[Batch]:
        self.steps_per_epoch()
        yield from ()

    def state_dict(self) -> dict[str, Any]:
        return {}


@TASKS.register("gradient_probe", config=GradientProbeConfig)
def build_gradient_probe(cfg: GradientProbeConfig, run: RunConfig) -> GradientProbeTask:
    """The norm of dL/dx_t at every step t (rnnlab probe-gradients; not trainable)."""
    return GradientProbeTask(cfg, run)
