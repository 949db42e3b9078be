r"""A silver part-of-speech corpus in CoNLL-U: IMDb review sentences tagged by an independent tagger.

    pip install denckring-en-pos   # benchmark-only; rnnlab itself does not depend on it
    python benchmarks/make_silver_pos.py --data ../shared/data/aclImdb_v1.tar.gz

No Universal Dependencies treebank can be downloaded everywhere rnnlab runs, so this builds a
stand-in with the same shape as UD English-EWT (about 12.5k / 2k / 2k train / dev / test
sentences, 17 UPOS tags): `en_silver-ud-{train,dev,test}.conllu` in `--out` (default
`~/.cache/rnnlab/silver_pos`), which `rnnlab.data.treebank.find_treebank` and `read_conllu` read
like any UD treebank folder. "Silver" because the tags are a tagger's guesses, not annotations:
denckring-en-pos, an averaged perceptron trained on UD English-EWT with about 93.4% UPOS accuracy
on EWT's test words. A model trained on this corpus learns to imitate that tagger; its accuracy
says how well it imitates, not how well it tags English.

What is done, in order:

1. Reviews: the labelled *train* reviews of the IMDb archive (or extracted `aclImdb/` folder),
   both labels, read by streaming the archive. `--reviews` of them are drawn with `--seed` from the
   list sorted by review id (so the draw does not depend on storage order), shuffled, and cut into
   train / dev / test by review, 76% / 12% / 12% (EWT's proportions): all sentences of one review are
   in one split, so no review leaks across splits. A review's id is its path in the archive
   without the extension, e.g. `train/pos/1234_9` (number 1234, rating 9).
2. Cleaning: every `<br />` (and any other short HTML tag) goes; a line break tag ends a paragraph,
   and no sentence crosses a paragraph. HTML entities are decoded, curly quotes and apostrophes
   become straight ones (the tagger's vocabulary has straight ones only), as do the Windows-1252
   dashes and quotes that IMDb stores as C1 control characters; runs of whitespace become one space.
3. Tokens, the way UD English-EWT cuts them, because the tagger was trained on EWT tokens: punctuation
   is split off (`...`, `--`, `!!!`, `?!` stay one token); clitics are split, `don't` -> `do n't`,
   `can't` -> `ca n't`, `won't` -> `wo n't`, `it's` -> `it 's`, `I'm` -> `I 'm` ('s 're 've 'll 'd 'm),
   `cannot` -> `can not`, `gonna` / `wanna` / `gotta` -> `gon na` / `wan na` / `got ta`, and the
   apostrophe-less `dont` -> `do nt` (a closed list; EWT writes `nt` for these); hyphenated words are
   split at the hyphen (`well - known`) unless the part before it is a prefix EWT keeps attached
   (`re-`, `non-`, `e-mail`, ...). URLs, numbers such as `7/10` or `3.5`, initialisms such as `U.S.` /
   `e.g.`, titles such as `Mr.` and initials before a name (`Michael J. Fox`, `J. Smith`, but not the grade in `a B. Then`)
   stay one token.
4. Sentences: a paragraph's tokens are cut after `.`, `!`, `?` (or a run of them, plus closing
   quotes and brackets) when the next token starts with a capital letter, a digit, or an opening
   quote or bracket. Titles such as `Mr.` are one token and so never end a sentence. Sentences
   longer than `--max-sentence-len` tokens are skipped (IMDb has run-on "sentences" of hundreds of
   words), as are sentences with no letter or digit.
5. Tags: the tagger was trained on a stream without punctuation (see its README), so it is given the
   sentence's words only, and punctuation is tagged by rule: PUNCT, or SYM for `$ % # + = < > @ ^ ~ |`,
   CCONJ for `&`, PART for the possessive apostrophe after a plural (`the actors' lines`). Its
   labels are `UPOS|VerbForm`; the UPOS part is kept.
6. Output: per sentence the comments `# sent_id`, `# review`, `# text` (the exact cleaned text the
   tokens came from), then one line per token: ID FORM `_` UPOS `_` `_` `_` `_` `_` `_`
   (10 tab-separated columns, no LEMMA, XPOS, FEATS, HEAD, DEPREL, DEPS or MISC). Then every file is
   read back with `rnnlab.data.treebank.read_conllu` and compared with what was written. A summary
   (reviews, sentences and tokens per split, tag distribution, timings) is printed and written as
   `summary.json` next to the corpus.
"""

