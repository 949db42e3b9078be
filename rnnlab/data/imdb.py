"""IMDb movie reviews (Maas et al., ACL 2011): find the archive, read it without extracting,
tokenize once into a disk cache, then build the vocabulary and the splits in well under a second.

    python -c "from rnnlab.data.imdb import load_imdb; print(load_imdb())"

Where the data is looked for, first hit wins (each place may hold the archive
`aclImdb_v1.tar.gz`, its extracted `aclImdb/` directory, or be one of those itself):
`data_path` (the task's `data_path`), `$RNNLAB_DATA_DIR`, the user cache directory
(`$XDG_CACHE_HOME/rnnlab`, else `~/.cache/rnnlab`). Found nowhere, the official archive is
downloaded into the cache directory, checked against its MD5.

The disk cache holds the expensive part only, reading and tokenizing the 50,000 labelled
reviews: every review as ids into a corpus-wide word list (all distinct tokens, sorted
alphabetically), its split, label, file id and rating. It does not depend on `vocab_size`,
`val_size`, `seed` or `max_len`, so changing those costs a fraction of a second. The cache file
is `imdb-corpus-<key>.pt` in the cache directory, where the key hashes the cache format, the
tokenizer version and the source's content: for an archive its size and its first and last MiB
(a gzip file ends with the CRC-32 and length of everything it holds, so any change of the
reviews changes the last bytes), for a directory the name, size and mtime of every review file.
A moved or copied archive therefore keeps its cache. The 50,000 unlabelled reviews
(train/unsup/, language-model text only) have a cache of their own, `imdb-unsup-<key>.pt`, built
the first time a language model asks for them (`load_unlabelled`).

From the cache, `load_imdb` carves the validation split out of the official train split
(seeded, stratified by label), counts the vocabulary on the remaining train reviews only, and
maps corpus ids to vocabulary ids with one tensor index. The official test split is left as it
is, for final scoring only.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import itertools
import os
import re
import tarfile
import tempfile
import time
import urllib.request
import zlib
from array import array
from collections import defaultdict
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import torch
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from ..errors import UserError
from ..rundir import write_atomic
from .text import PAD, UNK, UNK_ID, TOKENIZER_VERSION, Vocab, tokenize

__all__ = [
    "IMDB_URL",
    "IMDB_MD5",
    "IMDB_SIZE",
    "ARCHIVE_NAME",
    "LABELS",
    "EncodedSplit",
    "ImdbData",
    "user_cache_dir",
    "find_imdb",
    "same_imdb",
    "download_imdb",
    "iter_reviews",
    "load_imdb",
    "load_unlabelled",
]

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"
IMDB_SIZE = 84_125_825
ARCHIVE_NAME = "aclImdb_v1.tar.gz"
LABELS = ("neg", "pos")  # label id = position

_CACHE_FORMAT = "imdb-corpus-1"
_SPLIT_IDS = {"train": 0, "test": 1}
_UNSUP_ID = 2  # split id of train/unsup/ in the unlabelled corpus; `iter_reviews` names it "unsup"
_LABELLED = tuple((split, label) for split in ("train", "test") for label in LABELS)
# aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt and aclImdb/train/unsup/<id>_0.txt
_MEMBER = re.compile(r"(?:\./)?aclImdb/(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt")
_FILE = re.compile(r"(\d+)_(\d+)\.txt")
# The longest real review is 14 KB; anything far larger is not a review, and not read into memory.
_MAX_REVIEW_BYTES = 1 << 20
_PROGRESS_EVERY = 500  # reviews between progress-bar updates (each costs a lock and a redraw check)

Opener = Callable[[str], Any]  # url -> a response with .read(n); .headers and .close() optional


# --- where the data is ----------------------------------------------------------------------


def user_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/rnnlab`, else `~/.cache/rnnlab`: downloads and the tokenized corpus."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "rnnlab"


def _is_imdb_dir(path: Path) -> bool:
    return (path / "train").is_dir() and (path / "test").is_dir()


def _look_in(place: Path) -> Path | None:
    """The archive or extracted directory that `place` is or holds, else None."""
    if place.is_file():
        return place
    if place.is_dir():
        if _is_imdb_dir(place):
            return place
        if (place / ARCHIVE_NAME).is_file():
            return place / ARCHIVE_NAME
        if _is_imdb_dir(place / "aclImdb"):
            return place / "aclImdb"
    return None


def _where_to_put_it() -> str:
    env = os.environ.get("RNNLAB_DATA_DIR")
    return (
        f"Put {ARCHIVE_NAME} ({IMDB_SIZE:,} bytes, MD5 {IMDB_MD5}, from {IMDB_URL}) or its extracted "
        "aclImdb/ directory in one of:\n"
        "  - any place you name with task.data_path=/path/to/aclImdb_v1.tar.gz\n"
        f"  - the directory named by $RNNLAB_DATA_DIR (now {env or 'unset'})\n"
        f"  - {user_cache_dir()}"
    )


def find_imdb(
    data_path: str | os.PathLike | None = None,
    *,
    download: bool = True,
    url: str | None = None,
    md5: str = IMDB_MD5,
    opener: Opener | None = None,
    console: Console | None = None,
) -> Path:
    """The IMDb archive or `aclImdb/` directory to read; downloads it when it is nowhere.

    A `data_path` the user gave must exist: it is never silently replaced by a download.
    """
    if data_path is not None and str(data_path) != "":
        given = Path(data_path).expanduser()
        if not given.exists():
            raise UserError(
                f"task.data_path={data_path}: no such file or directory; give the IMDb archive "
                f"{ARCHIVE_NAME}, an extracted aclImdb/ directory, or a directory that holds either"
            )
        found = _look_in(given)
        if found is None:
            raise UserError(
                f"task.data_path={data_path}: holds neither {ARCHIVE_NAME} nor an extracted aclImdb/ "
                "directory (one with train/ and test/ inside)"
            )
        return found
    env = os.environ.get("RNNLAB_DATA_DIR")
    for place in ([Path(env).expanduser()] if env else []) + [user_cache_dir()]:
        found = _look_in(place)
        if found is not None:
            return found
    if not download:
        raise UserError(f"the IMDb reviews are not here. {_where_to_put_it()}")
    return download_imdb(user_cache_dir(), url=url, md5=md5, opener=opener, console=console)


def same_imdb(a: str | os.PathLike | None, b: str | os.PathLike | None) -> bool:
    """Whether two `data_path` settings name the same reviews: the same place, or sources with
    the same content key (a moved or copied archive); a place that is not there is no match."""
    if a == b:
        return True
    try:
        found = [find_imdb(p, download=False) for p in (a, b)]
        return found[0].resolve() == found[1].resolve() or _cache_key(found[0]) == _cache_key(found[1])
    except (UserError, OSError, TypeError, ValueError):  # not there, unreadable, or not a path at all
        return False


def _urlopen(url: str) -> Any:
    return urllib.request.urlopen(url, timeout=60)


def download_imdb(
    dest_dir: str | os.PathLike,
    *,
    url: str | None = None,
    md5: str = IMDB_MD5,
    opener: Opener | None = None,
    console: Console | None = None,
) -> Path:
    """Download the archive into `dest_dir`, MD5-checked; a failed download leaves no file.

    `url` defaults to the module's IMDB_URL (read at call time, so tests may patch it);
    `opener(url)` returns the response (tests pass a fake one, or use a file:// URL).
    """
    url = url or IMDB_URL
    dest_dir = Path(dest_dir)
    dest = dest_dir / ARCHIVE_NAME
    console = console or Console(stderr=True)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{ARCHIVE_NAME}.", suffix=".part")
    except OSError as e:
        raise UserError(f"cannot write to {dest_dir} to download the IMDb reviews: {e}. {_where_to_put_it()}") from None
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with os.fdopen(fd, "wb") as out:
            response = (opener or _urlopen)(url)
            try:
                total = _content_length(response)
                columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
                with Progress(*columns, console=console, transient=True) as progress:
                    bar = progress.add_task(f"downloading {ARCHIVE_NAME}", total=total)
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        progress.advance(bar, len(chunk))
            finally:
                getattr(response, "close", lambda: None)()
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != md5:
            raise UserError(
                f"the download from {url} is damaged (MD5 {digest.hexdigest()}, expected {md5}); "
                f"nothing was kept. {_where_to_put_it()}"
            )
        os.replace(tmp, dest)
    except (OSError, ValueError, HTTPException) as e:  # URLError is an OSError; ValueError: bad URL
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"could not download the IMDb reviews from {url}: {_reason(e)}. {_where_to_put_it()}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    console.print(f"downloaded {ARCHIVE_NAME} to {dest}")
    return dest


def _content_length(response: Any) -> int | None:
    try:
        return int(response.headers["Content-Length"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def _reason(e: BaseException) -> str:
    return str(getattr(e, "reason", None) or e) or type(e).__name__


# --- reading reviews ------------------------------------------------------------------------

# One review as read: (split, label, file id, rating, text); split "unsup" has label None.
_Review = tuple[str, "int | None", int, int, str]


def _get_good_copy() -> str:
    return f"get a good copy of {ARCHIVE_NAME} from {IMDB_URL} ({IMDB_SIZE:,} bytes, MD5 {IMDB_MD5})"


def _read_archive(path: Path, unsup: bool, progress: Callable[[int], None] | None = None) -> Iterator[_Review]:
    """Stream the tar.gz once, member by member; nothing is ever written to disk."""
    try:
        raw = open(path, "rb")
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    with raw:
        try:
            with tarfile.open(fileobj=raw, mode="r:gz") as tar:
                count = 0
                for member in tar:
                    name = member.name
                    parts = name.replace("\\", "/").split("/")
                    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:
                        raise UserError(
                            f"{path}: refusing archive member {name!r} (an absolute path or one with '..'); "
                            f"this is not the IMDb archive: {_get_good_copy()}"
                        )
                    m = _MEMBER.fullmatch(name)
                    if m is None or not member.isfile():
                        continue
                    split, kind, rid, rating = m.groups()
                    if kind == "unsup" and (split != "train" or not unsup):
                        continue
                    if member.size > _MAX_REVIEW_BYTES:
                        raise UserError(f"{path}: member {name} has {member.size:,} bytes, not a review; {_get_good_copy()}")
                    text = tar.extractfile(member).read().decode("utf-8", errors="replace")  # type: ignore[union-attr]
                    count += 1
                    if progress is not None and count % _PROGRESS_EVERY == 0:
                        progress(raw.tell())
                    label = None if kind == "unsup" else LABELS.index(kind)
                    yield ("unsup" if kind == "unsup" else split), label, int(rid), int(rating), text
                # Read on to the end of the gzip stream, so that its CRC-32 is checked: a damaged
                # byte that still inflates to plausible text is caught here, not trained on.
                while tar.fileobj.read(1 << 20):  # type: ignore[union-attr]
                    pass
        except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
            raise UserError(
                f"{path} is damaged or truncated ({type(e).__name__}: {e}); {_get_good_copy()}"
            ) from None


def _review_files(root: Path, unsup: bool) -> Iterator[tuple[str, str, Path, re.Match]]:
    """(split, kind, file, name match) of an extracted aclImdb/ directory, in name order."""
    kinds = [(s, k) for s, k in _LABELLED] + ([("train", "unsup")] if unsup else [])
    for split, kind in kinds:
        folder = root / split / kind
        if not folder.is_dir():
            continue  # reported as a missing split by the caller
        with os.scandir(folder) as entries:
            found = sorted((e.name, e) for e in entries)
        for name, entry in found:
            m = _FILE.fullmatch(name)
            if m is not None and entry.is_file():
                yield split, kind, Path(entry.path), m


def _read_directory(root: Path, unsup: bool, progress: Callable[[int], None] | None = None) -> Iterator[_Review]:
    for n, (split, kind, file, m) in enumerate(_review_files(root, unsup), start=1):
        try:
            data = file.read_bytes()
        except OSError as e:
            raise UserError(f"cannot read {file}: {e.strerror or e}") from None
        if progress is not None and n % _PROGRESS_EVERY == 0:
            progress(n)
        label = None if kind == "unsup" else LABELS.index(kind)
        yield ("unsup" if kind == "unsup" else split), label, int(m[1]), int(m[2]), data.decode("utf-8", errors="replace")


def _read(source: Path, *, splits: tuple[str, ...], unsup: bool, progress: Callable[[int], None] | None = None) -> Iterator[_Review]:
    """Reviews of `splits` (and unsup), storage order; a split with no reviews is a UserError."""
    reader = _read_directory if source.is_dir() else _read_archive
    seen: dict[tuple[str, str], int] = defaultdict(int)
    for review in reader(source, unsup, progress):
        split, label = review[0], review[1]
        if split == "unsup" or split in splits:
            seen[(split, "unsup" if label is None else LABELS[label])] += 1
            yield review
    wanted = [(s, k) for s, k in _LABELLED if s in splits] + ([("unsup", "unsup")] if unsup else [])
    missing = [f"aclImdb/{'train/unsup' if s == 'unsup' else f'{s}/{k}'}/" for s, k in wanted if not seen[(s, k)]]
    if missing:
        raise UserError(f"{source}: no reviews in {', '.join(missing)}: the data is incomplete; {_get_good_copy()}")


def iter_reviews(
    data_path: str | os.PathLike | None = None,
    splits: tuple[str, ...] = ("train",),
    include_unsup: bool = False,
    *,
    download: bool = True,
) -> Iterator[tuple[str, int | None, str]]:
    """(split, label, raw text) of every review in `splits`, in storage order; streams, no cache.

    split is "train" or "test" (label 0 = neg, 1 = pos), or "unsup" (label None) for the 50,000
    unlabelled train reviews when `include_unsup`: a language-model corpus.
    """
    bad = [s for s in splits if s not in _SPLIT_IDS]
    if bad:
        raise ValueError(f"splits {bad}: the IMDb archive has {', '.join(_SPLIT_IDS)} (and unsup)")
    source = find_imdb(data_path, download=download)
    for split, label, _, _, text in _read(source, splits=tuple(splits), unsup=include_unsup):
        yield split, label, text


# --- the tokenized corpus and its disk cache -------------------------------------------------


def _cache_key(source: Path, unlabelled: bool = False) -> str:
    h = hashlib.sha256(f"{_CACHE_FORMAT}|{TOKENIZER_VERSION}|".encode())
    try:
        if source.is_dir():
            h.update(b"directory")
            for split, kind, file, _ in _review_files(source, unsup=unlabelled):
                st = file.stat()
                h.update(f"|{split}/{kind}/{file.name}:{st.st_size}:{st.st_mtime_ns}".encode())
        else:
            mib = 1 << 20
            with open(source, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                h.update(f"archive|{size}|".encode())
                h.update(f.read(mib))
                f.seek(max(size - mib, 0))
                h.update(f.read(mib))
    except OSError as e:
        raise UserError(f"cannot read {source}: {e.strerror or e}") from None
    return h.hexdigest()[:24]


def _segments(starts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """int32 indices of the segments [start, start + length) laid back to back.

    A running sum of steps (1 inside a segment, a jump at each segment's first position) is
    a few times faster than repeat_interleave on millions of tokens.
    """
    keep = lengths > 0
    starts, lengths = starts[keep], lengths[keep]
    total = int(lengths.sum())
    if total == 0:
        return torch.zeros(0, dtype=torch.int32)
    if total >= 2**31:
        raise ValueError(f"{total:,} tokens: more than int32 indices can address")
    steps = torch.ones(total, dtype=torch.int32)
    jumps = starts.clone()
    jumps[1:] -= starts[:-1] + lengths[:-1] - 1
    steps[torch.cumsum(lengths, 0) - lengths] = jumps.to(torch.int32)
    return torch.cumsum(steps, 0, dtype=torch.int32)


def _build_corpus(source: Path, console: Console, unlabelled: bool = False) -> dict[str, Any]:
    """Read and tokenize every labelled review (or, with `unlabelled`, the 50,000 of train/unsup/,
    split id 2, label -1): the expensive step the cache saves."""
    word_ids: defaultdict[str, int] = defaultdict(itertools.count().__next__)  # first-seen order
    flat = array("i")
    lengths, splits, labels, ids, ratings = array("q"), array("b"), array("b"), array("q"), array("b")
    start = time.perf_counter()
    total = None if source.is_dir() else source.stat().st_size
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        what = "unlabelled IMDb reviews" if unlabelled else "IMDb reviews"
        bar = progress.add_task(f"tokenizing {what} (once; then cached)", total=total)
        for split, label, rid, rating, text in _read(
            source,
            splits=() if unlabelled else ("train", "test"),
            unsup=unlabelled,
            progress=lambda done: progress.update(bar, completed=done),
        ):
            tokens = tokenize(text)
            flat.extend(map(word_ids.__getitem__, tokens))
            lengths.append(len(tokens))
            splits.append(_SPLIT_IDS.get(split, _UNSUP_ID))
            labels.append(-1 if label is None else label)
            ids.append(rid)
            ratings.append(rating)
    first_seen = list(word_ids)
    alphabetical = sorted(range(len(first_seen)), key=first_seen.__getitem__)
    rank = torch.empty(len(first_seen), dtype=torch.int32)
    rank[torch.tensor(alphabetical, dtype=torch.long)] = torch.arange(len(first_seen), dtype=torch.int32)
    tokens_t = rank[torch.frombuffer(flat, dtype=torch.int32).long()] if len(flat) else torch.zeros(0, dtype=torch.int32)
    lengths_t = torch.frombuffer(lengths, dtype=torch.int64).clone()
    split_t = torch.frombuffer(splits, dtype=torch.int8).long()
    label_t = torch.frombuffer(labels, dtype=torch.int8).long()
    id_t = torch.frombuffer(ids, dtype=torch.int64).clone()
    rating_t = torch.frombuffer(ratings, dtype=torch.int8).long()
    # A fixed review order (split, label, id), whatever the storage order: an archive and its
    # extracted directory give the same corpus, and seeded splits do not depend on the source.
    order = torch.tensor(sorted(range(len(lengths)), key=lambda r: (splits[r], labels[r], ids[r])), dtype=torch.long)
    if len(order):
        starts = torch.cumsum(lengths_t, 0) - lengths_t
        tokens_t = tokens_t.index_select(0, _segments(starts[order], lengths_t[order]))
    console.print(
        f"[dim]tokenized {len(lengths):,} {what} ({len(flat):,} tokens, {len(first_seen):,} distinct) "
        f"from {source} in {time.perf_counter() - start:.1f}s[/]",
        highlight=False,
        soft_wrap=True,
    )
    return {
        "format": _CACHE_FORMAT,
        "tokenizer": TOKENIZER_VERSION,
        "source": str(source),
        # One string (no token holds a newline): unpickling 150k strings takes a second per load.
        "words": "\n".join(first_seen[i] for i in alphabetical),
        "tokens": tokens_t,  # int32 ids into words, reviews back to back
        "lengths": lengths_t[order],
        "split": split_t[order],  # 0 train, 1 test (2 unsup)
        "labels": label_t[order],
        "ids": id_t[order],
        "ratings": rating_t[order],
    }


_CORPUS_KEYS = ("words", "tokens", "lengths", "split", "labels", "ids", "ratings")


def _load_cached(path: Path) -> dict[str, Any] | None:
    try:
        corpus = torch.load(path, weights_only=True)
    except Exception:  # missing, damaged, or not ours: (re)built by the caller
        return None
    ok = (
        isinstance(corpus, dict)
        and corpus.get("format") == _CACHE_FORMAT
        and corpus.get("tokenizer") == TOKENIZER_VERSION
        and all(k in corpus for k in _CORPUS_KEYS)
    )
    return corpus if ok else None


def _corpus(source: Path, cache_dir: Path, console: Console, unlabelled: bool = False) -> dict[str, Any]:
    """The tokenized labelled reviews (or the unlabelled ones: a separate cache, built only when
    a language model asks for them), from the cache or built into it."""
    path = cache_dir / f"imdb-{'unsup' if unlabelled else 'corpus'}-{_cache_key(source, unlabelled)}.pt"
    corpus = _load_cached(path)
    if corpus is not None:
        return corpus
    if path.exists():
        console.print(f"[yellow]the cache {path} is damaged; rebuilding it[/]", highlight=False, soft_wrap=True)
    corpus = _build_corpus(source, console, unlabelled)
    buffer = io.BytesIO()
    torch.save(corpus, buffer)
    try:
        write_atomic(path, buffer.getvalue())
    except OSError as e:  # a read-only cache costs time on the next run, nothing else
        console.print(f"[yellow]could not write the cache {path} ({e}); continuing without it[/]", highlight=False, soft_wrap=True)
    return corpus


# --- splits ready for training ---------------------------------------------------------------


@dataclass
class EncodedSplit:
    """Reviews as vocabulary ids, back to back in one flat tensor (no per-review objects).

    Reviews are ordered by label, then file id: shuffle with a sampler (see bucketing.py).
    """

    tokens: torch.Tensor  # (total,) int32 vocabulary ids
    offsets: torch.Tensor  # (N,) int64 start of review i in `tokens`
    lengths: torch.Tensor  # (N,) int64, each >= 1
    labels: torch.Tensor  # (N,) int64: 0 = neg, 1 = pos
    ids: torch.Tensor  # (N,) int64: <id> of the file <id>_<rating>.txt
    ratings: torch.Tensor  # (N,) int64: 1-4 for neg, 7-10 for pos

    def __len__(self) -> int:
        return self.lengths.numel()

    def review_keys(self, indices: torch.Tensor | None = None) -> torch.Tensor:
        """Which reviews these are, (N,) int64: the file <id>_<rating>.txt and its folder (file
        ids repeat between neg/ and pos/), the same whatever the vocabulary or truncation."""
        idx = slice(None) if indices is None else indices
        return _review_key(self.labels[idx], self.ids[idx])

    def get(self, i: int) -> torch.Tensor:
        """Review i's ids, (L,) long."""
        start = int(self.offsets[i])
        return self.tokens[start : start + int(self.lengths[i])].long()

    def batch(self, indices: list[int] | torch.Tensor, pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(ids (B, T) long padded at the end, lengths (B,), labels (B,)) in one gather."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        lengths = self.lengths[idx]
        width = int(lengths.max()) if len(idx) else 0
        steps = torch.arange(width)
        valid = steps[None, :] < lengths[:, None]  # (B, T)
        where = (self.offsets[idx][:, None] + steps[None, :]).masked_fill_(~valid, 0)
        padded = self.tokens[where].long().masked_fill_(~valid, pad_id)
        return padded, lengths.clone(), self.labels[idx].clone()

    def __repr__(self) -> str:
        n = len(self)
        if n == 0:
            return "EncodedSplit(0 reviews)"
        pos = int(self.labels.sum())
        return f"EncodedSplit({n:,} reviews: {n - pos:,} neg, {pos:,} pos; {self.tokens.numel():,} tokens)"


@dataclass
class ImdbData:
    vocab: Vocab
    train: EncodedSplit
    val: EncodedSplit
    test: EncodedSplit  # for final scoring only
    source: Path

    def split(self, name: str) -> EncodedSplit:
        if name not in ("train", "val", "test"):
            raise ValueError(f"split {name!r}: one of train, val, test")
        return getattr(self, name)

    def __repr__(self) -> str:
        return (
            f"ImdbData(source={str(self.source)!r}, vocab={len(self.vocab):,} tokens,\n"
            f"  train={self.train!r},\n  val={self.val!r},\n  test={self.test!r})"
        )


def _stratified_val(reviews: torch.Tensor, labels: torch.Tensor, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) review indices: each label gives val its share of `val_size`, seeded."""
    n = len(reviews)
    if not 0 <= val_size < n:
        raise UserError(f"val_size={val_size}: the official train split has {n:,} reviews; choose 0 to {n - 1:,}")
    by_label = [reviews[labels[reviews] == k] for k in range(len(LABELS))]
    exact = [val_size * len(members) / n for members in by_label]
    quota = [int(x) for x in exact]
    # Largest remainder: the shares sum to val_size exactly (ties go to the lower label).
    for k in sorted(range(len(exact)), key=lambda k: (quota[k] - exact[k], k))[: val_size - sum(quota)]:
        quota[k] += 1
    g = torch.Generator().manual_seed(seed)
    val_parts, train_parts = [], []
    for k, members in enumerate(by_label):
        if quota[k] >= len(members):
            raise UserError(f"val_size={val_size} leaves no {LABELS[k]} review to train on; choose a smaller val_size")
        perm = torch.randperm(len(members), generator=g)
        val_parts.append(members[perm[: quota[k]]])
        train_parts.append(members[perm[quota[k] :]])
    return torch.sort(torch.cat(train_parts)).values, torch.sort(torch.cat(val_parts)).values


def _encode_split(
    corpus: dict[str, Any],
    reviews: torch.Tensor,
    starts: torch.Tensor,
    mapping: torch.Tensor,
    max_len: int | None,
    truncation: str,
) -> EncodedSplit:
    """One split, truncated as `text.truncate` does, mapped to vocabulary ids in one gather."""
    full = corpus["lengths"][reviews]
    kept = full.clamp(max=max_len) if max_len is not None else full
    head = kept if truncation == "head" or max_len is None else kept.clamp(max=max_len - max_len // 2)
    tail = kept - head
    # Every review is two segments of the corpus, its head and its tail (empty unless head_tail).
    start = starts[reviews]
    index = _segments(torch.stack([start, start + full - tail], 1).flatten(), torch.stack([head, tail], 1).flatten())
    tokens = mapping.index_select(0, corpus["tokens"].index_select(0, index))
    lengths = kept.clamp(min=1)
    empty = (full == 0).nonzero().squeeze(1)
    if len(empty):  # an empty review becomes one <unk>, so that no length is 0
        offsets = torch.cumsum(kept, 0) - kept
        tokens = _insert(tokens, offsets[empty], UNK_ID)
    return EncodedSplit(
        tokens=tokens,
        offsets=torch.cumsum(lengths, 0) - lengths,
        lengths=lengths,
        labels=corpus["labels"][reviews],
        ids=corpus["ids"][reviews],
        ratings=corpus["ratings"][reviews],
    )


def _insert(values: torch.Tensor, positions: torch.Tensor, value: int) -> torch.Tensor:
    """`values` with `value` inserted before each of the sorted `positions`."""
    out = torch.full((len(values) + len(positions),), value, dtype=values.dtype)
    keep = torch.ones(len(out), dtype=torch.bool)
    keep[positions + torch.arange(len(positions))] = False
    out[keep] = values
    return out


def load_imdb(
    data_path: str | os.PathLike | None = None,
    *,
    vocab_size: int = 10_000,
    max_len: int | None = None,
    truncation: Literal["head", "head_tail"] = "head",
    val_size: int = 2_500,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    console: Console | None = None,
    download: bool = True,
) -> ImdbData:
    """Train/val/test splits of IMDb as vocabulary ids, plus the vocabulary.

    vocab_size counts `<pad>` and `<unk>`; the vocabulary is smaller when the training reviews
    have fewer distinct tokens. max_len keeps the first max_len tokens ("head") or the first
    ceil(max_len/2) and the last floor(max_len/2) ("head_tail"). val_size reviews are taken
    from the official train split, each label in proportion to its share (seeded by `seed`).
    """
    if vocab_size < 2:
        raise ValueError(f"vocab_size={vocab_size}: needs room for {PAD} and {UNK} (at least 2)")
    if max_len is not None and max_len < 1:
        raise ValueError(f"max_len={max_len}: at least 1, or None for whole reviews")
    if truncation not in ("head", "head_tail"):
        raise ValueError(f"truncation={truncation!r}: one of 'head', 'head_tail'")
    console = console or Console(stderr=True)
    source = find_imdb(data_path, download=download, console=console)
    corpus = _corpus(source, Path(cache_dir) if cache_dir is not None else user_cache_dir(), console)

    words: list[str] = corpus["words"].split("\n") if corpus["words"] else []
    tokens: torch.Tensor = corpus["tokens"]
    lengths: torch.Tensor = corpus["lengths"]
    starts = torch.cumsum(lengths, 0) - lengths
    train, val = _stratified_val((corpus["split"] == 0).nonzero().squeeze(1), corpus["labels"], val_size, seed)
    test = (corpus["split"] == 1).nonzero().squeeze(1)

    # Count whole reviews of the remaining train split only: val and test stay unseen, and the
    # vocabulary does not depend on max_len.
    counts = torch.bincount(tokens.index_select(0, _segments(starts[train], lengths[train])), minlength=len(words))
    for special in (PAD, UNK):  # "<pad>"/"<unk>" written in a review are unknown words
        i = bisect.bisect_left(words, special)
        if i < len(words) and words[i] == special:
            counts[i] = 0
    # words are sorted alphabetically and the sort is stable: ties go alphabetically (as Vocab.build).
    ranked = torch.sort(counts, descending=True, stable=True).indices
    top = ranked[: min(vocab_size - 2, int((counts > 0).sum()))]
    vocab = Vocab([PAD, UNK, *(words[i] for i in top.tolist())])
    mapping = torch.full((len(words),), UNK_ID, dtype=torch.int32)
    mapping[top] = torch.arange(2, len(top) + 2, dtype=torch.int32)

    return ImdbData(
        vocab=vocab,
        train=_encode_split(corpus, train, starts, mapping, max_len, truncation),
        val=_encode_split(corpus, val, starts, mapping, max_len, truncation),
        test=_encode_split(corpus, test, starts, mapping, max_len, truncation),
        source=source,
    )


def load_unlabelled(
    data_path: str | os.PathLike | None,
    vocab: Vocab,
    *,
    held_out: ImdbData | None = None,
    cache_dir: str | os.PathLike | None = None,
    console: Console | None = None,
    download: bool = True,
) -> EncodedSplit:
    """The archive's 50,000 unlabelled reviews (train/unsup/) as ids of `vocab` (labels -1): more
    text for a language model. Tokenized once into a cache of their own, like the labelled ones.

    With `held_out` (the classifier's splits), every unlabelled review whose normalised text (its
    tokens, as `tokenize` gives them) is that of one of its validation or test reviews is left
    out, and a line says how many: train/unsup/ holds such twins (on the real archive, seed 0 and
    val_size 2,500: 309, 39 of them twins of 37 validation reviews and 270 of 269 test reviews),
    and a language model that read them would have read text its classifier is chosen and scored on."""
    console = console or Console(stderr=True)
    source = find_imdb(data_path, download=download, console=console)
    cache = Path(cache_dir) if cache_dir is not None else user_cache_dir()
    corpus = _corpus(source, cache, console, unlabelled=True)
    words: list[str] = corpus["words"].split("\n") if corpus["words"] else []
    # "<pad>" written in a review is an unknown word, as Vocab.encode has it.
    mapping = torch.tensor(vocab.encode(words), dtype=torch.int32)
    lengths: torch.Tensor = corpus["lengths"]
    keep = torch.arange(len(lengths))
    if held_out is not None:
        labelled = _corpus(held_out.source, cache, console)
        twin_of_val, twin_of_test = _twins(
            corpus, labelled, [_rows_of(labelled, _SPLIT_IDS["train"], held_out.val), _rows_of(labelled, _SPLIT_IDS["test"], held_out.test)]
        )
        dropped = twin_of_val | twin_of_test
        keep = (~dropped).nonzero().squeeze(1)
        console.print(
            f"left out {int(dropped.sum()):,} of the {len(lengths):,} unlabelled reviews: the same text as a validation "
            f"review ({int(twin_of_val.sum()):,}) or a test review ({int(twin_of_test.sum()):,})",
            highlight=False,
            soft_wrap=True,
        )
    return _encode_split(corpus, keep, torch.cumsum(lengths, 0) - lengths, mapping, None, "head")


def _rows_of(corpus: dict[str, Any], split_id: int, split: EncodedSplit) -> torch.Tensor:
    """The corpus rows of `split`'s reviews, found by (official split, label, file id)."""
    rows = (corpus["split"] == split_id).nonzero().squeeze(1)
    return rows[torch.isin(_review_key(corpus["labels"][rows], corpus["ids"][rows]), split.review_keys())]


def _review_key(labels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    return ids * len(LABELS) + labels


def _word_hashes(corpus: dict[str, Any]) -> tuple[list[str], torch.Tensor]:
    words = corpus["words"].split("\n") if corpus["words"] else []
    hashes = [int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little", signed=True) for w in words]
    return words, torch.tensor(hashes, dtype=torch.int64)


def _fingerprints(corpus: dict[str, Any], rows: torch.Tensor, word_hash: torch.Tensor) -> torch.Tensor:
    """(len(rows),) int64: a hash of each review's token sequence, built from its words' text, so
    that two corpora with different word lists compare. Integer overflow wraps, the same way on
    both sides; equal texts give equal fingerprints, and `_twins` confirms each match word by word."""
    lengths = corpus["lengths"][rows]
    starts = (torch.cumsum(corpus["lengths"], 0) - corpus["lengths"])[rows]
    tokens = word_hash[corpus["tokens"].index_select(0, _segments(starts, lengths)).long()]
    review = torch.repeat_interleave(torch.arange(len(rows)), lengths)
    position = torch.arange(len(tokens)) - (torch.cumsum(lengths, 0) - lengths)[review]
    mixed = tokens * (2 * position + 1) + position  # order matters: a permutation is another text
    return torch.zeros(len(rows), dtype=torch.int64).index_add_(0, review, mixed) ^ lengths


def _twins(corpus: dict[str, Any], other: dict[str, Any], groups: list[torch.Tensor]) -> list[torch.Tensor]:
    """For each group of `other`'s rows, (reviews of `corpus`,) bool: whose tokens, word for word,
    are those of a review of that group. Empty reviews have no text to share: nobody's twin."""
    words, word_hash = _word_hashes(corpus)
    other_words, other_hash = _word_hashes(other)
    mine = _fingerprints(corpus, torch.arange(len(corpus["lengths"])), word_hash)

    def text(c: dict[str, Any], names: list[str], row: int) -> list[str]:
        start = int(c["lengths"][:row].sum())
        return [names[t] for t in c["tokens"][start : start + int(c["lengths"][row])].tolist()]

    found = []
    for rows in groups:
        theirs = _fingerprints(other, rows, other_hash)
        by_print: defaultdict[int, list[int]] = defaultdict(list)
        for row, fp in zip(rows.tolist(), theirs.tolist()):
            by_print[fp].append(row)
        out = torch.zeros(len(mine), dtype=torch.bool)
        for i in torch.isin(mine, theirs).nonzero().squeeze(1).tolist():
            if int(corpus["lengths"][i]) > 0:
                own = text(corpus, words, i)
                out[i] = any(text(other, other_words, r) == own for r in by_print[int(mine[i])])
        found.append(out)
    return found
