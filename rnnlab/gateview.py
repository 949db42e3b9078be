"""The gate viewer: one self-contained HTML page beside what `rnnlab inspect` writes.

    rnnlab inspect runs/<run> --html                      # RUN/inspect/<time>-<what>/index.html
    rnnlab inspect runs/<imdb run> "a great film" --html --examples 50

The page holds its data inline (the arrays of gates.npz as base64 float32) and its own small
JavaScript (assets/gateview.js): no server, no network, nothing fetched. It shows the tokens, a
heat map (units x steps) of every recorded gate and state per layer and direction; hovering a
step lists every array's value for every unit there and the model's running output; clicked
units are plotted against the steps; and an LSTMVis-style threshold search (Strobelt et al.)
finds the spans of the first N examples of the split where the units that stay above θ over a
chosen span are on together. Those examples' states are written to examples.npz beside the page,
as float16, the precision the page holds them in, so the page's matches can be checked against NumPy.
"""

from __future__ import annotations

import base64
import html
import json
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .errors import UserError
from .rundir import clean_json, write_atomic
from .tasks.base import TokenTask

__all__ = ["write_gate_page", "page_html", "running_outputs", "example_states", "MAX_RUNNING_PREFIXES", "TOP_OUTPUTS", "EXAMPLE_VALUES_BUDGET"]

# A sequence classifier answers once, at the end; its running output at step t is its answer to
# the prefix 0..t, computed exactly by a batched pass over prefixes. Past this many steps the
# prefixes are spread evenly (the cost grows with the square of the length).
MAX_RUNNING_PREFIXES = 512
_PREFIX_BATCH = 64
TOP_OUTPUTS = 3  # the likeliest classes (tags, next tokens) shown at each step
# The examples searched by the threshold selection are kept as float16, and only as many as fit
# this many values (1.1 MB in the page, base64): with the input's own float32 arrays (3.3 MB), a
# 400-token review read by a 128-unit bi-LSTM stays under 5 MB. IMDb reviews average ~230 tokens:
# about 7 of them fit.
EXAMPLE_VALUES_BUDGET = 400_000


def _asset(name: str) -> str:
    return resources.files("rnnlab").joinpath("assets", name).read_text(encoding="utf-8")


def _b64(values: np.ndarray, dtype: str = "<f4") -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode("ascii")


def page_html(title: str, data: dict[str, Any], script: str, css: str = "common.css") -> str:
    """An HTML document with `data` as inline JSON and the named assets inlined."""
    # "<" escaped inside the JSON: a token such as "</script>" cannot end the data block.
    # NaN (a diverged run's loss) is no JSON: null.
    payload = json.dumps(clean_json(data), separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(title)}</title><style>{_asset(css)}</style></head>\n"
        f"<body><div id=\"app\"></div>\n<script type=\"application/json\" id=\"data\">{payload}</script>\n"
        f"<script>{_asset('common.js')}\n{_asset(script)}</script></body></html>\n"
    )


# --- what the model said along the way -------------------------------------------------------------


def _names(task: Any, model: Any, ids: list[int]) -> list[str]:
    labels = getattr(task, "labels", None) or getattr(task, "tag_names", None)
    if labels and len(labels) == model.spec.num_outputs:
        return [str(labels[i]) for i in ids]
    if isinstance(task, TokenTask) and model.spec.num_outputs == len(task.vocab):
        return list(task.vocab.decode(ids))
    return [str(i) for i in ids]


def _top(task: Any, model: Any, logits: torch.Tensor) -> list[list[list[Any]]]:
    """(S, C) logits -> per row the TOP_OUTPUTS likeliest [name, probability]."""
    probs = logits.float().softmax(-1)
    p, ids = probs.topk(min(TOP_OUTPUTS, probs.size(-1)), dim=-1)
    return [[[name, round(float(q), 4)] for name, q in zip(_names(task, model, row.tolist()), prow)] for row, prow in zip(ids, p)]


def running_outputs(task: Any, model: Any, inputs: torch.Tensor) -> dict[str, Any]:
    """The model's output at each step: its own per-step output for a tagger or language model;
    for a sequence model, its answer to each prefix (what it says if the input ended there)."""
    steps = inputs.size(1)
    recording = [getattr(m, "record", False) for m in model.recurrent_modules()]
    model.set_recording(False)  # the prefix batch would record (B, T, H) arrays for nothing
    try:
        with torch.inference_mode():
            if model.spec.per_step:
                logits = model(inputs, torch.tensor([steps]))[0]  # (T, C)
                what = "next token" if model.spec.causal else "output"
                return {"what": what, "steps": list(range(steps)), "top": _top(task, model, logits)}
            at = list(range(steps))
            if steps > MAX_RUNNING_PREFIXES:
                at = sorted({int(round(x)) for x in np.linspace(0, steps - 1, MAX_RUNNING_PREFIXES)})
            outs = []
            for start in range(0, len(at), _PREFIX_BATCH):
                ends = torch.tensor(at[start : start + _PREFIX_BATCH]) + 1
                batch = inputs.expand(len(ends), *inputs.shape[1:])[:, : int(ends.max())]
                outs.append(model(batch, ends))
            logits = torch.cat(outs)  # (S, C)
    finally:
        for m, on in zip(model.recurrent_modules(), recording):
            if hasattr(m, "record"):
                m.record = on
    if model.spec.output == "regression":
        return {"what": "answer so far", "steps": at, "value": [round(float(v), 4) for v in logits.reshape(len(at), -1)[:, 0]]}
    return {"what": "answer so far", "steps": at, "top": _top(task, model, logits)}


