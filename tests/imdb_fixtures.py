"""A tiny IMDb in the official layout, as an archive or as an extracted directory.

    python -m pytest tests/test_imdb_data.py -q

Every review holds a marker word of its own (`mk<split><label><id>`), so a test can tell which
reviews a vocabulary was counted on.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

__all__ = ["REVIEWS", "UNSUP", "write_imdb_archive", "write_imdb_tree", "review_text", "separable_reviews"]

_POS = [
    "A great film! I loved it.<br /><br />The acting was superb, truly great.",
    "Wonderful (and funny) - a must-see; great cast: great story.",
    "I didn't expect to enjoy it, but it's GREAT. Great, great, great!",
    "Best movie of the year? Yes! Loved every minute.",
    "Moving and beautiful.<br />A classic.",
    "Superb. " * 40 + "The end is great.",
]
_NEG = [
    "A terrible film. I hated it.<br /><br />The acting was awful, truly bad.",
    "Boring (and long) - avoid; bad cast: bad story.",
    "I didn't expect much, and it's BAD. Bad, bad, bad!",
    "Worst movie of the year? Yes! Hated every minute.",
    "<br /><br />",  # tokenizes to nothing: the loader gives it one <unk>
    "Dull. " * 40 + "The end is bad.",
]

# (split, label) -> [(file id, rating, text)]; ratings follow the official ranges.
REVIEWS: dict[tuple[str, str], list[tuple[int, int, str]]] = {
    ("train", "pos"): [(i, 7 + i % 4, t) for i, t in enumerate(_POS)],
    ("train", "neg"): [(i, 1 + i % 4, t) for i, t in enumerate(_NEG)],
    ("test", "pos"): [(i, 10, t) for i, t in enumerate(_POS[:3])],
    ("test", "neg"): [(i, 2, t) for i, t in enumerate(_NEG[:3])],
}
UNSUP: list[tuple[int, str]] = [(0, "An unlabelled review."), (1, "Another one, unlabelled.")]


def review_text(split: str, label: str, rid: int, text: str) -> str:
    return f"{text} mk{split}{label}{rid}"


def _files(reviews: dict, unsup: list) -> dict[str, bytes]:
    files = {
        "aclImdb/README": b"Large Movie Review Dataset v1.0 (tiny test copy)\n",
        "aclImdb/imdb.vocab": b"the\nand\n",
        "aclImdb/train/urls_pos.txt": b"http://www.imdb.com/title/tt0000000/usercomments\n",
    }
    for (split, label), items in reviews.items():
        for rid, rating, text in items:
            files[f"aclImdb/{split}/{label}/{rid}_{rating}.txt"] = review_text(split, label, rid, text).encode()
    for rid, text in unsup:
        files[f"aclImdb/train/unsup/{rid}_0.txt"] = text.encode()
    return files


def write_imdb_archive(
    path: Path,
    reviews: dict | None = None,
    unsup: list | None = None,
    *,
    extra: dict[str, bytes] | None = None,
) -> Path:
    """`path` (a .tar.gz) in the layout of aclImdb_v1.tar.gz; `extra` adds members as named."""
    files = {**_files(REVIEWS if reviews is None else reviews, UNSUP if unsup is None else unsup), **(extra or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        dirs = sorted({str(d) for name in files if ".." not in name for d in Path(name).parents if str(d) != "."})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_300_000_000
            tar.addfile(info, io.BytesIO(data))
    return path


def write_imdb_tree(root: Path, reviews: dict | None = None, unsup: list | None = None) -> Path:
    """`root/aclImdb/...` as extracted from the archive; returns the aclImdb directory."""
    for name, data in _files(REVIEWS if reviews is None else reviews, UNSUP if unsup is None else unsup).items():
        file = root / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)
    return root / "aclImdb"


FILLER = "the a film movie plot story actor scene it was is and of to this that with".split()
WORDS = {"pos": ["great", "loved", "wonderful", "superb"], "neg": ["bad", "hated", "awful", "terrible"]}


def separable_reviews(per_class: int = 40) -> dict:
    """Reviews whose only signal is a few sentiment words among shared filler."""
    import random

    rng = random.Random(0)
    out = {}
    for split, n in (("train", per_class), ("test", per_class // 4)):
        for label in ("pos", "neg"):
            rows = []
            for i in range(n):
                words = rng.choices(FILLER, k=rng.randint(5, 30)) + rng.choices(WORDS[label], k=2)
                rng.shuffle(words)
                rows.append((i, 9 if label == "pos" else 2, " ".join(words) + "."))
            out[(split, label)] = rows
    return out
