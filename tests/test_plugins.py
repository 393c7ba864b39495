"""The plugin manager: discovery from each source, allow/deny lists, name clashes, cell validation, isolation of a
failing plugin (at import, in its hook, during a run), and the `plugins` / `cells` commands."""

import json
import sys
import textwrap

import pytest
import torch

from rnntui import events, plugins
from rnntui.cli import main
from rnntui.plugins import (
    BUILT_IN, BUNDLED, DIRECTORY, ENTRY_POINT, ENV_DISABLED, ENV_LOAD, ENV_PATH, CellValidationError,
    build_registry, cell_check, get_registry, validate_cell,
)

pytestmark = pytest.mark.usefixtures("plugin_env")  # tests/conftest.py: no plugin settings from the machine
GALLERY_CELLS = {
    "gru-cho", "delta-rnn", "lstm-peephole", "lstm-nig", "lstm-nfg", "lstm-nog", "lstm-niaf", "lstm-noaf", "lstm-np",
    "lstm-cifg", "lstm-fgr", "indrnn", "mgu", "mingru", "minlstm", "mut1", "mut2", "mut3", "ugrnn",
}
TINY = ["--hidden", "16", "--embed", "8", "--layers", "1", "--batch-size", "4", "--seq-len", "8",
        "--eval-every", "3", "--sample-every", "3", "--sample-length", "10"]

GOOD = '''
import torch
from torch import nn
from rnntui import hookimpl

__version__ = "0.3"

class Cell(nn.Module):
    """A tanh RNN for tests."""
    name = "{name}"
    def __init__(self, input_size, hidden_size, scale=1.0):
        super().__init__()
        self.inp = nn.Linear(input_size, hidden_size)
        self.rec = nn.Linear(hidden_size, hidden_size, bias=False)
        self.scale = scale
    def project_input(self, x):
        return self.inp(x)
    def step(self, x_t, state):
        h = torch.tanh(self.scale * (x_t + self.rec(state[0])))
        return h, (h,)

@hookimpl
def register_cells(register):
    register(Cell)
'''


def write(directory, name, source):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(source))
    return path


def bad_cell_plugin(name, body, extra=""):
    """A plugin file whose cell class has ``body`` as its methods (on top of a working tanh RNN's)."""
    return f'''
import math
import torch
from torch import nn
from rnntui import hookimpl
{extra}
class Base(nn.Module):
    """Test cell."""
    name = "{name}"
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.inp = nn.Linear(input_size, hidden_size)
        self.rec = nn.Linear(hidden_size, hidden_size)
    def project_input(self, x):
        return self.inp(x)
    def step(self, x_t, state):
        h = torch.tanh(x_t + self.rec(state[0]))
        return h, (h,)

class Bad(Base):
{textwrap.indent(textwrap.dedent(body), "    ")}

@hookimpl
def register_cells(register):
    register(Bad)
'''


# -- sources ----------------------------------------------------------------------------------------------------------


def test_builtins_register_through_the_same_hooks():
    registry = build_registry(bundled=False)
    assert {"rnn", "lstm", "gru"} <= set(registry.cells)
    assert registry.plugin_of("cell", "lstm").source == BUILT_IN
    assert registry.plugin_of("corpus", "python-docs").name == "rnntui.corpora"
    assert not registry.failures()


def test_bundled_gallery_loads_every_cell_without_failures():
    registry = get_registry()
    assert GALLERY_CELLS <= set(registry.cells)
    for name in GALLERY_CELLS:
        info = registry.plugin_of("cell", name)
        assert info.source == BUNDLED and info.location.endswith(".py")
    assert not registry.failures(), registry.failures()


