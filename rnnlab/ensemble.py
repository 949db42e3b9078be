"""Ensembles: several trained runs of one task answer together by averaging their probabilities.

    rnnlab evaluate RUN_A RUN_B RUN_C
    rnnlab predict --run RUN_A --run RUN_B "great movie"

Members may differ in anything but the task and the examples they are scored on: model, size,
vocabulary, truncation. Each reads the input its own way (its own vocabulary, its own
truncation), and the class probabilities are averaged. On a split, every member's answers are
lined up by the example's position in the split (`Batch.extra["index"]`), and the members must
have scored the same examples (`Batch.extra["example"]`, which review each is), else the
ensemble is refused. Labels alone cannot tell: the reviews are stored by label, so two runs
whose seeds carve other validation reviews have the same validation labels, position by position.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch

from .contract import ClassifiesText
from .engine import load_run_model
from .errors import UserError
from .runtime import inference_autocast
from .rundir import resolve_run

__all__ = ["Member", "Answers", "load_members", "split_probabilities", "check_same_examples", "scores"]


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


class Answers(NamedTuple):
    """One member's answers on a split, in the split's order."""

    probs: torch.Tensor  # (N, C) class probabilities
    labels: torch.Tensor  # (N,)
    examples: torch.Tensor  # (N,) which example each is (Batch.extra["example"])


@torch.inference_mode()
def split_probabilities(member: Member, split: str, device: torch.device) -> Answers:
    """Probabilities, labels and identities of every example of `split`, in the split's order."""
    member.model.eval()
    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for batch in member.task.eval_batches(split):
        index, example = batch.extra.get("index"), batch.extra.get("example")
        if index is None or example is None:
            raise UserError(f"task '{member.cfg.task.name}' does not number its examples, so its runs cannot be ensembled")
        batch = batch.to(device)
        with member.autocast() or nullcontext():
            probs = member.model(batch.inputs, batch.lengths).float().softmax(-1)
        parts.append((index.cpu(), probs.cpu(), batch.targets.cpu(), example.cpu()))
    n = sum(len(i) for i, _, _, _ in parts)
    out = Answers(torch.empty(n, parts[0][1].size(-1)), torch.empty(n, dtype=torch.long), torch.empty(n, dtype=torch.long))
    for index, p, t, e in parts:
        out.probs[index], out.labels[index], out.examples[index] = p, t, e
    return out


def check_same_examples(members: list[Member], answers: list[Answers], split: str) -> None:
    """Refuse members that scored other examples, naming the settings that decide the split."""
    first = answers[0].examples
    for m, a in zip(members[1:], answers[1:]):
        if a.examples.shape == first.shape and torch.equal(a.examples, first):
            continue
        if a.examples.shape != first.shape:
            count = f"{len(first):,} against {len(a.examples):,}"
        else:
            count = f"{int((a.examples != first).sum()):,} of {len(first):,} are other examples"
        settings = [
            f"{key} {_setting(members[0].cfg, key)} vs {_setting(m.cfg, key)}"
            for key in ("seed", "task.val_size", "task.data_path")
            if _setting(members[0].cfg, key) != _setting(m.cfg, key)
        ]
        raise UserError(
            f"{members[0].run} and {m.run} were scored on different {split} examples ({count})"
            f"{': ' + ', '.join(settings) if settings else ''}. "
            "An ensemble averages answers about the same examples: ensemble runs with the same seed, task.val_size "
            "and task.data_path" + (", or use --split test (the official test reviews, whatever the seed)" if split == "val" else "")
        )


def _setting(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part, None)
    return cfg


def scores(probs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Accuracy and the loss (mean negative log-likelihood) of averaged probabilities."""
    nll = -probs.gather(1, labels.unsqueeze(1)).clamp_min(1e-12).log().mean()
    return {"loss": float(nll), "accuracy": float((probs.argmax(-1) == labels).float().mean())}
