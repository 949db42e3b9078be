"""The IMDb data layer: tokenizer, vocabulary, archive reading, disk cache, download, sampler.

    python -m pytest tests/test_imdb_data.py -q
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import urllib.error
from collections import Counter
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

import rnnlab.data.imdb as imdb
from imdb_fixtures import REVIEWS, UNSUP, review_text, write_imdb_archive, write_imdb_tree
from rnnlab.data import (
    BucketBatchSampler,
    Vocab,
    find_imdb,
    iter_reviews,
    load_imdb,
    pad_batch,
    tokenize,
    truncate,
)
from rnnlab.data.text import PAD, UNK
from rnnlab.errors import UserError

REAL_ARCHIVE = Path(__file__).resolve().parents[1].parent / "shared/data/aclImdb_v1.tar.gz"


@pytest.fixture(autouse=True)
def _no_user_dirs(tmp_path, monkeypatch):
    """Never touch ~/.cache or a developer's $RNNLAB_DATA_DIR."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("RNNLAB_DATA_DIR", raising=False)


@pytest.fixture
def quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


@pytest.fixture
def archive(tmp_path) -> Path:
    return write_imdb_archive(tmp_path / "data" / "aclImdb_v1.tar.gz")


def _load(source, tmp_path, quiet, **kw):
    kw.setdefault("val_size", 4)
    kw.setdefault("vocab_size", 1000)
    return load_imdb(source, cache_dir=tmp_path / "cache", console=quiet, **kw)


def _text(split: str, label: int, rid: int) -> str:
    name = ("neg", "pos")[label]
    for i, _, text in REVIEWS[(split, name)]:
        if i == rid:
            return review_text(split, name, i, text)
    raise KeyError((split, label, rid))


# --- tokenizer ---------------------------------------------------------------------------------

# torchtext.data.utils._basic_english_normalize, transcribed: the reference for `tokenize`.
_TT_PATTERNS = [r"\'", r"\"", r"\.", r"<br \/>", r",", r"\(", r"\)", r"\!", r"\?", r"\;", r"\:", r"\s+"]
_TT_REPLACEMENTS = [" '  ", "", " . ", " ", " , ", " ( ", " ) ", " ! ", " ? ", " ", " ", " "]
_TT = [(re.compile(p), r) for p, r in zip(_TT_PATTERNS, _TT_REPLACEMENTS)]


def torchtext_basic_english(line: str) -> list[str]:
    line = line.lower()
    for pattern, replacement in _TT:
        line = pattern.sub(replacement, line)
    return line.split()


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("You can now install TorchText using pip!", ["you", "can", "now", "install", "torchtext", "using", "pip", "!"]),
        ("Hello,World.(yes)", ["hello", ",", "world", ".", "(", "yes", ")"]),
        ("Don't STOP", ["don", "'", "t", "stop"]),
        ("the 'best' film", ["the", "'", "best", "'", "film"]),
        ('He said "wow"', ["he", "said", "wow"]),
        ("One<br /><br />Two<br/>Three<BR>four<br  />five", ["one", "two", "three", "four", "five"]),
        ("a;b:c", ["a", "b", "c"]),
        ("what?!...", ["what", "?", "!", ".", ".", "."]),
        ("tabs\tand\nnewlines  here", ["tabs", "and", "newlines", "here"]),
        ("7/10 - 100% fun & games", ["7/10", "-", "100%", "fun", "&", "games"]),
        ("", []),
        (" \t<br />\n ", []),
    ],
)
def test_tokenize_cases(text, tokens):
    assert tokenize(text) == tokens