def test_directory_plugin(tmp_path):
    write(tmp_path, "tanhcell.py", GOOD.format(name="tanh-cell"))
    write(tmp_path, "_helper.py", "raise RuntimeError('not a plugin')")
    write(tmp_path, "test_tanhcell.py", "raise RuntimeError('not a plugin either')")
    registry = build_registry([tmp_path])
    info = registry.plugin_of("cell", "tanh-cell")
    assert (info.name, info.version, info.source, info.location) == ("tanhcell", "0.3", DIRECTORY,
                                                                       str(tmp_path / "tanhcell.py"))
    assert not registry.failures()
    cls = registry.cell("tanh-cell")
    assert cls.hyperparameters == {"scale": 1.0}  # from __init__'s keyword arguments
    cell = cls(3, 4, scale=0.5)
    assert cell.hidden_size == 4 and cell.options == {"scale": 0.5}
    assert [s.shape for s in cell.initial_state(2)] == [(2, 4)]  # the default state


def test_plugins_path_and_user_directory_follow_the_allow_list(tmp_path, monkeypatch, rnntui_home):
    write(tmp_path / "path", "frompath.py", GOOD.format(name="from-path"))
    write(rnntui_home / "plugins", "fromuser.py", GOOD.format(name="from-user"))
    monkeypatch.setenv(ENV_PATH, str(tmp_path / "path"))
    assert not {"from-path", "from-user"} & set(build_registry().cells)  # RNNTUI_LOAD_PLUGINS="" (the tests')
    monkeypatch.delenv(ENV_LOAD)
    registry = build_registry()
    assert {"from-path", "from-user"} <= set(registry.cells)
    assert registry.plugin_of("cell", "from-user").location == str(rnntui_home / "plugins" / "fromuser.py")
    monkeypatch.setenv(ENV_LOAD, "frompath, nothing-like-this")
    registry = build_registry()
    assert "from-path" in registry.cells and "from-user" not in registry.cells
    assert not registry.plugins["fromuser"].loaded and ENV_LOAD in registry.plugins["fromuser"].note
    assert any("nothing-like-this" in note for note in registry.notes)
    monkeypatch.setenv(ENV_DISABLED, "frompath")
    monkeypatch.delenv(ENV_LOAD)
    registry = build_registry()
    assert "from-path" not in registry.cells and "from-user" in registry.cells
    assert ENV_DISABLED in registry.plugins["frompath"].note


def test_plugins_dir_is_loaded_whatever_the_allow_list_but_obeys_the_deny_list(tmp_path, monkeypatch):
    write(tmp_path, "mine.py", GOOD.format(name="mine"))
    assert "mine" in build_registry([tmp_path]).cells  # RNNTUI_LOAD_PLUGINS="" here
    monkeypatch.setenv(ENV_DISABLED, "mine")
    assert "mine" not in build_registry([tmp_path]).cells


def test_deny_list_applies_to_the_gallery(monkeypatch):
    monkeypatch.setenv(ENV_DISABLED, "mgu,min-rnns")  # names compare with - _ . equivalent
    registry = build_registry()
    assert not {"mgu", "mingru", "minlstm"} & set(registry.cells) and "ugrnn" in registry.cells
    assert not registry.plugins["mgu"].loaded