from __future__ import annotations

import argparse
import html
import json
import random
import re
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path

from rnnlab.data.imdb import find_imdb, user_cache_dir
from rnnlab.data.treebank import find_treebank, read_conllu
from rnnlab.errors import UserError

SPLITS = {"train": 0.76, "dev": 0.12, "test": 0.12}  # EWT: 12,544 / 2,001 / 2,077 sentences
PREFIX = "en_silver"
# About 12.4 kept sentences per review (measured, seed 0): 1,350 reviews give about EWT's 12.5k / 2k / 2k.
DEFAULT_REVIEWS = 1350

_MEMBER = re.compile(r"(?:\./)?aclImdb/(train/(?:pos|neg)/\d+_\d+)\.txt")
_MAX_REVIEW_BYTES = 1 << 20

# --- cleaning ---------------------------------------------------------------------------------

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]{0,10}(?:\s[^<>]{0,100})?/?>")
_QUOTES = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u00b4": "'", "\u0060": "'", "\u2026": "..."}
    # IMDb keeps some Windows-1252 punctuation as C1 control characters: \x96 is an en dash, ...
    | {"\x91": "'", "\x92": "'", "\x93": '"', "\x94": '"', "\x85": "...", "\x96": "-", "\x97": "--"}
    | {chr(c): " " for c in range(0x80, 0xA0) if chr(c) not in "\x85\x91\x92\x93\x94\x96\x97"}
)
_SPACE = re.compile(r"\s+")


def paragraphs(review: str) -> list[str]:
    text = html.unescape(_TAG.sub(" ", _BREAK.sub("\n", review))).translate(_QUOTES)
    return [p for p in (_SPACE.sub(" ", line).strip() for line in text.split("\n")) if p]


# --- tokens -----------------------------------------------------------------------------------

_TITLES = r"(?:Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|vs|Mt|Lt|Col|Gen|Sgt|Capt|Rev|Ft)\."
_TOKEN = re.compile(
    "|".join(
        [
            r"(?:https?://|www\.)[^\s<>\"]+[^\s<>\".,;:!?)\]']",  # URL, minus trailing punctuation
            r"(?:[A-Za-z]\.){2,}",  # U.S.  e.g.  a.k.a.
            rf"\b{_TITLES}",
            r"\d+(?:[.,:/]\d+)*(?:[A-Za-z]+)?",  # 3.5  7/10  1,000  1990s  80s  2nd
            r"[^\W_]+(?:'[^\W_]+)*",  # words; internal apostrophes kept here, clitics split below
            r"\.{2,}|-{2,}|[!?]+",  # ...  --  !!!  ?!
            r"[^\w\s]",  # any other single non-space character
        ]
    )
)
_CLITIC = re.compile(r"(?i)(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$")
_JOINED = {"cannot": 3, "gonna": 3, "wanna": 3, "gotta": 3}  # split point: can|not, gon|na, ...
_NT = {w: len(w) - 2 for w in "dont didnt doesnt cant isnt arent wasnt werent couldnt wouldnt shouldnt havent hasnt hadnt".split()}
# Hyphenated prefixes that EWT leaves attached (e-mail, re-trained, non-human, ...).
_PREFIXES = set("e re non pre post anti pro co ex sub mid multi un neo counter semi inter over under".split())


def _split_word(word: str) -> list[str]:
    lower = word.lower()
    if lower in _JOINED:
        return [word[: _JOINED[lower]], word[_JOINED[lower] :]]
    if lower in _NT:
        return [word[: _NT[lower]], word[_NT[lower] :]]
    match = _CLITIC.match(word)
    if match:
        return _split_word(match[1]) + [match[2]]
    return [word]


