"""kayan.load(path).predict(text): entities with exact offsets into the original text, any input."""

from __future__ import annotations

import io
import json
import random
import re
import shutil
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kayan
from kayan.cli import main
from kayan.data.arabic import tokenize_sentences
from kayan.data.schemes import START, allowed
from kayan.errors import KayanError
from kayan.inference.predict import Entity, text_sentences
from tests.conftest import needs_shared
from tests.tiny_package import sample_words

TYPES = {"LOC", "MISC", "ORG", "PERS"}
DIACRITICS = "\u064e\u064f\u0650\u0651\u0652\u064b"
TATWEEL = "\u0640"


@pytest.fixture(scope="session")
def noisy(built):
    return kayan.load(built["noisy"], backend="torch")


def check_spans(text: str, found: list[Entity]) -> None:
    """Every entity is exactly its slice of the text; spans sorted and non-overlapping."""
    for entity in found:
        assert text[entity.start : entity.end] == entity.text
        assert entity.start < entity.end and entity.type in TYPES and 0 <= entity.score <= 1
    for before, after in zip(found, found[1:]):
        assert before.end <= after.start


def same(a: list[Entity], b: list[Entity], *, shift: int = 0) -> bool:
    """Same spans and types; scores equal up to float noise (batches padded differently)."""
    spans = [(e.text, e.type, e.start, e.end) for e in a] == [(e.text, e.type, e.start - shift, e.end - shift) for e in b]
    return spans and [e.score for e in a] == pytest.approx([e.score for e in b], abs=1e-4)  # float noise of different batch padding


def decorate(word: str, rng: random.Random) -> str:
    """Insert diacritics after letters and a tatweel inside a longer Arabic word."""
    if len(word) < 3 or not all("\u0621" <= c <= "\u064a" for c in word):
        return word
    out = []
    for i, char in enumerate(word):
        out.append(char)
        if rng.random() < 0.4:
            out.append(rng.choice(DIACRITICS))
        if i == 1 and rng.random() < 0.5:
            out.append(TATWEEL * rng.randint(1, 3))
    return "".join(out)


def test_predictor_uses_the_packaged_settings(built):
    predictor = kayan.load(built["package"])
    o = predictor.options
    assert (o.window, o.stride, o.normalization, o.decoding) == (64, 16, ("remove_diacritics", "remove_tatweel"), "first")
    assert predictor.labels[0] == "O" and not (built["package"] / "onnx").exists()
    assert predictor.backend_name == "torch"  # auto: no ONNX export in this package
    assert kayan.load(built["package"], decoding="viterbi").options.decoding == "viterbi"


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t", "\u200f\u200b"])
def test_empty_or_blank_text_gives_no_entities(noisy, text):
    assert noisy.predict(text) == []
    assert noisy.predict_batch([text, text]) == [[], []]


@pytest.mark.parametrize(
    "text",
    [
        "The meeting in Paris was chaired by John Smith on Monday.",
        "12345 67.8 %%% !!! ???",
        "زار\x00محمد\x1bبغداد\x07 \u200eو\u202bالقاهرة\u202c \ufeffأمس\x85\r\n\x0b\x0cعمان",
        "قال د. أحمد: وبغداد «جميلة»، ونسبة ٣٫٥ %... visit http://x.org/a?b=1 now",
        "🙂 \U0010ffff \ue000 زار الرئيسُ بغــداد",
    ],
)
def test_any_text_gives_exact_spans(noisy, text):
    found = noisy.predict(text)
    check_spans(text, found)
    assert found  # the noisy model always finds something in these


def test_offsets_with_diacritics_and_tatweel_point_into_the_original(noisy):
    plain = "زار الرئيس محمد بن سلمان مدينة بغداد أمس، وقال إن القاهرة والرياض شريكتان. ثم عاد إلى جدة."
    rng = random.Random(3)
    decorated = " ".join(decorate(w, rng) for w in plain.split(" "))
    assert decorated != plain
    a, b = noisy.predict(plain), noisy.predict(decorated)
    check_spans(decorated, b)
    # The model sees normalized words, so the same words get the same tags.
    assert [e.type for e in a] == [e.type for e in b]
    assert [e.score for e in a] == pytest.approx([e.score for e in b], abs=1e-4)  # float noise of different batch padding
    strip = lambda s: s.translate({ord(c): None for c in DIACRITICS + TATWEEL})  # noqa: E731
    assert [e.text for e in a] == [strip(e.text) for e in b]


@needs_shared
def test_anercorp_running_text_offsets_are_exact(noisy):
    from kayan.data import corpora

    rng = random.Random(12345)
    sentences = [s.words for s in corpora.load_split("anercorp:test").sentences]
    decorated = [[decorate(w, rng) for w in words] for words in sentences]
    text = "\n".join(" ".join(words) for words in decorated)
    found = noisy.predict(text)
    check_spans(text, found)
    assert len(found) > 1000 and {e.type for e in found} == TYPES
    assert any(" " in e.text for e in found)  # multi-word entities
    # The model sees normalized words: the first sentences tag exactly as without the marks.
    plain = noisy.predict("\n".join(" ".join(words) for words in sentences[:150]))
    head = [e for e in found if e.start < len("\n".join(" ".join(words) for words in decorated[:150]))]
    assert [e.type for e in plain] == [e.type for e in head]
    assert [e.score for e in plain] == pytest.approx([e.score for e in head], abs=1e-4)  # float noise of different batch padding


