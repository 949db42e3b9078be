"""Reading Universal Dependencies CoNLL-U files for part-of-speech tagging.

    python -m pytest tests/test_treebank.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnlab.data.treebank import UNTAGGED, TaggedSentences, find_treebank, read_conllu
from rnnlab.errors import UserError


def row(id_: str, form: str, upos: str = "NOUN", xpos: str = "NN", head: str = "0") -> str:
    return "\t".join([id_, form, form.lower(), upos, xpos, "_", head, "dep", "_", "_"])


def range_row(id_: str, form: str) -> str:
    return "\t".join([id_, form] + ["_"] * 8)


# English contraction as a multi-word token, a comment block, a document header with no tokens.
ENGLISH = "\n".join(
    [
        "# newdoc id = review-1",
        "# sent_id = s1",
        "# text = I don't know.",
        row("1", "I", "PRON", "PRP"),
        range_row("2-3", "don't"),
        row("2", "do", "AUX", "VBP"),
        row("3", "n't", "PART", "RB"),
        row("4", "know", "VERB", "VB"),
        row("5", ".", "PUNCT", "."),
        "",
        "# sent_id = s2",
        "# text = Fine",
        row("1", "Fine", "ADJ", "JJ"),
        "",
    ]
)

# Spanish "del" = de + el, and an empty node 2.1 (enhanced graph only) that is not a word.
SPANISH = "\n".join(
    [
        "# sent_id = es1",
        row("1", "Sale", "VERB", "_"),
        range_row("2-3", "del"),
        row("2", "de", "ADP", "_"),
        row("3", "el", "DET", "_"),
        "\t".join(["3.1", "sale", "salir", "VERB", "_", "_", "_", "_", "1:conj", "_"]),
        row("4", "cine", "NOUN", "_"),
        "",
    ]
)


def write(tmp_path: Path, text: str, name: str = "x-ud-train.conllu") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_reads_words_and_upos_skipping_comments_and_multiword_ranges(tmp_path):
    data = read_conllu(write(tmp_path, ENGLISH))
    assert isinstance(data, TaggedSentences)
    assert data.words == [["I", "do", "n't", "know", "."], ["Fine"]]
    assert data.tags == [["PRON", "AUX", "PART", "VERB", "PUNCT"], ["ADJ"]]
    assert data.sent_ids == ["s1", "s2"]
    assert len(data) == 2 and data.n_tokens == 6
    assert data.source.endswith("x-ud-train.conllu") and data.tag_field == "upos"


def test_xpos_column(tmp_path):
    data = read_conllu(write(tmp_path, ENGLISH), tag_field="xpos")
    assert data.tags == [["PRP", "VBP", "RB", "VB", "."], ["JJ"]]
    assert data.tag_field == "xpos"


def test_spanish_contraction_and_empty_node(tmp_path):
    data = read_conllu(write(tmp_path, SPANISH))
    assert data.words == [["Sale", "de", "el", "cine"]]
    assert data.tags == [["VERB", "ADP", "DET", "NOUN"]]


def test_xpos_absent_throughout_is_an_error_naming_the_file(tmp_path):
    path = write(tmp_path, SPANISH)
    with pytest.raises(UserError, match=r"x-ud-train\.conllu: no word has a XPOS tag.*tag_field=upos"):
        read_conllu(path, tag_field="xpos")


def test_partial_xpos_keeps_underscore_as_its_own_class(tmp_path):
    text = "\n".join([row("1", "Hi", "INTJ", "UH"), row("2", "!", "PUNCT", "_"), ""])
    data = read_conllu(write(tmp_path, text), tag_field="xpos")
    assert data.tags == [["UH", UNTAGGED]]
    assert data.tag_counts() == {"UH": 1, "_": 1}


def test_several_blank_lines_no_final_newline_crlf_and_bom(tmp_path):
    text = "\n".join(["", "", row("1", "One"), "", "", "", "# c", row("1", "Two"), row("2", "words")])  # no final \n
    assert read_conllu(write(tmp_path, text)).words == [["One"], ["Two", "words"]]
    crlf = "\ufeff" + text.replace("\n", "\r\n") + "\r\n"
    assert read_conllu(write(tmp_path, crlf, "crlf.conllu")).words == [["One"], ["Two", "words"]]


def test_unicode_line_separators_inside_a_form_do_not_split_lines(tmp_path):
    text = row("1", "a\u2028b") + "\n" + row("2", "c\x85") + "\n"
    assert read_conllu(write(tmp_path, text)).words == [["a\u2028b", "c\x85"]]


@pytest.mark.parametrize(
    "bad_line, what",
    [
        ("2\tbad\tline\tNOUN", r"expected 10 tab-separated columns .* found 4"),
        ("2 spaces instead of tabs", r"expected 10 tab-separated columns .* found 1 \(columns must be separated by tabs"),
        (row("two", "word"), r"ID 'two' is not a word number \(3\), a multi-word token range"),
        (row("2", "word", head="x"), r"HEAD 'x' is not a word number"),
        (row("3", "word"), r"word ID '3' where 2 was expected"),
        (row("1", "word"), r"word ID '1' where 2 was expected.*blank line missing"),
        (row("2", "two  spaces"), r"two spaces in a row"),
    ],
)
def test_malformed_line_names_file_and_line_number(tmp_path, bad_line, what):
    text = "\n".join(["# sent_id = 1", row("1", "Fine"), "", "# sent_id = 2", row("1", "A"), bad_line, ""])
    path = write(tmp_path, text, "broken.conllu")
    with pytest.raises(UserError, match=rf"broken\.conllu, line 6: {what}"):
        read_conllu(path)


def test_non_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.conllu"
    path.write_bytes((row("1", "ok") + "\n" + row("2", "café") + "\n").encode("latin-1"))
    with pytest.raises(UserError, match=r"latin1\.conllu, line 2: not UTF-8 \(byte 0xe9 at offset 33\)"):
        read_conllu(path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # after a byte order mark, the same byte
    with pytest.raises(UserError, match=r"line 2: not UTF-8 \(byte 0xe9 at offset 36\)"):
        read_conllu(path)


def test_missing_file_directory_empty_file_and_bad_tag_field(tmp_path):
    with pytest.raises(UserError, match=r"nope\.conllu: no such file"):
        read_conllu(tmp_path / "nope.conllu")
    with pytest.raises(UserError, match=r"is a directory"):
        read_conllu(tmp_path)
    with pytest.raises(UserError, match=r"empty\.conllu: no sentences"):
        read_conllu(write(tmp_path, "# only a comment\n\n", "empty.conllu"))
    with pytest.raises(UserError, match=r"tag_field='deprel': must be one of upos, xpos"):
        read_conllu(write(tmp_path, ENGLISH), tag_field="deprel")  # type: ignore[arg-type]


def make_treebank(folder: Path, splits=("train", "dev", "test"), prefix="en_ewt") -> Path:
    folder.mkdir()
    for split in splits:
        write(folder, ENGLISH, f"{prefix}-ud-{split}.conllu")
    (folder / "README.md").write_text("a treebank")
    return folder


def test_find_treebank_maps_dev_to_val(tmp_path):
    folder = make_treebank(tmp_path / "UD_English-EWT")
    files = find_treebank(folder)
    assert files == {s: folder / f"en_ewt-ud-{u}.conllu" for s, u in [("train", "train"), ("val", "dev"), ("test", "test")]}
    assert read_conllu(files["val"]).words[1] == ["Fine"]


def test_find_treebank_without_dev_lists_what_it_found(tmp_path):
    folder = make_treebank(tmp_path / "UD_Tiny", splits=("train", "test"))
    with pytest.raises(UserError) as info:
        find_treebank(folder)
    message = str(info.value)
    assert "no *-ud-dev.conllu file (the val split)" in message
    assert "en_ewt-ud-test.conllu, en_ewt-ud-train.conllu" in message
    assert "*-ud-train.conllu, *-ud-dev.conllu, *-ud-test.conllu" in message


def test_find_treebank_ambiguous_or_not_a_folder(tmp_path):
    folder = make_treebank(tmp_path / "mixed")
    write(folder, ENGLISH, "en_gum-ud-train.conllu")
    with pytest.raises(UserError, match=r"2 \*-ud-train\.conllu files, expected one: en_ewt-ud-train\.conllu, en_gum-ud-train\.conllu"):
        find_treebank(folder)
    with pytest.raises(UserError, match=r"no such folder"):
        find_treebank(tmp_path / "absent")
    with pytest.raises(UserError, match=r"not a folder"):
        find_treebank(folder / "README.md")


def load_silver_script():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "make_silver_pos.py"
    spec = importlib.util.spec_from_file_location("make_silver_pos", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_silver_corpus_format_reads_back(tmp_path):
    """benchmarks/make_silver_pos.py: EWT-style tokens, and files this reader accepts (no tagger needed)."""
    silver = load_silver_script()
    [paragraph] = silver.paragraphs("I don't think it's Mr. Smith's best.<br /><br />")
    assert silver.sentences(paragraph) == [
        ("I don't think it's Mr. Smith's best.", ["I", "do", "n't", "think", "it", "'s", "Mr.", "Smith", "'s", "best", "."])
    ]
    text = "Wow... the actors' lines can't be worse! Gonna cry."
    got = silver.sentences(text)
    assert [forms for _, forms in got] == [
        ["Wow", "...", "the", "actors", "'", "lines", "ca", "n't", "be", "worse", "!"],
        ["Gon", "na", "cry", "."],
    ]
    forms = got[0][1]
    assert silver.rule_tag(forms, 4, True, " lines") == "PART" and silver.rule_tag(forms, 1, False, " the") == "PUNCT"
    tags = [["INTJ", "PUNCT", "DET", "NOUN", "PART", "NOUN", "AUX", "PART", "AUX", "ADJ", "PUNCT"], ["VERB", "PART", "VERB", "PUNCT"]]
    body = "".join(
        silver.conllu_sentence(f"r-s{k}", "train/pos/1_9", t, f, tg) for k, ((t, f), tg) in enumerate(zip(got, tags), 1)
    )
    data = read_conllu(write(tmp_path, body))
    assert data.words == [f for _, f in got] and data.tags == tags and data.sent_ids == ["r-s1", "r-s2"]
