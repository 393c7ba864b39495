"""The README's "Write a cell plugin" section, taken from the README text itself: its cell plugin and its corpus
plugin load from a plugin directory and train for a few steps, its pyproject's entry point is found, and its test
passes."""

import re
import sys
import tomllib
from pathlib import Path

import pytest

from rnntui.cli import main
from rnntui.plugins import ENV_LOAD, build_registry

pytestmark = pytest.mark.usefixtures("plugin_env")  # tests/conftest.py: no plugin settings from the machine
README = Path(__file__).resolve().parents[1] / "README.md"
TINY = ["--hidden", "16", "--embed", "8", "--layers", "2", "--batch-size", "4", "--seq-len", "16",
        "--eval-every", "4", "--sample-every", "4", "--sample-length", "20", "--max-steps", "4", "--quiet"]


def section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Write a cell plugin")
    return text[start:text.index("\n## ", start + 1)]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(), flags=re.S)


@pytest.fixture
def readme_plugins(tmp_path) -> Path:
    """The README's plugin files, written where a user would put them."""
    cell, test, corpus = blocks("python")
    directory = tmp_path / "plugins"
    directory.mkdir()
    (directory / "ln_rnn.py").write_text(cell)
    (directory / "test_ln_rnn.py").write_text(test)  # beside it, as a user might: not loaded as a plugin
    (directory / "fizzbuzz.py").write_text(corpus)
    return directory


def test_the_readme_plugins_are_short():
    cell, _, corpus = blocks("python")
    assert len(cell.strip().splitlines()) <= 25 and len(corpus.strip().splitlines()) <= 25


def test_the_readme_cell_plugin_trains(readme_plugins, small_text, capsys, tmp_path):
    registry = build_registry([readme_plugins])
    assert "ln-rnn" in registry.cells and "fizzbuzz" in registry.corpora and not registry.failures()
    assert registry.cells["ln-rnn"].hyperparameters == {"gain": 1.0}
    log = tmp_path / "log.jsonl"
    code = main(["train", str(small_text), "--plugins-dir", str(readme_plugins), "--cell", "ln-rnn",
                 "--cell-option", "gain=1.5", "--log-json", str(log), *TINY])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "ln-rnn" in out
    import json

    steps = [json.loads(line) for line in log.read_text().splitlines() if '"step"' in line]
    losses = [e["loss"] for e in steps if e["type"] == "step"]
    assert len(losses) == 4 and all(loss == loss for loss in losses)


def test_the_readme_corpus_plugin_trains(readme_plugins, capsys):
    code = main(["train", "fizzbuzz", "--plugins-dir", str(readme_plugins), "--cell", "ln-rnn", *TINY])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "fizzbuzz" in out


def test_the_readme_test_passes(readme_plugins, monkeypatch):
    monkeypatch.syspath_prepend(str(readme_plugins))
    namespace: dict = {}
    exec((readme_plugins / "test_ln_rnn.py").read_text(), namespace)
    namespace["test_ln_rnn_follows_the_cell_contract"]()
    sys.modules.pop("ln_rnn", None)


def test_the_readme_entry_point_is_found(readme_plugins, tmp_path, monkeypatch):
    """Install the README's package the way pip records it (a dist-info with its entry points), then discover it."""
    (toml,) = blocks("toml")
    project = tomllib.loads(toml)["project"]
    site = tmp_path / "site"
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    points = "".join(f"{k} = {v}\n" for k, v in project["entry-points"]["rnntui"].items())
    (info / "entry_points.txt").write_text(f"[rnntui]\n{points}")
    (site / "ln_rnn.py").write_text((readme_plugins / "ln_rnn.py").read_text())
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv(ENV_LOAD)
    registry = build_registry()
    info = registry.plugin_of("cell", "ln-rnn")
    assert (info.source, info.version, info.name) == ("entry point", "0.1.0", "ln_rnn")
    sys.modules.pop("ln_rnn", None)
