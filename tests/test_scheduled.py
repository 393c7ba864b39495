"""Scheduled sampling (rnntui.core.scheduled) and the evaluations beside it (rnntui.core.evaluation)."""

import math

import numpy as np
import pytest
import torch

from rnntui.core.cells import GRU, LSTM, RNN
from rnntui.errors import UserError
from rnntui.core.evaluation import free_running, log_probs, top1
from rnntui.core.model import CharModel
from rnntui.core.scheduled import Schedule, parse_schedule, sampled_forward, step_generator
from rnntui.plugins import get_registry

V = 6


def model_of(cell=GRU, seed=0, **kwargs):
    torch.manual_seed(seed)
    return CharModel(V, cell, n_layer=2, n_hidden=8, **kwargs)


def window(B=5, T=12, seed=0):
    return torch.randint(V, (B, T), generator=torch.Generator().manual_seed(seed))


# -- schedules -------------------------------------------------------------------------------------------------------


def test_the_three_decays_of_the_paper():
    linear = parse_schedule("linear:1.0,0.5,2000")
    assert [linear(i) for i in (0, 1000, 2000, 5000)] == [1.0, 0.75, 0.5, 0.5]
    exponential = parse_schedule("exponential:0.999")
    assert exponential(0) == 1.0 and exponential(1000) == pytest.approx(0.999**1000)
    assert parse_schedule("exponential:0.9,0.2")(100) == 0.2  # floored
    sigmoid = parse_schedule("inverse-sigmoid:500")
    assert sigmoid(0) == pytest.approx(500 / 501)
    assert sigmoid(3000) == pytest.approx(500 / (500 + math.exp(6)))
    assert sigmoid(10**7) == 0.0  # no overflow
    assert parse_schedule("Inverse_Sigmoid:10, 0.1")(10**6) == 0.1
    assert parse_schedule("constant:0.25")(123) == 0.25
    values = [sigmoid(i) for i in range(0, 20000, 500)]
    assert values == sorted(values, reverse=True)


def test_a_schedule_prints_as_it_parses():
    for text in ("linear:1,0.5,2000", "exponential:0.999", "inverse-sigmoid:500,0.1", "constant:0.75"):
        assert parse_schedule(str(parse_schedule(text))) == parse_schedule(text)
    assert parse_schedule("linear:1,0.5,2000") == Schedule("linear", (1.0, 0.5, 2000.0))


@pytest.mark.parametrize("text, message", [
    ("cosine:1,0", "no scheduled-sampling schedule 'cosine'; choose one of: constant, linear"),
    ("linear:1.5,0.5,100", "START in linear:1.5,0.5,100 must be in [0, 1]"),
    ("linear:1,-0.1,100", "END in linear:1,-0.1,100 must be in [0, 1]"),
    ("constant:2", "must be in [0, 1]"),
    ("exponential:0.9,1.2", "MIN in exponential:0.9,1.2 must be in [0, 1]"),
    ("linear:1,0.5", "schedule linear takes linear:START,END,STEPS"),
    ("linear:1,0.5,0", "STEPS"),
    ("exponential:1.5", "K in exponential:1.5 must be in (0, 1]"),
    ("inverse-sigmoid:0.5", "must be at least 1"),
    ("inverse-sigmoid", "schedule inverse-sigmoid takes inverse-sigmoid:K[,MIN]"),
    ("constant:half", "takes numbers"),
    ("constant:nan", "finite"),
])
def test_bad_schedules_are_one_clear_line(text, message):
    with pytest.raises(UserError) as e:
        parse_schedule(text)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_probability_outside_0_1_is_refused_by_the_forward_pass():
    model = model_of()
    for p in (-0.1, 1.01, float("nan")):
        with pytest.raises(UserError, match=r"in \[0, 1\]"):
            sampled_forward(model, window(), model.initial_state(5), p, step_generator(0, 0))
    with pytest.raises(UserError, match="feed"):
        sampled_forward(model, window(), model.initial_state(5), 0.5, step_generator(0, 0), feed="beam")


# -- the forward pass ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", [RNN, LSTM, GRU])
def test_full_teacher_forcing_is_the_plain_forward_bit_for_bit(cell):
    model = model_of(cell, dropout=0.2)
    x, states = window(), model.initial_state(5)
    torch.manual_seed(7)
    plain, plain_states = model(x, states)
    rng = torch.get_rng_state()
    torch.manual_seed(7)
    generator = step_generator(1337, 3)
    logits, new_states, true = sampled_forward(model, x, states, 1.0, generator)
    assert torch.equal(logits, plain) and true.all()
    assert all(torch.equal(a, b) for s, t in zip(new_states, plain_states) for a, b in zip(s, t))
    assert torch.equal(torch.get_rng_state(), rng)  # the same dropout masks were drawn
    assert torch.equal(generator.get_state(), step_generator(1337, 3).get_state())  # no coin was flipped


