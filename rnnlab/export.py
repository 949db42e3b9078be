"""A trained text classifier out of rnnlab: an ONNX or TorchScript model, and a JSON with what
inference needs (vocabulary, tokenizer, labels, truncation). docs/export.md shows how to serve it.

    rnnlab export runs/20261124-093000-imdb_bilstm --format onnx
    rnnlab predict --onnx runs/20261124-093000-imdb_bilstm/export/onnx/model.onnx "a great film"

The exported model takes `tokens` (batch, time) int64, padded at the end with `pad_id`, and
`lengths` (batch,) int64, each >= 1; batch and time are dynamic. It gives `logits` (batch,
classes), those of rnnlab's own evaluation: RecurrentNet's padded-batch forward already reverses
the backward direction within each length with an index gather, not with packed sequences (which
exporters handle badly: pytorch#41774, #62240), so it exports as it is, with the legacy
TorchScript-based ONNX exporter (`dynamo=False`). The newer dynamo exporter (torch 2.13) bakes the
traced sequence length into a reshape of the recurrent layer, so its model fails on any other
length (the dynamic time axis is lost, cf. pytorch#191855). Max pooling is rewritten with a mask
and amax (the training version is an autograd.Function that neither exporter can follow).
Every export is checked before it is kept: the written file, loaded back, must give rnnlab's
logits on a batch of other sizes (lengths from 1 to the maximum) to 1e-4.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import __version__
from .contract import ClassifiesText
from .data.text import TOKENIZER_VERSION
from .errors import UserError

__all__ = ["FORMATS", "TOKENIZER_STEPS", "InferenceGraph", "export_run", "encode", "load_metadata", "onnx_session", "onnx_logits"]

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
# Fixed rather than torch's default (20 in torch 2.13, moving with each release), so that the
# files run on onnxruntime >= 1.14 whatever torch wrote them.
ONNX_OPSET = 17
INSTALL_HINT = "install the export extra: pip install 'rnnlab[export]' (onnx, onnxruntime)"

# data/text.py's `tokenize` as data, applied in order, then split on whitespace, so that a
# program without rnnlab can tokenize (tests/test_export.py checks that both agree).
TOKENIZER_STEPS: list[list[str]] = [
    ["lower"],
    ["regex", r"<br\s*/?>", " "],
    ["replace", '"', ""],
    ["replace", "<br />", " "],
    *[["replace", c, f" {c} "] for c in "'.,()!?"],
    ["replace", ";", " "],
    ["replace", ":", " "],
]


class ExportFault(UserError):
    """The export was written but does not answer as rnnlab does: a fault, not the user's mistake."""

    exit_code = 1


class InferenceGraph(nn.Module):
    """(tokens (B, T), lengths (B,)) -> logits (B, C) in float32: the model's evaluation forward,
    in operations both exporters can follow."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        from .models.recurrent import RecurrentNet

        m = self.model
        if not isinstance(m, RecurrentNet) or m.cfg.pooling != "max":
            return m(tokens, lengths).float()
        out = m.encode(m.embed(tokens), lengths)  # (B, T, D)
        real = torch.arange(out.size(1), device=out.device).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
        return m.head(out.masked_fill(~real.unsqueeze(-1), float("-inf")).amax(1)).float()


def _batch(vocab_size: int, lengths: list[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random known tokens (ids 2..vocab-1), padded at the end with 0."""
    g = torch.Generator().manual_seed(seed)
    lens = torch.tensor(lengths)
    tokens = torch.randint(2, max(vocab_size, 3), (len(lengths), max(lengths)), generator=g)
    return tokens * (torch.arange(max(lengths)) < lens.unsqueeze(1)), lens


# PyTorch's own recurrent kernels, which both exporters know; the cells after the chapter's loop in Python.
EXPORTABLE_CELLS = ("rnn", "lstm", "gru")
EXPORTABLE_MODELS = ("rnn", "lstm", "gru", "bilstm", "bigru")


