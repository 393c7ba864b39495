"""The inspector's text features, each on hand-made strings: the value after reading each character."""

import numpy as np
import pytest

from rnntui.core.features import BUILTIN_FEATURES, Feature, builtin_features, register_features

F = builtin_features()


def values(name, text):
    return F[name](text).astype(int).tolist()


def marks(name, text):
    """A binary feature as a string of 0/1 under the text, easy to read in a failing assertion."""
    return "".join(str(v) for v in values(name, text))


def test_every_builtin_feature_is_registered_with_a_description():
    registered = []
    register_features(registered.append)
    assert [f.name for f in registered] == [f.name for f in BUILTIN_FEATURES]
    assert set(F) == {"quote", "depth", "indent", "column", "comment", "word", "newline-soon", "digit", "upper",
                      "url", "if"}
    for feature in BUILTIN_FEATURES:
        assert feature.description and "\n" not in feature.description


@pytest.mark.parametrize("feature", BUILTIN_FEATURES, ids=lambda f: f.name)
def test_every_feature_handles_the_empty_text_and_one_value_per_character(feature):
    assert feature("").shape == (0,)
    text = 'x = f("a\\"b", [1, 2]) # done\n\tif (y): z\nwww.example.org ok\n'
    out = feature(text)
    assert out.shape == (len(text),) and out.dtype == np.float64


def test_depth_counts_nested_brackets_of_three_kinds():
    text = "a(b[c{d}e]f)g"
    assert values("depth", text) == [0, 1, 1, 2, 2, 3, 3, 2, 2, 1, 1, 0, 0]
    assert values("depth", "))(") == [0, 0, 1]  # never below 0
    assert values("depth", "({[<") == [1, 2, 3, 3]  # < is not a bracket here


def test_depth_ignores_brackets_in_strings_and_comments():
    assert values("depth", '("(")') == [1, 1, 1, 1, 0]
    assert values("depth", "( # (\n)") == [1, 1, 1, 1, 1, 1, 0]


def test_quote_respects_escapes_and_both_quote_kinds():
    #        a = "x\"y" + 'q'
    text = 'a = "x\\"y" + \'q\''
    assert marks("quote", text) == "0000111110000110"
    assert marks("quote", '"it\'s"') == "111110"  # a ' inside "..." is text
    assert marks("quote", "'a\"b'") == "11110"
    assert marks("quote", '"a\\\\"b') == "111100"  # an escaped backslash does not escape the quote


def test_quote_tells_apostrophes_from_single_quoted_strings():
    assert marks("quote", "don't go") == "00000000"
    assert marks("quote", "x = r'\\d' ") == "0000011100"  # r'...' is a string, its prefix is not
    assert marks("quote", "'tis\nnow") == "11110000"  # an unmatched ' ends at the newline


def test_quote_covers_triple_quoted_strings_across_lines():
    text = 'f("""a\n"b"\n""")x'
    assert marks("quote", text) == "00111" + "11" + "111" + "1" + "110" + "00"
    assert marks("quote", '"a\nb"') == "11110"  # prose dialogue across a line break


def test_comment_runs_to_the_end_of_the_line_but_not_from_inside_a_string():
    assert marks("comment", "a # b\nc") == "0011100"
    assert marks("comment", 'x = "#" # y') == "00000000111"
    assert marks("quote", '# "not a string\nx') == "0" * 17


def test_indent_counts_spaces_and_tabs_as_read():
    text = "a\n  b c\n\tx\n  \ty\n"
    assert values("indent", text) == [0, 0, 1, 2, 2, 2, 2, 0, 8, 8, 0, 1, 2, 8, 8, 0]


def test_column_and_newline_soon():
    text = "ab\ncde\n\nf"
    assert values("column", text) == [1, 2, 0, 1, 2, 3, 0, 0, 1]
    assert values("newline-soon", text) == [1, 0, 3, 2, 1, 0, 0, 1, 0]


def test_column_and_newline_soon_with_normalised_crlf_text():
    # read_text_file turns CRLF into LF before any feature sees the text: the same values as plain LF
    crlf = "one\r\ntwo\r\n".replace("\r\n", "\n")
    assert values("column", crlf) == [1, 2, 3, 0, 1, 2, 3, 0]
    assert values("newline-soon", crlf) == [2, 1, 0, 3, 2, 1, 0, 0]


def test_word_digit_upper():
    text = "Hi x_1 42!"
    assert values("word", text) == [1, 2, 0, 1, 2, 3, 0, 1, 2, 0]
    assert marks("digit", text) == "0000010110"
    assert marks("upper", text) == "1000000000"


def test_url_spans_the_address_but_not_the_sentence_around_it():
    text = "see https://a.org/x_(y). Or (www.b.com/p), not awww.c"
    expected = "0000" + "1" * 19 + "00000" + "0" + "1" * 11 + "0" * 13
    assert marks("url", text) == expected


def test_if_marks_the_parentheses_after_an_if():
    text = "if (a(b)) c; elif(d) e; x = sniff(f)"
    assert marks("if", text) == "000111110" + "0000" + "0000" + "110" + "0" * 16  # elif too, not sniff
    assert marks("if", "if (a) {\n  if (b) {} }") == "0001100000000011000000"
    assert marks("if", '"if (x)" # if (y)\n') == "0" * 18  # not in strings or comments


def test_a_feature_that_breaks_its_contract_is_refused_with_its_name():
    wrong_length = Feature("short", "too few values", False, lambda text: np.zeros(len(text) - 1))
    with pytest.raises(ValueError, match="'short' returned 2 values for a text of 3"):
        wrong_length("abc")
    not_binary = Feature("half", "not 0/1", True, lambda text: np.full(len(text), 0.5))
    with pytest.raises(ValueError, match="'half' is binary"):
        not_binary("ab")
    nan = Feature("nan", "NaN", False, lambda text: np.full(len(text), np.nan))
    with pytest.raises(ValueError, match="NaN"):
        nan("ab")
