"""The bundled gallery (plugins/): each cell against a direct transcription of its paper's equations (and against
torch's built-in cell where one exists), minGRU/minLSTM's scan against their step loop, and every registered cell
through the model's stacking, dropout and step-by-step generation path."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rnntui.core.cells import run_sequence, run_steps
from rnntui.core.model import CharModel
from rnntui.plugins import get_registry

sig, tanh = torch.sigmoid, torch.tanh
B, T = 3, 5


@pytest.fixture(autouse=True)
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(previous)


def make(name, input_size=4, hidden_size=6, **options):
    return get_registry().cell(name)(input_size, hidden_size, **options)


def randomize(cell, scale=0.5):
    """Random weights everywhere (so, e.g., zero-initialised biases and peepholes are exercised too)."""
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(torch.randn_like(p) * scale)
    return cell


def check(cell, reference, x, state):
    """The cell's engine path (its sequence path where it has one, else the step loop) and its step loop both
    equal ``reference(x, state) -> (outputs, final state)``."""
    expected_h, expected_state = reference(x, state)
    for h, new_state in (run_sequence(cell, x, state), run_steps(cell, x, state)):
        torch.testing.assert_close(h, expected_h)
        for got, want in zip(new_state, expected_state, strict=True):
            torch.testing.assert_close(got, want)


def random_state(cell, batch=B):
    return tuple(torch.randn_like(s) * 0.5 for s in cell.initial_state(batch))


def mm(W, v):  # W v for a batch of row vectors v
    return v @ W.T


# -- Greff et al. -----------------------------------------------------------------------------------------------------

VARIANTS = {"lstm-peephole": "V", "lstm-nig": "NIG", "lstm-nfg": "NFG", "lstm-nog": "NOG", "lstm-niaf": "NIAF",
            "lstm-noaf": "NOAF", "lstm-np": "NP", "lstm-cifg": "CIFG", "lstm-fgr": "FGR"}


def greff_reference(cell, variant):
    """The vanilla LSTM with peepholes as Greff et al. write it, with the variant's one-line change."""
    H = cell.hidden_size
    gates = ["z"] + [g for g, gone in (("i", "NIG"), ("f", "NFG"), ("o", "NOG")) if variant != gone]
    if variant == "CIFG":
        gates.remove("f")
    W = dict(zip(gates, cell.W.weight.split(H)))
    b = dict(zip(gates, cell.W.bias.split(H)))
    R = dict(zip(gates, cell.R.weight.split(H)))
    p = {g: getattr(cell, f"p_{g}") for g in "ifo" if variant != "NP" and g in gates}
    if variant == "FGR":  # R_gates rows: targets i, f, o; columns: sources i, f, o of the previous step
        Rg = {(src, dst): cell.R_gates.weight[k * H:(k + 1) * H, j * H:(j + 1) * H]
              for k, dst in enumerate("ifo") for j, src in enumerate("ifo")}

    def reference(x, state):
        y, c = state[0], state[1]
        prev = dict(zip("ifo", state[2].split(H, dim=-1))) if variant == "FGR" else None
        outputs = []
        for t in range(x.shape[1]):
            xt = x[:, t]

            def bar(g, peep=None):
                v = mm(W[g], xt) + mm(R[g], y) + b[g]
                if g in p:
                    v = v + p[g] * peep
                if variant == "FGR":
                    v = v + sum(mm(Rg[(src, g)], prev[src]) for src in "ifo")
                return v

            z_bar = mm(W["z"], xt) + mm(R["z"], y) + b["z"]
            z = z_bar if variant == "NIAF" else tanh(z_bar)
            i = torch.ones_like(c) if variant == "NIG" else sig(bar("i", c))
            if variant == "NFG":
                f = torch.ones_like(c)
            elif variant == "CIFG":
                f = 1 - i
            else:
                f = sig(bar("f", c))
            c = z * i + c * f
            o = torch.ones_like(c) if variant == "NOG" else sig(bar("o", c))
            y = (c if variant == "NOAF" else tanh(c)) * o
            if variant == "FGR":
                prev = {"i": i, "f": f, "o": o}
            outputs.append(y)
        final = (y, c, torch.cat([prev["i"], prev["f"], prev["o"]], -1)) if variant == "FGR" else (y, c)
        return torch.stack(outputs, 1), final

    return reference