def tokenize(paragraph: str) -> list[tuple[int, int, str]]:
    """(start, end, form) of each token, with `end - start` possibly spanning a split clitic."""
    tokens: list[tuple[int, int, str]] = []
    for m in _TOKEN.finditer(paragraph):
        word = m.group()
        if not word[0].isalpha() or word.startswith(("http", "www.")):
            tokens.append((m.start(), m.end(), word))
            continue
        pieces = _split_word(word)
        position = m.start()
        for piece in pieces:
            tokens.append((position, position + len(piece), piece))
            position += len(piece)
    return _rejoin(tokens, paragraph)


def _rejoin(tokens: list[tuple[int, int, str]], paragraph: str) -> list[tuple[int, int, str]]:
    """Two kinds of tokens the regex cuts in pieces, glued back together.

    `e` `-` `mail` (no spaces between) is `e-mail` when the first part is a prefix EWT keeps
    attached; `J` `.` is the initial `J.` between capitalised words (Michael J. Fox, J. Smith),
    where a regex alone cannot tell it from the grade in "I gave it a B. Then ...".
    """
    out: list[tuple[int, int, str]] = []
    i = 0
    while i < len(tokens):
        start, end, form = tokens[i]
        if (
            len(form) == 1
            and form.isupper()
            and form != "I"  # far more often the pronoun ending a sentence than an initial
            and i + 2 < len(tokens)
            and tokens[i + 1][2] == "."
            and tokens[i + 1][0] == end
            and tokens[i + 2][2][:1].isupper()
            and tokens[i + 2][2][1:2].islower()
            and (not out or out[-1][2][:1].isupper() or _END.fullmatch(out[-1][2]) is not None)
        ):
            out.append((start, end + 1, form + "."))
            i += 2
            continue
        # "e" "-" "mail" written with no spaces and a kept prefix: one token e-mail.
        if (
            i + 2 < len(tokens)
            and tokens[i + 1][2] == "-"
            and tokens[i + 1][0] == end
            and tokens[i + 2][0] == end + 1
            and form.lower() in _PREFIXES
            and tokens[i + 2][2][:1].isalpha()
        ):
            out.append((start, tokens[i + 2][1], paragraph[start : tokens[i + 2][1]]))
            i += 3
            continue
        out.append((start, end, form))
        i += 1
    return out


# --- sentences --------------------------------------------------------------------------------

_END = re.compile(r"[.!?]+")
_CLOSING = {'"', "'", ")", "]"}
_OPENING = {'"', "'", "(", "["}


def sentences(paragraph: str) -> list[tuple[str, list[str]]]:
    """(text, tokens) of each sentence of a paragraph."""
    tokens = tokenize(paragraph)
    out: list[tuple[str, list[str]]] = []
    first = 0
    i = 0
    while i < len(tokens):
        if _END.fullmatch(tokens[i][2]):
            j = i + 1
            while j < len(tokens) and tokens[j][2] in _CLOSING and tokens[j][0] == tokens[j - 1][1]:
                j += 1  # a closing quote or bracket glued to the full stop belongs to this sentence
            if j == len(tokens) or _starts_sentence(tokens[j][2]):
                out.append(_sentence(paragraph, tokens[first:j]))
                first = i = j
                continue
        i += 1
    if first < len(tokens):
        out.append(_sentence(paragraph, tokens[first:]))
    return out


def _starts_sentence(form: str) -> bool:
    return form[0].isupper() or form[0].isdigit() or form in _OPENING


def _sentence(paragraph: str, tokens: list[tuple[int, int, str]]) -> tuple[str, list[str]]:
    return paragraph[tokens[0][0] : tokens[-1][1]], [t[2] for t in tokens]


# --- tags -------------------------------------------------------------------------------------

_SYM = set("$%#+=<>@^~|")


def rule_tag(forms: list[str], k: int, glued: bool, text_after: str) -> str | None:
    """The tag of a token the tagger never saw in training (punctuation), else None.

    `glued`: no space before the token; `text_after`: the sentence's text right after it.
    """
    form = forms[k]
    if any(ch.isalnum() for ch in form):
        return None
    if form == "&":
        return "CCONJ"
    if form in _SYM:
        return "SYM"
    # "the actors' lines", but not the closing quote of "she said 'yes' and left".
    if form == "'" and glued and k and forms[k - 1][-1:] in "sS" and text_after[:2].strip()[:1].isalpha():
        if forms[:k].count("'") % 2 == 0:
            return "PART"
    return "PUNCT"