_PIECES = st.sampled_from(["<br />", "<br/>", "<br>", "<BR />", "<br", "/>", '"', "'", ".", ",", "(", ")", "!", "?", ";", ":"])
_TEXT = st.lists(st.one_of(_PIECES, st.text(alphabet="aZ é<>/ br\t\n\u00a0", max_size=4)), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_tokenize_is_torchtext_after_br_tags(text):
    assert tokenize(text) == torchtext_basic_english(re.sub(r"<br\s*/?>", " ", text.lower()))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_tokenize_is_torchtext_without_br_tags(text):
    if re.search(r"<br\s*/?>", text.lower()) is None:
        assert tokenize(text) == torchtext_basic_english(text)


# --- vocabulary --------------------------------------------------------------------------------


def test_truncate():
    items = list(range(10))
    assert truncate(items, None) == items and truncate(items, 10, "head_tail") == items
    assert truncate(items, 4) == [0, 1, 2, 3]
    assert truncate(items, 5, "head_tail") == [0, 1, 2, 8, 9]
    assert truncate(items, 1, "head_tail") == [0]
    with pytest.raises(ValueError):
        truncate(items, 3, "middle")


def test_vocab_specials_size_and_ties():
    counts = Counter({"b": 3, "a": 3, "c": 5, "d": 1, "e": 1})
    vocab = Vocab.build(counts, vocab_size=5)
    assert vocab.itos == [PAD, UNK, "c", "a", "b"]  # most frequent first, ties alphabetical
    assert len(vocab) == 5 and vocab.pad_id == 0 and vocab.unk_id == 1
    assert vocab.encode(["c", "zzz", "a", PAD, UNK]) == [2, 1, 3, 1, 1]  # "<pad>" in text is unknown
    assert vocab.decode(torch.tensor([2, 3, 0])) == ["c", "a", PAD]
    assert len(Vocab.build(counts, vocab_size=100)) == 7  # no more than there are tokens
    with pytest.raises(ValueError):
        Vocab.build(counts, vocab_size=1)
    with pytest.raises(ValueError):
        vocab.decode([5])


def test_vocab_state_survives_weights_only_load(tmp_path):
    vocab = Vocab.build(Counter("the cat sat on the mat".split()), 10)
    torch.save({"vocab": vocab.to_state()}, tmp_path / "ckpt.pt")
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert Vocab.from_state(state["vocab"]) == vocab
    for bad in (["the", "cat"], "not a list", [PAD, UNK, "a", "a"], [PAD, UNK, 3]):
        with pytest.raises(UserError):
            Vocab.from_state(bad)


# --- loading -----------------------------------------------------------------------------------


def test_load_splits_vocab_and_ids(archive, tmp_path, quiet):
    data = _load(archive, tmp_path, quiet)
    assert (len(data.train), len(data.val), len(data.test)) == (8, 4, 6)
    assert data.val.labels.tolist().count(0) == data.val.labels.tolist().count(1) == 2  # stratified
    train_keys = {(int(l), int(i)) for l, i in zip(data.train.labels, data.train.ids)}
    val_keys = {(int(l), int(i)) for l, i in zip(data.val.labels, data.val.ids)}
    assert not train_keys & val_keys and len(train_keys | val_keys) == 12
    # The vocabulary is counted on the remaining train reviews only.
    counts = Counter(t for label, rid in train_keys for t in tokenize(_text("train", label, rid)))
    assert data.vocab == Vocab.build(counts, 1000)
    itos = set(data.vocab.itos)
    assert all(f"mktrain{('neg', 'pos')[l]}{i}" in itos for l, i in train_keys)
    assert not any(f"mktrain{('neg', 'pos')[l]}{i}" in itos for l, i in val_keys)
    assert not any(t.startswith("mktest") for t in itos)
    # Every review's ids are its tokens through the vocabulary; an empty review is one <unk>.
    for name, split in (("train", data.train), ("val", data.val), ("test", data.test)):
        for i in range(len(split)):
            text = _text("test" if name == "test" else "train", int(split.labels[i]), int(split.ids[i]))
            assert split.get(i).tolist() == (data.vocab.encode(tokenize(text)) or [1])
            assert split.get(i).dtype == torch.long
    assert data.train.lengths.min() >= 1 and data.val.lengths.min() >= 1
    assert torch.equal(data.train.offsets, torch.cumsum(data.train.lengths, 0) - data.train.lengths)
    assert set(data.train.ratings[data.train.labels == 1].tolist()) <= set(range(7, 11))


def test_empty_review_without_any_token(tmp_path, quiet):
    archive = write_imdb_archive(tmp_path / "a.tar.gz", extra={"aclImdb/test/neg/99_1.txt": b" <br /> "})
    data = _load(archive, tmp_path, quiet, max_len=3, truncation="head_tail")
    i = data.test.ids.tolist().index(99)
    assert data.test.get(i).tolist() == [1]
    assert data.test.lengths.min() == 1


@pytest.mark.parametrize("truncation", ["head", "head_tail"])
def test_max_len_truncation(archive, tmp_path, quiet, truncation):
    full = _load(archive, tmp_path, quiet)
    cut = _load(archive, tmp_path, quiet, max_len=5, truncation=truncation)
    assert cut.vocab == full.vocab  # counted on whole reviews
    for i in range(len(full.train)):
        ids = full.train.get(i).tolist()
        want = ids if len(ids) <= 5 else (ids[:5] if truncation == "head" else ids[:3] + ids[-2:])
        assert cut.train.get(i).tolist() == want == truncate(ids, 5, truncation)
    assert cut.train.lengths.max() == 5


def test_vocab_size_and_seed(archive, tmp_path, quiet):
    small = _load(archive, tmp_path, quiet, vocab_size=10)
    assert len(small.vocab) == 10 and small.vocab.itos[:2] == [PAD, UNK]
    assert small.train.tokens.max() < 10
    picks = {tuple(sorted(_load(archive, tmp_path, quiet, seed=s).val.ids.tolist())) for s in range(6)}
    assert len(picks) > 1  # the seed chooses the validation reviews
    again = _load(archive, tmp_path, quiet, seed=3)
    assert torch.equal(again.val.ids, _load(archive, tmp_path, quiet, seed=3).val.ids)
    with pytest.raises(UserError, match="val_size"):
        _load(archive, tmp_path, quiet, val_size=12)


def test_batch_gathers_padded_reviews(archive, tmp_path, quiet):
    split = _load(archive, tmp_path, quiet).train
    padded, lengths, labels = split.batch([3, 0, 5])
    ref, ref_lengths = pad_batch([split.get(3), split.get(0), split.get(5)])
    assert torch.equal(padded, ref) and torch.equal(lengths, ref_lengths)
    assert labels.tolist() == [int(split.labels[3]), int(split.labels[0]), int(split.labels[5])]


def _assert_same(a, b):
    assert a.vocab == b.vocab
    for name in ("train", "val", "test"):
        x, y = a.split(name), b.split(name)
        for field in ("tokens", "offsets", "lengths", "labels", "ids", "ratings"):
            assert torch.equal(getattr(x, field), getattr(y, field)), (name, field)


def test_archive_and_directory_give_identical_data(archive, tmp_path, quiet):
    tree = write_imdb_tree(tmp_path / "extracted")
    from_archive = _load(archive, tmp_path, quiet)
    _assert_same(from_archive, _load(tree, tmp_path, quiet))
    _assert_same(from_archive, _load(tree.parent, tmp_path, quiet))  # a directory holding aclImdb/
    _assert_same(from_archive, _load(archive.parent, tmp_path, quiet))  # a directory holding the archive


def test_iter_reviews(archive):
    got = list(iter_reviews(archive, splits=("train", "test"), include_unsup=True))
    assert Counter((s, l) for s, l, _ in got) == Counter(
        {("train", 0): 6, ("train", 1): 6, ("test", 0): 3, ("test", 1): 3, ("unsup", None): 2}
    )
    assert sorted(t for s, _, t in got if s == "unsup") == sorted(t for _, t in UNSUP)
    assert {s for s, _, _ in iter_reviews(archive)} == {"train"}


# --- the disk cache ----------------------------------------------------------------------------


def _forbid_reading(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the reviews were read again despite the cache")

    monkeypatch.setattr(imdb, "_read_archive", fail)
    monkeypatch.setattr(imdb, "_read_directory", fail)


def test_second_load_comes_from_the_cache(archive, tmp_path, quiet, monkeypatch):
    first = _load(archive, tmp_path, quiet)
    cached = list((tmp_path / "cache").glob("imdb-corpus-*.pt"))
    assert len(cached) == 1
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]  # no temporary left
    _forbid_reading(monkeypatch)
    _assert_same(first, _load(archive, tmp_path, quiet))
    # other vocab/val/seed/max_len settings come from the same cache too
    other = _load(archive, tmp_path, quiet, vocab_size=20, val_size=2, seed=5, max_len=4)
    assert len(other.val) == 2 and len(other.vocab) == 20
    assert len(list((tmp_path / "cache").glob("imdb-corpus-*.pt"))) == 1


def test_cache_of_a_directory(tmp_path, quiet, monkeypatch):
    tree = write_imdb_tree(tmp_path / "extracted")
    first = _load(tree, tmp_path, quiet)
    _forbid_reading(monkeypatch)
    _assert_same(first, _load(tree, tmp_path, quiet))


def test_changed_archive_gets_a_new_cache(archive, tmp_path, quiet):
    _load(archive, tmp_path, quiet)
    reviews = {**REVIEWS, ("test", "pos"): [(0, 10, "Completely different text.")]}
    write_imdb_archive(archive, reviews)
    data = _load(archive, tmp_path, quiet)
    assert len(data.test) == 4
    assert len(list((tmp_path / "cache").glob("imdb-corpus-*.pt"))) == 2


def test_damaged_cache_is_rebuilt(archive, tmp_path, quiet):
    first = _load(archive, tmp_path, quiet)
    (cached,) = (tmp_path / "cache").glob("imdb-corpus-*.pt")
    cached.write_bytes(b"not a torch file")
    _assert_same(first, _load(archive, tmp_path, quiet))
    assert torch.load(cached, weights_only=True)["format"] == imdb._CACHE_FORMAT


def test_moved_archive_keeps_its_cache(archive, tmp_path, quiet, monkeypatch):
    first = _load(archive, tmp_path, quiet)
    moved = archive.rename(tmp_path / "elsewhere.tar.gz")
    _forbid_reading(monkeypatch)
    _assert_same(first, _load(moved, tmp_path, quiet))


# --- damaged or hostile data -------------------------------------------------------------------


def test_truncated_archive(archive, tmp_path, quiet):
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"damaged or truncated.*aclImdb_v1\.tar\.gz from https://") as e:
        _load(archive, tmp_path, quiet)
    assert str(archive) in str(e.value)


