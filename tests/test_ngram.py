"""n-gram baselines (rnntui.analysis.ngram): Kneser-Ney against known distributions, streaming, cache, oracle."""

import math
from collections import Counter

import numpy as np
import pytest

from rnntui.analysis import ngram, ngram_counts
from rnntui.core.data import Dataset, Vocab, make_dataset
from rnntui.errors import UserError


def markov_chain(n: int, vocab: int = 5, seed: int = 0, peak: float = 0.0):
    """An order-2 Markov chain over ``vocab`` symbols: (ids, transition table P[a, b, c], entropy rate in nats).
    ``peak`` > 0 gives each context one clearly most probable next symbol."""
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(vocab, 0.7), size=(vocab, vocab))
    if peak:
        best = rng.integers(vocab, size=(vocab, vocab))
        P = (1 - peak) * P
        P[np.arange(vocab)[:, None], np.arange(vocab)[None, :], best] += peak
    cum = P.cumsum(axis=2)
    u = rng.random(n)
    ids = np.zeros(n, np.int64)
    a, b = 0, 1
    for i in range(n):
        c = min(int(np.searchsorted(cum[a, b], u[i], side="right")), vocab - 1)
        ids[i] = c
        a, b = b, c
    pi = np.full((vocab, vocab), 1 / vocab**2)  # stationary distribution of the pair (a, b)
    for _ in range(2000):
        pi = np.einsum("ab,abc->bc", pi, P)
    entropy = -(pi[:, :, None] * P * np.log(P)).sum()
    return ids, P, float(entropy)


def chain_dataset(ids: np.ndarray, vocab: int, val_fraction: float = 0.2) -> Dataset:
    n_train = int(len(ids) * (1 - val_fraction))
    data = ids.astype(np.uint8)
    return Dataset(Vocab(tuple("abcdefghijklmnop"[:vocab])), data[:n_train], data[n_train:], name="chain")


@pytest.fixture(scope="module")
def chain():
    ids, P, entropy = markov_chain(250_000)
    return chain_dataset(ids, 5), entropy


def test_order_3_reaches_the_entropy_rate_of_an_order_2_chain(chain):
    dataset, entropy = chain
    orders = ngram.baseline(dataset, 3)["orders"]
    assert abs(orders[2]["loss"] - entropy) / entropy < 0.02
    assert orders[0]["loss"] > orders[1]["loss"] > orders[2]["loss"]  # less context, less predictable
    assert orders[1]["loss"] > 1.02 * entropy  # an order-2 chain is not predictable from one character


def test_orders_beyond_the_support_fall_back_instead_of_diverging(chain):
    dataset, entropy = chain
    orders = ngram.baseline(dataset, 16)["orders"]
    losses = [o["loss"] for o in orders]
    assert all(math.isfinite(x) for x in losses)
    # Past ~11 characters of context (5**11 = 49M possible, 200k seen) nearly every validation context is new, so
    # the models fall back to the shorter contexts and their loss levels off, still below a bigram's. (In between,
    # Kneser-Ney trusts sparse counts of contexts that carry no information about an order-2 source, and loses some
    # of the trigram's accuracy: about 15 % here.)
    assert max(losses[10:]) - min(losses[10:]) < 0.01 * entropy
    assert max(losses[2:]) < losses[1]
    sizes = [o["size"] for o in orders]
    assert sizes == sorted(sizes) and orders[-1]["bytes"] == sizes[-1] * ngram.ENTRY_BYTES


def test_unseen_characters_and_contexts_in_validation_stay_finite():
    train = "abababababababab" * 50
    dataset = make_dataset(train + "abzzqzazb", val_fraction=9 / (len(train) + 9))
    assert "z" not in "".join(dataset.vocab.decode(dataset.train))
    for order in ngram.baseline(dataset, 6)["orders"]:
        assert math.isfinite(order["loss"]) and order["loss"] > 0