@pytest.fixture
def entry_point_dist(tmp_path, monkeypatch):
    """An installed distribution `rnntui-myplug` 1.2 with an entry point `myplug` in the group rnntui."""
    site = tmp_path / "site"
    write(site, "rnntui_myplug.py", GOOD.format(name="ep-cell"))
    info = site / "rnntui_myplug-1.2.dist-info"
    write(info, "METADATA", "Metadata-Version: 2.1\nName: rnntui-myplug\nVersion: 1.2\n")
    write(info, "entry_points.txt", "[rnntui]\nmyplug = rnntui_myplug\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("rnntui_myplug", None)


def test_entry_point_plugin(entry_point_dist, monkeypatch):
    registry = build_registry()  # the tests' RNNTUI_LOAD_PLUGINS="": found, listed, not loaded
    assert "ep-cell" not in registry.cells
    assert registry.plugins["myplug"].source == ENTRY_POINT and not registry.plugins["myplug"].loaded
    for allow in (None, "myplug", "rnntui-myplug", "rnntui_myplug"):  # unset, entry point or distribution name
        if allow is None:
            monkeypatch.delenv(ENV_LOAD)
        else:
            monkeypatch.setenv(ENV_LOAD, allow)
        registry = build_registry()
        info = registry.plugin_of("cell", "ep-cell")
        assert (info.name, info.version, info.source) == ("myplug", "1.2", ENTRY_POINT)
        assert "rnntui-myplug" in info.location
    monkeypatch.setenv(ENV_DISABLED, "rnntui-myplug")
    assert "ep-cell" not in build_registry().cells


def test_get_registry_is_cached_and_rebuilt_when_settings_change(tmp_path, monkeypatch):
    first = get_registry()
    assert get_registry() is first
    write(tmp_path, "mine.py", GOOD.format(name="mine"))
    assert "mine" in get_registry([tmp_path]).cells
    monkeypatch.setenv(ENV_PATH, str(tmp_path))
    monkeypatch.delenv(ENV_LOAD)
    assert "mine" in get_registry().cells
    again = get_registry()
    plugins.reset_registry()
    assert get_registry() is not again


def test_building_the_registry_leaves_the_random_state_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    cell_check._validated.clear()
    build_registry()
    assert torch.equal(torch.rand(3), expected)


# -- name clashes -----------------------------------------------------------------------------------------------------


def test_cell_name_clash_names_both_plugins(tmp_path):
    write(tmp_path, "first.py", GOOD.format(name="dup"))
    write(tmp_path, "second.py", GOOD.format(name="dup"))
    write(tmp_path, "third.py", GOOD.format(name="lstm"))
    registry = build_registry([tmp_path])
    assert registry.plugin_of("cell", "dup").name == "first"
    (error,) = registry.plugins["second"].errors
    assert error.stage == "name clash" and "'first'" in error.message and "'second'" in error.message
    (error,) = registry.plugins["third"].errors
    assert "'rnntui.cells'" in error.message and registry.plugin_of("cell", "lstm").source == BUILT_IN


def test_plugin_name_clash_with_the_gallery(tmp_path):
    write(tmp_path, "mgu.py", GOOD.format(name="other-mgu"))
    registry = build_registry([tmp_path])
    assert "other-mgu" not in registry.cells and registry.plugin_of("cell", "mgu").source == BUNDLED
    (clash,) = [info for info in registry.plugins.values() if info.source == DIRECTORY]
    assert clash.errors[0].stage == "name clash" and "bundled" in clash.errors[0].message


# -- validation -------------------------------------------------------------------------------------------------------

BAD_CELLS = {
    "output shape": ('''
        def step(self, x_t, state):
            h, _ = super().step(x_t, state)
            return h[:, :-1], (h,)
        ''', r"output of shape \(2, 6\); expected \(2, 7\)"),
    "state shape": ('''
        def step(self, x_t, state):
            h, _ = super().step(x_t, state)
            return h, (h, h)
        ''', "must keep its shape"),
    "state round trip": ('''
        def step(self, x_t, state):
            self.count = getattr(self, "count", 0) + 1
            h, _ = super().step(x_t * self.count, state)
            return h, (h,)
        ''', "does not round-trip"),
    "state is not a tuple": ('''
        def initial_state(self, batch, device=None):
            return torch.zeros(batch, self.hidden_size)
        ''', "tuple of tensors"),
    "state changed in place": ('''
        def step(self, x_t, state):
            h, _ = super().step(x_t, state)
            state[0].mul_(0.5)
            return h, (h,)
        ''', "in place"),
    "NaN": ('''
        def step(self, x_t, state):
            h, _ = super().step(x_t, state)
            return h * math.nan, (h,)
        ''', "NaN or infinite"),
    "unused parameter": ('''
        def __init__(self, input_size, hidden_size):
            super().__init__(input_size, hidden_size)
            self.forgotten = nn.Parameter(torch.zeros(3))
        ''', r"no gradient reaches parameter\(s\) forgotten"),
    "no parameters": ('''
        def __init__(self, input_size, hidden_size):
            nn.Module.__init__(self)
            self.hidden_size, self.input_size = hidden_size, input_size
        def project_input(self, x):
            return x[..., :1].expand(*x.shape[:-1], self.hidden_size)
        def step(self, x_t, state):
            return x_t, (x_t,)
        ''', "no trainable parameters"),
    "sequence path disagrees": ('''
        def forward_sequence(self, x, state):
            h = torch.tanh(self.rec(torch.tanh(self.inp(x))))
            return h, (h[:, -1],)
        ''', "forward_sequence and the step loop disagree"),
    "sequence path shape": ('''
        def forward_sequence(self, x, state):
            return self.inp(x)[:, 1:], state
        ''', r"\(batch, time, hidden_size\)"),
    "constructor raises": ('''
        def __init__(self, input_size, hidden_size):
            raise RuntimeError("needs a GPU")
        ''', "cannot be built.*RuntimeError: needs a GPU"),
    "step raises": ('''
        def step(self, x_t, state):
            raise ValueError("oops")
        ''', "the step path raised ValueError: oops"),
    "bad name": ('''
        name = "has spaces"
        ''', "needs a class attribute `name`"),
}


@pytest.mark.parametrize("case", BAD_CELLS)
def test_each_validation_failure_is_reported_and_the_cell_not_offered(tmp_path, case):
    body, match = BAD_CELLS[case]
    write(tmp_path, "badcell.py", bad_cell_plugin("bad-cell", body))
    write(tmp_path, "goodcell.py", GOOD.format(name="good-cell"))
    registry = build_registry([tmp_path])
    assert "bad-cell" not in registry.cells and "good-cell" in registry.cells
    (error,) = registry.plugins["badcell"].errors
    assert error.stage == "validation"
    import re
    assert re.search(match, error.message), error.message
    if case not in ("bad name",):
        with pytest.raises(LookupError, match="'bad-cell' of plugin 'badcell' is not offered"):
            registry.cell("bad-cell")
    if case == "step raises":  # the cell's traceback starts in the plugin's file, not in the check
        assert error.traceback.splitlines()[1].startswith(f'  File "{tmp_path / "badcell.py"}"'), error.traceback


def test_validate_cell_accepts_every_registered_cell_and_rejects_non_classes():
    for name, cls in get_registry().cells.items():
        assert validate_cell(cls) is cls, name
    with pytest.raises(CellValidationError, match="takes a cell class"):
        validate_cell(torch.nn.Linear(2, 2))
    with pytest.raises(CellValidationError, match="must subclass torch.nn.Module"):
        validate_cell(dict)

    class NoStep(torch.nn.Module):
        name = "no-step"

    with pytest.raises(CellValidationError, match="has no step"):
        validate_cell(NoStep)


def test_corpus_plugin_basic_checks(tmp_path):
    write(tmp_path, "corpora_plugin.py", '''
        from rnntui import hookimpl
        from rnntui.corpora import Corpus

        @hookimpl
        def register_corpora(register):
            register(Corpus("numbers", "Numbers", "made up", lambda: (f"{n}\\n" for n in range(100))))
            register(Corpus("python-docs", "a clash", "made up", lambda: iter(["x"])))
            register(object())
    ''')
    registry = build_registry([tmp_path])
    assert registry.plugin_of("corpus", "numbers").name == "corpora_plugin"
    stages = sorted(e.stage for e in registry.plugins["corpora_plugin"].errors)
    assert stages == ["name clash", "validation"]


def test_a_plugin_corpus_object_is_registered_as_a_corpus(tmp_path):
    write(tmp_path, "duck_corpora.py", '''
        from rnntui import hookimpl

        class Squares:  # not a rnntui.corpora.Corpus: the attributes the contract asks for
            name, description, source = "squares", "Numbers and their squares.", "generated"
            options, version, size, licence = {"lines": 100}, "1", 1234, "none"

            def read(self, lines=100):
                for i in range(lines):
                    yield f"{i} {i * i}\\n"

        class BadOptions(Squares):
            name, options = "bad-options", ["lines"]

        @hookimpl
        def register_corpora(register):
            register(Squares())
            register(BadOptions())
    ''')
    from rnntui.corpora import Corpus
    from rnntui.corpora.textcache import load_encoded

    registry = build_registry([tmp_path])
    corpus = registry.corpus("squares")
    assert isinstance(corpus, Corpus) and registry.plugin_of("corpus", "squares").name == "duck_corpora"
    assert (corpus.description, corpus.source, corpus.options, corpus.version, corpus.size, corpus.licence) == (
        "Numbers and their squares.", "generated", {"lines": 100}, "1", 1234, "none")
    encoded = load_encoded("squares", options={"lines": 3}, corpora=registry.corpora)
    assert encoded.vocab.decode(encoded.ids) == "0 0\n1 1\n2 4\n"
    (error,) = registry.plugins["duck_corpora"].errors
    assert error.stage == "validation" and "corpus 'bad-options': `options` must map" in error.message
    assert "bad-options" not in registry.corpora


def test_as_corpus_checks_the_contract():
    from rnntui.corpora.builtin import PYTHON_DOCS

    assert plugins.as_corpus(PYTHON_DOCS) is PYTHON_DOCS
    with pytest.raises(plugins.CorpusValidationError, match="a corpus needs a `name`"):
        plugins.as_corpus(object())
    with pytest.raises(plugins.CorpusValidationError, match="corpus 'x' needs a read"):
        plugins.as_corpus(type("NoRead", (), {"name": "x"})())


def test_importing_the_plugin_manager_leaves_torch_out():
    """The command-line parser and the app import rnntui.plugins; torch comes only with the cell check."""
    import subprocess

    probe = ("import sys, rnntui.plugins as p; p.description_of, p.hyperparameters_of, p.as_corpus, p.Registry; "
             "before = 'torch' in sys.modules; p.validate_cell; print(before, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]


# -- isolation --------------------------------------------------------------------------------------------------------


def test_a_plugin_that_fails_to_import_is_reported_and_skipped(tmp_path, caplog):
    write(tmp_path, "broken.py", "import torch\nfrom rnntui import hookimpl\nimport no_such_module_here\n")
    write(tmp_path, "syntax.py", "def oops(:\n")
    write(tmp_path, "goodcell.py", GOOD.format(name="good-cell"))
    registry = build_registry([tmp_path])
    for name in ("broken", "syntax"):
        (error,) = registry.plugins[name].errors
        assert error.stage == "import" and not registry.plugins[name].loaded
    broken, syntax = registry.plugins["broken"].errors[0], registry.plugins["syntax"].errors[0]
    assert "no_such_module_here" in broken.message
    # the traceback starts in the plugin's file, not in the plugin manager
    assert broken.traceback.splitlines()[1].startswith(f'  File "{tmp_path / "broken.py"}", line 3')
    assert "syntax.py" in syntax.traceback and "SyntaxError" in syntax.traceback
    assert "good-cell" in registry.cells and "mgu" in registry.cells
    assert "plugin 'broken'" in caplog.text and "no_such_module_here" in caplog.text  # logged: stderr in the CLI


def test_a_hook_that_raises_registers_nothing(tmp_path):
    write(tmp_path, "hookboom.py", GOOD.format(name="half-cell").replace(
        "    register(Cell)", "    register(Cell)\n    raise RuntimeError('hook failed')"))
    registry = build_registry([tmp_path])
    (error,) = registry.plugins["hookboom"].errors
    assert error.stage == "hook" and "hook failed" in error.message and "Traceback" in error.traceback
    assert "half-cell" not in registry.cells


def test_hook_mistakes_are_reported(tmp_path):
    write(tmp_path, "typo.py", "from rnntui import hookimpl\n@hookimpl\ndef register_cell(register):\n    pass\n")
    write(tmp_path, "undecorated.py", "def register_cells(register):\n    pass\n")
    write(tmp_path, "extra_arg.py", "from rnntui import hookimpl\n@hookimpl\ndef register_cells(register, x):\n"
          "    pass\n")
    registry = build_registry([tmp_path])
    assert "register_cell" in registry.plugins["typo"].errors[0].message
    assert "not decorated with @hookimpl" in registry.plugins["undecorated"].errors[0].message
    assert registry.plugins["extra_arg"].errors[0].stage == "hook"


RUNTIME_FAILURES = '''
import math
import torch
from torch import nn
from rnntui import hookimpl

class Boom(nn.Module):
    """Passes the registration check (batch 2), then raises in training (batch 4)."""
    name = "boom"
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.inp = nn.Linear(input_size, hidden_size)
    def project_input(self, x):
        return self.inp(x)
    def step(self, x_t, state):
        if x_t.shape[0] > 2:
            raise RuntimeError("kaboom in step")
        h = torch.tanh(x_t + state[0])
        return h, (h,)

class NaNCell(Boom):
    """Passes the registration check, then produces NaN in training."""
    name = "nan-cell"
    def step(self, x_t, state):
        h = torch.tanh(x_t + state[0])
        return (h * math.nan if x_t.shape[0] > 2 else h), (h,)

@hookimpl
def register_cells(register):
    register(Boom)
    register(NaNCell)
'''


@pytest.mark.parametrize("cell,match", [("boom", "RuntimeError: kaboom in step"), ("nan-cell", "loss became nan")])
def test_a_cell_that_fails_during_a_run_gives_an_error_event_naming_its_plugin(tmp_path, small_text, cell, match):
    from rnntui.core.config import TrainConfig
    from rnntui.run import build_trainer

    write(tmp_path / "plugins", "failing.py", RUNTIME_FAILURES)
    plugins.add_plugins_dirs([tmp_path / "plugins"])
    config = TrainConfig(corpus=str(small_text), cell=cell, n_layer=1, n_hidden=8, n_embd=8, batch_size=4,
                         seq_len=8, max_steps=3, device="cpu")
    produced = list(build_trainer(config, tmp_path / "run").run())
    (error,) = [e for e in produced if isinstance(e, events.Error)]
    assert match in error.message and "plugin 'failing'" in error.message and "failing.py" in error.message
    if cell == "boom":
        assert "kaboom in step" in error.traceback and "failing.py" in error.traceback
    assert produced[-1].reason == "error"


def test_cli_train_with_a_failing_plugin_cell_reports_on_stderr(tmp_path, small_text, capsys):
    write(tmp_path / "plugins", "failing.py", RUNTIME_FAILURES)
    code = main(["train", str(small_text), "--plugins-dir", str(tmp_path / "plugins"), "--cell", "boom",
                 *TINY, "--max-steps", "2", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" in err and "kaboom in step" in err and "plugin 'failing'" in err


# -- commands ---------------------------------------------------------------------------------------------------------


def test_train_accepts_a_directory_plugin_cell(tmp_path, small_text, capsys):
    write(tmp_path / "plugins", "tanhcell.py", GOOD.format(name="tanh-cell"))
    code = main(["train", str(small_text), "--plugins-dir", str(tmp_path / "plugins"), "--cell", "tanh-cell",
                 "--cell-option", "scale=0.5", *TINY, "--max-steps", "3", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert "tanh-cell" in capsys.readouterr().out


def test_every_subcommand_takes_plugins_dir():
    from rnntui.cli import COMMANDS, build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    for name in COMMANDS:
        assert any("--plugins-dir" in a.option_strings for a in sub.choices[name]._actions), name


def test_plugins_command(tmp_path, capsys):
    write(tmp_path, "tanhcell.py", GOOD.format(name="tanh-cell"))
    write(tmp_path, "broken.py", "raise ImportError('missing dependency xyz')\n")
    assert main(["plugins", "--json", "--plugins-dir", str(tmp_path)]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert listed["rnntui.cells"]["source"] == "built-in" and listed["rnntui.cells"]["cells"] == ["rnn", "lstm", "gru"]
    assert listed["mgu"]["source"] == "bundled" and listed["mgu"]["cells"] == ["mgu"]
    assert listed["tanhcell"] | {"errors": []} == {
        "name": "tanhcell", "version": "0.3", "source": "directory", "location": str(tmp_path / "tanhcell.py"),
        "cells": ["tanh-cell"], "corpora": [], "errors": [], "loaded": True, "note": ""}
    (error,) = listed["broken"]["errors"]
    assert error["stage"] == "import" and "missing dependency xyz" in error["traceback"]
    assert main(["plugins", "--plugins-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "tanhcell" in out and "1 failure" in out and "missing dependency xyz" in err and "Traceback" in err


def test_cells_command(capsys):
    assert main(["cells", "--json", "--hidden", "10", "--input", "6"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert GALLERY_CELLS | {"rnn", "lstm", "gru"} <= set(rows)
    assert rows["lstm"]["parameters"] == 4 * (6 * 10 + 10 * 10 + 2 * 10)
    assert rows["indrnn"]["parameters"] == 6 * 10 + 10 + 10
    assert rows["mgu"]["plugin"] == "mgu" and rows["mgu"]["summary"].startswith("Minimal gated unit")
    assert rows["mingru"]["sequence_path"] and not rows["mgu"]["sequence_path"]
    assert rows["indrnn"]["hyperparameters"] == {"nonlinearity": "relu", "recurrent_max_abs": None}
    assert main(["cells"]) == 0
    out = capsys.readouterr().out
    assert "lstm-cifg" in out and "greff_lstm" in out
    assert main(["cells", "minlstm"]) == 0
    assert "Feng" in capsys.readouterr().out


def test_the_gallery_and_catalogue_load_from_a_normal_install(tmp_path):
    """Build a wheel from the checkout, install it (not editable) under a prefix, and import rnntui from there."""
    import importlib.metadata
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, src / name)
    for name in ("rnntui", "plugins", "corpora"):
        shutil.copytree(root / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    try:
        local_setuptools = int(importlib.metadata.version("setuptools").split(".")[0]) >= 69
    except importlib.metadata.PackageNotFoundError:
        local_setuptools = False
    # with setuptools >= 69 here, build offline with it; otherwise pip fetches it from the package index
    isolation = ["--no-build-isolation", "--no-index"] if local_setuptools else []
    built = subprocess.run([*pip, "wheel", *isolation, "--no-deps", ".", "-w", str(tmp_path / "dist")], cwd=src,
                           capture_output=True, text=True, timeout=300)
    if built.returncode != 0 and not local_setuptools:
        pytest.skip(f"cannot build a wheel here (no setuptools >= 69, no package index): {built.stderr[-300:]}")
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("rnntui-*.whl")
    prefix = tmp_path / "prefix"
    # --ignore-installed: without it pip would first uninstall the rnntui of the environment running the tests
    installed = subprocess.run([*pip, "install", "--no-deps", "--no-index", "--ignore-installed", "--prefix",
                                str(prefix), str(wheel)], capture_output=True, text=True, timeout=300)
    assert "Uninstalling" not in installed.stdout
    assert installed.returncode == 0, installed.stderr
    (site,) = prefix.glob("lib/python*/site-packages")
    probe = ("import json, rnntui.plugins as p; r = p.get_registry(); "
             "from rnntui.corpora.catalogue import catalogue; "
             "print(json.dumps([p.__file__, {n: r.plugin_of('cell', n).location for n in r.cells}, "
             "[str(e) for _, e in r.failures()], sorted(catalogue())]))")
    env = {**__import__("os").environ, "PYTHONPATH": str(site), ENV_LOAD: ""}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    module_file, locations, failures, catalogued = json.loads(out.stdout)
    assert {"tinyshakespeare", "nietzsche"} <= set(catalogued)
    assert module_file.startswith(str(site)) and not failures
    assert GALLERY_CELLS <= set(locations)
    assert locations["mingru"] == str(prefix / "share" / "rnntui" / "plugins" / "min_rnns.py")
