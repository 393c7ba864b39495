"""Reading text: encodings, BOM, line endings, invalid bytes, directories with binary files, stdin, the vocabulary
policy for huge alphabets, and the content-hash-keyed on-disk cache of encoded texts."""

import io
import os
import sys

import numpy as np
import pytest

from rnntui.core.data import MAX_VOCAB, UNKNOWN, DataError, Streams, eval_chunks, make_dataset
from rnntui.corpora.decoding import TextProgress, decode_chunks
from rnntui.corpora.sources import DirectorySource, read_text_file
from rnntui.corpora.textcache import encode_source, load_encoded, text_cache_dir
from rnntui.util.paths import cache_dir


def decode(blocks, encoding="utf-8", normalize=True):
    return "".join(text for text, _ in decode_chunks(blocks, encoding, normalize, "the test text"))


# -- decoding ----------------------------------------------------------------------------------------------------


def test_bom_is_stripped_and_line_endings_become_lf(tmp_path):
    path = tmp_path / "windows.txt"
    path.write_bytes(b"\xef\xbb\xbfhello\r\nold mac\rworld\r\n")
    assert read_text_file(path) == "hello\nold mac\nworld\n"
    assert read_text_file(path, normalize_newlines=False) == "hello\r\nold mac\rworld\r\n"


def test_crlf_split_across_chunks_is_one_newline():
    assert decode([b"a\r", b"\nb\r", b"c\r"]) == "a\nb\nc\n"
    assert decode([b"a\r", b"\r\n", b"b"]) == "a\n\nb"
    assert decode([b"a\r", b"\nb"], normalize=False) == "a\r\nb"


def test_multibyte_character_split_across_chunks():
    assert decode([b"caf\xc3", b"\xa9 cr\xc3\xa8me"]) == "café crème"
    assert decode([b"\xef\xbb", b"\xbfBOM"]) == "BOM"


def test_latin1_is_read_with_encoding_option(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("café, naïve, Ærø\r\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"byte 0xe9 at offset 3.*--encoding latin-1"):
        read_text_file(path)
    assert read_text_file(path, "latin-1") == "café, naïve, Ærø\n"


def test_utf16_with_bom(tmp_path):
    path = tmp_path / "utf16.txt"
    path.write_bytes("h\u00e9llo\r\nw\u00f6rld".encode("utf-16"))  # NUL bytes are normal in UTF-16
    assert read_text_file(path, "utf-16") == "héllo\nwörld"


def test_invalid_utf8_names_the_byte_offset_even_across_chunks():
    with pytest.raises(DataError, match=r"byte 0xff at offset 6; re-run with --encoding latin-1"):
        decode([b"ab\xc3", b"\xa9cd\xff more"])
    with pytest.raises(DataError, match=r"incomplete character at the end \(byte 0xe2\) at offset 3"):
        decode([b"abc\xe2\x82"])


def test_unknown_encoding_is_a_data_error(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("hello")
    with pytest.raises(DataError, match="unknown encoding 'klingon'"):
        read_text_file(path, "klingon")


def test_binary_file_is_refused(tmp_path):
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10)
    with pytest.raises(DataError, match="looks binary"):
        load_encoded(str(path))


# -- directories -------------------------------------------------------------------------------------------------


@pytest.fixture
def mixed_dir(tmp_path):
    root = tmp_path / "project"
    (root / "sub").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "a.txt").write_text("alpha line one\nalpha line two")  # no final newline: one is added
    (root / "sub" / "b.md").write_text("# beta\n\nsome *markdown* here\n")
    (root / "sub" / "c.py").write_text("def gamma():\n    return 3\n")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (root / "sub" / "notes-latin1.txt").write_bytes("na\xefve caf\xe9\n".encode("latin-1"))
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / ".hidden.txt").write_text("secret\n")
    return root


