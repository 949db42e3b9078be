"""Sample text from a trained next-token language model.

    rnnlab generate runs/<run> --prompt "the movie" --tokens 40 --temperature 0.8 --top-k 20 --seed 1

Rebuilds task and model from the run's best checkpoint alone; the same seed gives the same text.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .engine import load_run_model
from .errors import UserError
from .runtime import resolve_device

__all__ = ["generate_text"]


def generate_text(
    run: Path, prompt: str | None, tokens: int = 50, temperature: float = 1.0, top_k: int | None = None, seed: int = 0, device: str = "auto"
) -> tuple[str, str]:
    """(the prompt as the model read it, the continuation)."""
    if tokens < 1:
        raise UserError(f"--tokens {tokens}: ask for at least 1")
    if temperature < 0:
        raise UserError(f"--temperature {temperature}: use 0 (always the likeliest token) or more")
    if top_k is not None and top_k < 1:
        raise UserError(f"--top-k {top_k}: use at least 1")
    dev = resolve_device(device)
    cfg, task, model, _ = load_run_model(run, dev)
    if not hasattr(task, "prompt_ids"):
        raise UserError(
            f"{run} is a run of task '{cfg.task.name}', not a language model; "
            "train one with: rnnlab train configs/next_token_lstm.yaml"
        )
    ids = task.prompt_ids(prompt)
    generator = torch.Generator().manual_seed(seed)
    out: list[int] = []
    with torch.inference_mode():
        for _ in range(tokens):
            # Re-reading the prefix each step keeps the model's interface one forward(); prompts
            # and outputs are short, so the quadratic cost does not matter here.
            x = torch.tensor([ids + out], device=dev)
            logits = model(x)[0, -1].float().cpu()
            logits[[0, 1]] = float("-inf")  # never <pad>, never <unk>
            if temperature == 0:
                nxt = int(logits.argmax())
            else:
                logits = logits / temperature
                if top_k is not None and top_k < logits.numel():
                    kth = torch.topk(logits, top_k).values[-1]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                nxt = int(torch.multinomial(logits.softmax(-1), 1, generator=generator))
            out.append(nxt)
            if nxt == task.stop_id:
                break
    return task.join(ids), task.join(out)