def export_run(run: Path, fmt: str, out: Path | None = None) -> tuple[Path, Path, float]:
    """Write RUN's best model as `fmt` to `out` (default RUN/export/<fmt>/model.<ext>) and the JSON
    beside it (same name, .json); returns both paths and the check's largest |difference|."""
    from .engine import load_run_model
    from .models.recurrent import RecurrentNet

    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: use onnx or torchscript")
    out = Path(out) if out is not None else Path(run) / "export" / fmt / f"model{FORMATS[fmt]}"
    if out.is_dir() or not out.suffix:  # --out DIR or DIR/: the model goes inside, under its default name
        out = out / f"model{FORMATS[fmt]}"
    meta_path = out.with_suffix(".json")
    if out.suffix == ".json":
        raise UserError(f"--out {out}: that is where the JSON goes; name the model file, e.g. model{FORMATS[fmt]}")
    for path in (out, meta_path):
        if path.exists():
            raise UserError(f"{path} exists; an export is never overwritten: remove it, or pass --out ANOTHER{FORMATS[fmt]}")
    if fmt == "onnx":
        _require_onnx()  # before any work
    cfg, task, model, _ = load_run_model(Path(run), torch.device("cpu"))
    if not isinstance(task, ClassifiesText) or getattr(task, "vocab", None) is None:
        raise UserError(f"{run}: task '{cfg.task.name}' does not classify text; export handles text classifiers (e.g. configs/imdb_bilstm.yaml)")
    model = model.float().eval()
    if isinstance(model, RecurrentNet) and model.cell not in EXPORTABLE_CELLS:
        raise UserError(f"{run}: model '{cfg.model.name}' ({model.cell} cells) cannot be exported yet: its steps are a Python "
                        f"loop (or complex numbers) that ONNX and TorchScript tracing cannot follow; export runs of "
                        f"{', '.join(EXPORTABLE_MODELS)} or bow")  # fmt: skip
    if isinstance(model, RecurrentNet) and model.cfg.implementation == "reference":
        model.use_implementation("fused")  # PyTorch's kernels: no Python loop over steps to unroll
    graph = InferenceGraph(model).eval()
    vocab = task.vocab
    example = _batch(len(vocab), [5, 1, 3], seed=0)
    made = [d for d in (out.parent, *out.parent.parents) if not d.exists()]  # deepest first
    out.parent.mkdir(parents=True, exist_ok=True)

    def remove() -> None:  # a failed export leaves the run directory as it was
        out.unlink(missing_ok=True)
        for d in made:
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()

    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and LSTM batch-size notes
            if fmt == "onnx":
                torch.onnx.export(
                    graph, example, str(out), dynamo=False, opset_version=ONNX_OPSET, input_names=["tokens", "lengths"], output_names=["logits"],
                    dynamic_axes={"tokens": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "logits": {0: "batch"}},
                )  # fmt: skip
            else:
                torch.jit.trace(graph, example, check_trace=False).save(str(out))
        diff = _check(graph, out, fmt, len(vocab))
    except BaseException as e:
        remove()
        from .plugins import blame

        if not isinstance(e, Exception) or blame(e) is not None:
            raise  # Ctrl-C; or a plugin's own line, which the CLI names
        raise ExportFault(f"the {fmt} exporter cannot follow model '{cfg.model.name}': {str(e).strip().splitlines()[0][:300]}") from None
    if not diff <= 1e-4:
        remove()
        how = "fails on" if diff == float("inf") else f"gives other logits than rnnlab (by up to {diff:.3g}) on"
        raise ExportFault(
            f"the exported model {how} batches of other sizes and lengths than the traced one; model "
            f"'{cfg.model.name}' has steps the exporter cannot follow, such as a Python loop over time steps "
            "(a plugin cell), which tracing unrolls to one length"
        )
    task_cfg = cfg.task
    meta = {
        "rnnlab_version": __version__,
        "format": fmt,
        "model_file": out.name,
        "run": str(run),
        "task": task_cfg.name,
        "model": cfg.model.name,
        "inputs": {
            "tokens": "int64 (batch, time): token ids, padded at the end with pad_id",
            "lengths": "int64 (batch,): each text's number of tokens, >= 1",
        },
        "outputs": {"logits": "float32 (batch, classes); softmax gives the probabilities of `labels`"},
        # float32 throughout; rnnlab itself evaluates a run of train.precision=auto in bf16 on a CPU
        # or GPU that computes bf16 natively, whose probabilities differ in the third decimal or so.
        "precision": "float32",
        "labels": list(task.labels),
        "tokenizer": {"name": TOKENIZER_VERSION, "steps": TOKENIZER_STEPS, "then": "split on whitespace"},
        "vocab": list(vocab.itos),
        "pad_id": vocab.pad_id,
        "unk_id": vocab.unk_id,
        "max_len": getattr(task_cfg, "max_len", None),
        "truncation": getattr(task_cfg, "truncation", "head"),
        "checked_max_abs_diff": diff,
    }
    meta_path.write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out, meta_path, diff