@pytest.mark.parametrize("name", VARIANTS)
def test_greff_lstm_variants(name):
    cell = randomize(make(name))
    check(cell, greff_reference(cell, VARIANTS[name]), torch.randn(B, T, 4), random_state(cell))


def test_greff_variants_have_only_their_weights():
    def names(cell):
        return {n for n, _ in cell.named_parameters()}

    assert names(make("lstm-peephole")) == {"W.weight", "W.bias", "R.weight", "p_i", "p_f", "p_o"}
    assert names(make("lstm-np")) == {"W.weight", "W.bias", "R.weight"}
    assert names(make("lstm-nig")) == {"W.weight", "W.bias", "R.weight", "p_f", "p_o"}
    assert names(make("lstm-cifg")) == {"W.weight", "W.bias", "R.weight", "p_i", "p_o"}
    assert names(make("lstm-fgr")) == names(make("lstm-peephole")) | {"R_gates.weight"}
    assert make("lstm-nog").W.weight.shape == (3 * 6, 4)
    # the forget-gate bias starts at 1 (the f block is the third: z, i, f, o)
    assert torch.all(make("lstm-peephole").W.bias[12:18] == 1.0)
    assert torch.all(make("lstm-peephole", forget_bias=0.0).W.bias[12:18].abs() < 1)


def test_lstm_np_is_torchs_lstm():
    cell = randomize(make("lstm-np"))
    torch_cell = torch.nn.LSTMCell(4, 6)
    z, i, f, o = cell.W.weight.chunk(4)
    bz, bi, bf, bo = cell.W.bias.chunk(4)
    rz, ri, rf, ro = cell.R.weight.chunk(4)
    with torch.no_grad():  # PyTorch's block order is i, f, g (= z), o
        torch_cell.weight_ih.copy_(torch.cat([i, f, z, o]))
        torch_cell.weight_hh.copy_(torch.cat([ri, rf, rz, ro]))
        torch_cell.bias_ih.copy_(torch.cat([bi, bf, bz, bo]))
        torch_cell.bias_hh.zero_()

    def reference(x, state):
        h, c = state
        outputs = []
        for t in range(x.shape[1]):
            h, c = torch_cell(x[:, t], (h, c))
            outputs.append(h)
        return torch.stack(outputs, 1), (h, c)

    check(cell, reference, torch.randn(B, T, 4), random_state(cell))


# -- Jozefowicz et al. ------------------------------------------------------------------------------------------------


def mut_reference(cell, kind):
    H = cell.hidden_size
    Wx, bx = cell.Wx.weight.split(H), cell.Wx.bias.split(H)
    Wh = cell.Wh.weight.split(H)
    W_hh = cell.Whh.weight

    def bare(x):  # the paper's bare x, through P only when the sizes differ
        return x if cell.P is None else mm(cell.P.weight, x)

    def reference(x, state):
        h = state[0]
        outputs = []
        for t in range(x.shape[1]):
            xt = x[:, t]
            if kind == "mut1":
                z = sig(mm(Wx[0], xt) + bx[0])
                r = sig(mm(Wx[1], xt) + mm(Wh[0], h) + bx[1])
                h = tanh(mm(W_hh, r * h) + tanh(bare(xt)) + cell.extra_bias) * z + h * (1 - z)
            elif kind == "mut2":
                z = sig(mm(Wx[0], xt) + mm(Wh[0], h) + bx[0])
                r = sig(bare(xt) + mm(Wh[1], h) + cell.extra_bias)
                h = tanh(mm(W_hh, r * h) + mm(Wx[1], xt) + bx[1]) * z + h * (1 - z)
            else:
                z = sig(mm(Wx[0], xt) + mm(Wh[0], tanh(h)) + bx[0])
                r = sig(mm(Wx[1], xt) + mm(Wh[1], h) + bx[1])
                h = tanh(mm(W_hh, r * h) + mm(Wx[2], xt) + bx[2]) * z + h * (1 - z)
            outputs.append(h)
        return torch.stack(outputs, 1), (h,)

    return reference


@pytest.mark.parametrize("kind", ["mut1", "mut2", "mut3"])
@pytest.mark.parametrize("input_size", [6, 4])  # equal to the hidden size (the paper's case), then smaller
def test_mut(kind, input_size):
    cell = randomize(make(kind, input_size=input_size))
    assert (cell.P is None) == (input_size == 6 or kind == "mut3")  # the projection only where it is needed
    check(cell, mut_reference(cell, kind), torch.randn(B, T, input_size), random_state(cell))