def test_directory_reads_text_files_recursively_and_reports_binary_ones(mixed_dir):
    notes = []
    encoded = load_encoded(str(mixed_dir), progress=lambda e: notes.append(e.message) if e.stage == "note" else None)
    text = encoded.vocab.decode(encoded.ids)
    assert text == ("alpha line one\nalpha line two\n"  # a.txt, then sub/ in sorted order
                    "# beta\n\nsome *markdown* here\n"
                    "def gamma():\n    return 3\n")
    assert dict(encoded.skipped) == {"logo.png": "binary", "sub/notes-latin1.txt": "not valid utf-8 at byte 2"}
    assert len(notes) == 1 and "skipped 2 files" in notes[0] and "logo.png (binary)" in notes[0]
    assert "secret" not in text and "refs/heads" not in text  # hidden files and directories are skipped


def test_directory_include_and_exclude_globs(mixed_dir):
    only_md = load_encoded(str(mixed_dir), include=["*.md"])
    assert only_md.vocab.decode(only_md.ids) == "# beta\n\nsome *markdown* here\n"
    no_sub = load_encoded(str(mixed_dir), exclude=["sub"])
    assert no_sub.vocab.decode(no_sub.ids) == "alpha line one\nalpha line two\n"
    assert [s[0] for s in no_sub.skipped] == ["logo.png"]
    py_in_sub = load_encoded(str(mixed_dir), include=["sub/*.py"])
    assert py_in_sub.vocab.decode(py_in_sub.ids).startswith("def gamma")
    with pytest.raises(DataError, match="no files to read; include \\*.rst"):
        load_encoded(str(mixed_dir), include=["*.rst"])


def test_directory_latin1_reads_every_file_but_the_binary_one(mixed_dir):
    encoded = load_encoded(str(mixed_dir), encoding="latin-1")
    assert "naïve café" in encoded.vocab.decode(encoded.ids)
    assert [s[0] for s in encoded.skipped] == ["logo.png"]


def test_directory_of_binary_files_only_is_refused(tmp_path):
    (tmp_path / "bin").mkdir()
    for name in ("a.bin", "b.so"):
        (tmp_path / "bin" / name).write_bytes(b"\x7fELF\x00\x00\x01" * 50)
    with pytest.raises(DataError, match="none of its 2 files is text"):
        load_encoded(str(tmp_path / "bin"))


def test_directory_source_order_is_deterministic(mixed_dir):
    assert [d.label for d in DirectorySource(mixed_dir).documents()] == [
        "a.txt", "logo.png", "sub/b.md", "sub/c.py", "sub/notes-latin1.txt"]


# -- stdin -------------------------------------------------------------------------------------------------------


def test_stdin_is_spooled_read_and_removed(rnntui_home):
    encoded = load_encoded("-", stdin=io.BytesIO(b"\xef\xbb\xbffrom a pipe\r\nline two\r\n"))
    assert encoded.name == "stdin"
    assert encoded.vocab.decode(encoded.ids) == "from a pipe\nline two\n"
    assert not any((cache_dir() / "spool").iterdir())


def test_train_reads_stdin(monkeypatch, small_text, capsys):
    from rnntui.cli import main

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(small_text.read_bytes())))
    assert main(["train", "-", "--hidden", "16", "--layers", "1", "--batch-size", "2", "--seq-len", "16",
                 "--max-steps", "2", "--quiet"]) == 0
    assert "on stdin" in capsys.readouterr().out


# -- vocabulary policy -------------------------------------------------------------------------------------------


def huge_alphabet_text(distinct: int) -> str:
    """``distinct`` CJK characters (from the supplementary planes); the first 1,000 occur three times, the next
    ones twice up to 65,534, the rest once."""
    chars = [chr(0x20000 + i) for i in range(distinct)]
    return "".join(c * (3 if i < 1000 else 2 if i < MAX_VOCAB - 1 else 1) for i, c in enumerate(chars)) + "\n"


def test_huge_vocabulary_maps_the_rarest_characters_to_unknown(rnntui_home):
    text = huge_alphabet_text(70_000)
    dataset = make_dataset(text)
    vocab = dataset.vocab
    assert len(vocab) == MAX_VOCAB and vocab.dtype == np.uint16 and dataset.train.dtype == np.uint16
    assert UNKNOWN in vocab.chars
    kept = set(vocab.chars)
    assert chr(0x20000) in kept and chr(0x20000 + MAX_VOCAB - 3) in kept  # frequent characters keep their symbol
    assert chr(0x20000 + 69_999) not in kept  # a rare one does not ...
    unknown_id = vocab.chars.index(UNKNOWN)
    ids = np.concatenate([dataset.train, dataset.val])
    assert ids[-2] == unknown_id  # ... it reads as U+FFFD
    assert (ids == unknown_id).sum() == 70_000 - (MAX_VOCAB - 2)  # the '\n' is kept too
    assert dataset.notes and "mapped to U+FFFD" in dataset.notes[0]


