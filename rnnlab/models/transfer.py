"""Starting a model from what was learned elsewhere: another run's layers (`model.init_from`) or
published word vectors (`model.pretrained_embeddings`).

    rnnlab train configs/imdb_bilstm.yaml model.init_from=runs/<language model run>
    rnnlab train configs/imdb_bilstm.yaml model.init_from=runs/<forward LM> model.init_backward_from=runs/<backward LM>
    rnnlab train configs/imdb_bilstm.yaml model.pretrained_embeddings=glove.6B.100d.txt model.embedding_dim=100

Both match words by their text, not by their id: the two vocabularies may differ (a language
model's vocabulary counts other reviews than a classifier's). Layers are matched by name and
shape; the output layer (`head.`, and an attention scorer) belongs to the old task and is never
copied. A layer this model has and the other run lacks (e.g. a bi-LSTM's backward direction from
a one-way language model) keeps its fresh initialisation, and the report says so.

When both runs read IMDb, they must carve the same validation reviews out of the same archive
(same `seed`, `task.val_size`, data): a language model of seed 0 trained on reviews that seed 1's
classifier validates on. A mismatch is refused, naming the settings that differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import load_checkpoint
from ..data.imdb import same_imdb
from ..data.text import Vocab
from ..errors import UserError
from ..rundir import resolve_run

__all__ = ["init_from_run", "load_word_vectors", "apply_word_vectors"]

_TASK_SPECIFIC = ("head.", "attention.")


def _copy_rows(target: torch.Tensor, source: torch.Tensor, vocab: Vocab, source_words: list[str]) -> int:
    """Rows of `source` (indexed by `source_words`) into `target` (indexed by `vocab`), word by
    word; returns how many of the vocabulary's words (padding excluded) were found."""
    where = {w: i for i, w in enumerate(source_words)}
    found = 0
    with torch.no_grad():
        for i, word in enumerate(vocab.itos):
            j = where.get(word)
            if j is None and i > 1:
                j = where.get(word.lower())
            if j is not None:
                target[i] = source[j].to(target.dtype)
                found += i > 1
    return found