def _check(graph: InferenceGraph, path: Path, fmt: str, vocab_size: int) -> float:
    """The largest |logit difference| between the file, loaded back, and rnnlab on a batch of
    another size and other lengths than the traced one (from 1 to the maximum)."""
    tokens, lengths = _batch(vocab_size, [9, 1, 4, 7], seed=1)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation note
        want = graph(tokens, lengths)
        try:
            if fmt == "onnx":
                got = torch.from_numpy(onnx_logits(onnx_session(path, quiet=True), tokens.numpy(), lengths.numpy()))
            else:
                got = torch.jit.load(str(path))(tokens, lengths)
        except Exception:  # e.g. a shape fixed at the traced length: as wrong as other numbers
            return float("inf")
    return float((got - want).abs().max())


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401  (the exporter writes through it)
        import onnxruntime  # noqa: F401  (every export is checked on it)
    except ImportError as e:
        raise UserError(f"{e.name} is not installed; {INSTALL_HINT}") from None


# --- serving, with the JSON alone (what docs/export.md's snippet does) -----------------------------
def load_metadata(model_path: Path) -> dict[str, Any]:
    meta_path = Path(model_path).with_suffix(".json")
    if not Path(model_path).is_file():
        raise UserError(f"{model_path}: no such file; write one with: rnnlab export RUN --format onnx")
    try:
        return json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{meta_path}: missing; rnnlab export writes it beside the model, keep the two together") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{meta_path}: unreadable ({e}); export the run again") from None


def encode(meta: dict[str, Any], texts: list[str], max_tokens: int | None = None) -> tuple[Any, Any]:
    """Texts -> (tokens (B, T) int64, lengths (B,) int64) as numpy arrays, from the JSON alone;
    equal to the task's own encoding."""
    import numpy as np

    stoi = {t: i for i, t in enumerate(meta["vocab"]) if i != meta["pad_id"]}  # text "<pad>" is unknown
    limit = min(x for x in (meta["max_len"], max_tokens, 10**9) if x is not None)
    rows = []
    for text in texts:
        for op, *args in meta["tokenizer"]["steps"]:
            text = text.lower() if op == "lower" else re.sub(args[0], args[1], text) if op == "regex" else text.replace(*args)
        ids = [stoi.get(t, meta["unk_id"]) for t in text.split()] or [meta["unk_id"]]
        if len(ids) > limit:
            tail = limit // 2 if meta["truncation"] == "head_tail" else 0
            ids = ids[: limit - tail] + ids[len(ids) - tail :]
        rows.append(ids)
    tokens = np.full((len(rows), max(map(len, rows))), meta["pad_id"], dtype=np.int64)
    for i, ids in enumerate(rows):
        tokens[i, : len(ids)] = ids
    return tokens, np.array([len(r) for r in rows], dtype=np.int64)


def onnx_session(path: Path, quiet: bool = False) -> Any:
    """An onnxruntime session on the CPU."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError(f"onnxruntime is not installed; {INSTALL_HINT}") from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4 if quiet else 3  # fatal only, or errors too
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own exception types are not importable by name
        raise UserError(f"{path}: not a model onnxruntime can load ({str(e).splitlines()[0][:200]}); export the run again") from None


def onnx_logits(session: Any, tokens: Any, lengths: Any) -> Any:
    return session.run(["logits"], {"tokens": tokens, "lengths": lengths})[0]
