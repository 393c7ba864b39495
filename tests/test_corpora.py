"""The built-in corpora (python-docs, python-stdlib, the synthetic probes, the catalogue), registered through the
plugin hook, and the `rnntui corpora` command."""

import json
import re

import numpy as np
import pytest

from rnntui.cli import main
from rnntui.corpora import synthetic
from rnntui.corpora import DEFAULT_CORPUS, Corpus
from rnntui.core.data import DataError
from rnntui.corpora.textcache import load_encoded
from rnntui.core.config import TrainConfig
from rnntui.plugins import as_corpus, get_registry

TINY = ["--hidden", "16", "--embed", "8", "--layers", "1", "--batch-size", "2", "--seq-len", "16", "--quiet",
        "--sample-length", "10"]
BUILT_IN = ("python-docs", "python-stdlib", "hello", "brackets", "copy", "arithmetic", "tinyshakespeare", "nietzsche")


def text_of(name, **options):
    encoded = load_encoded(name, corpora=get_registry().corpora, options=options)
    return encoded.vocab.decode(encoded.ids)


def test_built_in_corpora_are_registered_through_the_hook():
    registry = get_registry()
    for name in BUILT_IN:
        corpus = registry.corpus(name)
        assert isinstance(corpus, Corpus) and corpus.description and corpus.source
        assert registry.owners[("corpus", name)].endswith("corpora")  # the built-in plugin module
    assert DEFAULT_CORPUS == "python-docs" == TrainConfig().corpus
    offline = {name for name in BUILT_IN if registry.corpus(name).is_available()}
    assert offline == {"python-docs", "python-stdlib", "hello", "brackets", "copy", "arithmetic"}


def test_python_docs_is_english_prose_offline():
    encoded = load_encoded("python-docs", corpora=get_registry().corpora)
    text = encoded.vocab.decode(encoded.ids)
    assert len(text) > 200_000 and len(encoded.vocab) < 256 and encoded.ids.dtype == np.uint8
    assert text.count(" the ") > 1000 and "def " in text
    assert get_registry().corpus("python-docs").size_hint() == len(text)


def test_python_stdlib_is_source_code_with_a_size_cap():
    text = text_of("python-stdlib", max_chars=300_000)
    assert len(text) == 300_000
    assert text.startswith("# file: ")
    assert all(token in text for token in ("def ", "import ", "    ", "(", "[", '"""', "# "))
    files = re.findall(r"^# file: (\S+)$", text, flags=re.M)
    assert files == sorted(files) and all(f.endswith(".py") and "test" not in f.split("/")[0] for f in files)
    assert get_registry().corpus("python-stdlib").size_hint() > 5_000_000
    assert text_of("python-stdlib", max_chars="1e5") == text[:100_000]  # options given as text are converted


@pytest.mark.parametrize("name", list(synthetic.PROBES))
def test_probes_are_deterministic_for_a_seed(name):
    first = text_of(name, chars=20_000, seed=7)
    assert len(first) == 20_000
    assert text_of(name, chars=20_000, seed=7) == first
    assert text_of(name, chars=5_000, seed=7) == first[:5_000]  # a longer probe starts with the shorter one
    if name != "hello":
        assert text_of(name, chars=20_000, seed=8) != first
    description = get_registry().corpus(name).description
    assert "test" in description or "toy" in description
    assert "chars=" in description and "seed=" in description


def test_probes_say_what_they_test():
    lines = text_of("hello", chars=600).splitlines()
    assert set(lines) == {"hello"} and len(lines) == 100
    for line in text_of("brackets", chars=50_000, depth=3, length=20, seed=1).splitlines()[:-1]:
        assert len(line) == 20
        stack, deepest = [], 0
        for ch in line:
            if ch in "([{<":
                stack.append("([{<".index(ch))
                deepest = max(deepest, len(stack))
            else:
                assert stack and ")]}>".index(ch) == stack.pop()
        assert not stack and deepest <= 3
    assert set(text_of("brackets", chars=5_000, kinds=1)) == {"(", ")", "\n"}
    for line in text_of("copy", chars=10_000, length=5, delay=7, alphabet=4).splitlines()[:-1]:
        assert re.fullmatch(r"([a-d]{5})-{7}>\1", line)
    for line in text_of("arithmetic", chars=10_000, digits=3).splitlines()[:-1]:
        a, b, c = map(int, re.fullmatch(r"(\d{1,3})\+(\d{1,3})=(\d+)", line).groups())
        assert a + b == c


def test_corpus_options_are_checked():
    with pytest.raises(DataError, match="brackets has no option 'deep'; its options are: chars .*depth"):
        load_encoded("brackets", corpora=get_registry().corpora, options={"deep": 3})
    with pytest.raises(DataError, match="depth='three' is not a valid int"):
        load_encoded("brackets", corpora=get_registry().corpora, options={"depth": "three"})
    with pytest.raises(DataError, match="python-docs has no option 'chars'; it takes no options"):
        load_encoded("python-docs", corpora=get_registry().corpora, options={"chars": 10})
    with pytest.raises(DataError, match="kinds between 1 and 4"):
        load_encoded("brackets", corpora=get_registry().corpora, options={"kinds": 9})


def test_unknown_name_lists_the_corpora():
    with pytest.raises(DataError, match="no corpus named 'shakespeare' and no such file; choose one of: arithmetic"):
        load_encoded("shakespeare", corpora=get_registry().corpora)