def _forward_as_backward(source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A one-way model's layers `layers.<i>.0.*`, renamed as the backward direction `layers.<i>.1.*`."""
    out = {}
    for name, tensor in source.items():
        parts = name.split(".")
        if parts[0] == "layers" and len(parts) > 3 and parts[2] == "0":
            out[".".join([parts[0], parts[1], "1", *parts[3:]])] = tensor
    return out


def _finished_run(path: str | Path, key: str) -> Path:
    path = resolve_run(path, f"{key}: run directory")
    if not (path / "checkpoints" / "best.pt").is_file():
        raise UserError(f"{key} = {path}: no checkpoints/best.pt there; name a finished run directory")
    return path


def _imdb_split(cfg: Any) -> dict[str, Any] | None:
    """What decides which IMDb reviews a run validates on (and so never trains on), or None for a
    run that reads no IMDb review (e.g. a language model of a text file)."""
    task = cfg.get("task") if isinstance(cfg, dict) else None
    if not isinstance(task, dict) or not (task.get("name") == "imdb" or (task.get("name"), task.get("corpus")) == ("next_token", "imdb")):
        return None
    return {"seed": cfg.get("seed"), "task.val_size": task.get("val_size"), "task.data_path": task.get("data_path")}


def _check_same_split(key: str, run_dir: Path, source_cfg: Any, reader: dict[str, Any] | None) -> None:
    """Both runs read IMDb: they must carve the same validation reviews out of the same archive,
    or this run would choose on reviews the other one trained on (a language model of another
    seed reads this seed's validation reviews as training text)."""
    theirs, ours = _imdb_split(source_cfg), _imdb_split(reader)
    if theirs is None or ours is None:
        return
    differ = [k for k in theirs if theirs[k] != ours[k] and not (k == "task.data_path" and same_imdb(theirs[k], ours[k]))]
    if differ:
        def shown(v: Any) -> Any:
            return "unset" if v is None else v  # data_path: then $RNNLAB_DATA_DIR or the cache directory decides

        lines = "\n  - ".join(f"{k}: {shown(theirs[k])} there, {shown(ours[k])} here" for k in differ)
        fix = " ".join(f"{k}={ours[k]}" for k in differ if ours[k] is not None)
        raise UserError(
            f"{key} = {run_dir}: that run split the IMDb reviews otherwise than this one, so some of this run's "
            f"validation reviews would be text it trained on:\n  - {lines}\n  Start from a run trained with this "
            f"run's settings ({fix or 'the same ' + ', '.join(differ)}: e.g. rnnlab train configs/imdb_lm.yaml {fix}), "
            f"or give this run that one's ({' '.join(f'{k}={theirs[k]}' for k in differ if theirs[k] is not None)})"
        )


def init_from_run(
    model: nn.Module, vocab: Vocab | None, run_dir: str | Path, *, backward: bool = False, reader: dict[str, Any] | None = None
) -> tuple[str, list[str]]:
    """Copy the embedding (row by word) and every other matching layer from RUN's best checkpoint;
    with `backward`, only RUN's forward layers, into this model's backward direction. Returns a
    line for the log and the names of the tensors copied. `reader`, the config of the run being
    started: when both runs read IMDb, they must split it alike (same seed, val_size, data)."""
    key = "model.init_backward_from" if backward else "model.init_from"
    run_dir = _finished_run(run_dir, key)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    _check_same_split(key, run_dir, ckpt.get("config"), reader)
    source = _forward_as_backward(ckpt["model"]) if backward else ckpt["model"]
    if backward and not any(n.startswith("layers.") and n.split(".")[2] == "1" for n in model.state_dict()):
        raise UserError(f"{key}: this model has no backward direction; use a bidirectional model (bilstm, bigru)")
    words = (ckpt.get("task_state") or {}).get("vocab")
    target = model.state_dict()
    problems, copied, fresh = [], [], []
    embedding_note = ""
    for name, tensor in source.items():
        if name.startswith(_TASK_SPECIFIC):
            continue
        if name not in target:
            problems.append(f"{name}: this model has no such layer")
        elif name == "embedding.weight" and words is not None and vocab is not None:
            if tensor.shape[1] != target[name].shape[1]:
                problems.append(f"{name}: {tensor.shape[1]} dimensions there, {target[name].shape[1]} here (set model.embedding_dim={tensor.shape[1]})")
            else:
                found = _copy_rows(target[name], tensor, vocab, Vocab.from_state(words).itos)
                embedding_note = f"; embedding rows of {found:,} of {len(vocab) - 2:,} words"
                copied.append(name)
        elif tensor.shape != target[name].shape:
            problems.append(f"{name}: shape {tuple(tensor.shape)} there, {tuple(target[name].shape)} here")
        else:
            target[name].copy_(tensor)
            copied.append(name)
    if problems:
        raise UserError(f"{key} = {run_dir}: its layers do not fit this model:\n  - " + "\n  - ".join(problems)
                        + "\n  Give this model the same sizes (embedding_dim, hidden_size, num_layers) as that run's")  # fmt: skip
    model.load_state_dict(target)
    if backward:
        return f"backward direction initialised from {run_dir}: {len(copied)} tensors", copied
    fresh = [n for n in target if n not in source and not n.startswith(_TASK_SPECIFIC)]
    note = f"initialised from {run_dir}: {len(copied)} tensors{embedding_note}"
    return note + (f"; fresh: {', '.join(sorted({n.rsplit('.', 1)[0] for n in fresh}))}" if fresh else ""), copied


def load_word_vectors(path: str | Path) -> tuple[list[str], torch.Tensor]:
    """(words, vectors) from GloVe/word2vec text ("word v1 v2 ...", an optional "count dim" header
    line) or from `vectors.npy` with `vocab.txt` (one word per line) in a folder."""
    path = Path(path)
    if path.is_dir():
        npy, listing = path / "vectors.npy", path / "vocab.txt"
        if not (npy.is_file() and listing.is_file()):
            raise UserError(f"model.pretrained_embeddings = {path}: a folder must hold vectors.npy and vocab.txt")
        import numpy as np

        vectors = torch.from_numpy(np.load(npy)).float()
        words = listing.read_text(encoding="utf-8").split("\n")[: len(vectors)]
        if len(words) != len(vectors):
            raise UserError(f"{listing}: {len(words):,} words for {len(vectors):,} vectors")
        return words, vectors
    if not path.is_file():
        raise UserError(
            f"model.pretrained_embeddings = {path}: no such file or folder (relative paths start where rnnlab runs). "
            "Word vectors in GloVe/word2vec text format, e.g. glove.6B.50d.txt from glove.6B.zip, or a folder "
            "with vectors.npy and vocab.txt; without internet, in rnnlab's checkout: pip install -e '.[glove]' && "
            "python benchmarks/glove_from_kumo.py glove.6B.50d"
        )
    words, rows, dim = [], [], None
    with path.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            parts = line.rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec's header: count and dimension
            if len(parts) < 2:
                continue
            if dim is None:
                dim = len(parts) - 1
            if len(parts) - 1 != dim:
                raise UserError(f"{path}, line {number}: {len(parts) - 1} numbers where the first line had {dim}")
            try:
                rows.append([float(x) for x in parts[1:]])
            except ValueError:
                raise UserError(f"{path}, line {number}: not 'word number number ...' (GloVe or word2vec text format)") from None
            words.append(parts[0])
    if not words:
        raise UserError(f"{path}: no vectors in it")
    return words, torch.tensor(rows)


def apply_word_vectors(model: nn.Module, vocab: Vocab | None, path: str | Path, freeze: bool) -> str:
    embedding = getattr(model, "embedding", None)
    if embedding is None or vocab is None:
        raise UserError("model.pretrained_embeddings needs a model that embeds words (model.input=embedding) on a task with a vocabulary")
    words, vectors = load_word_vectors(path)
    if vectors.shape[1] != embedding.weight.shape[1]:
        raise UserError(f"{path} has {vectors.shape[1]}-dimensional vectors: set model.embedding_dim={vectors.shape[1]}")
    found = _copy_rows(embedding.weight.data, vectors, vocab, words)
    embedding.weight.requires_grad_(not freeze)
    share = found / max(len(vocab) - 2, 1)
    return f"word vectors from {path}: {found:,} of {len(vocab) - 2:,} words found ({share:.1%}){', frozen' if freeze else ''}"
