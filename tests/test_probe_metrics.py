"""Probe metrics (rnntui.corpora.probe_metrics) on hand-built predictions."""

import math

import numpy as np
import pytest

from rnntui.errors import UserError
from rnntui.corpora import probe_metrics
from rnntui.plugins import get_registry


def predictions(text, chars, guesses=None, p=0.5):
    """log-probabilities for text[t + 1] at row t: by default the true character gets p and the others share the
    rest; guesses[position] = (character, probability) puts that probability on another character instead."""
    V = len(chars)
    out = np.empty((len(text) - 1, V))
    for t in range(len(text) - 1):
        char, prob = (guesses or {}).get(t + 1, (text[t + 1], p))
        row = np.full(V, (1 - prob) / (V - 1))
        row[chars.index(char)] = prob
        out[t] = np.log(row)
    return out


def rest(p, V):
    return (1 - p) / (V - 1)


def test_brackets_accuracy_and_loss_by_depth():
    text = "])\n([])\n{}\n(("  # before the first newline and the unfinished last line: context only
    chars = sorted(set(text))
    V = len(chars)
    # ']' closed at depth 2: right; ')' at depth 1: the model's top closing bracket is ']', wrong; '}': right
    guesses = {5: ("]", 0.6), 6: ("]", 0.7), 9: ("}", 0.9)}
    m = probe_metrics.brackets(text, chars, predictions(text, chars, guesses))
    assert m["count"] == 3
    assert m["closing_accuracy"] == pytest.approx(2 / 3)
    losses = [-math.log(0.6), -math.log(rest(0.7, V)), -math.log(0.9)]
    assert m["closing_loss"] == pytest.approx(sum(losses) / 3)
    assert m["by_depth"] == [
        {"depth": 1, "accuracy": 0.5, "loss": pytest.approx((losses[1] + losses[2]) / 2), "count": 2},
        {"depth": 2, "accuracy": 1.0, "loss": pytest.approx(losses[0]), "count": 1},
    ]


def test_brackets_accuracy_looks_only_at_closing_brackets():
    text = "\n(())\n"
    chars = sorted(set(text))
    # at the inner ')' the model prefers opening again ('(' 0.6) but of the closing brackets ')' is its favourite
    m = probe_metrics.brackets(text, chars, predictions(text, chars, {3: ("(", 0.6)}))
    assert m["closing_accuracy"] == 1.0 and m["count"] == 2


def test_copy_accuracy_on_the_second_copy_by_position():
    text = "b\nab-->ab\nca-->ca\n"
    chars = sorted(set(text))
    V = len(chars)
    # the second copies are at positions 7, 8 and 15, 16; the model gets 'c' (15) wrong
    guesses = {15: ("a", 0.8)}
    m = probe_metrics.copy(text, chars, predictions(text, chars, guesses, p=0.9))
    assert m["count"] == 4 and m["distance"] == 5  # 2 letters + 2 dashes + '>'
    assert m["copy_accuracy"] == 0.75
    assert m["copy_loss"] == pytest.approx((3 * -math.log(0.9) - math.log(rest(0.8, V))) / 4)
    assert m["first_copy_loss"] == pytest.approx(-math.log(0.9))
    assert m["by_position"] == [{"position": 0, "accuracy": 0.5, "loss": pytest.approx(
        (-math.log(0.9) - math.log(rest(0.8, V))) / 2)}, {"position": 1, "accuracy": 1.0,
                                                          "loss": pytest.approx(-math.log(0.9))}]


def test_arithmetic_exact_match_needs_every_digit_and_the_newline():
    text = "=7\n1+2=3\n10+5=15\n4+4=8\n9+9=1"
    chars = sorted(set(text))
    # line 2: the '1' of 15 is right but '5' is not; line 3: the digits are right but the model would go on
    # writing a digit instead of ending the line
    guesses = {15: ("9", 0.5), 22: ("0", 0.5)}
    m = probe_metrics.arithmetic(text, chars, predictions(text, chars, guesses, p=0.7))
    assert m["count"] == 3
    assert m["exact_match"] == pytest.approx(1 / 3)
    assert m["sum_accuracy"] == pytest.approx(5 / 7)  # '3\n', '15\n', '8\n'


def test_hello_table():
    text = "lo\nhello\nhello\nhel"
    chars = sorted(set(text))  # '\n', 'e', 'h', 'l', 'o'
    V = len(chars)
    # the model confuses the second 'l' with 'o' on the first line only
    m = probe_metrics.hello(text, chars, predictions(text, chars, {6: ("o", 0.6)}, p=0.6))
    assert m["count"] == 2
    assert [(r["input"], r["target"]) for r in m["table"]] == [
        ("h", "e"), ("e", "l"), ("l", "l"), ("l", "o"), ("o", "\n"), ("\n", "h")]
    third = m["table"][2]["probs"]
    assert third["l"] == pytest.approx((rest(0.6, V) + 0.6) / 2, abs=1e-6)
    assert third["o"] == pytest.approx((0.6 + rest(0.6, V)) / 2, abs=1e-6)
    assert m["table"][0]["probs"]["e"] == pytest.approx(0.6, abs=1e-6)
    assert m["accuracy"] == pytest.approx(11 / 12)


def test_a_mismatched_shape_is_one_clear_line():
    with pytest.raises(UserError) as e:
        probe_metrics.copy("ab\nab>ab\n", list("\n>ab"), np.zeros((3, 4)))
    assert "expected (8, 4)" in str(e.value) and "\n" not in str(e.value)


def test_text_without_whole_lines_gives_empty_metrics():
    m = probe_metrics.arithmetic("1+2=", list("+12=") + ["3"], np.zeros((3, 5)))
    assert m["count"] == 0 and m["exact_match"] is None


def test_the_probes_declare_their_metrics_through_the_corpus_contract():
    registry = get_registry()
    for name, function in probe_metrics.METRICS.items():
        assert registry.corpus(name).metrics is function
    assert registry.corpus("python-docs").metrics is None