def test_a_name_is_resolved_only_among_the_corpora_given():
    with pytest.raises(DataError, match="no corpus named 'python-docs' and no such file; give a path"):
        load_encoded("python-docs")  # the corpus layer knows no registry: the caller passes its corpora


def test_a_plugin_corpus_without_options_or_version():
    corpus = Corpus("plain", "a plugin's corpus", "tests", read=lambda: iter(["plain text\r\n"] * 50))
    registry = get_registry()
    registry.corpora["plain"] = corpus
    try:
        encoded = load_encoded("plain", corpora=get_registry().corpora)
        assert encoded.vocab.decode(encoded.ids[:11]) == "plain text\n" and len(encoded) == 550
    finally:
        del registry.corpora["plain"]


# -- the command ------------------------------------------------------------------------------------------------


def test_cli_lists_corpora_as_json(capsys):
    assert main(["corpora", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(BUILT_IN) <= set(rows)
    assert rows["python-docs"]["offline"] and rows["python-docs"]["plugin"].endswith("corpora")
    assert rows["tinyshakespeare"]["size"] == 1_115_394 and not rows["tinyshakespeare"]["offline"]
    assert rows["brackets"]["size"] == 1_000_000


def test_cli_lists_corpora_as_a_table(capsys):
    assert main(["corpora"]) == 0
    out = capsys.readouterr().out
    assert "python-stdlib" in out and "rnntui corpora fetch NAME" in out


def test_cli_show_describes_a_corpus(capsys):
    assert main(["corpora", "show", "copy", "--corpus-option", "chars=3000", "--corpus-option", "alphabet=3"]) == 0
    out = capsys.readouterr().out
    assert "3,000 characters" in out and "distinct characters" in out and "most frequent" in out
    assert "sample lines" in out and re.search(r"│ ([abc]{8})-{16}>\1", out)
    assert "CRLF and CR normalised to LF" in out and "generated" in out


def test_cli_show_json_of_a_file(tmp_path, capsys):
    path = tmp_path / "dos.txt"
    path.write_bytes(b"one line\r\nanother line\r\n" * 10)
    assert main(["corpora", "show", str(path), "--json", "--no-normalize-newlines"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["chars"] == 240 and info["normalize_newlines"] is False and info["encoding"] == "utf-8"
    assert "\r" in {f["char"] for f in info["frequent"]}
    assert info["sample_lines"][0] == "one line\r"


def test_cli_show_a_catalogue_corpus_not_yet_downloaded(capsys):
    assert main(["corpora", "show", "nietzsche"]) == 0
    out = capsys.readouterr().out
    assert "not downloaded yet" in out and "rnntui corpora fetch nietzsche" in out and "public domain" in out


def test_cli_train_on_a_probe_by_name_with_options(capsys):
    assert main(["train", "arithmetic", *TINY, "--max-steps", "2", "--corpus-option", "chars=20000"]) == 0
    assert "on arithmetic" in capsys.readouterr().out


def test_cli_train_on_a_directory(tmp_path, capsys):
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    for i in range(5):
        (tmp_path / "src" / "pkg" / f"m{i}.py").write_text(f"def f{i}(x):\n    return x * {i}\n" * 20)
    (tmp_path / "src" / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)
    assert main(["train", str(tmp_path / "src"), *TINY, "--max-steps", "1", "--include", "*.py",
                 "--include", "*.bin"]) == 0
    captured = capsys.readouterr()
    assert "rnntui: note:" in captured.err and "blob.bin (binary)" in captured.err


@pytest.mark.parametrize("args,match", [
    (["train", "tinyshakespeare"], r"not downloaded yet: run `rnntui corpora fetch tinyshakespeare`.*"
                                   r"rnntui corpora add tinyshakespeare PATH"),
    (["train", "no-such-corpus"], "no corpus named 'no-such-corpus'"),
    (["train", "brackets", "--corpus-option", "depth"], "--corpus-option 'depth': write it as KEY=VALUE"),
    (["corpora", "show", "/no/such/file.txt"], "no such file"),
    (["train", "python-docs", "--include", "*.py"], "--include/--exclude apply to directories"),
])
def test_cli_corpus_errors_are_one_line(capsys, rnntui_home, args, match):
    assert main(args) != 0
    err = capsys.readouterr().err
    assert err.startswith("rnntui: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert re.search(match, err), err
    assert not (rnntui_home / "runs").exists()


def test_cli_cache_lists_and_clears(tmp_path, shakespeare, capsys):
    load_encoded(str(shakespeare), cache_min_chars=0)
    assert main(["corpora", "cache"]) == 0
    assert "1,115,394 characters" in capsys.readouterr().out
    assert main(["corpora", "cache", "--clear"]) == 0
    assert main(["corpora", "cache"]) == 0
    assert "no cached encodings" in capsys.readouterr().out


def test_a_duck_typed_plugin_corpus(capsys):
    class Minimal:  # only what the hook's contract asks: name, description, source, read()
        name, description, source = "minimal", "A bare object.", "tests"

        def read(self):
            yield "just some text\n" * 40

    registry = get_registry()
    registry.corpora["minimal"] = as_corpus(Minimal())  # what registering it through the hook stores
    try:
        assert len(load_encoded("minimal", corpora=get_registry().corpora)) == 600
        assert main(["corpora", "--json"]) == 0
        rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
        assert rows["minimal"]["offline"] and rows["minimal"]["size"] is None
        assert main(["corpora", "show", "minimal"]) == 0
        assert "A bare object." in capsys.readouterr().out
    finally:
        del registry.corpora["minimal"]