class SilverTagger:
    def __init__(self):
        try:
            import denckring_en_pos
        except ImportError:
            sys.exit("this script needs the tagger: pip install denckring-en-pos (a benchmark-only dependency)")
        self.model = denckring_en_pos.tagger()
        self.version = denckring_en_pos.__version__
        self.words_tagged = 0
        self.unknown = 0
        self.seconds = 0.0

    def tag(self, text: str, forms: list[str]) -> list[str]:
        tags: list[str | None] = []
        cursor = 0
        for k, form in enumerate(forms):
            start = text.find(form, cursor)
            glued = start == cursor and k > 0
            cursor = start + len(form)
            tags.append(rule_tag(forms, k, glued, text[cursor:]))
        words = [f for f, t in zip(forms, tags) if t is None]
        if words:
            start = time.perf_counter()
            labels = iter(self.model.tag(words))
            self.seconds += time.perf_counter() - start
            self.words_tagged += len(words)
            self.unknown += sum(w.lower() not in self.model.vocabulary for w in words)
            tags = [t if t is not None else next(labels).partition("|")[0] for t in tags]
        return tags  # type: ignore[return-value]


# --- reviews ----------------------------------------------------------------------------------


def read_train_reviews(source: Path) -> dict[str, str]:
    """{review id: raw text} of the labelled train reviews, read once by streaming."""
    reviews: dict[str, str] = {}
    if source.is_dir():
        for label in ("pos", "neg"):
            for file in (source / "train" / label).glob("*_*.txt"):
                reviews[f"train/{label}/{file.stem}"] = file.read_text(encoding="utf-8", errors="replace")
    else:
        with tarfile.open(source, "r|gz") as archive:
            for member in archive:
                match = _MEMBER.fullmatch(member.name)
                if match and member.isfile() and member.size <= _MAX_REVIEW_BYTES:
                    reviews[match[1]] = archive.extractfile(member).read().decode("utf-8", errors="replace")
    if not reviews:
        raise UserError(f"{source}: no train/pos or train/neg reviews in it")
    return reviews