def test_long_text_is_tagged_in_chunks_with_the_same_result(built, monkeypatch):
    predictor = kayan.load(built["noisy"], backend="torch")
    words = sample_words()
    block = "\n".join(" ".join(w) + (" ." if i % 3 else "") for i, w in enumerate(words)) + "\n"
    text = block * 28  # about 200 KB: the same block again and again
    assert len(text.encode()) > 190_000
    expected = predictor.predict(block)
    calls = []
    real = predictor.model.tag

    def spy(sentences, documents=None):
        calls.append(sum(len(s) for s in sentences))
        return real(sentences, documents=documents)

    monkeypatch.setattr(predictor.model, "tag", spy)
    predictor.chunk_words, predictor.segment_chars = 2000, 5000
    found = predictor.predict(text)
    longest = max(len(w) for w in words) + 1
    assert len(calls) > 10 and max(calls) < 2000 + longest  # memory: bounded by the chunk, not the text
    check_spans(text, found)
    assert len(found) == 28 * len(expected)
    for repeat in range(28):
        shift = repeat * len(block)
        assert same(expected, found[repeat * len(expected) : (repeat + 1) * len(expected)], shift=shift)


def test_segments_give_the_same_sentences_as_the_whole_text():
    text = "جاء زيد. ذهب عمرو!\r\nقال د.\nأحمد: نعم\n\n\nhttp://a.b/c\nلا" * 5
    expected = [tuple(s) for s in tokenize_sentences(text)]
    for size in (1, 7, 30, 1000):
        assert list(text_sentences(text, segment_chars=size)) == expected


def test_predict_batch_equals_predict_and_keeps_the_input(noisy):
    texts = ["زار محمد بغداد.", "", "وقال إن القاهرة جميلة. ثم عاد"]
    copy = list(texts)
    batch = noisy.predict_batch(texts)
    assert len(batch) == 3 and all(same(a, noisy.predict(t)) for a, t in zip(batch, texts))
    assert noisy.predict_batch(iter(texts)) == batch
    assert texts == copy


def test_predict_words_gives_word_indices(noisy):
    words = ["زار", "الرئيسُ", "محمد", "بن", "سلمان", "مدينة", "بغـداد"]  # an empty word is refused: tests/test_mistakes.py
    copy = list(words)
    found = noisy.predict_words(words)
    assert words == copy and found
    for entity in found:
        assert entity.text == " ".join(words[entity.start : entity.end])
    assert noisy.predict_words_batch([words, [], ("عمان",)])[0] == found
    assert noisy.predict_words([]) == []


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda p: p.predict(b"bytes"), "not a str"),
        (lambda p: p.predict_batch(["ok", None]), "text 1 is a NoneType"),
        (lambda p: p.predict_batch("زار محمد"), "takes a list of texts"),
        (lambda p: p.predict_words("زار محمد"), "must be a list of words"),
        (lambda p: p.predict_words(["زار", 3]), "holds a int"),
    ],
)
def test_wrong_input_types(noisy, call, message):
    with pytest.raises(TypeError, match=message):
        call(noisy)


def test_viterbi_override_gives_valid_sequences(built):
    predictor = kayan.load(built["noisy"], decoding="viterbi", backend="torch")
    document = next(predictor.tag_texts(["زار الرئيس محمد بن سلمان مدينة بغداد أمس، وقال إن القاهرة جميلة."]))
    for sentence in document.sentences:
        for prev, cur in zip((START, *sentence.tags), sentence.tags):
            assert allowed(prev, cur)


def test_folder_without_kayan_json_works_with_defaults_and_a_warning(built, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(built["run"] / "model", plain)
    (plain / "kayan.json").unlink()
    with pytest.warns(UserWarning, match="has no kayan.json"):
        predictor = kayan.load(plain)
    o = predictor.options
    assert (o.window, o.stride, o.normalization, o.decoding) == (512, 128, (), "first")
    check_spans("زار محمد بغداد", predictor.predict("زار محمد بغداد"))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.update(labels=["O", "B-X", "I-X"]), "differ from config.json's labels"),
        (lambda m: m.update(window=4096), "window 4096 exceeds the model's limit of 64"),
        (lambda m: m.update(normalization=["shout"]), "unknown normalization step 'shout'"),
        (lambda m: m.update(decoding="beam"), "decoding 'beam'"),
    ],
)
def test_inconsistent_kayan_json_is_refused(built, tmp_path, change, message):
    folder = tmp_path / "pkg"
    shutil.copytree(built["package"], folder)
    meta = json.loads((folder / "kayan.json").read_text())
    change(meta)
    (folder / "kayan.json").write_text(json.dumps(meta))
    with pytest.raises(KayanError, match=message):
        kayan.load(folder, backend="torch")


