"""Universal Dependencies treebanks as tagged sentences, for part-of-speech tagging.

    rnnlab train configs/pos_bilstm.yaml task.treebank=PATH/UD_English-EWT

`find_treebank(folder)` finds the three files of a UD treebank folder (`*-ud-train.conllu`,
`*-ud-dev.conllu`, `*-ud-test.conllu` -> "train", "val", "test"); `read_conllu(path, tag_field)`
reads one of them into `TaggedSentences`: per sentence, its words and their UPOS or XPOS tags.

The fields are parsed by the `conllu` package; this module adds what a user needs when a file is
wrong, which `conllu` does not give: every problem is a `UserError` naming the file and the line.
`conllu` is lenient where a tagger must not be (a line with too few columns is accepted silently,
two spaces count as a column separator), and its exceptions carry no line numbers, so each line's
column count is checked here first and a block `conllu` rejects is re-parsed line by line to find
the culprit.

Format rules (https://universaldependencies.org/format.html) and what is done with them:

- `# ...` comment lines are skipped; sentences are separated by one or more blank lines, and the
  last one may lack its final blank line. A UTF-8 byte order mark and CRLF line ends are tolerated.
- A token line has exactly 10 tab-separated columns; anything else is an error.
- A multi-word token range line (ID `3-4`, e.g. English "don't" or Spanish "del") carries no tag:
  the syntactic words `3` and `4` that follow it ("do" "n't", "de" "el") are the tagged words.
- Empty nodes (ID `5.1`, enhanced dependencies only) are not words of the sentence and are skipped.
- Word IDs must run 1, 2, 3, ... in each sentence; an ID 1 in the middle of a sentence almost
  always means a missing blank line, and the error says so.
- A tag of `_` means "no tag". It is kept as the class `UNTAGGED` ("_") so that words and tags
  stay aligned and the task can mask it out of the loss; but a file in which *no* word has a tag
  in the chosen column (the usual case for XPOS in treebanks without language-specific tags) is an
  error naming the file and suggesting the other column, since training on one class is useless.
"""

from __future__ import annotations

import codecs
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import conllu
from conllu.exceptions import ParseException
from conllu.parser import DEFAULT_FIELD_PARSERS, DEFAULT_FIELDS

from ..errors import UserError

__all__ = ["TAG_FIELDS", "UNTAGGED", "SPLIT_SUFFIXES", "TaggedSentences", "read_conllu", "find_treebank"]

TagField = Literal["upos", "xpos"]
TAG_FIELDS: tuple[str, ...] = ("upos", "xpos")
UNTAGGED = "_"
# Split name used by rnnlab -> the suffix UD gives that file.
SPLIT_SUFFIXES: dict[str, str] = {"train": "-ud-train.conllu", "val": "-ud-dev.conllu", "test": "-ud-test.conllu"}

_N_COLUMNS = len(DEFAULT_FIELDS)
_TAB = "\t"
_COLUMN = {name: i for i, name in enumerate(DEFAULT_FIELDS)}
# A tagger needs no FEATS, DEPS or MISC: leaving them as raw strings makes reading about 30% faster.
# ID and HEAD are still parsed, so a file with broken structure is still refused.
_FIELD_PARSERS = {**DEFAULT_FIELD_PARSERS, **{name: (lambda line, i: line[i]) for name in ("feats", "deps", "misc")}}


