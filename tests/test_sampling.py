"""Sampling: temperature, top-k / top-p distributions, seeded determinism, the unknown-character policy."""

import math

import pytest
import torch

from rnntui.core.cells import LSTM
from rnntui.core.data import DataError, Vocab
from rnntui.core.model import CharModel
from rnntui.core.decode import prepare_prompt as prepare_prime
from rnntui.core.sampling import filter_logits, generate

LOGITS = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0]])


def test_temperature_sharpens_and_flattens():
    p = LOGITS.softmax(-1)
    cold = filter_logits(LOGITS, 0.5).softmax(-1)
    hot = filter_logits(LOGITS, 2.0).softmax(-1)
    assert cold[0, 0] > p[0, 0] > hot[0, 0]
    assert torch.allclose(cold, (LOGITS * 2).softmax(-1))


def test_top_k_keeps_exactly_k_and_renormalises():
    probs = filter_logits(LOGITS, 1.0, top_k=2).softmax(-1)
    assert (probs > 0).sum() == 2
    assert torch.allclose(probs[0, :2], LOGITS[0, :2].softmax(-1))


def test_top_p_keeps_the_smallest_prefix_reaching_p():
    p = LOGITS.softmax(-1)[0]
    first_two = float(p[0] + p[1])
    kept = filter_logits(LOGITS, 1.0, top_p=first_two - 1e-6).softmax(-1)
    assert (kept > 0).sum() == 2
    assert (filter_logits(LOGITS, 1.0, top_p=float(p[0]) / 2).softmax(-1) > 0).sum() == 1
    assert (filter_logits(LOGITS, 1.0, top_p=1.0).softmax(-1) > 0).sum() == 5


def _model(vocab):
    torch.manual_seed(0)
    return CharModel(len(vocab), LSTM, n_layer=2, n_hidden=16)


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, None, None), (0.7, 3, None), (1.3, None, 0.8)])
def test_sampled_frequencies_follow_the_filtered_distribution(temperature, top_k, top_p):
    vocab = Vocab(tuple("abcde"))
    model = _model(vocab)
    with torch.no_grad():  # the head ignores the state: every step draws from the same known distribution
        model.head.weight.zero_()
        model.head.bias.copy_(LOGITS[0])
    expected = filter_logits(LOGITS, temperature, top_k, top_p).softmax(-1)[0]
    n = 12000
    text = "".join(generate(model, vocab, "a", length=n, temperature=temperature, top_k=top_k, top_p=top_p,
                            seed=3))
    observed = torch.tensor([text.count(c) / n for c in vocab.chars])
    assert torch.allclose(observed, expected, atol=0.02)
    assert all(text.count(c) == 0 for c, p in zip(vocab.chars, expected) if p == 0)


def test_seed_makes_samples_reproducible_and_leaves_global_rng_alone():
    vocab = Vocab(tuple("abcdefgh\n"))
    model = _model(vocab)
    torch.manual_seed(42)
    before = torch.get_rng_state()
    a = "".join(generate(model, vocab, "abc", length=100, seed=7))
    b = "".join(generate(model, vocab, "abc", length=100, seed=7))
    c = "".join(generate(model, vocab, "abc", length=100, seed=8))
    assert a == b and a != c
    assert torch.equal(before, torch.get_rng_state())


def test_near_zero_temperature_is_argmax():
    vocab = Vocab(tuple("abcdefgh\n"))
    model = _model(vocab)
    greedy = "".join(generate(model, vocab, "abc", length=40, temperature=1e-4, seed=1))
    other = "".join(generate(model, vocab, "abc", length=40, temperature=1e-4, seed=2))
    assert greedy == other
    states = model.initial_state(1)
    logits, states = model.forward(torch.tensor([[0, 1, 2]]), states)
    assert greedy[0] == vocab.chars[int(logits[0, -1].argmax())]


def test_unbounded_generation_streams():
    vocab = Vocab(tuple("ab\n"))
    stream = generate(_model(vocab), vocab, "", length=None, seed=0)
    assert len([next(stream) for _ in range(500)]) == 500


@pytest.mark.parametrize("temperature", [0.0, -1.0, math.nan, math.inf])
def test_bad_temperature_is_refused(temperature):
    vocab = Vocab(tuple("ab"))
    with pytest.raises(DataError, match="temperature"):
        next(generate(_model(vocab), vocab, "a", temperature=temperature))


def test_unknown_prompt_characters_policy():
    vocab = Vocab(tuple("abc "))
    with pytest.raises(DataError, match="'erxz'"):
        prepare_prime(vocab, "a zebra x", skip_unknown=False)
    kept, dropped = prepare_prime(vocab, "a zebra x", skip_unknown=True)
    assert kept == "a ba " and dropped == ["e", "r", "x", "z"]