def test_corrupt_bytes(archive, tmp_path, quiet):
    data = bytearray(archive.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0x5A for b in data[middle : middle + 16])
    archive.write_bytes(bytes(data))
    with pytest.raises(UserError, match="damaged or truncated"):
        _load(archive, tmp_path, quiet)


def test_corruption_anywhere_is_a_user_error_or_harmless(archive):
    """Damage at any offset gives a UserError (or, in unused header bytes, the same reviews)."""
    good = bytes(archive.read_bytes())
    expected = sorted(iter_reviews(archive, splits=("train", "test")), key=repr)
    for offset in range(0, len(good), max(1, len(good) // 60)):
        bad = bytearray(good)
        bad[offset : offset + 3] = bytes(b ^ 0xFF for b in bad[offset : offset + 3])
        archive.write_bytes(bytes(bad))
        try:
            got = sorted(iter_reviews(archive, splits=("train", "test")), key=repr)
        except UserError:
            continue
        assert got == expected, f"damage at byte {offset} went unnoticed"


def test_not_an_archive(tmp_path, quiet):
    fake = tmp_path / "aclImdb_v1.tar.gz"
    fake.write_text("hello")
    with pytest.raises(UserError, match="damaged or truncated"):
        _load(fake, tmp_path, quiet)
    plain = tmp_path / "plain.gz"
    plain.write_bytes(gzip.compress(b"just text, not a tar"))
    with pytest.raises(UserError):
        _load(plain, tmp_path, quiet)


def test_missing_split(tmp_path, quiet):
    reviews = {k: v for k, v in REVIEWS.items() if k != ("test", "neg")}
    archive = write_imdb_archive(tmp_path / "a.tar.gz", reviews)
    with pytest.raises(UserError, match=r"no reviews in aclImdb/test/neg/.*incomplete"):
        _load(archive, tmp_path, quiet)
    tree = write_imdb_tree(tmp_path / "x", reviews)
    with pytest.raises(UserError, match=r"aclImdb/test/neg/"):
        _load(tree, tmp_path, quiet)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("name", ["aclImdb/../../evil.txt", "../aclImdb/train/pos/1_9.txt", "/etc/aclImdb/train/pos/1_9.txt"])
def test_hostile_member_names_are_refused(tmp_path, quiet, name):
    archive = write_imdb_archive(tmp_path / "a.tar.gz", extra={name: b"pwned"})
    with pytest.raises(UserError, match="refusing archive member"):
        _load(archive, tmp_path, quiet)
    assert not (tmp_path / "evil.txt").exists()


# --- finding and downloading -------------------------------------------------------------------


def test_missing_data_path_is_an_error_without_download(tmp_path, quiet):
    def opener(url):
        raise AssertionError("must not download when the user named a path")

    with pytest.raises(UserError, match=r"task\.data_path=.*nowhere.*no such file"):
        find_imdb(tmp_path / "nowhere", opener=opener)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds neither"):
        find_imdb(tmp_path / "empty", opener=opener)


def test_search_order(archive, tmp_path, monkeypatch):
    tree = write_imdb_tree(tmp_path / "tree")
    cache_home = tmp_path / "xdg-cache" / "rnnlab"
    write_imdb_archive(cache_home / "aclImdb_v1.tar.gz")
    assert find_imdb() == cache_home / "aclImdb_v1.tar.gz"
    monkeypatch.setenv("RNNLAB_DATA_DIR", str(tree.parent))
    assert find_imdb() == tree
    assert find_imdb(archive) == archive
    assert find_imdb(str(archive.parent)) == archive
    assert find_imdb(tree) == tree


def test_download_with_wrong_md5_leaves_nothing(archive, tmp_path):
    with pytest.raises(UserError, match=r"(?s)MD5.*task\.data_path=.*RNNLAB_DATA_DIR") as e:
        find_imdb(url=archive.as_uri())
    cache = tmp_path / "xdg-cache" / "rnnlab"
    assert str(cache) in str(e.value)
    assert list(cache.iterdir()) == []


def test_download_from_a_local_url(archive, tmp_path, quiet):
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    got = find_imdb(url=archive.as_uri(), md5=md5, console=quiet)
    assert got == tmp_path / "xdg-cache" / "rnnlab" / "aclImdb_v1.tar.gz"
    assert got.read_bytes() == archive.read_bytes()
    assert find_imdb(opener=lambda url: pytest.fail("downloaded twice")) == got  # found in the cache now


def test_download_without_network(tmp_path, monkeypatch):
    def offline(url):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(imdb, "IMDB_URL", "https://example.invalid/aclImdb_v1.tar.gz")
    with pytest.raises(UserError, match=r"could not download.*example\.invalid.*name resolution"):
        find_imdb(opener=offline)
    assert list((tmp_path / "xdg-cache" / "rnnlab").iterdir()) == []
    with pytest.raises(UserError, match="not here"):
        find_imdb(download=False)


def test_download_broken_midway_leaves_nothing(tmp_path, quiet):
    class Broken:
        headers = {"Content-Length": "1000"}

        def __init__(self):
            self.calls = 0

        def read(self, n):
            self.calls += 1
            if self.calls > 1:
                raise ConnectionResetError("connection reset by peer")
            return b"x" * 100

    with pytest.raises(UserError, match="connection reset"):
        find_imdb(opener=lambda url: Broken(), console=quiet)
    assert list((tmp_path / "xdg-cache" / "rnnlab").iterdir()) == []


# --- the sampler -------------------------------------------------------------------------------


def _epoch(lengths, batch_size, world_size=1, epoch=0, **kw):
    samplers = [BucketBatchSampler(lengths, batch_size, rank=r, world_size=world_size, **kw) for r in range(world_size)]
    for s in samplers:
        s.set_epoch(epoch)
    return [list(s) for s in samplers], samplers


@settings(max_examples=150, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 300), max_size=120),
    per_rank=st.integers(1, 6),
    world_size=st.integers(1, 4),
    multiplier=st.integers(1, 5),
    epoch=st.integers(0, 5),
    drop_last=st.booleans(),
)
def test_sampler_covers_each_index_once(lengths, per_rank, world_size, multiplier, epoch, drop_last):
    batch_size = per_rank * world_size
    if not drop_last and 0 < len(lengths) < world_size:
        with pytest.raises(UserError):
            BucketBatchSampler(lengths, batch_size, world_size=world_size)
        return
    ranks, samplers = _epoch(lengths, batch_size, world_size, epoch, bucket_size_multiplier=multiplier, drop_last=drop_last)
    seen = [i for batches in ranks for batch in batches for i in batch]
    assert len(seen) == len(set(seen))
    if drop_last:
        assert len(seen) == len(lengths) // batch_size * batch_size
        assert all(len(b) == per_rank for batches in ranks for b in batches)
    else:
        assert sorted(seen) == list(range(len(lengths)))
    for batches, sampler in zip(ranks, samplers):
        assert len(batches) == len(sampler)  # the same number of steps on every rank
        assert all(len(b) >= 1 for b in batches)
        assert max((len(b) for b in batches), default=0) <= per_rank + (0 if drop_last else 1)


