"""Shared fixtures and settings. Test files import the settings with ``from conftest import ...`` (pytest puts
this directory on sys.path)."""

import os
import time
from pathlib import Path

import pytest

SHARED_CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
# The tests never load plugins installed on the machine (pytest's own practice): only built-ins and the gallery.
os.environ["RNNTUI_LOAD_PLUGINS"] = ""

# A tiny model and schedule, so a test trains in a fraction of a second. TINY_ARGS are the same as options of
# `rnntui train` / `rnntui` (the app).
TINY = dict(n_layer=1, n_hidden=32, n_embd=16, seq_len=16, batch_size=4, eval_every=20, sample_every=20,
            sample_length=40, lr=3e-3, warmup_steps=0, schedule="constant", threads=1)
TINY_ARGS = ["--layers", "1", "--hidden", "32", "--embed", "16", "--seq-len", "16", "--batch-size", "4",
             "--eval-every", "20", "--sample-every", "20", "--sample-length", "40", "--lr", "3e-3", "--warmup", "0",
             "--schedule", "constant", "--threads", "1"]
# Two layers with dropout and a warm-up: what exact resume must get right (carried states, RNG, schedules).
TWO_LAYERS = dict(n_layer=2, n_hidden=32, n_embd=16, seq_len=32, batch_size=8, dropout=0.1, lr=3e-3, eval_every=5,
                  sample_every=5, sample_length=20, schedule="cosine", warmup_steps=3)


def tiny_config(corpus, **overrides):
    """TrainConfig of the TINY settings on ``corpus``, with ``overrides``."""
    from rnntui.core.config import TrainConfig

    return TrainConfig(**{**TINY, "corpus": str(corpus), **overrides})


def wait_for(condition, timeout: float = 60.0, interval: float = 0.05, what: str = "the condition"):
    """Poll ``condition()`` until it is true (returning its value); fail after a generous ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(autouse=True)
def rnntui_home(tmp_path, monkeypatch):
    """Every test gets its own data directory, so no test sees or touches the user's runs."""
    home = tmp_path / "rnntui-home"
    monkeypatch.setenv("RNNTUI_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def no_inventory_prefetch(monkeypatch):
    """The app lists plugins in a helper process at start; each test has its own cache, so only the tests that
    open New run or Plugins pay for it."""
    monkeypatch.setattr("rnntui.tui.app.RnnApp.PREFETCH_INVENTORY", False)


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