def test_corrupt_weights_fail_with_one_clear_line(built, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "pkg"
    shutil.copytree(built["package"], folder)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(KayanError, match="corrupt"):
        kayan.load(folder, backend="torch")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("زار محمد\n".encode())))
    assert main(["predict", str(folder), "--backend", "torch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kayan: error: ") and "corrupt" in err


def test_missing_model_folder(tmp_path):
    with pytest.raises(KayanError, match="no such run or model folder"):
        kayan.load(tmp_path / "nope")
    with pytest.raises(KayanError, match="neither a run folder nor a model folder"):
        kayan.load(tmp_path)


def _stdin(monkeypatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode("utf-8")), encoding="utf-8"))


def test_cli_predict_jsonl_one_object_per_stdin_line(built, noisy, monkeypatch, capsys):
    lines = ["زار الرئيس محمد بغداد.", "", "وقال إن القاهرة جميلة"]
    _stdin(monkeypatch, "\n".join(lines) + "\n")
    assert main(["predict", str(built["noisy"]), "--backend", "torch"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["source"] for r in records] == ["<stdin>:1", "<stdin>:2", "<stdin>:3"]
    for line, record in zip(lines, records):
        assert [(e["text"], e["start"], e["end"]) for e in record["entities"]] == \
            [(e.text, e.start, e.end) for e in noisy.predict(line)]


def test_threads_set_pytorch_pool_while_the_model_runs_and_put_it_back(built, tmp_path, monkeypatch, capsys):
    import torch

    before = torch.get_num_threads()
    text = "زار الرئيس محمد بغداد."
    for threads, expected in ((1, 1), (None, before)):  # no threads: PyTorch's count as it is
        seen: list[int] = []
        predictor = kayan.load(built["noisy"], backend="torch", threads=threads)
        assert torch.get_num_threads() == before  # loading changes nothing
        predictor.backend.model.register_forward_pre_hook(lambda module, args: seen.append(torch.get_num_threads()))
        predictor.predict(text)
        assert set(seen) == {expected} and torch.get_num_threads() == before
    for bad in (0, -2, 1.5, True):
        with pytest.raises(KayanError, match=r"threads is .*; it must be a whole number, at least 1"):
            kayan.load(built["noisy"], backend="torch", threads=bad)
    calls: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)  # keep the session's pool as it is
    (tmp_path / "one.txt").write_text(text, encoding="utf-8")
    assert main(["predict", str(built["noisy"]), str(tmp_path / "one.txt"), "--backend", "torch", "--threads", str(before + 1)]) == 0
    assert calls[:2] == [before + 1, before]  # the forward pass's count, then the count it found
    assert main(["evaluate", str(built["noisy"]), "--data", "sample:dev", "--bootstrap", "0", "--threads", "3", "--json"]) == 0
    assert calls[-1] == 3  # the command sets its process's count
    capsys.readouterr()


def test_cli_predict_files_conll_and_text(built, tmp_path, monkeypatch, capsys):
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    one.write_text("زار الرئيس محمد بغداد.\nوقال إن القاهرة جميلة", encoding="utf-8")
    two.write_text("", encoding="utf-8")
    assert main(["predict", str(built["noisy"]), str(one), str(two), "--backend", "torch"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["source"] for r in records] == [f"{one}:1", f"{one}:2"]  # a record per line; the empty file has none
    text = one.read_text(encoding="utf-8")
    lines = text.split("\n")
    assert all(lines[i][e["start"] : e["end"]] == e["text"] for i, r in enumerate(records) for e in r["entities"])

    assert main(["predict", str(built["noisy"]), str(one), "--format", "conll", "--decoding", "viterbi"]) == 0
    blocks = capsys.readouterr().out.strip("\n").split("\n\n")
    assert len(blocks) == 2 and blocks[0].splitlines()[0].split(" ")[0] == "زار"
    assert all(len(line.split(" ")) == 2 for block in blocks for line in block.splitlines())

    assert main(["predict", str(built["noisy"]), str(one), "--format", "text"]) == 0
    marked = capsys.readouterr().out
    spans = re.findall(r"\[(\S+) ([^\]]+)\]", marked)
    assert spans and spans == [(e["type"], e["text"]) for r in records for e in r["entities"]]  # the JSON's entities, in order
    assert re.sub(r"\[\S+ ([^\]]+)\]", r"\1", marked) == text + "\n"  # unmarked, the text itself


def test_cli_predict_bad_file_is_one_line(built, tmp_path, capsys):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    assert main(["predict", str(built["package"]), str(bad)]) == 2
    assert "latin1.txt:1: not UTF-8" in capsys.readouterr().err
    assert main(["predict", str(built["package"]), str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt: cannot read it" in capsys.readouterr().err


ARABIC = [chr(c) for c in range(0x0621, 0x064B)] + list(DIACRITICS + TATWEEL + "،؛؟.!«» \n\t\u200f\u200b")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.text(alphabet=st.one_of(st.sampled_from(ARABIC), st.characters()), max_size=300))
def test_property_any_unicode_text(noisy, text):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = noisy.predict(text)
    check_spans(text, found)