def _padding_fraction(lengths, batches):
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    return 1 - sum(lengths[i] for b in batches for i in b) / padded


def test_sampler_batches_similar_lengths():
    g = torch.Generator().manual_seed(0)
    lengths = (torch.exp(torch.randn(3000, generator=g) * 0.7 + 5.3).long() + 1).tolist()  # skewed like IMDb
    (batches,), _ = _epoch(lengths, 32)
    perm = torch.randperm(len(lengths), generator=g).tolist()
    random_batches = [perm[i : i + 32] for i in range(0, len(perm), 32)]
    bucketed, random = _padding_fraction(lengths, batches), _padding_fraction(lengths, random_batches)
    assert random > 0.5 and bucketed < 0.2, (bucketed, random)  # tail batches span the most
    (ordered,), _ = _epoch(lengths, 32, shuffle=False)
    assert _padding_fraction(lengths, ordered) <= bucketed
    assert [lengths[b[0]] for b in ordered] == sorted(lengths[b[0]] for b in ordered)


def test_sampler_order_changes_with_epoch_and_seed():
    lengths = list(range(200))
    (e0,), _ = _epoch(lengths, 8, epoch=0)
    (e1,), _ = _epoch(lengths, 8, epoch=1)
    (e0_again,), _ = _epoch(lengths, 8, epoch=0)
    (other_seed,), _ = _epoch(lengths, 8, epoch=0, seed=1)
    assert e0 == e0_again and e0 != e1 and e0 != other_seed
    sampler = BucketBatchSampler(lengths, 8)
    assert list(sampler) == e0 and list(sampler) == e1  # moves on to the next epoch by itself
    sampler.set_epoch(0)
    assert list(sampler) == e0