# -- GRU, Cho et al.'s convention -------------------------------------------------------------------------------------


def cho_reference(cell):
    H = cell.hidden_size
    W_r, W_z, W = cell.W.weight.split(H)
    b_r, b_z, b = cell.W.bias.split(H)
    U_r, U_z = cell.U_rz.weight.split(H)
    U = cell.U.weight

    def reference(x, state):
        h = state[0]
        outputs = []
        for t in range(x.shape[1]):
            xt = x[:, t]
            r = sig(mm(W_r, xt) + mm(U_r, h) + b_r)
            z = sig(mm(W_z, xt) + mm(U_z, h) + b_z)
            h_tilde = tanh(mm(W, xt) + mm(U, r * h) + b)
            h = z * h + (1 - z) * h_tilde
            outputs.append(h)
        return torch.stack(outputs, 1), (h,)

    return reference


def test_gru_cho():
    cell = randomize(make("gru-cho"))
    check(cell, cho_reference(cell), torch.randn(B, T, 4), random_state(cell))


def to_torch_gru(cell, reset_bias=None):
    """torch.nn.GRUCell with the Cho cell's weights (PyTorch's blocks are r, z, n too)."""
    gru = torch.nn.GRUCell(4, 6)
    with torch.no_grad():
        gru.weight_ih.copy_(cell.W.weight)
        gru.bias_ih.copy_(cell.W.bias)
        gru.weight_hh.copy_(torch.cat([cell.U_rz.weight, cell.U.weight]))
        gru.bias_hh.zero_()
        if reset_bias is not None:
            gru.bias_ih[:6] = reset_bias
            cell.W.bias[:6] = reset_bias
    return gru


def test_gru_cho_equals_torchs_gru_only_with_the_reset_gate_open():
    x, h0 = torch.randn(B, 4), torch.randn(B, 6)
    cell = randomize(make("gru-cho"))
    gru = to_torch_gru(cell, reset_bias=60.0)  # sigmoid(60) == 1 in float64: r = 1, the conventions meet
    torch.testing.assert_close(cell.step(cell.project_input(x), (h0,))[0], gru(x, h0))
    cell = randomize(make("gru-cho"), scale=1.0)
    gru = to_torch_gru(cell)
    assert (cell.step(cell.project_input(x), (h0,))[0] - gru(x, h0)).abs().max() > 1e-2  # otherwise they differ


# -- IndRNN, MGU, UGRNN, Delta-RNN ------------------------------------------------------------------------------------


def test_indrnn():
    cell = randomize(make("indrnn"))
    W, b, u = cell.W.weight, cell.W.bias, cell.u

    def reference(x, state):
        h = state[0]
        outputs = []
        for t in range(x.shape[1]):
            h = torch.relu(mm(W, x[:, t]) + u * h + b)
            outputs.append(h)
        return torch.stack(outputs, 1), (h,)

    x, state = torch.randn(B, T, 4), random_state(cell)
    check(cell, reference, x, state)
    # torch's relu RNN with a diagonal recurrent matrix and no second bias is the same cell
    rnn = torch.nn.RNNCell(4, 6, nonlinearity="relu")
    with torch.no_grad():
        rnn.weight_ih.copy_(W)
        rnn.bias_ih.copy_(b)
        rnn.weight_hh.copy_(torch.diag(u))
        rnn.bias_hh.zero_()
    h = state[0]
    for t in range(T):
        h = rnn(x[:, t], h)
    torch.testing.assert_close(run_sequence(cell, x, state)[1][0], h)


def test_indrnn_options():
    cell = randomize(make("indrnn", recurrent_max_abs=0.1, nonlinearity="tanh"), scale=3.0)
    x, h = torch.randn(B, 4), torch.randn(B, 6)
    expected = tanh(mm(cell.W.weight, x) + cell.W.bias + cell.u.clamp(-0.1, 0.1) * h)
    torch.testing.assert_close(cell.step(cell.project_input(x), (h,))[0], expected)
    with pytest.raises(ValueError):
        make("indrnn", nonlinearity="sigmoid")


