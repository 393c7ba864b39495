"""Downloading catalogue corpora, against a local HTTP server on 127.0.0.1 serving ../shared/corpora: success,
checksum mismatch, interrupted transfer, no server; and registering a file placed by hand."""

import hashlib
import http.server
import json
import socket
import threading

import pytest

from conftest import SHARED_CORPORA
from rnntui.cli import main
from rnntui.corpora.catalogue import catalogue, downloads_dir
from rnntui.core.data import DataError
from rnntui.corpora.fetch import FetchError, add, fetch, remove
from rnntui.corpora.textcache import load_encoded
from rnntui.plugins import get_registry, reset_registry


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(SHARED_CORPORA), **kwargs)

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/cut/"):  # announce the whole file, send half of it, hang up
            data = (SHARED_CORPORA / self.path.removeprefix("/cut/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path.startswith("/cut-no-length/"):  # the same without Content-Length: only the checksum can tell
            data = (SHARED_CORPORA / self.path.removeprefix("/cut-no-length/")).read_bytes()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(monkeypatch):
    if not (SHARED_CORPORA / "tinyshakespeare.txt").exists():
        pytest.skip("../shared/corpora is not beside the checkout")
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def fresh_registry():
    reset_registry()
    yield
    reset_registry()


def leftovers():
    return sorted(p.name for p in downloads_dir().iterdir()) if downloads_dir().exists() else []


def test_catalogue_lists_checksums_urls_and_licences():
    entries = catalogue()
    assert {"tinyshakespeare", "nietzsche"} <= set(entries)
    for entry in entries.values():
        assert entry.url.startswith("https://") and len(entry.sha256) == 64 and entry.licence
    for name in ("tinyshakespeare", "nietzsche"):
        if (SHARED_CORPORA / f"{name}.txt").exists():
            assert hashlib.sha256((SHARED_CORPORA / f"{name}.txt").read_bytes()).hexdigest() == entries[name].sha256


def test_fetch_downloads_verifies_and_makes_the_corpus_usable(server, rnntui_home):
    corpus = get_registry().corpus("tinyshakespeare")
    assert not corpus.is_available()
    with pytest.raises(DataError, match="not downloaded yet.*rnntui corpora fetch tinyshakespeare.*"
                                        "rnntui corpora add tinyshakespeare PATH"):
        load_encoded("tinyshakespeare", corpora=get_registry().corpora)
    events = []
    path = fetch("tinyshakespeare", url=f"{server}/tinyshakespeare.txt", progress=events.append)
    assert path == downloads_dir() / "tinyshakespeare.txt" and path.is_relative_to(rnntui_home)
    assert path.read_bytes() == (SHARED_CORPORA / "tinyshakespeare.txt").read_bytes()
    downloads = [e for e in events if e.stage == "download"]
    assert downloads[-1].done == downloads[-1].total == 1_115_394
    assert leftovers() == ["tinyshakespeare.txt"]
    assert corpus.is_available()
    encoded = load_encoded("tinyshakespeare", corpora=get_registry().corpora)
    assert encoded.name == "tinyshakespeare" and len(encoded) == 1_115_394 and len(encoded.vocab) == 65
    # a verified copy is not downloaded again unless forced
    assert fetch("tinyshakespeare", url=f"{server}/no-such-file") == path


def test_checksum_mismatch_keeps_nothing(server):
    with pytest.raises(FetchError, match=r"does not match the catalogue: sha256 23cf6987.*nothing was kept.*"
                                         r"rnntui corpora add tinyshakespeare PATH"):
        fetch("tinyshakespeare", url=f"{server}/nietzsche.txt")
    assert leftovers() == []


@pytest.mark.parametrize("route,match", [("cut", "interrupted after 557,697 of 1,115,394 bytes"),
                                          ("cut-no-length", "does not match the catalogue")])
def test_interrupted_transfer_keeps_nothing(server, route, match):
    with pytest.raises(FetchError, match=match):
        fetch("tinyshakespeare", url=f"{server}/{route}/tinyshakespeare.txt")
    assert leftovers() == []


def test_interrupted_transfer_keeps_a_previous_good_copy(server):
    good = fetch("tinyshakespeare", url=f"{server}/tinyshakespeare.txt")
    with pytest.raises(FetchError):
        fetch("tinyshakespeare", url=f"{server}/cut/tinyshakespeare.txt", force=True)
    assert leftovers() == ["tinyshakespeare.txt"]
    assert hashlib.sha256(good.read_bytes()).hexdigest() == catalogue()["tinyshakespeare"].sha256


def test_no_server_says_what_to_do(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket is closed
    url = f"http://127.0.0.1:{port}/tinyshakespeare.txt"
    with pytest.raises(FetchError) as failure:
        fetch("tinyshakespeare", url=url, timeout=5)
    message = str(failure.value)
    assert url in message and "rnntui corpora add tinyshakespeare PATH" in message
    assert catalogue()["tinyshakespeare"].url in message
    assert "\n" not in message and leftovers() == []


def test_http_error(server):
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch("tinyshakespeare", url=f"{server}/missing.txt")


def test_unknown_catalogue_name():
    with pytest.raises(DataError, match="no corpus named 'shakespeare' in the catalogue; it has: nietzsche"):
        fetch("shakespeare")


def test_cli_fetch_then_list_offline_and_train_by_name(server, capsys):
    assert main(["corpora", "fetch", "nietzsche", "--url", f"{server}/nietzsche.txt"]) == 0
    assert "sha256 verified" in capsys.readouterr().out
    assert main(["corpora", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["nietzsche"]["offline"] and not rows["tinyshakespeare"]["offline"]
    assert main(["train", "nietzsche", "--hidden", "16", "--layers", "1", "--batch-size", "2", "--seq-len", "16",
                 "--max-steps", "1", "--quiet"]) == 0
    assert "on nietzsche" in capsys.readouterr().out


def test_cli_failed_fetch_is_one_line(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["corpora", "fetch", "tinyshakespeare", "--url", f"http://127.0.0.1:{port}/x", "--timeout", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnntui: error: could not download") and err.count("\n") == 1
    assert "rnntui corpora add tinyshakespeare PATH" in err


def test_add_by_hand_verifies_a_catalogue_file(tmp_path, shakespeare):
    message = add("tinyshakespeare", shakespeare)
    assert "verified" in message and leftovers() == ["tinyshakespeare.txt"]
    reset_registry()
    assert get_registry().corpus("tinyshakespeare").is_available()
    wrong = tmp_path / "input.txt"
    wrong.write_bytes(shakespeare.read_bytes()[:-1])
    with pytest.raises(DataError, match="not the catalogue's tinyshakespeare.*rnntui corpora add my-tinyshakespeare"):
        add("tinyshakespeare", wrong)
    assert "removed" in remove("tinyshakespeare") and leftovers() == []


def test_add_and_remove_a_text_of_ones_own(tmp_path, small_text, capsys):
    assert main(["corpora", "add", "mine", str(small_text)]) == 0
    assert "rnntui train mine" in capsys.readouterr().out
    reset_registry()
    assert main(["corpora", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["mine"]["offline"] and rows["mine"]["size"] == small_text.stat().st_size
    mine = load_encoded("mine", corpora=get_registry().corpora)
    assert mine.vocab.decode(mine.ids) == small_text.read_text()
    assert main(["corpora", "add", "python-docs", str(small_text)]) == 2
    assert "taken" in capsys.readouterr().err
    assert main(["corpora", "remove", "mine"]) == 0
    reset_registry()
    assert "mine" not in get_registry().corpora and small_text.exists()