@dataclass
class TaggedSentences:
    """One split: `words[i][j]` is tagged `tags[i][j]`; `source` is the file it came from."""

    words: list[list[str]]
    tags: list[list[str]]
    source: str
    tag_field: TagField = "upos"
    sent_ids: list[str | None] = field(default_factory=list)  # `# sent_id` of each sentence, if any

    def __len__(self) -> int:
        return len(self.words)

    @property
    def n_tokens(self) -> int:
        return sum(len(w) for w in self.words)

    def tag_counts(self) -> Counter[str]:
        return Counter(t for sentence in self.tags for t in sentence)

    def __repr__(self) -> str:
        return f"TaggedSentences({len(self)} sentences, {self.n_tokens} words, {self.tag_field} from {self.source})"


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file; give a CoNLL-U file (.conllu)") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory; give one CoNLL-U file, or the folder as task.treebank") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read it: {e.strerror or e}") from None
    # A byte order mark, which some editors write, is not part of the first ID.
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = bom + e.start
        line = data[:offset].count(b"\n") + 1
        raise UserError(
            f"{path}, line {line}: not UTF-8 (byte 0x{data[offset]:02x} at offset {offset}); "
            "CoNLL-U files are UTF-8, re-encode it (e.g. iconv -t UTF-8)"
        ) from None


def _blocks(text: str) -> list[list[tuple[int, str]]]:
    """Sentences as lists of (line number, line), comments included, blank lines dropped."""
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    # split("\n"), not splitlines(): U+0085 and U+2028 are line breaks to splitlines but may
    # occur inside a FORM or MISC value.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.strip() == "":
            if current:
                blocks.append(current)
                current = []
        else:
            current.append((number, line))
    if current:
        blocks.append(current)
    return blocks


def _lines(block: list[tuple[int, str]]) -> str:
    first, last = block[0][0], block[-1][0]
    return f"line {first}" if first == last else f"lines {first}-{last}"


def _check_columns(path: Path, number: int, line: str) -> None:
    columns = line.split(_TAB)
    if len(columns) != _N_COLUMNS:
        hint = " (columns must be separated by tabs, not spaces)" if len(columns) == 1 and " " in line else ""
        raise UserError(
            f"{path}, line {number}: expected {_N_COLUMNS} tab-separated columns "
            f"(ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC), found {len(columns)}{hint}: {line[:80]!r}"
        )
    if "  " in line:
        # conllu splits columns at two spaces as well as at tabs, so it would shift every column after.
        raise UserError(f"{path}, line {number}: two spaces in a row inside a column, which CoNLL-U does not allow: {line[:80]!r}")
    if columns[0] == "" or columns[1] == "":
        raise UserError(f"{path}, line {number}: empty {'ID' if columns[0] == '' else 'FORM'} column: {line[:80]!r}")


def _explain(error: ParseException, line: str) -> str:
    """conllu's message for a bad field, in the words of the format's documentation."""
    match = re.match(r"Failed parsing field '(\w+)'", str(error))
    if match is None or match[1] not in _COLUMN:
        return str(error)
    name = match[1]
    value = line.strip().split(_TAB)[_COLUMN[name]]
    if name == "id":
        return f"ID {value!r} is not a word number (3), a multi-word token range (3-4) or an empty node (3.1)"
    if name == "head":
        return f"HEAD {value!r} is not a word number (0 for the root) or '_'"
    return f"column {name.upper()} {value!r}: {error}"


def _parse_block(path: Path, block: list[tuple[int, str]]) -> conllu.TokenList:
    try:
        return conllu.parse_token_and_metadata(
            "\n".join(line for _, line in block), fields=DEFAULT_FIELDS, field_parsers=_FIELD_PARSERS
        )
    except ParseException:
        pass
    # conllu says what but not where: parse the lines one at a time to find which.
    for number, line in block:
        try:
            conllu.parse_token_and_metadata(line, fields=DEFAULT_FIELDS, field_parsers=_FIELD_PARSERS)
        except ParseException as e:
            raise UserError(f"{path}, line {number}: {_explain(e, line)}: {line[:80]!r}") from None
    raise UserError(f"{path}, {_lines(block)}: conllu cannot parse this sentence")