def smoothed_unigram_loss(train: str, val: str, vocab: str) -> float:
    """The unigram model written out independently: counts, Chen & Goodman's discounts (j/2 where undefined),
    the discounted mass spread uniformly over the vocabulary."""
    counts = Counter(train)
    n = [sum(1 for c in counts.values() if c == j) for j in range(5)]
    d = [0.0, 0.5, 1.0, 1.5]
    if min(n[1:]) > 0:
        y = n[1] / (n[1] + 2 * n[2])
        for j in (1, 2, 3):
            estimate = j - (j + 1) * y * n[j + 1] / n[j]
            if 0 < estimate <= j:
                d[j] = estimate
    total = sum(counts.values())
    mass = sum(d[min(c, 3)] for c in counts.values())
    p = {w: (max(counts[w] - d[min(counts[w], 3)], 0) + mass / len(vocab)) / total for w in vocab}
    return -sum(math.log(p[w]) for w in val[1:]) / (len(val) - 1)


@pytest.mark.parametrize("train", [
    # every count of counts n1..n4 present: Chen & Goodman's estimates are used
    "a" * 40 + "b" * 17 + "cdef" + "gg" + "hh" + "iii" + "jjj" + "kkkk" + "llll" + "mmmm" + "nn" + "o",
    # only large counts: the fallback discounts
    "ab" * 300 + "c" * 50,
])
def test_unigram_loss_is_the_smoothed_unigram_entropy(train):
    val = "abcabcaaab" + ("xyz" if "o" in train else "")
    vocab = "".join(sorted(set(train + val)))
    text = train + val
    dataset = make_dataset(text, val_fraction=len(val) / len(text))
    assert dataset.vocab.decode(dataset.val) == val
    unigram = ngram.baseline(dataset, 1)["orders"][0]
    assert unigram["loss"] == pytest.approx(smoothed_unigram_loss(train, val, vocab), rel=1e-12)
    assert unigram["bpc"] == pytest.approx(unigram["loss"] / math.log(2))
    assert unigram["size"] == len(set(train))


def test_every_distribution_sums_to_one(shakespeare, tmp_path):
    dataset = make_dataset(shakespeare.read_text()[:60_000])
    V = len(dataset.vocab)
    counts = ngram_counts.NGramCounts(dataset.train, V, 5, tmp_path)
    for context in ("the kin", "zzqx", "\n\n"):
        totals = np.zeros(5)
        for w in range(V):
            seg = np.append(dataset.vocab.encode(context), w)
            probs, _ = ngram._score_block(counts.levels, V, seg, 0, len(seg) - 1, dense=False)
            totals += [p[0] for p in probs]
        assert totals == pytest.approx(np.ones(5), abs=1e-9)


def test_the_dense_path_of_the_oracle_agrees_with_the_scores(shakespeare, tmp_path):
    dataset = make_dataset(shakespeare.read_text()[:80_000])
    V = len(dataset.vocab)
    counts = ngram_counts.NGramCounts(dataset.train, V, 5, tmp_path)
    seg = np.asarray(dataset.val[:2000])
    scalar, _ = ngram._score_block(counts.levels, V, seg, 0, 1, dense=False)
    dense, guesses = ngram._score_block(counts.levels, V, seg, 0, 1, dense=True)
    for s, d in zip(scalar, dense):
        np.testing.assert_allclose(s, d, rtol=1e-12)
    assert len(guesses) == 5 and (guesses[4] == seg[1:]).mean() > (guesses[0] == seg[1:]).mean()


def test_counting_in_small_pieces_gives_the_same_model(shakespeare, monkeypatch):
    dataset = make_dataset(shakespeare.read_text()[:120_000])
    whole = ngram.baseline(dataset, 6)
    monkeypatch.setattr(ngram_counts, "CHUNK", 3001)  # positions and table entries read at a time
    monkeypatch.setattr(ngram, "BLOCK", 997)  # validation targets scored at a time
    pieces = ngram.baseline(dataset, 6, budget=1500)  # distinct n-grams held at once: many history ranges
    for a, b in zip(whole["orders"], pieces["orders"]):
        assert a["size"] == b["size"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-12)