def test_mgu():
    cell = randomize(make("mgu"))
    W_f, W_h = cell.W.weight.chunk(2)
    b_f, b_h = cell.W.bias.chunk(2)

    def reference(x, state):
        h = state[0]
        outputs = []
        for t in range(x.shape[1]):
            f = sig(mm(W_f, x[:, t]) + mm(cell.U_f.weight, h) + b_f)
            h_tilde = tanh(mm(W_h, x[:, t]) + mm(cell.U_h.weight, f * h) + b_h)
            h = (1 - f) * h + f * h_tilde
            outputs.append(h)
        return torch.stack(outputs, 1), (h,)

    check(cell, reference, torch.randn(B, T, 4), random_state(cell))


def test_ugrnn():
    cell = randomize(make("ugrnn"))
    W_cx, W_gx = cell.Wx.weight.chunk(2)
    b_c, b_g = cell.Wx.bias.chunk(2)
    W_ch, W_gh = cell.Wh.weight.chunk(2)

    def reference(x, state):
        h = state[0]
        outputs = []
        for t in range(x.shape[1]):
            c = tanh(mm(W_ch, h) + mm(W_cx, x[:, t]) + b_c)
            g = sig(mm(W_gh, h) + mm(W_gx, x[:, t]) + b_g)
            h = g * h + (1 - g) * c
            outputs.append(h)
        return torch.stack(outputs, 1), (h,)

    check(cell, reference, torch.randn(B, T, 4), random_state(cell))


@pytest.mark.parametrize("activation", ["identity", "tanh"])
def test_delta_rnn(activation):
    cell = randomize(make("delta-rnn", activation=activation))
    phi = (lambda v: v) if activation == "identity" else tanh

    def reference(x, state):
        h = state[0]
        outputs = []
        for t in range(x.shape[1]):
            Wx, Vh = mm(cell.W.weight, x[:, t]), mm(cell.V.weight, h)
            d1 = cell.alpha * Vh * Wx
            d2 = cell.beta1 * Vh + cell.beta2 * Wx
            z = tanh(d1 + d2 + cell.b)
            r = sig(Wx + cell.b_r)
            h = phi((1 - r) * z + r * h)
            outputs.append(h)
        return torch.stack(outputs, 1), (h,)

    check(cell, reference, torch.randn(B, T, 4), random_state(cell))


def test_delta_rnn_starts_with_unit_gains():
    cell = make("delta-rnn", alpha=2.0)
    assert torch.all(cell.alpha == 2.0) and torch.all(cell.beta1 == 1.0) and torch.all(cell.beta2 == 1.0)


# -- minGRU, minLSTM --------------------------------------------------------------------------------------------------


def g(v):
    return torch.where(v >= 0, v + 0.5, sig(v))


def min_reference(cell, kind):
    H = cell.hidden_size
    blocks = cell.linear.weight.split(H)
    biases = cell.linear.bias.split(H)

    def reference(x, state):
        h = state[0]
        outputs = []
        for t in range(x.shape[1]):
            pre = [mm(W, x[:, t]) + b for W, b in zip(blocks, biases)]
            if kind == "mingru":
                z, h_tilde = sig(pre[0]), g(pre[1])
                h = (1 - z) * h + z * h_tilde
            else:
                f, i, h_tilde = sig(pre[0]), sig(pre[1]), g(pre[2])
                h = f / (f + i) * h + i / (f + i) * h_tilde
            outputs.append(h)
        return torch.stack(outputs, 1), (h,)

    return reference


SCANS = ["log", "blocked", "loop", "auto"]


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_min_rnns(kind, scan):
    cell = randomize(make(kind, scan=scan), scale=1.0)
    assert cell.forward_sequence is not None
    check(cell, min_reference(cell, kind), torch.randn(B, T, 4), random_state(cell))


