"""The command line end to end, and every bad input: one line on stderr, non-zero exit, nothing overwritten."""

import json
import math
import pickle
import subprocess
import sys

import pytest

from rnntui.cli import main

TINY = ["--hidden", "32", "--embed", "16", "--layers", "1", "--batch-size", "4", "--seq-len", "16",
        "--eval-every", "5", "--sample-every", "5", "--sample-length", "30"]


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "rnntui.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def one_line_error(capsys, code):
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("rnntui: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_help_does_not_import_torch():
    probe = "import sys; from rnntui.cli import build_parser; build_parser(); print(sorted(m for m in ('torch', 'textual', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_train_sample_and_runs_end_to_end(small_text, tmp_path, rnntui_home):
    log = tmp_path / "log.jsonl"
    result = run_cli("train", small_text, *TINY, "--max-steps", "12", "--log-json", log, "--run-dir",
                     tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "done at step 12" in result.stdout
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    steps = [e for e in lines if e["type"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, 13))
    assert all({"loss", "chars_per_sec", "grad_norm", "lr"} <= e.keys() for e in steps)
    evals = [e for e in lines if e["type"] == "eval"]
    assert [e["step"] for e in evals] == [5, 10, 12]
    assert all(math.isclose(e["val_bpc"], e["val_loss"] / math.log(2)) for e in evals)
    assert {"started", "sample", "checkpoint", "done"} <= {e["type"] for e in lines}

    resumed = run_cli("train", "--resume", tmp_path / "run", "--max-steps", "15", "--log-json", log)
    assert resumed.returncode == 0, resumed.stderr
    more = [json.loads(line) for line in log.read_text().splitlines()][len(lines):]
    assert [e["step"] for e in more if e["type"] == "step"] == [13, 14, 15]

    sample = run_cli("sample", tmp_path / "run", "--prime", "the quick\nbrown", "--length", "80", "--seed", "3")
    assert sample.returncode == 0, sample.stderr
    assert sample.stdout.startswith("the quick\nbrown") and len(sample.stdout) == len("the quick\nbrown") + 81
    again = run_cli("sample", tmp_path / "run", "--prime", "the quick\nbrown", "--length", "80", "--seed", "3")
    assert again.stdout == sample.stdout

    listed = run_cli("runs", "--json", env={**__import__("os").environ, "RNNTUI_HOME": str(rnntui_home)})
    # the run was given --run-dir outside the data directory, so only runs under RNNTUI_HOME are listed
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


def test_runs_lists_runs_in_the_data_directory(small_text, capsys):
    assert main(["train", str(small_text), *TINY, "--max-steps", "5", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["runs", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert len(runs) == 1 and runs[0]["cell"] == "gru" and runs[0]["steps"] == 5
    assert runs[0]["corpus"] == "small.txt" and runs[0]["best_val_loss"] > 0


def test_presets_build_their_models(small_text, capsys):
    for preset in ("min-char-rnn", "char-rnn", "default"):
        assert main(["train", str(small_text), "--preset", preset, "--max-steps", "2", "--quiet",
                     "--batch-size", "2", "--seq-len", "16"]) == 0
    out = capsys.readouterr().out
    assert "rnn (" in out and "lstm (" in out


@pytest.mark.parametrize("content,match", [
    (b"", "empty"),
    (b"   \n\n\t \n", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),
    (b"caf\xe9 au lait " * 50, r"byte 0xe9 at offset 3.*--encoding latin-1"),
    (b"too short", "fewer than one batch"),
])
def test_bad_corpus_files(tmp_path, capsys, rnntui_home, content, match):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    err = one_line_error(capsys, main(["train", str(path), "--max-steps", "1"]))
    assert __import__("re").search(match, err), err
    assert not (rnntui_home / "runs").exists()


def test_missing_corpus_path(capsys, rnntui_home):
    err = one_line_error(capsys, main(["train", "/no/such/file.txt"]))
    assert "no such file" in err


@pytest.mark.parametrize("option,value", [
    ("--hidden", "0"), ("--layers", "-1"), ("--batch-size", "0"), ("--seq-len", "-5"), ("--lr", "-0.1"),
    ("--lr", "nan"), ("--dropout", "1.5"), ("--max-steps", "0"), ("--clip", "-1"), ("--optimizer", "adamax"),
    ("--cell", "transformer"),
])
def test_absurd_hyperparameters(small_text, capsys, rnntui_home, option, value):
    one_line_error(capsys, main(["train", str(small_text), "--max-steps", "1", option, value]))
    assert not (rnntui_home / "runs").exists()


def test_model_too_large_for_memory_is_refused_before_allocating(small_text, capsys, rnntui_home):
    err = one_line_error(capsys, main(["train", str(small_text), "--hidden", "300000", "--layers", "4"]))
    assert "GiB" in err and "--hidden" in err


@pytest.fixture
def trained_run(small_text, tmp_path):
    run_dir = tmp_path / "run"
    assert main(["train", str(small_text), *TINY, "--max-steps", "5", "--quiet", "--run-dir", str(run_dir)]) == 0
    return run_dir


@pytest.mark.parametrize("temperature", ["0", "-1", "nan"])
def test_bad_temperature(trained_run, capsys, temperature):
    capsys.readouterr()
    err = one_line_error(capsys, main(["sample", str(trained_run), "--temperature", temperature]))
    assert "temperature" in err


def test_unseen_prompt_characters(trained_run, capsys):
    capsys.readouterr()
    err = one_line_error(capsys, main(["sample", str(trained_run), "--prime", "the Zebra!"]))
    assert "'!Z'" in err and "--skip-unknown" in err
    assert main(["sample", str(trained_run), "--prime", "the Zebra!", "--skip-unknown", "--length", "5"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("the ebra") and "dropped" in captured.err


def test_damaged_checkpoints(trained_run, capsys):
    capsys.readouterr()
    ckpt = sorted((trained_run / "checkpoints").glob("step-*.safetensors"))[-1]
    original = ckpt.read_bytes()
    ckpt.write_bytes(original[: len(original) // 2])
    assert "truncated or damaged" in one_line_error(capsys, main(["sample", str(trained_run)]))
    ckpt.write_bytes(original)
    meta_path = ckpt.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format_version": 7}))
    assert "format version 7" in one_line_error(capsys, main(["sample", str(trained_run)]))
    meta_path.write_text("{not json")
    assert "damaged" in one_line_error(capsys, main(["sample", str(trained_run)]))
    # resuming from a damaged run fails the same way and leaves the files as they were
    assert "damaged" in one_line_error(capsys, main(["train", "--resume", str(trained_run)]))
    assert meta_path.read_text() == "{not json" and ckpt.read_bytes() == original


def test_pickle_given_as_checkpoint(tmp_path, capsys):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    assert "never loads" in one_line_error(capsys, main(["sample", str(path)]))


def test_missing_run_directory(capsys):
    assert "rnntui runs" in one_line_error(capsys, main(["sample", "/no/such/run"]))


def test_plugins_dir_before_the_subcommand(small_text, tmp_path, capsys, monkeypatch):
    from rnntui import plugins

    monkeypatch.setenv(plugins.ENV_DIR_ARGS, "")
    plugin_dir = tmp_path / "my-plugins"
    plugin_dir.mkdir()
    (plugin_dir / "tinycell.py").write_text(
        "import torch\nfrom rnntui import hookimpl\nfrom rnntui.core.cells import Cell\n\n"
        "class Tiny(Cell):\n    'A tiny tanh cell.'\n    name = 'tiny-cli'\n\n"
        "    def __init__(self, input_size, hidden_size, **options):\n"
        "        super().__init__(input_size, hidden_size, **options)\n"
        "        self.lin = torch.nn.Linear(input_size + hidden_size, hidden_size)\n\n"
        "    def step(self, x, state):\n        h = torch.tanh(self.lin(torch.cat([x, state[0]], -1)))\n"
        "        return h, (h,)\n\n"
        "@hookimpl\ndef register_cells(register):\n    register(Tiny)\n")
    try:
        assert main(["--plugins-dir", str(plugin_dir), "train", str(small_text), *TINY, "--cell", "tiny-cli",
                     "--max-steps", "2", "--quiet"]) == 0
    finally:
        plugins.reset_registry()
    assert "tiny-cli (" in capsys.readouterr().out


def test_app_passes_every_training_option_to_the_run():

    from rnntui.cli import build_parser
    from rnntui.commands.train import config_from_args

    args = build_parser().parse_args(["app", "brackets", "--corpus-option", "depth=3", "--cell", "gru",
                                      "--cell-option", "x=1", "--hidden", "48", "--threads", "2"])
    config = config_from_args(args)
    assert (config.corpus, config.cell, config.n_hidden, config.threads) == ("brackets", "gru", 48, 2)
    assert config.corpus_options == {"depth": 3} and config.cell_options == {"x": 1}
