"""`rnnlab inspect`: watch a trained recurrent network's gates and memory at work, step by step.

    rnnlab inspect runs/<run>                                 # example 0 of the validation split
    rnnlab inspect runs/<run> --example 7 --split test --units 5
    rnnlab inspect runs/<imdb run> "a great film, I loved it" "dull and far too long"
    rnnlab inspect runs/<tagging run> "the old man the boats"  # each word's tag, and the gates

Loads the run's best checkpoint (whichever implementation trained it), swaps in the readable
reference cells of models/cells.py with recording on (same weights: tests/test_cells.py proves
them equal to PyTorch's kernels), runs them on the CPU on one input in the run's precision (bf16
under autocast where the run trained in it and this CPU computes it natively, as `evaluate` and
`predict` do; else float32), and writes RUN/inspect/<time>-<what>/ (figures: rnnlab/inspect_plots.py):

    heatmap_<name>.png   units x time steps of every gate and of the state (LSTM: cell; GRU and
                         RNN: hidden), one panel per layer and direction; text as x labels
    gate_means.png       each gate's mean over the units against time
    memory_carriers.png  the K units whose state changes least (magnitude aside), and their
                         keep gate (LSTM forget gate, GRU update gate) against time
    gates.npz            every recorded array as `layer<i>.<direction>.<name>`, (T, H) over the
                         true steps only; `tokens` and `token_ids` (T,)
    summary.json         per gate: mean and the fractions above 0.9 and below 0.1; the memory
                         carriers; the parameters of each layer split into its gate blocks;
                         the precision it ran in; for a classifier that max-pools (the IMDb
                         models): the deciders

and prints the same figures, the chapter's parameter count (LSTM 4 gate blocks, GRU 3) computed
from the weights, and the paths written.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..contract import IGNORE_INDEX, ClassifiesText, GeneratesText, TagsText
from ..engine import load_run_model
from ..errors import UserError
from ..gateview import write_gate_page
from ..models.cells import BLOCK_NAMES, param_count
from ..models.recurrent import RecurrentNet
from ..rundir import create_run_dir, resolve_run, write_json
from ..runtime import autocast_for
from ..tasks.base import TokenTask

__all__ = ["inspect", "inspect_input", "precision_for", "parameter_blocks", "MAX_INSPECT_TOKENS"]

# IMDb reviews are at most ~2,700 tokens; a longer text is read up to here, as `rnnlab predict` does.
MAX_INSPECT_TOKENS = 5_000
SATURATED_HIGH, SATURATED_LOW = 0.9, 0.1
# The state each cell carries from step to step, and the gate that decides how much of it to keep
# (PyTorch's GRU update gate z weights the old state: h_t = (1 - z) h~ + z h_{t-1}).
# What holds each cell's memory, and the gate (if any) whose high value means "keep it".
STATE = {"rnn": "hidden", "lstm": "cell", "gru": "hidden",
         "mingru": "hidden", "minlstm": "hidden", "lru": "state_modulus", "indrnn": "hidden", "exprnn": "hidden"}  # fmt: skip
KEEP_GATE = {"rnn": None, "lstm": "forget_gate", "gru": "update_gate",
             "mingru": None, "minlstm": "forget_gate", "lru": None, "indrnn": None, "exprnn": None}  # fmt: skip


@dataclass
class _Input:
    what: str  # the output directory's name after the time
    description: str  # for people: "test example 3", "text 'great movie'"
    inputs: torch.Tensor  # (1, T) token ids, or (1, T, F) features
    tokens: list[str]  # one label per step
    is_text: bool  # tokens are words or characters (x labels), not symbols of a synthetic task
    target: Any = None


# --- input: an example of a split, or a text ------------------------------------------------------


def _example(task: Any, split: str, n: int) -> _Input:
    """The n-th example of `split`: by its position in the split when batches carry it
    (`extra["index"]`, IMDb), else the n-th in the order `rnnlab evaluate` reads them."""
    if n < 0:
        raise UserError(f"--example {n}: use an index from 0 up")
    seen = 0
    for batch in task.eval_batches(split):
        index = batch.extra.get("index")
        if index is not None:  # compared as Python ints: torch cannot hold an n past 2**63 (OverflowError)
            positions = torch.as_tensor(index).tolist()
            row = positions.index(n) if n in positions else None
        else:
            row = n - seen if n < seen + len(batch) else None
        seen += len(batch)
        if row is not None:
            length = int(batch.lengths[row]) if batch.lengths is not None else batch.inputs.size(1)
            inputs = batch.inputs[row : row + 1, :length]
            target = batch.targets[row]
            target = target[:length].tolist() if target.dim() else target.item()
            return _Input(f"{split}-example{n}", f"{split} example {n}", inputs, *_tokens(task, inputs[0]), target)
    if seen == 0:
        raise UserError(f"the {split} split of this run's task is empty; try --split {'val' if split == 'test' else 'test'}")
    raise UserError(f"--example {n}: the {split} split has {seen:,} examples (0 to {seen - 1:,}); choose one of those")


def _tokens(task: Any, ids: torch.Tensor) -> tuple[list[str], bool]:
    """Step labels: the words (or characters) of a token task, else the symbols of a synthetic one."""
    if isinstance(task, TokenTask):
        return task.vocab.decode(ids), True
    if ids.dim() == 1:  # long_dependency: symbol k is id k + 1 at t = 0, then empty steps (id 0)
        return [f"symbol {int(i) - 1}" if int(i) else "·" for i in ids], False
    return [str(t) for t in range(ids.size(0))], False


def _text(task: Any, text: str, i: int, run: Path, task_name: str) -> _Input:
    if not text.strip():
        raise UserError(f"text {i} is empty; give some words, e.g. rnnlab inspect {run} \"a great film\"")
    words = re.findall(r"[a-z0-9]+", text.lower())[:4]
    slug = "-".join(words)[:40].strip("-") or "input"
    short = text if len(text) <= 60 else text[:57] + "..."
    what, description = f"text-{slug}", f"text {short!r}"
    if isinstance(task, TagsText):  # the words as the tagging task splits them; unknown ones read as <unk>
        batch, (split,) = task.encode_words([text])
        inputs = batch.inputs[:, : min(int(batch.lengths[0]), MAX_INSPECT_TOKENS)]
        return _Input(what, description, inputs, split[: inputs.size(1)], True)
    if isinstance(task, ClassifiesText):
        batch, _ = task.encode_texts([text], max_tokens=MAX_INSPECT_TOKENS)
        inputs = batch.inputs[:, : int(batch.lengths[0])]
    elif isinstance(task, GeneratesText):
        inputs = torch.tensor([task.prompt_ids(text)[:MAX_INSPECT_TOKENS]])
    else:
        raise UserError(
            f"{run} is a run of task '{task_name}', which reads no text; inspect one of its examples instead: "
            f"rnnlab inspect {run} --example 0"
        )
    return _Input(what, description, inputs, *_tokens(task, inputs[0]))


# --- what the cells did -----------------------------------------------------------------------------


def _fractions(values: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(values.mean()),
        "above_0.9": float((values > SATURATED_HIGH).mean()),
        "below_0.1": float((values < SATURATED_LOW).mean()),
    }


def _carriers(state: np.ndarray, keep: np.ndarray | None, k: int) -> dict[str, Any]:
    """The K units whose state changes least from step to step after the first (the first step
    writes the input): ranked by the mean |s_t - s_{t-1}|, after setting aside silent units (mean
    |s| below a tenth of the largest unit's), which change little because they hold nothing."""
    change = np.abs(np.diff(state, axis=0)).mean(axis=0) if state.shape[0] > 1 else np.zeros(state.shape[1])
    size = np.abs(state).mean(axis=0)
    silent = size < 0.1 * size.max()
    order = sorted(range(state.shape[1]), key=lambda u: (bool(silent[u]), float(change[u])))[:k]
    out: dict[str, Any] = {
        "units": order,
        "mean_abs_change": [float(change[u]) for u in order],
        "mean_abs_state": [float(size[u]) for u in order],
        "final_state": [float(state[-1, u]) for u in order],
    }
    if keep is not None:
        later = keep[1:] if keep.shape[0] > 1 else keep  # the first step's keep gate has nothing to keep
        out["keep_gate_mean"] = [float(later[:, u].mean()) for u in order]
        out["keep_gate_min"] = [float(later[:, u].min()) for u in order]
    return out


def deciders(model: RecurrentNet, arrays: dict[str, np.ndarray], logits: torch.Tensor, tokens: list[str], k: int) -> dict[str, Any] | None:
    """For a sequence classifier that max-pools its last layer: each unit's pooled value is its
    largest output over the steps, so the answer decomposes exactly into one term per unit,
    (w_answer - w_other) * pooled, each won at one step, one word. The K units pushing hardest
    towards the answer and against it, with their words. None for other models."""
    if model.spec.per_step or model.cfg.pooling != "max" or model.spec.output != "classes":
        return None
    last = model.cfg.num_layers - 1
    directions = ["forward", "backward"] if model.cfg.bidirectional else ["forward"]
    outs = [arrays[f"layer{last}.{d}.hidden"] for d in directions]  # (T, H) each, reading order
    out = np.concatenate(outs, axis=1)
    steps, pooled = out.argmax(0), out.max(0)
    answer = int(logits[0].argmax())
    weight = model.head.weight.detach().float().numpy()
    others = [c for c in range(weight.shape[0]) if c != answer]
    direction = weight[answer] - weight[others].mean(0)  # binary: the logit margin itself
    terms = direction * pooled
    h = model.cfg.hidden_size

    def unit(j: int) -> dict[str, Any]:
        return {"where": f"layer{last}.{directions[j // h]}", "unit": int(j % h), "term": round(float(terms[j]), 4),
                "pooled": round(float(pooled[j]), 4), "step": int(steps[j]), "token": tokens[int(steps[j])]}  # fmt: skip

    order = np.argsort(terms)
    bias = model.head.bias.detach().float().numpy()
    return {
        "answer": answer,
        "margin": round(float(terms.sum() + bias[answer] - bias[others].mean()), 4),  # = logit[answer] - mean of the others
        "towards": [unit(j) for j in order[::-1][:k]],
        "against": [unit(j) for j in order[:k]],
    }


def parameter_blocks(model: RecurrentNet) -> list[dict[str, Any]]:
    """Each layer and direction's parameters, split into its gate blocks, counted on the weights
    themselves; beside them what a vanilla RNN, an LSTM and a GRU of the same sizes would hold
    (the chapter's comparison: G gate blocks of H x (F + H) weights and 2H biases each)."""
    rows = []
    if model.cell not in BLOCK_NAMES:  # a cell after the chapter's: its own parameter tensors
        for i, directions in enumerate(model.layers):
            for d, m in enumerate(directions):
                h, f = m.hidden_size, m.input_size
                rows.append({
                    "layer": i, "direction": ("forward", "backward")[d], "input_size": f, "hidden_size": h,
                    "blocks": {name: p.numel() for name, p in m.named_parameters()}, "total": m.param_count(),
                    "same_sizes": {mode: param_count(mode, f, h) for mode in ("rnn", "lstm", "gru")},
                })  # fmt: skip
        return rows
    names = BLOCK_NAMES[model.cell]
    for i, directions in enumerate(model.layers):
        for d, m in enumerate(directions):
            h, f = m.hidden_size, m.input_size
            tensors = [t for t in (m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0) if t is not None]
            blocks = tensors[0].size(0) // h
            if blocks != len(names) or any(t.size(0) != blocks * h for t in tensors):
                raise UserError(f"layer {i}: {tensors[0].size(0)} weight rows for hidden size {h}: not a {model.cell} layer")
            per_block = {name: sum(t[k * h : (k + 1) * h].numel() for t in tensors) for k, name in enumerate(names)}
            rows.append({
                "layer": i, "direction": ("forward", "backward")[d], "input_size": f, "hidden_size": h,
                "gate_blocks": blocks, "blocks": per_block, "total": sum(t.numel() for t in tensors),
                "same_sizes": {mode: param_count(mode, f, h) for mode in ("rnn", "lstm", "gru")},
            })  # fmt: skip
    return rows


def _prediction(task: Any, model: RecurrentNet, logits: torch.Tensor, item: _Input) -> dict[str, Any]:
    if model.spec.output == "regression":  # one number, e.g. the adding problem's sum
        out: dict[str, Any] = {"value": round(float(logits.float().reshape(-1)[0]), 4)}
        if item.target is not None:
            out["target"] = round(float(item.target), 4)
        return out
    probs = logits.float().softmax(-1)
    if model.spec.per_step and isinstance(task, TagsText):  # a tagger: each word's tag
        p, best = probs[0].max(-1)  # (T,) each
        out = {"words": item.tokens, "tags": [task.tag_names[int(j)] for j in best],
               "probabilities": [round(float(x), 4) for x in p]}  # fmt: skip
        if isinstance(item.target, list):  # an example: its gold tags (None for an untagged word)
            out["target"] = [task.tag_names[t] if t != IGNORE_INDEX else None for t in item.target]
        return out
    if model.spec.per_step:  # a language model: what it expects after the last step
        p = probs[0, -1]
        token = int(p.argmax())
        name = task.vocab.decode([token])[0] if isinstance(task, TokenTask) else str(token)
        return {"next_token": name, "probability": round(float(p[token]), 4)}
    p = probs[0]
    label = int(p.argmax())
    labels = getattr(task, "labels", None)
    out = {"label": labels[label] if labels else label, "probability": round(float(p[label]), 4)}
    if isinstance(item.target, int):
        out["target"] = labels[item.target] if labels else item.target
    return out


def precision_for(cfg: Any) -> tuple[Callable[[], Any], str, str]:
    """The forward pass's context, the precision it runs in, and why, when not the run's own: the
    run's precision, as `evaluate` and `predict` use it (bf16 autocast where the run trained in
    bf16 and this CPU computes it natively), else fp32, which is always a correct answer."""
    wanted = cfg.train.precision
    try:
        autocast, _, _, precision = autocast_for(wanted, torch.device("cpu"))
    except UserError:  # e.g. a CUDA fp16 run, or bf16 on a CPU without bf16 units
        return nullcontext, "fp32", f"the run's {wanted} is not available on this CPU"
    if wanted == "auto" and precision == "fp32":
        return autocast, "fp32", "train.precision auto: this CPU has no native bf16"
    return autocast, precision, ""


def inspect_input(
    run: Path, cfg: Any, task: Any, model: RecurrentNet, item: _Input, *, units: int, trained_with: str,
    autocast: Callable[[], Any] = nullcontext, precision: str = "fp32", precision_note: str = "",
) -> dict[str, Any]:
    """Run the recording reference cells on one input under `autocast`; write the arrays, plots and summary."""
    from .. import inspect_plots as plots  # matplotlib only once there is something to draw

    started = time.perf_counter()
    with torch.inference_mode(), autocast():
        logits = model(item.inputs, torch.tensor([item.inputs.size(1)]))
        recorded = model.recorded()
    cell = model.cell
    arrays = {
        f"layer{i}.{direction}.{name}": values[0].float().numpy()
        for (i, direction), acts in recorded.items() for name, values in acts.items()
    }  # fmt: skip
    panels = list(recorded)  # (layer, direction)
    gates = [name for name in recorded[panels[0]] if name.endswith("_gate")]
    k = min(units, model.cfg.hidden_size)
    out_dir = _new_dir(run, item.what)

    summary: dict[str, Any] = {
        "run": str(run), "task": cfg.task.name, "model": cfg.model.name, "cell": cell, "trained_with": trained_with,
        "precision": precision, **({"precision_note": precision_note} if precision_note else {}),
        "input": item.description, "steps": len(item.tokens), "prediction": _prediction(task, model, logits, item),
        "gates": {key: _fractions(v) for key, v in arrays.items() if key.rsplit(".", 1)[1] in gates},
        "memory_carriers": {
            f"layer{i}.{d}": {"state": STATE[cell], "keep_gate": KEEP_GATE[cell], **_carriers(
                arrays[f"layer{i}.{d}.{STATE[cell]}"],
                arrays.get(f"layer{i}.{d}.{KEEP_GATE[cell]}") if KEEP_GATE[cell] else None, k)}
            for i, d in panels
        },
        "parameters": {"layers": parameter_blocks(model), "model_total": sum(p.numel() for p in model.parameters())},
    }  # fmt: skip
    decided = deciders(model, arrays, logits, item.tokens, k)
    if decided is not None:
        summary["deciders"] = decided

    written = []
    np.savez(out_dir / "gates.npz", tokens=np.array(item.tokens, dtype=str), token_ids=_ids(item.inputs), **arrays)
    written.append(out_dir / "gates.npz")
    title = f"{run.name}: {item.description}"
    for name in [*gates, STATE[cell]]:
        written.append(plots.heatmap(out_dir / f"heatmap_{name}.png", {p: arrays[_key(p, name)] for p in panels},
                                     item.tokens, item.is_text, name, title))  # fmt: skip
    if gates:
        means = {p: {g: arrays[_key(p, g)] for g in gates} for p in panels}
        written.append(plots.gate_means(out_dir / "gate_means.png", means, item.tokens, item.is_text, title))
    carriers = {p: summary["memory_carriers"][f"layer{p[0]}.{p[1]}"]["units"] for p in panels}
    keep = KEEP_GATE[cell]
    written.append(plots.memory_carriers_plot(
        out_dir / "memory_carriers.png", {p: arrays[_key(p, STATE[cell])] for p in panels},
        {p: arrays[_key(p, keep)] for p in panels} if keep else None, carriers, STATE[cell], keep,
        item.tokens, item.is_text, title,
    ))  # fmt: skip
    written.append(out_dir / "summary.json")
    summary["files"] = [str(p) for p in written]
    summary["seconds"] = round(time.perf_counter() - started, 3)
    write_json(out_dir / "summary.json", summary)
    return summary


def _key(panel: tuple[int, str], name: str) -> str:
    return f"layer{panel[0]}.{panel[1]}.{name}"


def _ids(inputs: torch.Tensor) -> np.ndarray:
    return inputs[0].numpy() if inputs.dim() == 2 else np.arange(inputs.size(1))


def _new_dir(run: Path, what: str) -> Path:
    """RUN/inspect/<time>-<what>; a read-only run is refused with a copy command that works."""
    parent = run / "inspect"
    try:
        parent.mkdir(exist_ok=True)
        # access() also says no on a read-only file system, where root's permissions do not help
        if not os.access(parent, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "not writable by you")
    except OSError as e:
        src, copy = shlex.quote(str(run)), shlex.quote(str(Path(tempfile.gettempdir()) / run.name))
        raise UserError(
            f"cannot write into {parent} ({e.strerror or e}): inspect writes its pictures inside the run. Copy the run "
            f"somewhere writable and inspect the copy: cp -r {src} {copy} && rnnlab inspect {copy}"
        ) from None
    return create_run_dir(parent, what)


# --- the command -----------------------------------------------------------------------------------


def _load(run: Path) -> tuple[Any, Any, RecurrentNet, str]:
    if not (run / "config.yaml").is_file():
        what = ("a comparison: name one of its runs" if (run / "plan.json").is_file()
                else "a folder of runs: name one of them" if any(run.glob("*/config.yaml")) else "not a run directory")  # fmt: skip
        raise UserError(f"{run} is {what} (rnnlab runs --runs-dir {run} lists the runs under it)")
    if not (run / "checkpoints" / "best.pt").is_file():
        hint = (f"continue it with: rnnlab train --resume {run}" if (run / "checkpoints" / "last.pt").is_file()
                else "train one with: rnnlab train configs/long_dependency_lstm.yaml")  # fmt: skip
        raise UserError(f"{run} has no checkpoints/best.pt (the run ended before its first evaluation); {hint}")
    cfg, task, model, _ = load_run_model(run, torch.device("cpu"))
    if not isinstance(model, RecurrentNet):
        raise UserError(
            f"{run} is a run of model '{cfg.model.name}', which has no recurrent cells to inspect; "
            "inspect a run of a recurrent model (rnn, lstm, gru, mingru, lru, ...: rnnlab list), e.g. of rnnlab train configs/long_dependency_lstm.yaml"
        )
    trained_with = model.cfg.implementation
    # Weights in fp32, as training keeps them; lower precision comes from autocast (precision_for).
    model.float().use_implementation("reference").set_recording(True)
    return cfg, task, model, trained_with


def inspect(
    run: Path, texts: list[str], *, example: int | None, split: str, units: int, console: Console,
    html: bool = False, examples: int = 20,
) -> list[dict[str, Any]]:
    """The command: one output directory per text (or the one example), a table of each."""
    if split not in ("val", "test"):
        raise UserError(f"--split {split!r}: use val or test")
    if units < 1:
        raise UserError(f"--units {units}: show at least 1 unit, e.g. --units 4")
    if texts and example is not None:
        raise UserError("give texts or --example N, not both")
    if examples < 0:
        raise UserError(f"--examples {examples}: the threshold search reads the first N examples of --split; use 0 or more, e.g. --examples 20")
    for i, text in enumerate(texts, start=1):
        if not text.strip():
            raise UserError(f"text {i} is empty; give some words, e.g. rnnlab inspect {run} \"a great film\"")
    run = resolve_run(run)  # runs/<name> too; what is written goes into the run it names
    cfg, task, model, trained_with = _load(run)
    autocast, precision, note = precision_for(cfg)
    items = [_text(task, t, i, run, cfg.task.name) for i, t in enumerate(texts, start=1)] if texts else [_example(task, split, example or 0)]
    summaries = []
    for item in items:
        summary = inspect_input(run, cfg, task, model, item, units=units, trained_with=trained_with, autocast=autocast, precision=precision, precision_note=note)
        if html:  # the interactive page, from the gates.npz just written (rnnlab/gateview.py)
            pages = write_gate_page(Path(summary["files"][0]).parent, summary, model, task, item.inputs,
                                    labels=lambda ids: _tokens(task, ids)[0], is_text=item.is_text, split=split, examples=examples)  # fmt: skip
            summary["files"] += [str(p) for p in pages]
        _print(console, summary)
        summaries.append(summary)
    return summaries


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


_MAX_PRINTED_TAGS = 60  # word/tag pairs on the terminal; summary.json holds them all


def _said(pred: dict[str, Any]) -> str:
    """The model's answer in words: a label, the next token, a number (regression) or each word's tag."""
    if "value" in pred:  # a regression, e.g. the adding problem's sum
        return f"{pred['value']:g}" + (f", target {pred['target']:g}" if "target" in pred else "")
    if "tags" in pred:
        pairs = [f"{w}/{t}" for w, t in zip(pred["words"], pred["tags"])]
        said = " ".join(pairs[:_MAX_PRINTED_TAGS]) + (f" ... ({len(pairs) - _MAX_PRINTED_TAGS:,} more)" if len(pairs) > _MAX_PRINTED_TAGS else "")
        if "target" in pred:
            scored = [(t, g) for t, g in zip(pred["tags"], pred["target"]) if g is not None]
            said += f"; {sum(t == g for t, g in scored)} of {len(scored)} tagged words right"
        return said
    said = (f"next token {pred['next_token']!r}" if "next_token" in pred else f"{pred['label']}") + f" ({_pct(pred['probability'])})"
    return said + (f", target {pred['target']}" if "target" in pred else "")


def _print(console: Console, s: dict[str, Any]) -> None:
    said = _said(s["prediction"])
    precision = s["precision"] + (f" ({s['precision_note']})" if s.get("precision_note") else "")
    console.print(f"[bold]{escape(s['input'])}[/]: {s['steps']:,} steps, {s['cell']} cells in {precision}; "
                  f"the model says {escape(said)}", soft_wrap=True)  # fmt: skip
    if s["gates"]:
        table = Table(title=f"gates over the {s['steps']:,} steps", title_justify="left")
        for col in ("layer", "gate", "mean", "> 0.9", "< 0.1"):
            table.add_column(col, justify="left" if col in ("layer", "gate") else "right")
        for key, v in s["gates"].items():
            where, gate = key.rsplit(".", 1)
            table.add_row(where, gate, f"{v['mean']:.3f}", _pct(v["above_0.9"]), _pct(v["below_0.1"]))
        console.print(table)
    else:
        console.print(f"[dim]{s['cell']} cells have no gates: only their state is recorded[/]")
    first = next(iter(s["memory_carriers"].values()))
    keep = first["keep_gate"]
    table = Table(title=f"memory carriers: the units whose {first['state']} state changes least", title_justify="left")
    columns = ["layer", "unit", "mean |Δ| per step", "mean |state|"] + ([f"{keep} mean (min)"] if keep else [])
    for col in columns:
        table.add_column(col, justify="left" if col == "layer" else "right")
    for where, c in s["memory_carriers"].items():
        for j, unit in enumerate(c["units"]):
            extra = [f"{c['keep_gate_mean'][j]:.3f} ({c['keep_gate_min'][j]:.3f})"] if keep else []
            table.add_row(where if j == 0 else "", str(unit), f"{c['mean_abs_change'][j]:.4f}", f"{c['mean_abs_state'][j]:.3f}", *extra)
    console.print(table)
    if s["cell"] == "gru":
        console.print("[dim]PyTorch's update gate z keeps the old state: h_t = (1 - z) * h~_t + z * h_(t-1)[/]")
    if "deciders" in s:
        _print_deciders(console, s["deciders"], s["prediction"].get("label"))
    _print_parameters(console, s["parameters"], s["cell"])
    console.print(f"wrote {len(s['files'])} files in {s['seconds']:.2f} s:")
    for path in s["files"]:
        console.print(f"  {escape(path)}", soft_wrap=True, highlight=False)


def _print_deciders(console: Console, d: dict[str, Any], label: Any) -> None:
    table = Table(title=f"the deciders: max pooling takes each unit's largest output, at one word; the units' terms "
                        f"add up to the margin of '{label}' ({d['margin']:+.2f})", title_justify="left")  # fmt: skip
    for col in ("", "layer", "unit", "term", "output", "word (step)"):
        table.add_column(col, justify="right" if col in ("unit", "term", "output") else "left")
    for side, units in (("towards", d["towards"]), ("against", d["against"])):
        for j, u in enumerate(units):
            table.add_row(side if j == 0 else "", u["where"], str(u["unit"]), f"{u['term']:+.3f}", f"{u['pooled']:.3f}",
                          f"{escape(u['token'])} ({u['step']})")  # fmt: skip
    console.print(table)


def _print_parameters(console: Console, params: dict[str, Any], cell: str) -> None:
    layers = params["layers"]
    names = list(layers[0]["blocks"])
    console.print(f"parameters of each {cell} layer by gate block, counted on the weights:", highlight=False)
    table = Table()
    for col in ("layer", "F", "H", *(n.removesuffix("_gate") for n in names), "total"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for r in layers:
        table.add_row(f"{r['layer']}.{r['direction']}", str(r["input_size"]), str(r["hidden_size"]),
                      *(f"{r['blocks'][n]:,}" for n in names), f"{r['total']:,}")  # fmt: skip
    console.print(table)
    first = layers[0]
    same = first["same_sizes"]
    f, h = first["input_size"], first["hidden_size"]
    if "gate_blocks" not in first:  # a cell after the chapter's: no H x (F + H) blocks (its module's docstring has the formula)
        console.print(
            f"with these sizes (F = {f}, H = {h}) an RNN has {same['rnn']:,}, an LSTM {same['lstm']:,}, a GRU {same['gru']:,}; "
            f"this {cell} layer {first['total']:,}. Whole model: {params['model_total']:,} parameters.",
            soft_wrap=True, highlight=False,
        )  # fmt: skip
        return
    console.print(
        f"each block holds H x (F + H) weights + 2H biases = {h} x ({f} + {h}) + {2 * h} = {h * (f + h) + 2 * h:,}; "
        f"with these sizes an RNN (1 block) has {same['rnn']:,}, an LSTM (4) {same['lstm']:,}, "
        f"a GRU (3) {same['gru']:,} = {same['gru'] / same['lstm']:.0%} of the LSTM. "
        f"Whole model: {params['model_total']:,} parameters.",
        soft_wrap=True, highlight=False,
    )  # fmt: skip