def test_shakespeare_orders_improve_then_level_off(shakespeare):
    orders = ngram.baseline(make_dataset(shakespeare.read_text()), 6)["orders"]
    losses = [o["loss"] for o in orders]
    assert losses[:5] == sorted(losses[:5], reverse=True)
    assert 1.4 < losses[5] < 1.7 and 3.2 < losses[0] < 3.5  # nats/char; unigram ~ 4.8 bpc


def test_results_are_cached_per_text_and_split(tmp_path, chain):
    dataset, _ = chain
    first = ngram.baseline(dataset, 3, cache_dir=tmp_path)
    again = ngram.baseline(dataset, 3, cache_dir=tmp_path)
    assert not first["cached"] and again["cached"]
    assert again["orders"] == first["orders"]
    resplit = Dataset(dataset.vocab, dataset.train[:-1000], dataset.val, name="chain")
    assert not ngram.baseline(resplit, 3, cache_dir=tmp_path)["cached"]
    assert not list((tmp_path / "ngram").glob("counts-*"))  # work files are removed


@pytest.mark.parametrize("order, text, message", [
    (0, "hello world " * 50, "from 1 to 20"),
    (100, "hello world " * 50, "from 1 to 20"),
    (2.5, "hello world " * 50, "whole number"),
    (8, "hello", "too few for 8-grams"),
])
def test_bad_input_is_one_clear_line(order, text, message):
    with pytest.raises(UserError) as e:
        ngram.baseline(make_dataset(text), order)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_oracle_counts_the_model_errors_an_ngram_gets_right():
    ids, P, _ = markov_chain(120_000, vocab=4, seed=3, peak=0.6)
    dataset = chain_dataset(ids, 4)
    val = np.asarray(dataset.val, np.int64)
    targets = val[1:]
    perfect = ngram.oracle(dataset, targets.copy(), orders=3)
    assert perfect["model_errors"] == 0 and perfect["share"] == 0.0

    always_zero = np.zeros(len(targets), np.int64)  # a "model" that always guesses symbol 0
    result = ngram.oracle(dataset, always_zero, orders=3)
    wrong = targets != 0
    assert result["model_errors"] == int(wrong.sum())
    # with a clear favourite per context, the trigram model's guess is the chain's most probable next symbol
    best = P.argmax(axis=2)[val[:-2], val[1:-1]]
    trigram_right = (best == targets[1:]) & wrong[1:]
    assert result["by_order"][3] == pytest.approx(trigram_right.sum() / wrong.sum(), abs=2 / wrong.sum())
    assert result["share"] >= result["by_order"][3] > result["by_order"][1]
    with pytest.raises(UserError, match="validation targets"):
        ngram.oracle(dataset, always_zero[:-5], orders=3)


def baseline_command(*argv):
    """The draft `rnntui baseline` (not registered in rnntui.cli until phase 2), parsed as the CLI would."""
    import argparse

    from rnntui.commands import baseline

    parser = argparse.ArgumentParser()
    baseline.add_parser(parser.add_subparsers())
    args = parser.parse_args(["baseline", *argv])
    return args.run(args)


def test_baseline_command_prints_json_and_caches(small_text, capsys):
    import json

    assert baseline_command(str(small_text), "--order", "4", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert [o["order"] for o in result["orders"]] == [1, 2, 3, 4] and not result["cached"]
    assert set(result["orders"][0]) >= {"order", "loss", "bpc", "size"}
    assert baseline_command(str(small_text), "--order", "4") == 0
    out = capsys.readouterr().out
    assert "(cached)" in out and "Kneser-Ney" in out


@pytest.mark.parametrize("argv, message", [
    (["--order", "0"], "from 1 to 20"), (["--order", "100"], "from 1 to 20"),
    (["hello", "--corpus-option", "chars=6"], "too few for 8-grams"),
])
def test_baseline_command_bad_input_exits_2_with_one_line(argv, message, capsys):
    assert baseline_command(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnntui: error: ") and message in err and err.count("\n") == 1