# --- the examples searched by the threshold selection --------------------------------------------------


def example_states(
    task: Any, model: Any, split: str, n: int, state: str, labels: Callable[[torch.Tensor], list[str]],
    budget: int = EXAMPLE_VALUES_BUDGET,
) -> tuple[list[dict[str, Any]], bool]:
    """The first n examples of `split` in the order `rnnlab evaluate` reads them, fewer where their
    values would pass `budget`: their step labels and, per layer and direction, the recorded
    `state` over their true steps, (T, H) float16; and whether the budget stopped the reading."""
    found: list[dict[str, Any]] = []
    used = 0
    if n <= 0:
        return found, False
    with torch.inference_mode():
        for batch in task.eval_batches(split):
            rows = min(len(batch), n - len(found))
            inputs = batch.inputs[:rows]
            lengths = batch.lengths[:rows] if batch.lengths is not None else torch.full((rows,), inputs.size(1))
            inputs = inputs[:, : int(lengths.max())]
            model(inputs, lengths)
            recorded = model.recorded(lengths)
            for r in range(rows):
                t = int(lengths[r])
                used += t * sum(acts[state].size(-1) for acts in recorded.values())
                if used > budget:
                    return found, True
                found.append({
                    "tokens": labels(inputs[r, :t]),
                    "states": {f"layer{i}.{d}": acts[state][r, :t].numpy().astype(np.float16) for (i, d), acts in recorded.items()},
                })  # fmt: skip
            if len(found) >= n:
                break
    return found, False


# --- the page -------------------------------------------------------------------------------------------


def write_gate_page(
    out_dir: Path, summary: dict[str, Any], model: Any, task: Any, inputs: torch.Tensor, *,
    labels: Callable[[torch.Tensor], list[str]], is_text: bool, split: str, examples: int,
) -> list[Path]:
    """Write out_dir/index.html (and examples.npz) from out_dir/gates.npz, which inspect wrote
    for `inputs`; `labels` turns token ids into step labels as inspect does. Returns the paths."""
    with np.load(out_dir / "gates.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    tokens = [str(t) for t in arrays.pop("tokens")]
    arrays.pop("token_ids", None)
    panels = list(dict.fromkeys(k.rsplit(".", 1)[0] for k in arrays))  # "layer0.forward", ...
    names = list(dict.fromkeys(k.rsplit(".", 1)[1] for k in arrays))  # in the cell's recording order
    first = next(iter(summary["memory_carriers"].values()))
    state = first["state"]
    try:
        found, cut = example_states(task, model, split, examples, state, labels)
        missing = None
    except (UserError, OSError) as e:  # e.g. a text read on a machine without the run's data set
        found, cut, missing = [], False, str(e)
    written = []
    if found:
        np.savez(out_dir / "examples.npz", **{
            **{f"example{j}.tokens": np.array(e["tokens"], dtype=str) for j, e in enumerate(found)},
            **{f"example{j}.{p}.{state}": v for j, e in enumerate(found) for p, v in e["states"].items()},
        })  # fmt: skip
        written.append(out_dir / "examples.npz")
    steps, hidden = next(iter(arrays.values())).shape
    data = {
        "title": f"{Path(summary['run']).name}: {summary['input']}",
        "run": summary["run"], "task": summary["task"], "model": summary["model"], "cell": summary["cell"],
        "input": summary["input"], "prediction": summary["prediction"], "is_text": is_text,
        "tokens": tokens, "steps": int(steps), "hidden": int(hidden), "panels": panels, "names": names,
        "state": state, "keep_gate": first.get("keep_gate"),
        "carriers": {p: c["units"] for p, c in summary["memory_carriers"].items()},
        "arrays": {k: _b64(v) for k, v in arrays.items()},
        "running": running_outputs(task, model, inputs),
        "examples": {"split": split, "state": state, "asked": examples, "cut": cut, "missing": missing, "budget": EXAMPLE_VALUES_BUDGET, "items": [
            {"tokens": e["tokens"], "states": {p: _b64(v, "<f2") for p, v in e["states"].items()}} for e in found]},
    }  # fmt: skip
    page = out_dir / "index.html"
    write_atomic(page, page_html(data["title"], data, "gateview.js").encode("utf-8"))
    return [*written, page]
