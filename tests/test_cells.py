"""Built-in cells: the fused whole-sequence path and the step path compute the same thing."""

import pytest
import torch

from rnntui.core.cells import GRU, LSTM, RNN, run_steps
from rnntui.core.model import CharModel

CASES = [(RNN, {}), (RNN, {"nonlinearity": "relu"}), (LSTM, {}), (LSTM, {"forget_bias": 0.0}), (GRU, {})]


@pytest.mark.parametrize("cell_class,options", CASES, ids=lambda c: getattr(c, "name", str(c)))
@pytest.mark.parametrize("n_layer", [1, 2, 3])
def test_fused_and_step_paths_agree(cell_class, options, n_layer):
    torch.manual_seed(n_layer)
    model = CharModel(13, cell_class, n_layer=n_layer, n_hidden=24, n_embd=10, cell_options=options).eval()
    idx = torch.randint(0, 13, (3, 17))
    with torch.no_grad():
        fused_logits, fused_states = model(idx, model.initial_state(3))
        states = model.initial_state(3)
        step_logits = []
        for t in range(idx.shape[1]):
            logits, states = model.step(idx[:, t], states)
            step_logits.append(logits)
    assert torch.allclose(fused_logits, torch.stack(step_logits, 1), atol=1e-5, rtol=0)
    for fused, stepped in zip(fused_states, states):
        for a, b in zip(fused, stepped):
            assert torch.allclose(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell_class", [RNN, LSTM, GRU])
def test_generic_step_loop_matches_fused_kernel(cell_class):
    cell = cell_class(8, 16)
    x = torch.randn(2, 9, 8)
    state = tuple(torch.randn_like(s) for s in cell.initial_state(2))
    fused, fused_state = cell.forward_sequence(x, state)
    looped, looped_state = run_steps(cell, x, state)
    assert torch.allclose(fused, looped, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(fused_state, looped_state))


@pytest.mark.parametrize("cell_class", [RNN, LSTM, GRU])
@pytest.mark.parametrize("path", ["fused", "step"])
def test_gradients_reach_every_parameter(cell_class, path):
    model = CharModel(11, cell_class, n_layer=2, n_hidden=16, dropout=0.1)
    idx = torch.randint(0, 11, (2, 6))
    if path == "fused":
        logits, _ = model(idx, model.initial_state(2))
    else:
        states, outs = model.initial_state(2), []
        for t in range(6):
            out, states = model.step(idx[:, t], states)
            outs.append(out)
        logits = torch.stack(outs, 1)
    logits.logsumexp(-1).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_lstm_forget_bias():
    hs = 8
    with_bias = LSTM(4, hs)
    total = with_bias.fused.bias_ih_l0 + with_bias.fused.bias_hh_l0
    assert torch.all(total[hs : 2 * hs] == 1.0)
    plain = LSTM(4, hs, forget_bias=0.0)
    assert not torch.all((plain.fused.bias_ih_l0 + plain.fused.bias_hh_l0)[hs : 2 * hs] == 1.0)


def test_unknown_cell_option_is_refused():
    with pytest.raises(ValueError, match="no option"):
        GRU(4, 8, forget_bias=1.0)
    with pytest.raises(ValueError, match="tanh"):
        RNN(4, 8, nonlinearity="sigmoid")