def test_sampler_resumes_exactly():
    lengths = [(i * 37) % 101 for i in range(300)]
    reference = BucketBatchSampler(lengths, 16, seed=7)
    uninterrupted = []
    for epoch in range(3):
        reference.set_epoch(epoch)
        uninterrupted.append(list(reference))

    # Stop after any number of batches, save, restore into a fresh sampler, go on.
    for stop in (0, 5, len(reference), len(reference) + 3):
        sampler = BucketBatchSampler(lengths, 16, seed=7)
        seen = []
        for epoch in range(3):
            sampler.set_epoch(epoch)
            for batch in sampler:
                seen.append(batch)
                if len(seen) == stop:
                    break
            if len(seen) == stop:
                break
        state = torch.load(_saved(sampler.state_dict()), weights_only=True)
        resumed = BucketBatchSampler(lengths, 16, seed=7)
        resumed.load_state_dict(state)
        for epoch in range(state["epoch"], 3):
            resumed.set_epoch(epoch)
            seen.extend(resumed)
        assert seen == [b for epoch in uninterrupted for b in epoch], stop


def _saved(state) -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


def test_sampler_refuses_changed_settings_and_bad_world_size():
    state = BucketBatchSampler(list(range(50)), 8).state_dict()
    with pytest.raises(UserError, match="batch_size 8 -> 10"):
        BucketBatchSampler(list(range(50)), 10).load_state_dict(state)
    with pytest.raises(UserError, match="divide evenly"):
        BucketBatchSampler(list(range(50)), 10, world_size=4)


