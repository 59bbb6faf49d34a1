"""Reading CoNLL files: formats real corpora use, and every bad input with its message."""

from __future__ import annotations

import pytest

from kayan.data.conll import ONLY_MARKS, read_conll, write_conll
from kayan.data.sentence import Sentence
from kayan.errors import KayanError


def write(tmp_path, data: bytes | str, name: str = "c.txt"):
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


@pytest.mark.parametrize(
    "text",
    [
        "بغداد B-LOC\nمدينة O\n\nقال O\nالرئيس O\n",  # spaces, final newline
        "بغداد\tB-LOC\nمدينة\tO\n\nقال\tO\nالرئيس\tO",  # tabs, no final newline
        "\ufeffبغداد B-LOC\r\nمدينة O\r\n\r\nقال O\r\nالرئيس O\r\n",  # BOM + CRLF
        "\n\nبغداد   B-LOC\nمدينة O\n \n\n\nقال O\nالرئيس O\n\n\n",  # extra blank lines and spaces
    ],
)
def test_formats_read_the_same(tmp_path, text):
    sentences, report = read_conll(write(tmp_path, text))
    assert [s.words for s in sentences] == [("بغداد", "مدينة"), ("قال", "الرئيس")]
    assert [s.tags for s in sentences] == [("B-LOC", "O"), ("O", "O")]
    assert report.sentences == 2 and report.tokens == 4


def test_bom_crlf_and_marks_are_counted(tmp_path):
    text = "\ufeff\u200eبغداد\u200f\tB-LOC\r\n\u200eمدينة\tO\r\n\u200f\tO\r\n"
    sentences, report = read_conll(write(tmp_path, text))
    assert sentences[0].words == ("بغداد", "مدينة")
    assert (report.bom, report.crlf_lines, report.direction_marks_removed) == (1, 3, 4)
    assert report.dropped_tokens == {ONLY_MARKS: 1}
    notes = " | ".join(report.notes())
    assert "byte-order mark" in notes and "CRLF" in notes and "4 direction marks" in notes


def test_sentence_line_numbers(tmp_path):
    sentences, _ = read_conll(write(tmp_path, "a O\nb O\n\n\nc O\n"))
    assert [s.line for s in sentences] == [1, 5]


@pytest.mark.parametrize(
    "rule, expected",
    [("outer", ("B-OCC", "I-OCC")), ("inner", ("B-OCC", "B-ORG")), (1, ("O", "B-ORG"))],
)
def test_nested_layers_flatten_by_rule(tmp_path, rule, expected):
    # outer: the first tag column; inner: the last one present; k: the k-th column, or O.
    path = write(tmp_path, "رئيس B-OCC\nاللجنة I-OCC B-ORG\n")
    sentences, report = read_conll(path, tag_column=rule)
    assert sentences[0].tags == expected
    assert report.nested_lines == 1


def test_tag_fixes_and_drops_are_counted(tmp_path):
    path = write(tmp_path, "16 OO\nالحكومة B-ORG\nالأمريكية I--ORG\n$#$ O\n")
    sentences, report = read_conll(path, tag_fixes={"OO": "O", "I--ORG": "I-ORG"}, drop_tokens=("$#$",))
    assert sentences[0].tags == ("O", "B-ORG", "I-ORG")
    assert report.tag_fixes == {"OO -> O": 1, "I--ORG -> I-ORG": 1}
    assert report.dropped_tokens == {"$#$": 1}


def test_nbsp_inside_a_token_is_not_a_separator(tmp_path):
    sentences, _ = read_conll(write(tmp_path, "أ\u00a0ب O\n"))
    assert sentences[0].words == ("أ\u00a0ب",)


@pytest.mark.parametrize(
    "data, message",
    [
        ("", "c.txt: no sentences (the file is empty or blank)"),
        ("\n\n  \n", "c.txt: no sentences"),
        ("بغداد\nمدينة\n", "c.txt:1: line has one column"),
        ("بغداد B-LOC\nمدينة\n", "c.txt:2: line has no tag"),
        ("بغداد B-LOC\nمدينة X-LOC\n", "c.txt:2: tag 'X-LOC': prefix 'X' is not used in IOB2"),
        ("بغداد BLOC\n", "c.txt:1: tag 'BLOC': tag 'BLOC' is not O or PREFIX-TYPE"),
        ("بغداد S-LOC\n", "c.txt:1: tag 'S-LOC': prefix 'S' is not used in IOB2"),
        (b"a O\nb\xe9 O\n", "c.txt:2: not valid UTF-8 (byte 0xE9 at column 2)"),
        (b"a O\nb\x00 O\n", "c.txt:2: contains a NUL byte"),
        ("\u200f B-LOC\n", "c.txt:1: a token made only of direction marks is tagged 'B-LOC'"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, data, message):
    with pytest.raises(KayanError) as caught:
        read_conll(write(tmp_path, data))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(KayanError, match="file not found"):
        read_conll(tmp_path / "absent.txt")
    with pytest.raises(KayanError, match="is a directory"):
        read_conll(tmp_path)


def test_bioes_scheme_accepts_s_and_e(tmp_path):
    sentences, _ = read_conll(write(tmp_path, "a S-LOC\nb B-PERS\nc E-PERS\n"), scheme="BIOES")
    assert sentences[0].tags == ("S-LOC", "B-PERS", "E-PERS")


def test_write_then_read_round_trips(tmp_path):
    original = [Sentence(("وبغداد", "."), ("B-LOC", "O")), Sentence(("للأمم", "المتحدة"), ("B-ORG", "I-ORG"))]
    path = write_conll(original, tmp_path / "out.txt")
    read, _ = read_conll(path)
    assert [(s.words, s.tags) for s in read] == [(s.words, s.tags) for s in original]

