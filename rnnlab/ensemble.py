"""Ensembles: several trained runs of one task answer together by averaging their probabilities.

    rnnlab evaluate RUN_A RUN_B RUN_C --split test
    rnnlab predict --run RUN_A --run RUN_B "great movie"

Members may differ in anything but the task and the examples they are scored on: model, size,
vocabulary, truncation. Each reads the input its own way (its own vocabulary, its own
truncation), and the class probabilities are averaged. On a split, every member's answers are
lined up by the example's position in the split (`Batch.extra["index"]`), and the members must
agree on how many examples there are and on every label, else they were scored on different data.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .contract import ClassifiesText
from .engine import load_run_model
from .errors import UserError
from .runtime import inference_autocast
from .rundir import resolve_run

__all__ = ["Member", "load_members", "split_probabilities", "scores"]


@dataclass
class Member:
    run: Path
    cfg: Any
    task: Any
    model: torch.nn.Module
    autocast: Callable[[], Any]


def load_members(runs: list[Path], device: torch.device) -> list[Member]:
    """Every run's model, checked to classify the same task's labels."""
    members = []
    for run in map(resolve_run, runs):
        cfg, task, model, _ = load_run_model(run, device)
        members.append(Member(run, cfg, task, model, inference_autocast(cfg.train.precision, device)))
    first = members[0]
    for m in members[1:]:
        if m.cfg.task.name != first.cfg.task.name:
            raise UserError(f"an ensemble's runs must share the task: {first.run} is '{first.cfg.task.name}', "
                            f"{m.run} is '{m.cfg.task.name}'")  # fmt: skip
    if len(members) > 1 and not all(isinstance(m.task, ClassifiesText) for m in members):
        raise UserError(f"ensembles average class probabilities: task '{first.cfg.task.name}' does not classify texts")
    labels = {tuple(m.task.labels) for m in members if isinstance(m.task, ClassifiesText)}
    if len(labels) > 1:
        raise UserError(f"the runs' tasks have different labels ({' vs '.join(map(str, labels))}); they cannot be averaged")
    return members


@torch.inference_mode()
def split_probabilities(member: Member, split: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(probabilities (N, C), labels (N,)) of every example of `split`, in the split's order."""
    member.model.eval()
    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for batch in member.task.eval_batches(split):
        index = batch.extra.get("index")
        if index is None:
            raise UserError(f"task '{member.cfg.task.name}' does not number its examples, so its runs cannot be ensembled")
        batch = batch.to(device)
        with member.autocast() or nullcontext():
            probs = member.model(batch.inputs, batch.lengths).float().softmax(-1)
        parts.append((index.cpu(), probs.cpu(), batch.targets.cpu()))
    n = sum(len(i) for i, _, _ in parts)
    probs = torch.empty(n, parts[0][1].size(-1))
    labels = torch.empty(n, dtype=torch.long)
    for index, p, t in parts:
        probs[index], labels[index] = p, t
    return probs, labels


def check_same_examples(members: list[Member], labels: list[torch.Tensor], split: str) -> None:
    first = labels[0]
    for m, l in zip(members[1:], labels[1:]):
        if l.shape != first.shape or not torch.equal(l, first):
            raise UserError(
                f"{members[0].run} and {m.run} were scored on different {split} examples "
                f"({len(first):,} against {len(l):,}, or other labels): an ensemble needs the same data, "
                "validation size and seed"
            )


def scores(probs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Accuracy and the loss (mean negative log-likelihood) of averaged probabilities."""
    nll = -probs.gather(1, labels.unsqueeze(1)).clamp_min(1e-12).log().mean()
    return {"loss": float(nll), "accuracy": float((probs.argmax(-1) == labels).float().mean())}