def test_ranks_partition_each_global_batch():
    lengths = [(i * 13) % 97 for i in range(101)]
    ranks, samplers = _epoch(lengths, 12, world_size=3, epoch=2)
    global_batches = samplers[0].global_batches(2)
    for step, batch in enumerate(global_batches):
        parts = [ranks[r][step] for r in range(3)]
        assert sorted(i for p in parts for i in p) == sorted(batch.tolist())
    assert sorted(len(b) for b in global_batches) == [5] + [12] * 8  # 101 = 8 * 12 + 5


def test_a_remainder_smaller_than_the_world_joins_a_batch():
    ranks, samplers = _epoch(list(range(97)), 12, world_size=3)  # 97 = 8 * 12 + 1
    assert sorted(len(b) for b in samplers[0].global_batches(0)) == [12] * 7 + [13]
    assert all(len(r) == len(samplers[0]) == 8 for r in ranks)
    assert sorted(i for r in ranks for b in r for i in b) == list(range(97))


def test_pad_batch():
    padded, lengths = pad_batch([torch.tensor([5, 6, 7], dtype=torch.int32), torch.tensor([8]), torch.tensor([], dtype=torch.long)], pad_id=0)
    assert padded.tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0]]
    assert padded.dtype == torch.long and lengths.tolist() == [3, 1, 0]
    padded, _ = pad_batch([torch.tensor([1])], pad_id=9)
    assert padded.shape == (1, 1)
    with pytest.raises(ValueError):
        pad_batch([])


