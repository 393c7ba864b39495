import os
from pathlib import Path

import pytest

SHARED_CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
# The tests never load plugins installed on the machine (pytest's own practice): only built-ins and the gallery.
os.environ["RNNTUI_LOAD_PLUGINS"] = ""


@pytest.fixture(autouse=True)
def rnntui_home(tmp_path, monkeypatch):
    """Every test gets its own data directory, so no test sees or touches the user's runs."""
    home = tmp_path / "rnntui-home"
    monkeypatch.setenv("RNNTUI_HOME", str(home))
    return home


@pytest.fixture
def shakespeare() -> Path:
    path = SHARED_CORPORA / "tinyshakespeare.txt"
    if not path.exists():
        pytest.skip("../shared/corpora/tinyshakespeare.txt is not beside the checkout")
    return path


@pytest.fixture
def small_text(tmp_path) -> Path:
    """A small English text (a few kB), enough for a few training steps."""
    words = ("the quick brown fox jumps over the lazy dog while the cat sleeps in the warm sun and "
             "a bird sings softly to the morning light ").split()
    lines = [" ".join(words[(i * 7) % len(words):] + words[: (i * 7) % len(words)]) for i in range(60)]
    path = tmp_path / "small.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def plugin_env(monkeypatch):
    """No plugin settings from the machine; whatever a test (or --plugins-dir) sets is undone after it."""
    from rnntui import plugins

    for var in (plugins.ENV_PATH, plugins.ENV_DISABLED, plugins.ENV_DIR_ARGS):
        monkeypatch.setenv(var, "")
    monkeypatch.setenv(plugins.ENV_LOAD, "")
    yield
    plugins.reset_registry()