@pytest.mark.parametrize("length", [256, 7, 1])
@pytest.mark.parametrize("dtype,tolerance", [(torch.float64, 1e-10), (torch.float32, 1e-3)])
@pytest.mark.parametrize("scan", ["log", "blocked"])
@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_scan_equals_the_step_loop(kind, scan, dtype, tolerance, length):
    """Equal to rounding, values and gradients: in float64 to 1e-10; in float32 the log-space scan's cumulative
    sums lose a few digits over 256 steps (outputs agree to ~1e-4, gradients to ~1e-3 of their norm)."""
    cell = randomize(make(kind, input_size=8, hidden_size=16, scan=scan), scale=1.0).to(dtype)
    x = torch.randn(4, length, 8, dtype=dtype, requires_grad=True)
    h0 = torch.randn(4, 16, dtype=dtype)  # any sign: the h_0 term never goes through a log
    scan_h, (scan_last,) = cell.forward_sequence(x, (h0,))
    loop_h, (loop_last,) = run_steps(cell, x, (h0,))
    torch.testing.assert_close(scan_h, loop_h, rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(scan_last, loop_last, rtol=tolerance, atol=tolerance)
    weights = torch.randn_like(scan_h)
    scan_grads = torch.autograd.grad((scan_h * weights).sum(), [x, *cell.parameters()])
    loop_grads = torch.autograd.grad((loop_h * weights).sum(), [x, *cell.parameters()])
    for a, b in zip(scan_grads, loop_grads):
        assert (a - b).norm() <= 10 * tolerance * b.norm()


def test_scans_survive_saturated_gates():
    """Gates at +-30 (a or b underflow to 0 in float32): both scans stay finite and equal to the loop."""
    cell = make("mingru", input_size=8, hidden_size=16).float()
    with torch.no_grad():
        cell.linear.weight.copy_(torch.randn_like(cell.linear.weight) * 30)
    x, h0 = torch.randn(2, 64, 8, dtype=torch.float32), torch.randn(2, 16, dtype=torch.float32)
    loop_h, _ = run_steps(cell, x, (h0,))
    for scan in ("log", "blocked"):
        cell.scan = scan
        h, _ = cell.forward_sequence(x, (h0,))
        assert torch.isfinite(h).all()
        torch.testing.assert_close(h, loop_h, rtol=1e-3, atol=1e-3)


# -- every cell, through the model ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(get_registry().cells))
def test_every_cell_trains_in_the_model_and_generates_step_by_step(name):
    """Two stacked layers with dropout: the whole-sequence forward (carrying the state between two chunks, as
    truncated BPTT does) equals the step-by-step generation path, and a few optimizer steps lower the loss."""
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    model = CharModel(11, get_registry().cell(name), n_layer=2, n_hidden=12, n_embd=5, dropout=0.1)
    idx = torch.randint(0, 11, (2, 8))
    model.eval()
    with torch.no_grad():
        first, states = model(idx[:, :5], model.initial_state(2))
        second, _ = model(idx[:, 5:], states)
        logits = torch.cat([first, second], 1)
        states = model.initial_state(2)
        for t in range(8):
            step_logits, states = model.step(idx[:, t], states)
            torch.testing.assert_close(step_logits, logits[:, t], rtol=1e-4, atol=1e-4)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randint(0, 11, (4, 12)), torch.randint(0, 11, (4, 12))
    losses = []
    for _ in range(6):
        logits, _ = model(x, model.initial_state(4))
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses


def test_blocked_scan_backward_is_the_exact_gradient():
    from rnntui.plugins import load_file

    module = load_file(Path(get_registry().plugin_of("cell", "mingru").location))
    for length in (1, 5, 16, 23):
        a = torch.rand(2, length, 3, requires_grad=True)
        b = torch.randn(2, length, 3, requires_grad=True)
        h0 = torch.randn(2, 3, requires_grad=True)
        assert torch.autograd.gradcheck(module.blocked_scan, (a, b, h0))


@pytest.mark.parametrize("name", ["lstm-cifg", "mingru", "mut1"])
def test_rnntui_train_accepts_gallery_cells(name, small_text, capsys, tmp_path):
    from rnntui.cli import main

    torch.set_default_dtype(torch.float32)
    log = tmp_path / "log.jsonl"
    code = main(["train", str(small_text), "--cell", name, "--hidden", "16", "--embed", "8", "--layers", "2",
                 "--dropout", "0.1", "--batch-size", "4", "--seq-len", "16", "--max-steps", "3", "--eval-every", "3",
                 "--sample-every", "3", "--sample-length", "10", "--log-json", str(log), "--quiet"])
    assert code == 0, capsys.readouterr().err
    import json

    started = [json.loads(line) for line in log.read_text().splitlines() if '"started"' in line]
    assert started[0]["cell"] == name