def test_huge_vocabulary_through_the_cache_matches_memory(tmp_path):
    path = tmp_path / "hanzi.txt"
    text = huge_alphabet_text(66_000)
    path.write_text(text, encoding="utf-8")
    in_memory = make_dataset(text)
    cached = load_encoded(str(path), cache_min_chars=0)
    assert cached.cache_path is not None and isinstance(cached.ids, np.memmap)
    assert cached.vocab == in_memory.vocab and cached.ids.dtype == np.uint16
    assert np.array_equal(np.asarray(cached.ids), np.concatenate([in_memory.train, in_memory.val]))


def test_vocabulary_at_the_limit_keeps_every_character():
    text = "".join(chr(0x20000 + i) for i in range(MAX_VOCAB - 1)) + "\n"
    vocab = make_dataset(text).vocab
    assert len(vocab) == MAX_VOCAB and UNKNOWN not in vocab.chars and vocab.dtype == np.uint16


def test_training_step_on_a_huge_vocabulary(tmp_path):
    from rnntui.core.config import TrainConfig
    from rnntui.run import build_trainer

    path = tmp_path / "hanzi.txt"
    path.write_text(huge_alphabet_text(66_000), encoding="utf-8")
    config = TrainConfig(corpus=str(path), n_layer=1, n_hidden=16, n_embd=8, batch_size=2, seq_len=8,
                         max_steps=1, eval_every=1000, sample_every=1000, sample_length=5)
    trainer = build_trainer(config, tmp_path / "run")
    assert len(trainer.vocab) == MAX_VOCAB
    loss, _, _ = trainer.train_step()
    assert loss > 0


# -- the on-disk cache -------------------------------------------------------------------------------------------


def stages(events):
    return {e.stage for e in events}


def test_small_texts_stay_in_memory(small_text):
    encoded = load_encoded(str(small_text))
    assert encoded.cache_path is None and not isinstance(encoded.ids, np.memmap)
    assert not text_cache_dir().exists()


def test_cache_is_written_once_and_reused(tmp_path, shakespeare):
    first_events, second_events = [], []
    first = load_encoded(str(shakespeare), cache_min_chars=0, progress=first_events.append)
    assert not first.from_cache and first.cache_path.parent == text_cache_dir()
    assert first.cache_path.is_relative_to(os.environ["RNNTUI_HOME"])
    assert {"hash", "count", "encode"} <= stages(first_events)
    assert isinstance(first.ids, np.memmap) and first.ids.dtype == np.uint8 and len(first.ids) == 1_115_394

    second = load_encoded(str(shakespeare), cache_min_chars=0, progress=second_events.append)
    assert second.from_cache and second.cache_path == first.cache_path
    assert stages(second_events) <= {"note"}  # neither hashed nor read again: the stat memo knows the file
    assert second.vocab == first.vocab and np.array_equal(second.ids, first.ids)
    assert second.fingerprint == first.fingerprint

    dataset = second.dataset(0.1)
    assert (len(dataset.train), len(dataset.val)) == (1_003_854, 111_540)  # nanoGPT's split, as in memory
    assert isinstance(dataset.train, np.memmap)
    x, y, _ = Streams(dataset.train, 4, 32).batch(3)
    assert x.shape == (4, 32)
    in_memory = make_dataset(shakespeare.read_text())
    assert np.array_equal(dataset.val, in_memory.val)
    for (xa, ya, ra), (xb, yb, rb) in zip(eval_chunks(dataset.val, 8, 128), eval_chunks(in_memory.val, 8, 128)):
        assert (xa.equal(xb), ya.equal(yb), ra) == (True, True, rb)