def read_conllu(path: str | os.PathLike, tag_field: TagField = "upos") -> TaggedSentences:
    """The sentences of a CoNLL-U file with their `tag_field` ("upos" or "xpos") tags.

    Every problem in the file is a UserError naming the file and line (see the module docstring).
    """
    if tag_field not in TAG_FIELDS:
        raise UserError(f"tag_field={tag_field!r}: must be one of {', '.join(TAG_FIELDS)}")
    path = Path(path)
    words: list[list[str]] = []
    tags: list[list[str]] = []
    sent_ids: list[str | None] = []
    for block in _blocks(_read_text(path)):
        token_lines = [(n, line) for n, line in block if not line.startswith("#")]
        if not token_lines:
            continue  # comments only, e.g. a `# newdoc` header between blank lines
        for number, line in token_lines:
            _check_columns(path, number, line)
        sentence = _parse_block(path, block)
        forms: list[str] = []
        labels: list[str] = []
        for token, (number, line) in zip(sentence, token_lines, strict=True):
            token_id = token["id"]
            if isinstance(token_id, tuple):
                # A range `3-4` is the surface token of words 3 and 4, which follow with their own
                # tags; `5.1` is an empty node of the enhanced graph, not a word.
                if token_id[1] == "-" and token_id[0] != len(forms) + 1:
                    raise UserError(
                        f"{path}, line {number}: multi-word token {token_id[0]}-{token_id[2]} "
                        f"should start at word {len(forms) + 1}"
                    )
                continue
            if token_id != len(forms) + 1:
                hint = "; a blank line missing between two sentences?" if token_id == 1 else ""
                raise UserError(
                    f"{path}, line {number}: word ID {line.split(_TAB, 1)[0].strip()!r} where {len(forms) + 1} "
                    f"was expected (IDs run 1, 2, 3, ... in each sentence){hint}"
                )
            forms.append(token["form"])
            # conllu turns an XPOS of `_` into None but keeps a UPOS of `_`: make both mean the same.
            labels.append(token[tag_field] or UNTAGGED)
        if not forms:
            raise UserError(f"{path}, {_lines(block)}: a sentence with no words (only ranges or empty nodes)")
        words.append(forms)
        tags.append(labels)
        sent_ids.append(sentence.metadata.get("sent_id"))
    if not words:
        raise UserError(f"{path}: no sentences; is it a CoNLL-U file?")
    if all(t == UNTAGGED for sentence in tags for t in sentence):
        other = TAG_FIELDS[1 - TAG_FIELDS.index(tag_field)]
        raise UserError(
            f"{path}: no word has a {tag_field.upper()} tag (the column is '_' throughout); "
            f"use tag_field={other} or a treebank annotated with {tag_field.upper()}"
        )
    return TaggedSentences(words=words, tags=tags, source=str(path), tag_field=tag_field, sent_ids=sent_ids)


def find_treebank(folder: str | os.PathLike) -> dict[str, Path]:
    """{"train", "val", "test"} -> the treebank's `*-ud-{train,dev,test}.conllu` files in `folder`."""
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"{folder}: no such folder; give a UD treebank folder such as UD_English-EWT")
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder; give the UD treebank folder that holds the *-ud-*.conllu files")
    try:
        conllu_files = sorted(p for p in folder.iterdir() if p.name.endswith(".conllu") and p.is_file())
    except OSError as e:
        raise UserError(f"{folder}: cannot list it: {e.strerror or e}") from None
    found = {split: [p for p in conllu_files if p.name.endswith(suffix)] for split, suffix in SPLIT_SUFFIXES.items()}
    problems = []
    for split, suffix in SPLIT_SUFFIXES.items():
        if not found[split]:
            problems.append(f"no *{suffix} file (the {split} split)")
        elif len(found[split]) > 1:
            problems.append(f"{len(found[split])} *{suffix} files, expected one: {', '.join(p.name for p in found[split])}")
    if problems:
        listing = ", ".join(p.name for p in conllu_files) or "none"
        expected = ", ".join(f"*{s}" for s in SPLIT_SUFFIXES.values())
        raise UserError(
            f"{folder}: not a UD treebank folder: {'; '.join(problems)}. "
            f"Expected one each of {expected}; .conllu files found: {listing}"
        )
    return {split: paths[0] for split, paths in found.items()}
