"""`rnnlab generate`: sample text from a trained next-token language model.

    rnnlab generate runs/<run> --prompt "the movie" --tokens 40 --temperature 0.8 --top-k 20 --seed 1

Rebuilds task and model from the run's best checkpoint alone; the same seed gives the same text.
The text is printed as it is sampled, so Ctrl-C keeps what came so far.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import torch
from rich.console import Console
from rich.markup import escape

from ..contract import GeneratesText
from ..engine import load_run_model
from ..errors import UserError
from ..runtime import inference_autocast, resolve_device
from ..rundir import resolve_run

__all__ = ["generate", "generate_text", "MAX_TOKENS"]

MAX_TOKENS = 100_000  # each token re-reads the prefix: far beyond this, a run would take hours


def _check(tokens: int, temperature: float, top_k: int | None, seed: int) -> None:
    problems = []
    if not 1 <= tokens <= MAX_TOKENS:
        problems.append(f"--tokens {tokens}: ask for 1 to {MAX_TOKENS:,}")
    if not math.isfinite(temperature) or temperature < 0 or temperature > 100:
        problems.append(f"--temperature {temperature}: use 0 (always the likeliest token) up to 100; 1 samples as trained")
    if top_k is not None and top_k < 1:
        problems.append(f"--top-k {top_k}: use at least 1")
    if not 0 <= seed < 2**63:
        problems.append(f"--seed {seed}: use a whole number from 0 to 2**63 - 1")
    if problems:
        raise UserError("; ".join(problems))


def generate_text(
    run: Path, prompt: str | None, tokens: int = 50, temperature: float = 1.0, top_k: int | None = None, seed: int = 0,
    device: str = "auto", on_prompt: Callable[[str], None] | None = None, on_token: Callable[[str], None] | None = None,
) -> tuple[str, str]:  # fmt: skip
    """(the prompt as the model read it, the continuation); `on_prompt` receives the prompt and
    `on_token` each new piece of text as soon as it is sampled."""
    _check(tokens, temperature, top_k, seed)
    dev = resolve_device(device)
    cfg, task, model, _ = load_run_model(run, dev)
    if not isinstance(task, GeneratesText):
        raise UserError(
            f"{run} is a run of task '{cfg.task.name}', not a language model; "
            "train one with: rnnlab train configs/next_token_lstm.yaml"
        )
    ids = task.prompt_ids(prompt)
    if on_prompt is not None:
        on_prompt(task.join(ids))
    generator = torch.Generator().manual_seed(seed)
    out: list[int] = []
    with torch.inference_mode(), inference_autocast(cfg.train.precision, dev)():
        for _ in range(tokens):
            # Re-reading the prefix each step keeps the model's interface one forward(); prompts
            # and outputs are short, so the quadratic cost does not matter here.
            x = torch.tensor([ids + out], device=dev)
            logits = model(x)[0, -1].float().cpu()
            logits[list(task.never_sample)] = float("-inf")
            scaled = logits / temperature if temperature > 0 else logits
            # A temperature so small (below about 1e-37) that the division overflows, or rounds
            # to 0 in float32, is sampling's limit: always the likeliest token, as temperature 0.
            if temperature == 0 or not torch.isfinite(scaled.max()):
                nxt = int(logits.argmax())
            else:
                logits = scaled
                if top_k is not None and top_k < logits.numel():
                    kth = torch.topk(logits, top_k).values[-1]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                nxt = int(torch.multinomial(logits.softmax(-1), 1, generator=generator))
            if on_token is not None:
                on_token(task.join([nxt], after=(ids + out)[-1]))
            out.append(nxt)
            if nxt == task.stop_id:
                break
    return task.join(ids), task.join(out)


def generate(run: Path, *, prompt: str | None, tokens: int, temperature: float, top_k: int | None, seed: int, device: str,
             console: Console) -> str:  # fmt: skip
    """The command: print the prompt dimmed, then the continuation piece by piece as it is sampled."""
    run = resolve_run(run)

    def show_prompt(text: str) -> None:
        console.print(f"[dim]{escape(text)}[/]", end="", soft_wrap=True, highlight=False)

    def show(piece: str) -> None:
        console.print(f"[bold]{escape(piece)}[/]", end="", soft_wrap=True, highlight=False)

    try:
        _, text = generate_text(run, prompt, tokens, temperature, top_k, seed, device, on_prompt=show_prompt, on_token=show)
    finally:
        console.print()
    return text