def test_cache_is_invalidated_when_the_file_changes(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("the first version of the text\n" * 200)
    first = load_encoded(str(path), cache_min_chars=0)
    st = path.stat()
    path.write_text("the other version of the text\n" * 200)  # same size ...
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and same modification time
    second = load_encoded(str(path), cache_min_chars=0)
    assert not second.from_cache and second.fingerprint != first.fingerprint
    assert second.vocab.decode(second.ids[:20]) == "the other version of"
    path.write_text("the first version of the text\n" * 200)  # back to the first content: its entry is reused
    third = load_encoded(str(path), cache_min_chars=0)
    assert third.from_cache and third.cache_path == first.cache_path


def test_reading_options_are_part_of_the_key(tmp_path):
    path = tmp_path / "crlf.txt"
    path.write_bytes(b"line\r\n" * 100)
    lf = load_encoded(str(path), cache_min_chars=0)
    crlf = load_encoded(str(path), cache_min_chars=0, normalize_newlines=False)
    assert lf.fingerprint != crlf.fingerprint and (len(lf), len(crlf)) == (500, 600)


def test_a_damaged_cache_entry_is_rebuilt(tmp_path, small_text):
    first = load_encoded(str(small_text), cache_min_chars=0)
    data = (first.cache_path / "ids.bin").read_bytes()
    del first
    (first_path := text_cache_dir() / os.listdir(text_cache_dir())[0] / "ids.bin").write_bytes(data[:-10])
    again = load_encoded(str(small_text), cache_min_chars=0)
    assert not again.from_cache and (again.cache_path / "ids.bin").read_bytes() == data
    assert first_path.exists()
    assert not [p for p in text_cache_dir().iterdir() if p.name.startswith(".tmp")]


def test_a_corpus_without_version_is_keyed_by_its_content(monkeypatch):
    from rnntui.corpora import Corpus
    from rnntui.corpora.sources import IterSource

    text = ["some generated ", "text\r\n"] * 500
    corpus = Corpus("gen", "a test corpus", "tests", read=lambda: iter(text))
    first = encode_source(IterSource(corpus), cache_min_chars=0)
    again = encode_source(IterSource(corpus), cache_min_chars=0)
    assert again.from_cache and again.fingerprint == first.fingerprint
    assert first.vocab.decode(first.ids[:21]) == "some generated text\ns"
    text[0] = "other generated "
    assert encode_source(IterSource(corpus), cache_min_chars=0).fingerprint != first.fingerprint


def test_progress_reports_are_typed(tmp_path, shakespeare):
    events = []
    load_encoded(str(shakespeare), cache_min_chars=0, progress=events.append)
    assert all(isinstance(e, TextProgress) for e in events)
    encode = [e for e in events if e.stage == "encode"]
    assert encode[-1].done == encode[-1].total == shakespeare.stat().st_size


def test_resume_refuses_a_changed_corpus(tmp_path):
    from rnntui.core.config import ConfigError, TrainConfig
    from rnntui.run import build_trainer, resume_trainer

    path = tmp_path / "corpus.txt"
    words = "the quick brown fox jumps over the lazy dog "
    path.write_text(words * 100)
    config = TrainConfig(corpus=str(path), n_layer=1, n_hidden=16, n_embd=8, batch_size=2, seq_len=8,
                         max_steps=2, eval_every=2, sample_every=100, sample_length=5)
    trainer = build_trainer(config, tmp_path / "run")
    assert trainer.config.corpus_fingerprint == trainer.dataset.fingerprint
    list(trainer.run())
    trainer.close()
    resumed = resume_trainer(tmp_path / "run", max_steps=3)
    resumed.close()
    assert resumed.steps_done == 2
    path.write_text(" ".join(reversed(words.split())) * 100)  # same characters, different text
    with pytest.raises(ConfigError, match="changed since this run started"):
        resume_trainer(tmp_path / "run", max_steps=3)


def test_an_unwritable_cache_is_a_clear_error(small_text):
    text_cache_dir().parent.mkdir(parents=True, exist_ok=True)
    text_cache_dir().write_text("not a directory")
    with pytest.raises(DataError, match="could not write the encoded text to .*set RNNTUI_HOME"):
        load_encoded(str(small_text), cache_min_chars=0)
    assert load_encoded(str(small_text)).cache_path is None  # a small text does not need the cache