def test_the_step_path_with_only_true_inputs_matches_the_forward():
    from rnntui.core.scheduled import _sampled_steps

    model = model_of(LSTM).eval()
    x, states = window(), model.initial_state(5)
    logits, _, true = _sampled_steps(model, x, states, 1.0, step_generator(0, 0), "sample")
    torch.testing.assert_close(logits, model(x, states)[0])
    assert true.all()


def test_without_teacher_forcing_the_model_reads_its_own_guesses():
    model = model_of(GRU).eval()
    x, states = window(B=3, T=8), model.initial_state(3)
    logits, _, true = sampled_forward(model, x, states, 0.0, step_generator(0, 0), feed="argmax")
    assert true[:, 0].all() and not true[:, 1:].any()
    # the reference: greedy generation from the first true character
    with torch.no_grad():
        expected, s, inputs = [], model.initial_state(3), x[:, 0]
        for _ in range(8):
            out, s = model.step(inputs, s)
            expected.append(out)
            inputs = out.argmax(-1)
    torch.testing.assert_close(logits, torch.stack(expected, dim=1))


def test_sampling_is_deterministic_for_a_generator_and_follows_the_probability():
    model = model_of(RNN).eval()
    x, states = window(B=64, T=50), model.initial_state(64)
    a = sampled_forward(model, x, states, 0.3, step_generator(5, 10))
    b = sampled_forward(model, x, states, 0.3, step_generator(5, 10))
    c = sampled_forward(model, x, states, 0.3, step_generator(5, 11))
    assert torch.equal(a[0], b[0]) and torch.equal(a[2], b[2])
    assert not torch.equal(a[2], c[2])
    assert a[2][:, 1:].float().mean().item() == pytest.approx(0.3, abs=0.03)


def test_gradients_flow_through_the_model_not_the_sampling():
    model = model_of(GRU)
    logits, _, _ = sampled_forward(model, window(), model.initial_state(5), 0.5, step_generator(0, 0))
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_a_plugin_cell_without_a_sequence_path_works_too():
    cell = get_registry().cell("ugrnn")
    torch.manual_seed(0)
    model = CharModel(V, cell, n_layer=1, n_hidden=8)
    logits, states, _ = sampled_forward(model, window(), model.initial_state(5), 0.5, step_generator(0, 0))
    assert logits.shape == (5, 12, V) and torch.isfinite(logits).all()


# -- evaluations -----------------------------------------------------------------------------------------------------


def test_log_probs_and_top1_carry_the_state_through_the_text():
    model = model_of(LSTM, dropout=0.3)
    ids = np.random.default_rng(0).integers(V, size=1300)
    lp = log_probs(model, ids, chunk=100)
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        whole = torch.log_softmax(model(torch.from_numpy(ids[None, :-1]), model.initial_state(1))[0][0], -1)
    np.testing.assert_allclose(lp, whole.numpy(), atol=1e-5)
    assert np.array_equal(top1(model, ids, chunk=77), lp.argmax(axis=1))


def test_free_running_on_the_models_own_greedy_text_has_no_gap():
    model = model_of(GRU).eval()
    with torch.no_grad():  # the model's greedy continuation of symbol 2, from the initial state
        text, s, inputs = [2], model.initial_state(1), torch.tensor([2])
        for _ in range(59):
            out, s = model.step(inputs, s)
            inputs = out.argmax(-1)
            text.append(int(inputs))
    result = free_running(model, np.array(text), free_chars=30, score_chars=30, streams=1, feed="argmax")
    assert result["gap"] == pytest.approx(0.0, abs=1e-5)
    assert result["teacher_forced_loss"] > 0


def test_free_running_is_deterministic_and_reports_a_gap():
    model = model_of(GRU)
    data = np.random.default_rng(1).integers(V, size=2000)
    a = free_running(model, data, free_chars=40, score_chars=20, streams=16, seed=3)
    assert a == free_running(model, data, free_chars=40, score_chars=20, streams=16, seed=3)
    assert a != free_running(model, data, free_chars=40, score_chars=20, streams=16, seed=4)
    assert a["gap"] == pytest.approx(a["free_running_loss"] - a["teacher_forced_loss"])
    assert model.training
    with pytest.raises(UserError, match="fewer than free-running"):
        free_running(model, data[:50], free_chars=40, score_chars=20)
