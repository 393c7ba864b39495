"""The drafts of `rnntui score` and `rnntui inspect` (not yet in rnntui/cli.py), run on a small trained run."""

import argparse
import io
import json
import math
from pathlib import Path

import pytest

from rnntui.commands import fail
from rnntui.commands import inspect as inspect_command
from rnntui.commands import score as score_command
from rnntui.errors import UserError
from rnntui.core.config import TrainConfig
from rnntui.run import build_trainer

CODE = Path(__file__).resolve().parents[1] / "rnntui" / "core" / "features.py"  # quotes, brackets, comments


def cli(argv):
    parser = argparse.ArgumentParser(prog="rnntui")
    sub = parser.add_subparsers()
    score_command.add_parser(sub)
    inspect_command.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UserError as e:
        return fail(str(e))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspect-run")
    corpus = root / "code.py"
    corpus.write_text(CODE.read_text())
    config = TrainConfig(corpus=str(corpus), cell="lstm", n_layer=2, n_hidden=24, n_embd=12, seq_len=32,
                         batch_size=8, max_steps=30, eval_every=30, sample_every=1000, threads=1)
    trainer = build_trainer(config, root / "run")
    list(trainer.run())
    trainer.close()
    return root / "run"


def test_score_of_the_validation_split_is_the_runs_validation_loss(run_dir, capsys):
    assert cli(["score", str(run_dir), "--json"]) == 0
    totals = json.loads(capsys.readouterr().out)
    meta = json.loads(sorted((run_dir / "checkpoints").glob("step-*.json"))[-1].read_text())
    assert totals["nats_per_char"] == pytest.approx(meta["val_loss"], rel=1e-5)
    assert totals["bits_per_char"] == pytest.approx(meta["val_loss"] / math.log(2), rel=1e-5)
    assert totals["text"] == "the validation split" and totals["step"] == 30
    assert cli(["score", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "bits/char" in out and "the run measured" in out


def test_score_per_char_of_a_file_and_of_stdin(run_dir, tmp_path, capsys, monkeypatch):
    text = "def f(x):\n    return x\n"
    path = tmp_path / "t.py"
    path.write_text(text)
    assert cli(["score", str(run_dir), str(path), "--per-char"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["char"] for line in lines] == list(text)
    assert lines[0]["bits"] is None and all(line["bits"] > 0 for line in lines[1:])
    assert len(lines[1]["top"]) == 5 and "bits/char" in captured.err
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert cli(["score", str(run_dir), "-", "--json"]) == 0
    totals = json.loads(capsys.readouterr().out)
    assert totals["chars"] == len(text) - 1 and totals["text"] == "stdin"
    assert totals["bits_per_char"] == pytest.approx(sum(line["bits"] for line in lines[1:]) / (len(text) - 1))


def test_inspect_ranks_units_for_every_feature(run_dir, capsys):
    assert cli(["inspect", str(run_dir), "--json", "--top", "3"]) == 0
    ranking = json.loads(capsys.readouterr().out)
    assert {"quote", "depth", "indent", "column", "comment", "if"} <= set(ranking)
    for units in ranking.values():
        assert len(units) <= 3
        for u in units:
            assert set(u) == {"layer", "unit", "kind", "score", "auc"} and u["kind"] in ("h", "c")
            assert 1 <= u["layer"] <= 2 and 0 <= u["unit"] < 24 and -1 <= u["score"] <= 1
    assert [abs(u["score"]) for u in ranking["depth"]] == sorted((abs(u["score"]) for u in ranking["depth"]),
                                                                 reverse=True)
    assert ranking["quote"][0]["auc"] is not None and ranking["depth"][0]["auc"] is None
    assert cli(["inspect", str(run_dir), "--feature", "depth", "--feature", "indent"]) == 0
    out = capsys.readouterr().out
    assert "depth" in out and "indent" in out and "quote" not in out


def test_inspect_one_unit_and_the_gates(run_dir, tmp_path, capsys):
    path = tmp_path / "t.py"
    path.write_text("x = (1, 2)\n")
    assert cli(["inspect", str(run_dir), str(path), "--unit", "2:c:5", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["unit"] == "2:c:5" and shown["chars"] == list("x = (1, 2)\n") and len(shown["values"]) == 11
    assert cli(["inspect", str(run_dir), str(path), "--unit", "1:3"]) == 0  # a pipe: one line per character
    assert len(capsys.readouterr().out.splitlines()) == 11
    assert cli(["inspect", str(run_dir), "--gates", "--json", "--chars", "500"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(r["layer"], r["gate"]) for r in report] == [(1, "input"), (1, "forget"), (1, "output"),
                                                         (2, "input"), (2, "forget"), (2, "output")]
    assert all(len(r["left"]) == len(r["right"]) == 24 for r in report)
    assert cli(["inspect", str(run_dir), "--gates"]) == 0
    assert "layer 2 forget" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["score", "{empty}"], "holds no checkpoint"),
    (["inspect", "{run}", "--feature", "nesting"], "no feature 'nesting'"),
    (["inspect", "{run}", "--unit", "3:1"], "no unit 3:1"),
    (["inspect", "{run}", "--unit", "1:c:24"], "no unit 1:c:24"),
    (["score", "{run}", "{unknown}"], "never saw: '€'"),
    (["inspect", "{run}", "{blank}"], "is empty"),
])
def test_bad_input_exits_2_with_one_line(run_dir, tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "unknown.txt").write_text("x = 1 € 2\n")
    (tmp_path / "blank.txt").write_text("")
    paths = {"empty": tmp_path / "empty", "run": run_dir, "unknown": tmp_path / "unknown.txt",
             "blank": tmp_path / "blank.txt"}
    assert cli([a.format(**paths) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnntui: error: ") and message in err and err.count("\n") == 1