def choose(review_ids: list[str], n: int, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    chosen = rng.sample(sorted(review_ids), min(n, len(review_ids)))
    rng.shuffle(chosen)
    n_dev = round(len(chosen) * SPLITS["dev"])
    n_test = round(len(chosen) * SPLITS["test"])
    n_train = len(chosen) - n_dev - n_test
    return {"train": chosen[:n_train], "dev": chosen[n_train : n_train + n_dev], "test": chosen[n_train + n_dev :]}


# --- output -----------------------------------------------------------------------------------


def conllu_sentence(sent_id: str, review_id: str, text: str, forms: list[str], tags: list[str]) -> str:
    lines = [f"# sent_id = {sent_id}", f"# review = {review_id}", f"# text = {text}"]
    lines += [f"{i}\t{form}\t_\t{tag}\t_\t_\t_\t_\t_\t_" for i, (form, tag) in enumerate(zip(forms, tags), start=1)]
    return "\n".join(lines) + "\n\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="IMDb archive aclImdb_v1.tar.gz or aclImdb/ folder (default: where rnnlab finds it)")
    parser.add_argument("--out", type=Path, default=user_cache_dir() / "silver_pos", help="output folder (default: %(default)s)")
    parser.add_argument("--reviews", type=int, default=DEFAULT_REVIEWS, help="reviews in all three splits together (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-sentence-len", type=int, default=60, help="skip sentences with more tokens (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.reviews < 3:
        parser.error("--reviews must be at least 3 (one review per split)")
    try:
        return run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    tagger = SilverTagger()
    source = find_imdb(args.data, download=False)
    reviews = read_train_reviews(source)
    read_s = time.perf_counter() - started
    splits = choose(list(reviews), args.reviews, args.seed)

    out: Path = args.out.expanduser()
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[tuple[list[str], list[str]]]] = {}
    skipped = Counter()
    tags_by_split: dict[str, Counter] = {}
    t0 = time.perf_counter()
    for split, ids in splits.items():
        chunks: list[str] = []
        kept: list[tuple[list[str], list[str]]] = []
        for review_id in ids:
            number = 0
            for paragraph in paragraphs(reviews[review_id]):
                for text, forms in sentences(paragraph):
                    if not any(ch.isalnum() for form in forms for ch in form):
                        skipped["no letter or digit"] += 1
                        continue
                    if len(forms) > args.max_sentence_len:
                        skipped[f"longer than {args.max_sentence_len} tokens"] += 1
                        continue
                    number += 1
                    tags = tagger.tag(text, forms)
                    sent_id = f"imdb-{review_id.replace('/', '-')}-s{number}"
                    chunks.append(conllu_sentence(sent_id, review_id, text, forms, tags))
                    kept.append((forms, tags))
        path = out / f"{PREFIX}-ud-{split}.conllu"
        tmp = path.with_suffix(".conllu.part")
        tmp.write_text("".join(chunks), encoding="utf-8")
        tmp.replace(path)
        written[split] = kept
        tags_by_split[split] = Counter(t for _, tags in kept for t in tags)
    build_s = time.perf_counter() - t0

    # Read back through rnnlab's own reader: the corpus is only useful if the task can load it.
    t0 = time.perf_counter()
    files = find_treebank(out)
    names = {"train": "train", "dev": "val", "test": "test"}
    for split, kept in written.items():
        data = read_conllu(files[names[split]])
        if data.words != [w for w, _ in kept] or data.tags != [t for _, t in kept]:
            raise SystemExit(f"read-back mismatch in {files[names[split]]}")
    read_back_s = time.perf_counter() - t0
    n_sentences = sum(len(k) for k in written.values())

    total = sum(tags_by_split.values(), Counter())
    n_tokens = sum(total.values())
    summary = {
        "corpus": str(out),
        "source": str(source),
        "tagger": f"denckring-en-pos {tagger.version} (averaged perceptron trained on UD English-EWT; UPOS accuracy 0.934 on EWT test)",
        "args": {"reviews": args.reviews, "seed": args.seed, "max_sentence_len": args.max_sentence_len},
        "splits": {
            split: {
                "file": f"{PREFIX}-ud-{split}.conllu",
                "reviews": len(splits[split]),
                "sentences": len(written[split]),
                "tokens": sum(tags_by_split[split].values()),
            }
            for split in SPLITS
        },
        "skipped_sentences": dict(skipped),
        "tags": {tag: {"count": c, "share": round(c / n_tokens, 4)} for tag, c in total.most_common()},
        "tagger_words": tagger.words_tagged,
        "tagger_unknown_word_share": round(tagger.unknown / max(tagger.words_tagged, 1), 4),
        "seconds": {
            "read_reviews": round(read_s, 2),
            "tokenize_tag_write": round(build_s, 2),
            "of_which_tagger": round(tagger.seconds, 2),
            "read_back_with_rnnlab": round(read_back_s, 2),
            "total": round(time.perf_counter() - started, 2),
        },
        "speed": {
            "tagger_words_per_s": round(tagger.words_tagged / max(tagger.seconds, 1e-9)),
            "read_conllu_sentences_per_s": round(n_sentences / max(read_back_s, 1e-9)),
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print_summary(summary)
    return 0


def print_summary(s: dict) -> None:
    print(f"silver POS corpus in {s['corpus']} (tags by {s['tagger']})")
    print(f"{'split':<6} {'reviews':>8} {'sentences':>10} {'tokens':>9}")
    for split, row in s["splits"].items():
        print(f"{split:<6} {row['reviews']:>8,} {row['sentences']:>10,} {row['tokens']:>9,}")
    print("skipped sentences: " + (", ".join(f"{v:,} {k}" for k, v in s["skipped_sentences"].items()) or "none"))
    print("tags: " + "  ".join(f"{tag} {v['share']:.1%}" for tag, v in s["tags"].items()))
    print(f"words unknown to the tagger: {s['tagger_unknown_word_share']:.1%}")
    print("seconds: " + ", ".join(f"{k} {v}" for k, v in s["seconds"].items()))
    print("speed: " + ", ".join(f"{k} {v:,}" for k, v in s["speed"].items()))


if __name__ == "__main__":
    sys.exit(main())
