"""Next-token language model: the small one-hot LSTM predictor of the shape-fixing note, done right.

    rnnlab train configs/next_token_lstm.yaml
    rnnlab generate runs/<run> --prompt "a a a"

Corpora: `synthetic` (sequences `a a ... a b b ... b EOS`, n a's then n b's; validation and test
hold counts n that training never sees, see `held_out_counts`), any UTF-8 text
file (`task.text_file`), or the IMDb review texts (`imdb`, labels ignored). Word or character
level. Batch-first inputs, targets are the inputs shifted by one, padding goes at the end and
is ignored by the loss; a one-directional network needs no PackedSequence for that.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Literal

import torch
from pydantic import Field, model_validator
from rich.table import Table

from ..config import TaskConfig
from ..contract import IGNORE_INDEX, Batch, GeneratesText, ModelSpec
from ..data.bucketing import pad_batch
from ..data.text import PAD, UNK_ID, Vocab, tokenize
from ..errors import UserError
from ..registry import TASKS
from .base import TokenTask, split_seeds

__all__ = ["NextTokenConfig", "NextTokenTask", "synthetic_sequences", "held_out_counts", "determined_mask", "EOS"]

EOS = "EOS"
_NO_SPACE_BEFORE = frozenset(".,!?;:)'")
_NO_SPACE_AFTER = frozenset("('")


class NextTokenConfig(TaskConfig):
    name: Literal["next_token"] = "next_token"
    corpus: Literal["synthetic", "text_file", "imdb"] = Field("synthetic", description="where the sequences come from")
    level: Literal["word", "char"] = Field("word", description="tokens are words or characters")
    num_sequences: int = Field(2_000, ge=10, le=10_000_000, description="synthetic: how many; imdb: at most this many training chunks")
    min_n: int = Field(1, ge=1, le=10_000, description="synthetic: fewest a's")
    max_n: int = Field(12, ge=1, le=10_000, description="synthetic: most a's")
    text_file: str | None = Field(None, description="corpus text_file: a UTF-8 text file")
    data_path: str | None = Field(None, description="corpus imdb: the archive (see task imdb)")
    seq_len: int = Field(64, ge=2, le=100_000, description="text_file/imdb: tokens per training sequence")
    vocab_size: int = Field(10_000, ge=3, le=1_000_000, description="text_file/imdb: most frequent training tokens")
    reverse: bool = Field(False, description="text_file/imdb: read each text from its end: a backward language model")
    unlabelled: bool = Field(False, description="corpus imdb: also train on the archive's 50,000 unlabelled reviews")
    output_vocab_size: int | None = Field(
        None,
        ge=3,
        description="text_file/imdb: predict only this many most frequent tokens, the rest as <unk> "
        "(the output layer's cost is in proportion: 25,000 words cost 2 s per 8,192 tokens on 2 cores)",
    )
    val_size: int = Field(2_500, ge=2, le=24_000, description="corpus imdb: the validation reviews the IMDb classifier holds out (its val_size, same seed); never trained on here either")
    val_fraction: float = Field(0.1, gt=0, lt=0.5)
    test_fraction: float = Field(0.1, gt=0, lt=0.5)

    @model_validator(mode="after")
    def _check(self) -> "NextTokenConfig":
        if self.min_n > self.max_n:
            raise ValueError(f"min_n ({self.min_n}) must not exceed max_n ({self.max_n})")
        if self.corpus == "synthetic" and self.max_n - self.min_n < 3:
            raise ValueError(
                f"min_n..max_n ({self.min_n}..{self.max_n}) must span at least 4 counts, e.g. max_n={self.min_n + 3}: "
                "training keeps min_n and max_n, validation and test each hold a count of their own"
            )
        if self.corpus == "imdb" and self.level == "char":
            raise ValueError("corpus imdb is read from the word-level cache the classifier uses; use level: word")
        if self.corpus == "text_file" and not self.text_file:
            raise ValueError("corpus text_file needs task.text_file=PATH")
        return self


def synthetic_sequences(count: int, counts: list[int], seed: int) -> list[list[str]]:
    """`a`*n + `b`*n + [EOS], n uniform over `counts` (the note's toy corpus)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        n = rng.choice(counts)
        out.append(["a"] * n + ["b"] * n + [EOS])
    return out


def held_out_counts(min_n: int, max_n: int, val_fraction: float, test_fraction: float, seed: int) -> dict[str, list[int]]:
    """Which counts n each split's sequences have. The corpus has only max_n - min_n + 1 distinct
    sequences, so splitting sequences at random puts every test sequence in training too and
    measures memorising; here validation and test get counts of their own, drawn from inside
    min_n..max_n (training keeps both ends), and measure counting to an n never trained on."""
    inner = list(range(min_n + 1, max_n))
    random.Random(seed).shuffle(inner)
    total = max_n - min_n + 1
    n_test = max(1, math.ceil(total * test_fraction))
    n_val = max(1, math.ceil(total * val_fraction))
    n_test = min(n_test, len(inner) - 1)  # leave at least one count for validation
    n_val = min(n_val, len(inner) - n_test)
    test, val = inner[:n_test], inner[n_test : n_test + n_val]
    train = [min_n, max_n, *inner[n_test + n_val :]]
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def determined_mask(inputs: torch.Tensor, targets: torch.Tensor, b_id: int, eos_id: int) -> torch.Tensor:
    """Positions whose next token the prefix fixes: every `b` after the first, and the EOS.

    Once a `b` has been read, the count of a's says exactly how many b's and then EOS follow.
    """
    return (targets == eos_id) | ((targets == b_id) & (inputs == b_id))


@TASKS.register("next_token", config=NextTokenConfig)
class NextTokenTask(TokenTask, GeneratesText):
    """Predict the next token (word or character): a language model, with generation."""

    cfg: NextTokenConfig
    primary_metric = "accuracy"

    def __init__(self, cfg: NextTokenConfig, **kw: Any):
        super().__init__(cfg, **kw)
        self._splits: dict[str, list[torch.Tensor]] | None = None
        self.start_token: str | None = None

    # --- data -----------------------------------------------------------------------------------
    def _tokenize(self, text: str) -> list[str]:
        if self.cfg.level == "char":
            return list(text.replace("\r\n", "\n"))
        return tokenize(text)

    def _synthetic_splits(self) -> dict[str, list[list[str]]]:
        """Each split from a stream of its own, with counts n of its own (held_out_counts)."""
        c = self.cfg
        seeds = split_seeds(self.seed, ("counts", "train", "val", "test"))
        counts = held_out_counts(c.min_n, c.max_n, c.val_fraction, c.test_fraction, seeds["counts"])
        sizes = {"val": max(1, int(c.num_sequences * c.val_fraction)), "test": max(1, int(c.num_sequences * c.test_fraction))}
        sizes["train"] = c.num_sequences - sizes["val"] - sizes["test"]
        return {name: synthetic_sequences(sizes[name], counts[name], seeds[name]) for name in ("test", "val", "train")}

    def _token_sequences(self) -> list[list[str]]:
        c = self.cfg
        path = Path(c.text_file or "")
        if not path.is_file():
            raise UserError(f"task.text_file = {c.text_file!r}: no such file")
        try:
            tokens = self._reading_order(self._tokenize(path.read_text(encoding="utf-8")))
        except UnicodeDecodeError as e:
            raise UserError(f"task.text_file {path}: not UTF-8 (byte at offset {e.start}); save it as UTF-8") from None
        return self._chunks(tokens)

    def _reading_order(self, tokens: Any) -> Any:
        """A backward language model reads each text from its end (task.reverse)."""
        if not self.cfg.reverse:
            return tokens
        return tokens.flip(0) if isinstance(tokens, torch.Tensor) else tokens[::-1]

    def _chunks(self, tokens: Any) -> list[Any]:
        """Sequences of seq_len + 1 tokens (inputs and the shifted targets); a short tail is kept."""
        size = self.cfg.seq_len + 1
        return [tokens[i : i + size] for i in range(0, len(tokens), self.cfg.seq_len) if len(tokens[i : i + size]) >= 2]

    def _split_by_sequence(self) -> dict[str, list[list[str]]]:
        """Synthetic sequences by count n; the chunks of one text file shuffled, then cut into splits."""
        if self.cfg.corpus == "synthetic":
            return self._synthetic_splits()
        sequences = self._token_sequences()
        if len(sequences) < 10:
            raise UserError(f"corpus {self.cfg.corpus!r} gives only {len(sequences)} sequences; at least 10 are needed")
        order = list(range(len(sequences)))
        random.Random(self.seed + 1).shuffle(order)
        n_val = max(1, int(len(order) * self.cfg.val_fraction))
        n_test = max(1, int(len(order) * self.cfg.test_fraction))
        parts = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
        return {name: [sequences[i] for i in idx] for name, idx in parts.items()}

    def _split_by_review(self) -> tuple[Vocab, dict[str, list[torch.Tensor]]]:
        """IMDb by whole reviews, from the classifier's tokenized cache and with its splits: train
        is the classifier's training reviews (plus the archive's unlabelled ones with
        task.unlabelled), validation a sample of its validation reviews, test a sample of the
        official test reviews; so no chunk of a validation or test review is ever trained on, and
        a classifier started from this model (model.init_from) still chooses on unseen text. The
        vocabulary is the classifier's for the same vocab_size. `num_sequences` caps the training
        chunks; validation and test get whole reviews until they hold their fraction of that many."""
        from ..data.imdb import load_imdb, load_unlabelled

        c = self.cfg
        data = load_imdb(c.data_path, vocab_size=c.vocab_size, val_size=c.val_size, seed=self.seed)
        rng = random.Random(self.seed + 1)

        def chunks(split: Any, cap: int) -> list[torch.Tensor]:
            out: list[torch.Tensor] = []
            order = list(range(len(split)))
            rng.shuffle(order)  # storage order groups the labels; a sample must mix them
            for i in order:
                if len(out) >= cap:
                    break
                out.extend(self._chunks(self._reading_order(split.get(i))))
            return out

        train = [data.train] + ([load_unlabelled(c.data_path, data.vocab, held_out=data)] if c.unlabelled else [])
        parts = {
            "train": [piece for split in train for piece in chunks(split, c.num_sequences)],
            "val": chunks(data.val, max(1, int(c.num_sequences * c.val_fraction))),
            "test": chunks(data.test, max(1, int(c.num_sequences * c.test_fraction))),
        }
        rng.shuffle(parts["train"])
        parts["train"] = parts["train"][: c.num_sequences]
        if len(parts["train"]) < 10:
            raise UserError(f"the IMDb reviews give only {len(parts['train'])} training sequences; at least 10 are needed")
        return data.vocab, parts

    def _prepare(self) -> None:
        if self.cfg.corpus == "imdb":
            vocab, parts = self._split_by_review()
            if self._vocab is not None and self._vocab != vocab:  # a checkpoint's: map onto it
                remap = torch.tensor(self._vocab.encode(vocab.itos))
                remap[0] = 0
                parts = {name: [remap[seq] for seq in seqs] for name, seqs in parts.items()}
            self._splits = {name: [seq.long() for seq in seqs] for name, seqs in parts.items()}
            if self._vocab is None:
                self._vocab = vocab
                first = Counter(int(seq[0]) for seq in self._splits["train"]).most_common(1)[0][0]
                self.start_token = vocab.itos[first]
            return
        parts = self._split_by_sequence()
        if self._vocab is None:  # from the training split only
            counts = Counter(t for seq in parts["train"] for t in seq)
            size = len(counts) + 2 if self.cfg.corpus == "synthetic" else self.cfg.vocab_size
            self._vocab = Vocab.build(counts, size)
            self.start_token = Counter(seq[0] for seq in parts["train"]).most_common(1)[0][0]
        self._splits = {
            name: [torch.tensor(self._vocab.encode(seq), dtype=torch.long) for seq in seqs] for name, seqs in parts.items()
        }

    @property
    def vocab(self) -> Vocab:
        if self._vocab is None:
            self._prepare()
        assert self._vocab is not None
        return self._vocab

    @property
    def splits(self) -> dict[str, list[torch.Tensor]]:
        if self._splits is None:
            self._prepare()
        assert self._splits is not None
        return self._splits

    def train_lengths(self) -> list[int]:
        return [len(s) - 1 for s in self.splits["train"]]

    def train_batch(self, indices: list[int]) -> Batch:
        train = self.splits["train"]
        return self._batch([train[i] for i in indices])

    def model_spec(self) -> ModelSpec:
        n = len(self.vocab)
        return ModelSpec(num_outputs=self.num_outputs, vocab_size=n, per_step=True, causal=True, max_len=self.cfg.seq_len if self.cfg.corpus != "synthetic" else 2 * self.cfg.max_n + 1)

    @property
    def num_outputs(self) -> int:
        """Tokens the model predicts: the vocabulary, or its most frequent output_vocab_size."""
        n = len(self.vocab)
        return min(n, self.cfg.output_vocab_size or n)

    def _batch(self, seqs: list[torch.Tensor]) -> Batch:
        """Inputs are tokens 0..L-2, targets tokens 1..L-1; padding at the end, ignored by the loss.
        A target outside the output vocabulary (ids are by frequency) is predicted as <unk>."""
        inputs, lengths = pad_batch([s[:-1] for s in seqs], pad_id=0)
        targets, _ = pad_batch([s[1:] for s in seqs], pad_id=IGNORE_INDEX)
        if self.num_outputs < len(self.vocab):
            targets = targets.masked_fill(targets >= self.num_outputs, UNK_ID)
        return Batch(inputs, targets, lengths)

    def eval_batches(self, split: str) -> Iterator[Batch]:
        seqs = self.splits[split]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        size = max(self.batch_size, 128)
        for start in range(0, len(order), size):
            yield self._batch([seqs[i] for i in order[start : start + size]])

    # --- checkpoint state: also the usual first token, the default prompt for generation ----------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "start_token": self.start_token}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.start_token = state.get("start_token", self.start_token)

    # --- metrics ------------------------------------------------------------------------------------
    def batch_stats(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        stats = super().batch_stats(logits, batch)
        if self.cfg.corpus == "synthetic":
            vocab = self.vocab
            mask = determined_mask(batch.inputs, batch.targets, vocab.encode(["b"])[0], vocab.encode([EOS])[0])
            stats["determined_correct"] = ((logits.argmax(-1) == batch.targets) & mask).sum()
            stats["determined_count"] = mask.sum()
        return stats

    def summarize(self, stats: dict[str, float]) -> dict[str, Any]:
        out = super().summarize(stats)
        out["perplexity"] = math.exp(min(out["loss"], 50.0))
        if "determined_count" in stats:
            out["determined_accuracy"] = stats["determined_correct"] / max(stats["determined_count"], 1)
        return out

    # --- after training: one test sequence, token by token, as the note prints it -------------------
    def report(self, model: torch.nn.Module, device: torch.device, console: Any) -> None:
        seqs = self.splits["test"]
        seq = max(seqs[: min(len(seqs), 50)], key=len) if self.cfg.corpus == "synthetic" else seqs[0]
        batch = self._batch([seq]).to(device)
        with torch.inference_mode():
            model.eval()
            pred = model(batch.inputs, batch.lengths).argmax(-1)[0].cpu()
        words = self.vocab.decode
        table = Table(title="one test sequence: the model's next-token predictions", title_justify="left")
        for col in ("t", "input", "target", "predicted", ""):
            table.add_column(col)
        shown = min(len(seq) - 1, 40)
        for t in range(shown):
            inp, tgt, prd = words([int(seq[t])])[0], words([int(seq[t + 1])])[0], words([int(pred[t])])[0]
            table.add_row(str(t), repr(inp) if self.cfg.level == "char" else inp, tgt, prd, "[green]✓[/]" if tgt == prd else "[red]✗[/]")
        console.print(table)

    # --- generation ---------------------------------------------------------------------------------
    def prompt_ids(self, prompt: str | None) -> list[int]:
        if prompt is None or not prompt.strip() and self.cfg.level == "word":
            start = self.start_token or self.vocab.itos[2]
            return self.vocab.encode([start])
        tokens = self._tokenize(prompt) if self.cfg.corpus != "synthetic" else prompt.split()
        return self.vocab.encode(tokens) or [UNK_ID]

    def join(self, ids: list[int], after: int | None = None) -> str:
        """Tokens as readable text; `after` (the token before `ids`) lets text be joined piece by
        piece: join(a + b) == join(a) + join(b, after=a[-1])."""
        tokens = [t for t in self.vocab.decode(ids) if t != PAD]
        if self.cfg.level == "char":
            return "".join(tokens)
        prev = self.vocab.decode([after])[0] if after is not None else None
        out = []
        for token in tokens:
            # Undo the tokenizer's spacing for reading: "it ' s good ." -> "it's good."
            glued = prev is None or token in _NO_SPACE_BEFORE or prev in _NO_SPACE_AFTER
            out.append(token if glued else " " + token)
            prev = token
        return "".join(out)

    @property
    def stop_id(self) -> int | None:
        return self.vocab.encode([EOS])[0] if self.cfg.corpus == "synthetic" else None