# --- the real archive --------------------------------------------------------------------------


@pytest.mark.slow
def test_real_archive_counts():
    if not REAL_ARCHIVE.is_file():
        pytest.skip(f"{REAL_ARCHIVE} is not here")
    counts = Counter((split, label) for split, label, _ in iter_reviews(REAL_ARCHIVE, ("train", "test"), include_unsup=True))
    assert counts == {
        ("train", 0): 12_500,
        ("train", 1): 12_500,
        ("test", 0): 12_500,
        ("test", 1): 12_500,
        ("unsup", None): 50_000,
    }


@pytest.mark.slow
def test_real_archive_loads(tmp_path, quiet, monkeypatch):
    if not REAL_ARCHIVE.is_file():
        pytest.skip(f"{REAL_ARCHIVE} is not here")
    data = load_imdb(REAL_ARCHIVE, cache_dir=tmp_path, console=quiet)
    assert (len(data.train), len(data.val), len(data.test)) == (22_500, 2_500, 25_000)
    assert len(data.vocab) == 10_000 and data.vocab.itos[:3] == [PAD, UNK, "the"]
    assert int(data.val.labels.sum()) == 1_250 and int(data.test.labels.sum()) == 12_500
    _forbid_reading(monkeypatch)
    _assert_same(data, load_imdb(REAL_ARCHIVE, cache_dir=tmp_path, console=quiet))


def test_unlabelled_reviews_are_tokenized_once_into_their_own_cache(tmp_path):
    """A language model's extra text (train/unsup/): the same tokens from an archive and from its
    extracted tree, in the given vocabulary; cached beside (not inside) the labelled corpus, so a
    classifier never pays for them."""
    from rnnlab.data.imdb import load_unlabelled
    from rnnlab.data.text import Vocab, tokenize

    vocab = Vocab.build(Counter(tokenize(" ".join(t for _, t in UNSUP))), 6)
    expected = sorted(tuple(vocab.encode(tokenize(t))) for _, t in UNSUP)
    for source in (write_imdb_archive(tmp_path / "aclImdb_v1.tar.gz"), write_imdb_tree(tmp_path / "extracted")):
        cache = tmp_path / f"cache-{source.name}"
        for _ in range(2):  # built, then read back
            got = load_unlabelled(source, vocab, cache_dir=cache, console=Console(file=io.StringIO()))
            assert sorted(tuple(got.get(i).tolist()) for i in range(len(got))) == expected
            assert (got.labels == -1).all()
        assert [p.name.split("-")[1] for p in cache.iterdir()] == ["unsup"]
        load_imdb(source, val_size=2, cache_dir=cache, console=Console(file=io.StringIO()))
        assert sorted(p.name.split("-")[1] for p in cache.iterdir()) == ["corpus", "unsup"]


