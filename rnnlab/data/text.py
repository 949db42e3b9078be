r"""Tokenizer and vocabulary for text tasks (IMDb reviews).

    python -c "from rnnlab.data.text import tokenize; print(tokenize('A <br />great film, isn\'t it?'))"

`tokenize` is torchtext's `get_tokenizer("basic_english")` without the torchtext dependency,
plus one step in front: every `<br>`, `<br/>` and `<br />` tag becomes a space. Exactly,

    tokenize(s) == torchtext_basic_english(re.sub(r"<br\s*/?>", " ", s.lower()))

for every string `s` (a property test checks it against a transcription of torchtext's rules).
On IMDb the two tokenizers agree on every review, because its only line-break tag is `<br />`,
which torchtext's own rules already replace. torchtext's rules, applied in order after
lower-casing (regex -> replacement):

    \'  -> " '  "     \"  -> ""      \.  -> " . "    <br \/> -> " "    ,  -> " , "
    \(  -> " ( "      \)  -> " ) "    \!  -> " ! "    \?  -> " ? "
    \;  -> " "        \:  -> " "      \s+ -> " "      then split on whitespace

Here they are chained `str.replace` calls (about twice as fast as the twelve regex passes, which
matters for 100k reviews): each rule touches one character that no other rule inserts, so
their order does not change the result, except that `"` must go before `<br />` is matched
(`<br "/>` is a line break to torchtext too).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import torch

from ..errors import UserError

__all__ = ["tokenize", "truncate", "TOKENIZER_VERSION", "Vocab", "PAD", "UNK", "PAD_ID", "UNK_ID"]

# Part of the key of every cache of tokenized text: change it whenever `tokenize` changes output.
TOKENIZER_VERSION = "basic_english+br-1"

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1

_BR = re.compile(r"<br\s*/?>")


def tokenize(text: str) -> list[str]:
    """torchtext's basic_english tokens of `text`, with `<br>`/`<br/>`/`<br />` as spaces."""
    text = text.lower()
    if "<br" in text:
        text = _BR.sub(" ", text)
    text = text.replace('"', "").replace("<br />", " ")
    return (
        text.replace("'", " ' ")
        .replace(".", " . ")
        .replace(",", " , ")
        .replace("(", " ( ")
        .replace(")", " ) ")
        .replace("!", " ! ")
        .replace("?", " ? ")
        .replace(";", " ")
        .replace(":", " ")
        .split()
    )


def truncate(items: list, max_len: int | None, truncation: str = "head") -> list:
    """At most max_len items: the first ("head"), or the first ceil(max_len/2) and the last
    floor(max_len/2) ("head_tail", which keeps a review's closing verdict). The IMDb loader
    truncates by the same rule, so text encoded at prediction time matches training."""
    if max_len is None or len(items) <= max_len:
        return items
    if truncation == "head":
        return items[:max_len]
    if truncation == "head_tail":
        tail = max_len // 2
        return items[: max_len - tail] + (items[len(items) - tail :] if tail else [])
    raise ValueError(f"truncation={truncation!r}: one of 'head', 'head_tail'")


class Vocab:
    """Token <-> id. `<pad>` is 0, `<unk>` is 1, then tokens from most to least frequent.

    Ties in frequency are broken alphabetically (Python string order), so the same counts give
    the same vocabulary whatever order the texts came in. Text that reads `<pad>` encodes to
    `<unk>`: id 0 only ever means padding.
    """

    def __init__(self, itos: list[str]):
        if list(itos[:2]) != [PAD, UNK]:
            raise ValueError(f"a vocabulary starts with {PAD!r}, {UNK!r}; got {list(itos[:2])!r}")
        self.itos = list(itos)
        self._stoi = {token: i for i, token in enumerate(self.itos)}
        if len(self._stoi) != len(self.itos):
            raise ValueError("a vocabulary lists each token once")
        del self._stoi[PAD]

    pad_id = PAD_ID
    unk_id = UNK_ID

    @classmethod
    def build(cls, counts: Mapping[str, int], vocab_size: int) -> "Vocab":
        """The `vocab_size - 2` most frequent tokens of `counts` after the two specials."""
        if vocab_size < 2:
            raise ValueError(f"vocab_size={vocab_size}: needs room for {PAD} and {UNK} (at least 2)")
        ranked = sorted((t for t in counts if t not in (PAD, UNK)), key=lambda t: (-counts[t], t))
        return cls([PAD, UNK, *ranked[: vocab_size - 2]])

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens: {', '.join(self.itos[:6])}, ...)"

    def encode(self, tokens: Iterable[str]) -> list[int]:
        get = self._stoi.get
        return [get(t, UNK_ID) for t in tokens]

    def decode(self, ids: Iterable[int] | torch.Tensor) -> list[str]:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        out = []
        for i in ids:
            if not 0 <= i < len(self.itos):
                raise ValueError(f"id {i} is outside the vocabulary (0..{len(self.itos) - 1})")
            out.append(self.itos[i])
        return out

    def to_state(self) -> list[str]:
        """A plain list of str: loads back with `torch.load(..., weights_only=True)`."""
        return list(self.itos)

    @classmethod
    def from_state(cls, state: list[str]) -> "Vocab":
        if not isinstance(state, list) or not all(isinstance(t, str) for t in state):
            raise UserError("the checkpoint's vocabulary is not a list of tokens: the file is damaged or not from rnnlab")
        try:
            return cls(state)
        except ValueError as e:
            raise UserError(f"the checkpoint's vocabulary is damaged: {e}") from None