# --- a language model's unlabelled text never holds a held-out review (issue 27, item 3) --------


def _text_of(split_name: str, split, i: int) -> str:
    """The raw text of review i of a split of the fixture's REVIEWS (as the archive holds it)."""
    folder = "train" if split_name in ("train", "val") else "test"
    label = ("neg", "pos")[int(split.labels[i])]
    rid = int(split.ids[i])
    (text,) = [t for r, _, t in REVIEWS[(folder, label)] if r == rid]
    return review_text(folder, label, rid, text)


def test_unlabelled_twins_of_validation_and_test_reviews_are_left_out_and_counted(tmp_path):
    """train/unsup/ holds reviews that are also labelled ones. A language model may read the
    twin of a training review (it reads that review anyway), never the twin of a review its
    classifier validates or tests on; the twin is found by normalised text (case, spacing,
    `<br />`), and the log says how many were left out."""
    from rnnlab.data.imdb import load_unlabelled

    quiet = Console(file=io.StringIO(), width=300)
    plain = write_imdb_archive(tmp_path / "plain" / "aclImdb_v1.tar.gz")
    split = load_imdb(plain, val_size=4, seed=1, cache_dir=tmp_path / "cache", console=quiet)
    val, test, train = (_text_of(n, getattr(split, n), 0) for n in ("val", "test", "train"))
    unsup = [
        (0, "  " + val.upper().replace(" ", "   <br />")),  # the same tokens: a twin
        (1, test),
        (2, train),  # kept: the language model trains on that review anyway
        (3, "An unlabelled review of its own."),
        (4, test + " And one more sentence."),  # not the same text
        (5, ""),
    ]
    archive = write_imdb_archive(tmp_path / "aclImdb_v1.tar.gz", unsup=unsup)
    data = load_imdb(archive, val_size=4, seed=1, cache_dir=tmp_path / "cache", console=quiet)
    assert torch.equal(data.val.ids, split.val.ids) and torch.equal(data.val.labels, split.val.labels)
    log = Console(file=io.StringIO(), width=300)
    got = load_unlabelled(archive, data.vocab, held_out=data, cache_dir=tmp_path / "cache", console=log)
    assert sorted(got.ids.tolist()) == [2, 3, 4, 5]
    assert "left out 2 of the 6 unlabelled reviews: the same text as a validation review (1) or a test review (1)" in log.file.getvalue()
    everything = load_unlabelled(archive, data.vocab, cache_dir=tmp_path / "cache", console=quiet)
    assert len(everything) == 6  # without held-out splits to respect, all of them


@pytest.mark.slow
def test_real_archive_unlabelled_twins_of_held_out_reviews(tmp_path, monkeypatch):
    """The count README.md states: seed 0, val_size 2,500 (configs/imdb_lm.yaml)."""
    if not REAL_ARCHIVE.is_file():
        pytest.skip(f"{REAL_ARCHIVE} is not here")
    from rnnlab.data.imdb import load_unlabelled

    quiet = Console(file=io.StringIO(), width=300)
    data = load_imdb(REAL_ARCHIVE, val_size=2_500, seed=0, cache_dir=tmp_path, console=quiet)
    got = load_unlabelled(REAL_ARCHIVE, data.vocab, held_out=data, cache_dir=tmp_path, console=quiet)
    assert len(got) == 50_000 - 309
    assert "left out 309 of the 50,000 unlabelled reviews: the same text as a validation review (39) or a test review (270)" in quiet.file.getvalue()
