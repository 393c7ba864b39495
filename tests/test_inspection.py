"""The inspector: gates of every cell, recordings equal to the step path, scoring equal to evaluation, unit
ranking, gate saturation, and the one-line errors for bad input."""

import math

import numpy as np
import pytest
import torch

from rnntui.core.data import Vocab
from rnntui.errors import UserError
from rnntui.core.features import Feature, builtin_features
from rnntui.run import build_trainer, load_model
from rnntui.core.inspection import (Recording, Unit, record, record_in_steps, score, score_ids, score_in_steps,
                                    score_recording)
from rnntui.core.model import CharModel
from rnntui.core.units import average_ranks, gate_saturation, pick_features, rank_features, rank_units, roc_auc
from rnntui.plugins import get_registry

from conftest import TWO_LAYERS, tiny_config

sig, tanh = torch.sigmoid, torch.tanh
B, I, H = 3, 6, 6  # input as wide as the state, so MUT1/MUT2 are the paper's equations


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(previous)


def cell_names():
    return sorted(get_registry().cells)


def make(name, input_size=I, **options):
    cell = get_registry().cell(name)(input_size, H, **options)
    with torch.no_grad():  # random weights everywhere, so zero-initialised biases and peepholes count too
        for p in cell.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return cell


# -- gates: each cell's output rebuilt from its gates and the rest of its equations -------------------------------


def chunks(v, n):
    return v.chunk(n, dim=-1)


def g_min(v):  # minGRU/minLSTM's candidate activation
    return torch.where(v >= 0, v + 0.5, sig(v))


def lstm_h(cell, x, state, gates):
    h, c = state
    pre = x + h @ cell.fused.weight_hh_l0.T + cell.fused.bias_hh_l0
    c = gates["forget"] * c + gates["input"] * tanh(chunks(pre, 4)[2])
    return gates["output"] * tanh(c)


def gru_h(cell, x, state, gates):
    h = state[0]
    n = tanh(chunks(x, 3)[2] + gates["reset"] * chunks(h @ cell.fused.weight_hh_l0.T + cell.fused.bias_hh_l0, 3)[2])
    return (1 - gates["update"]) * n + gates["update"] * h


def greff_h(cell, x, state, gates):
    y, c = state[0], state[1]
    z_bar = chunks(x + y @ cell.R.weight.T, len(cell.blocks))[0]
    z = tanh(z_bar) if cell.input_activation else z_bar
    one = torch.ones_like(c)
    c = z * gates.get("input", one) + c * gates.get("forget", one)
    return (tanh(c) if cell.output_activation else c) * gates.get("output", one)


def mut_h(cell, x, state, gates, candidate_block):
    h, r, z = state[0], gates["reset"], gates["update"]
    return tanh((r * h) @ cell.Whh.weight.T + chunks(x, 3)[candidate_block]) * z + h * (1 - z)


def cho_h(cell, x, state, gates):
    h, r, z = state[0], gates["reset"], gates["update"]
    return z * h + (1 - z) * tanh(chunks(x, 3)[2] + (r * h) @ cell.U.weight.T)


def mgu_h(cell, x, state, gates):
    h, f = state[0], gates["forget"]
    return (1 - f) * h + f * tanh(chunks(x, 2)[1] + (f * h) @ cell.U_h.weight.T)


def ugrnn_h(cell, x, state, gates):
    h, g = state[0], gates["update"]
    return g * h + (1 - g) * tanh(chunks(x + h @ cell.Wh.weight.T, 2)[0])


def delta_h(cell, x, state, gates):
    h, r, wx = state[0], gates["update"], chunks(x, 2)[0]
    vh = h @ cell.V.weight.T
    z = tanh(cell.alpha * vh * wx + cell.beta1 * vh + cell.beta2 * wx + cell.b)
    return cell.phi((1 - r) * z + r * h)


def mingru_h(cell, x, state, gates):
    z = gates["update"]
    return (1 - z) * state[0] + z * g_min(chunks(x, 2)[1])


def minlstm_h(cell, x, state, gates):
    return gates["forget"] * state[0] + gates["input"] * g_min(chunks(x, 3)[2])


GREFF = ["lstm-peephole", "lstm-nig", "lstm-nfg", "lstm-nog", "lstm-niaf", "lstm-noaf", "lstm-np", "lstm-cifg",
         "lstm-fgr"]
FROM_GATES = {
    "lstm": lstm_h, "gru": gru_h, "gru-cho": cho_h, "mgu": mgu_h, "ugrnn": ugrnn_h, "delta-rnn": delta_h,
    "mingru": mingru_h, "minlstm": minlstm_h, **dict.fromkeys(GREFF, greff_h),
    "mut1": lambda *a: mut_h(*a, candidate_block=2), "mut2": lambda *a: mut_h(*a, candidate_block=1),
    "mut3": lambda *a: mut_h(*a, candidate_block=2),
}
GATES = {"lstm": {"input", "forget", "output"}, "gru": {"reset", "update"}, "lstm-nig": {"forget", "output"},
         "lstm-nfg": {"input", "output"}, "lstm-nog": {"input", "forget"}, "mgu": {"forget"}, "ugrnn": {"update"},
         "delta-rnn": {"update"}, "mingru": {"update"}, "minlstm": {"forget", "input"}}
WITHOUT_GATES = {"rnn", "indrnn"}


def test_every_registered_cell_is_covered_here():
    assert set(cell_names()) == set(FROM_GATES) | WITHOUT_GATES


@pytest.mark.parametrize("name", cell_names())
def test_gates_are_the_values_the_step_uses(name, float64):
    cell = make(name)
    if name in WITHOUT_GATES:
        assert getattr(cell, "gates", None) is None
        return
    x = cell.project_input(torch.randn(B, I))
    state = tuple(torch.randn_like(s) * 0.5 for s in cell.initial_state(B))
    before = [s.clone() for s in state]
    gates = cell.gates(x, state)
    expected = GATES.get(name, {"input", "forget", "output"} if name.startswith("lstm") else {"reset", "update"})
    assert set(gates) == expected
    for value in gates.values():
        assert value.shape == (B, H) and torch.all((value >= 0) & (value <= 1))
    torch.testing.assert_close(FROM_GATES[name](cell, x, state, gates), cell.step(x, state)[0])
    assert all(torch.equal(a, b) for a, b in zip(state, before))
    # rows are independent: the inspector passes every time step of a text as one batch
    for b in range(B):
        one = cell.gates(x[b : b + 1], tuple(s[b : b + 1] for s in state))
        for gate, value in one.items():
            torch.testing.assert_close(value[0], gates[gate][b])
    for gate, side in getattr(cell, "memory_gates", {}).items():
        assert side in ("left", "right") and (gate in gates or name == "lstm-nfg")


# -- recording: every path gives what the model's own step path computes -----------------------------------------


def stepped(model, ids):
    """Per layer: the output, the whole state and the gates at every step, from the model's step path."""
    states = model.initial_state(1)
    per_layer = [{"h": [], "state": [], "gates": []} for _ in model.cells]
    for t in range(len(ids)):
        x = model.embed(torch.tensor([ids[t]]))
        for i, cell in enumerate(model.cells):
            projected = cell.project_input(x)
            if getattr(cell, "gates", None) is not None:
                per_layer[i]["gates"].append(cell.gates(projected, states[i]))
            x, states[i] = cell.step(projected, states[i])
            per_layer[i]["h"].append(x[0])
            per_layer[i]["state"].append([s[0] for s in states[i]])
    return per_layer


@pytest.mark.parametrize("name", cell_names())
def test_a_recording_equals_the_step_path(name, float64):
    text = "def f(x):\n    return (x + 1) * 2  # one\n"
    vocab = Vocab.from_text(text)
    model = CharModel(len(vocab), get_registry().cell(name), n_layer=2, n_hidden=H, n_embd=5).eval()
    rec = record(model, vocab, text, chunk=16)  # the state is carried across chunks
    with torch.no_grad():
        expected = stepped(model, vocab.encode(text).tolist())
    names = getattr(model.cells[0], "state_names", ("h",))
    for layer, want in enumerate(expected):
        got = rec.states[layer]
        np.testing.assert_allclose(got["h"], torch.stack(want["h"]).numpy(), atol=1e-6)
        if "c" in names:
            c = torch.stack([s[names.index("c")] for s in want["state"]]).numpy()
            np.testing.assert_allclose(got["c"], c, atol=1e-6)
        assert set(got) == {"h"} | ({"c"} if "c" in names else set())
        assert set(rec.gates[layer]) == set(want["gates"][0] if want["gates"] else {})
        for gate in rec.gates[layer]:
            np.testing.assert_allclose(rec.gates[layer][gate],
                                       torch.cat([g[gate] for g in want["gates"]]).numpy(), atol=1e-6)
    assert rec.text == text and rec.n_layer == 2 and rec.hidden_size == H
    assert rec.matrix[0].shape == (len(text), 2 * H * (2 if "c" in names else 1))


def test_inspection_leaves_the_model_as_it_was():
    vocab = Vocab.from_text("abc de")
    model = CharModel(len(vocab), get_registry().cell("lstm"), n_layer=2, n_hidden=8, dropout=0.5).train()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    first = record(model, vocab, "abc de abc")
    assert model.training
    score(model, vocab, "abc de abc")
    assert model.training and all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())
    second = record(model, vocab, "abc de abc")  # dropout was off while recording: the same values
    np.testing.assert_array_equal(first.states[1]["h"], second.states[1]["h"])


# -- scoring ------------------------------------------------------------------------------------------------------


def test_score_is_the_loss_at_every_character_with_the_top_guesses():
    torch.manual_seed(1)
    text = "hello world, hello there\n" * 3
    vocab = Vocab.from_text(text)
    model = CharModel(len(vocab), get_registry().cell("gru"), n_layer=2, n_hidden=16).eval()
    result = score(model, vocab, text, seq_len=7)  # several passes, the state carried
    ids = vocab.encode(text).tolist()
    states, nats = model.initial_state(1), [math.nan]
    with torch.no_grad():
        for t in range(len(ids) - 1):
            logits, states = model.step(torch.tensor([ids[t]]), states)
            log_probs = logits[0].log_softmax(-1)
            nats.append(-log_probs[ids[t + 1]].item())
            if t == 10:
                best = log_probs.topk(5)
                assert result.top_ids[t + 1].tolist() == best.indices.tolist()
                np.testing.assert_allclose(result.top_probs[t + 1], best.values.exp().numpy(), rtol=1e-5)
    np.testing.assert_allclose(result.nats, nats, rtol=1e-5)
    assert result.chars == len(text) - 1
    assert result.nats_per_char == pytest.approx(np.mean(nats[1:]), rel=1e-6)
    assert result.bits_per_char == pytest.approx(result.nats_per_char / math.log(2))
    assert result.perplexity == pytest.approx(math.exp(result.nats_per_char))
    assert set(result.totals()) == {"bits_per_char", "nats_per_char", "perplexity", "chars"}
    lines = list(result.per_char())
    assert len(lines) == len(text) and lines[0] == {"char": "h", "bits": None, "top": []}
    assert lines[1]["char"] == "e" and lines[1]["bits"] == pytest.approx(nats[1] / math.log(2))
    assert len(lines[1]["top"]) == 5 and lines[1]["top"][0][1] >= lines[1]["top"][4][1]


def test_scoring_the_validation_split_gives_the_runs_validation_loss(small_text, tmp_path):
    config = tiny_config(small_text, **{**TWO_LAYERS, "cell": "lstm", "max_steps": 40, "eval_every": 40,
                                        "sample_every": 1000, "dropout": 0.0, "threads": 1})
    trainer = build_trainer(config, tmp_path / "run")
    evals = [e for e in trainer.run() if e.type == "eval"]
    trainer.close()
    model, vocab, meta = load_model(tmp_path / "run")  # the checkpoint the run wrote
    result = score_ids(model, vocab, trainer.dataset.val, streams=64, seq_len=max(config.seq_len, 128))
    assert result.nats_per_char == pytest.approx(meta["val_loss"], rel=1e-5)
    assert result.bits_per_char == pytest.approx(evals[-1].val_bpc, rel=1e-5)
    assert result.chars == len(trainer.dataset.val) - 1
    # read as one stream, every character sees all the text before it: close to the run's number, not equal
    one_stream = score_ids(model, vocab, trainer.dataset.val)
    assert one_stream.bits_per_char == pytest.approx(evals[-1].val_bpc, rel=0.05)


# -- ranking and saturation ---------------------------------------------------------------------------------------


def fake_recording(text, hidden, cell="lstm", memory_gates=None, gates=None, seed=0):
    """A recording of noise, two layers with h and c, in which tests plant units."""
    rng = np.random.default_rng(seed)
    states = [{kind: rng.normal(size=(len(text), hidden)).astype(np.float32) for kind in ("h", "c")}
              for _ in range(2)]
    return Recording(text, cell, states, gates or [{}, {}], memory_gates or {})


def test_a_unit_made_equal_to_a_feature_ranks_first_with_score_one():
    text = 'x = ("a" + f(b[1], "c")) # d\n' * 20
    depth = builtin_features()["depth"](text)
    quote = builtin_features()["quote"](text)
    rec = fake_recording(text, hidden=32)
    rec.states[1]["c"][:, 7] = depth * 0.3 - 1  # correlation is blind to scale and offset
    rec.states[0]["h"][:, 3] = -quote  # a unit that turns off inside strings
    ranked = rank_features(rec, pick_features(builtin_features(), ["depth", "quote"]), top=5)
    first = ranked["depth"][0]
    assert (first["layer"], first["unit"], first["kind"]) == (2, 7, "c")
    assert first["score"] == pytest.approx(1.0, abs=1e-4) and first["auc"] is None
    assert abs(ranked["depth"][1]["score"]) < 0.5 and len(ranked["depth"]) == 5
    assert ranked["quote"][0] == {"layer": 1, "unit": 3, "kind": "h", "score": pytest.approx(-1.0, abs=1e-4),
                                  "auc": 0.0}
    assert rank_units(rec, np.ones(len(text))) == []  # a feature that never changes: nothing to track


def test_auc_is_rank_based_with_ties_counted_half():
    scores = np.array([0.1, 0.4, 0.4, 0.8, 0.4, 0.9])
    labels = np.array([0, 0, 1, 1, 0, 1])
    pairs = [(p, n) for p in scores[labels == 1] for n in scores[labels == 0]]
    brute = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert roc_auc(scores, labels) == pytest.approx(brute)
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]
    assert roc_auc(scores, np.ones(6)) is None


def test_gate_saturation_fractions_and_memory_units():
    text = "abcdefghij"
    forget = np.full((10, 3), 0.5, dtype=np.float32)
    forget[:, 0] = 0.95  # always right-saturated: a memory unit
    forget[:6, 1] = 0.05  # left-saturated 60 % of the time
    forget[:4, 2] = 0.99  # right-saturated 40 %: not memory
    output = np.full((10, 3), 0.5, dtype=np.float32)
    rec = fake_recording(text, 3, gates=[{"forget": forget, "output": output}, {}], memory_gates={"forget": "right"})
    report = gate_saturation(rec)
    assert [(r["layer"], r["gate"]) for r in report] == [(1, "forget"), (1, "output")]
    assert report[0]["left"] == [0.0, 0.6, 0.0] and report[0]["right"] == [1.0, 0.0, 0.4]
    assert report[0]["keeps"] == "right" and report[0]["memory"] == [0]
    assert "memory" not in report[1] and report[1]["left"] == report[1]["right"] == [0.0, 0.0, 0.0]
    assert gate_saturation(fake_recording(text, 3)) == []  # a cell without gates


def test_saturation_of_a_real_lstm_recording_reports_every_layer_and_gate():
    vocab = Vocab.from_text("abcab cab")
    model = CharModel(len(vocab), get_registry().cell("lstm"), n_layer=2, n_hidden=8)
    report = gate_saturation(record(model, vocab, "abcab cab" * 5))
    assert [(r["layer"], r["gate"]) for r in report] == [(layer, gate) for layer in (1, 2)
                                                           for gate in ("input", "forget", "output")]
    assert all(len(r["left"]) == 8 and all(0 <= v <= 1 for v in r["left"] + r["right"]) for r in report)
    assert [r.get("keeps") for r in report] == [None, "right", None] * 2


# -- bad input: one line that says what to do ----------------------------------------------------------------------


def one_line(excinfo):
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


def test_bad_input_is_refused_in_one_line():
    vocab = Vocab.from_text("abc \n")
    model = CharModel(len(vocab), get_registry().cell("gru"), n_layer=1, n_hidden=8)
    for call in (score, record):
        with pytest.raises(UserError) as e:
            call(model, vocab, "")
        assert "empty" in one_line(e)
        with pytest.raises(UserError) as e:
            call(model, vocab, "abc xyz")
        assert "'xyz'" in one_line(e) and "--skip-unknown" in one_line(e)
        with pytest.raises(UserError) as e:
            call(model, vocab, "xyz", skip_unknown=True)
        assert "no character the model knows" in one_line(e)
    assert score(model, vocab, "abc xyz", skip_unknown=True).text == "abc "
    with pytest.raises(UserError) as e:
        score(model, vocab, "a")
    assert "at least 2 characters" in one_line(e)
    with pytest.raises(UserError) as e:
        pick_features(builtin_features(), ["quote", "nesting"])
    assert "'nesting'" in one_line(e) and "depth" in one_line(e)


@pytest.mark.parametrize("spec", ["3:1", "1:8", "1:-1", "1:q:2", "one:2", "1", "1:c:2:3"])
def test_a_unit_that_does_not_exist_is_refused(spec):
    rec = fake_recording("abcd", hidden=8)
    rec.states = [{"h": s["h"]} for s in rec.states]  # a cell without a memory cell
    with pytest.raises(UserError) as e:
        rec.parse_unit(spec)
    assert "unit" in one_line(e)


def test_units_are_parsed_and_written_the_same_way():
    rec = fake_recording("abcd", hidden=8)
    assert rec.parse_unit("2:7") == Unit(2, "h", 7) and str(Unit(2, "h", 7)) == "2:7"
    assert rec.parse_unit(" 1:c:0 ") == Unit(1, "c", 0) and str(Unit(1, "c", 0)) == "1:c:0"
    np.testing.assert_array_equal(rec.activation(Unit(1, "c", 0)), rec.states[0]["c"][:, 0])


def test_a_plugin_feature_ranks_like_a_builtin():
    vowels = Feature("vowel", "the character is a vowel", True,
                     lambda text: np.array([c in "aeiou" for c in text]))
    text = "banana split and apple pie " * 10
    rec = fake_recording(text, hidden=4)
    rec.states[0]["h"][:, 2] = vowels(text) * 2.0
    best = rank_features(rec, [vowels])["vowel"][0]
    assert (best["layer"], best["unit"], best["auc"]) == (1, 2, 1.0)


def test_in_steps_generators_let_other_work_run_between_chunks():
    text = "abc de " * 40
    vocab = Vocab.from_text(text)
    model = CharModel(len(vocab), get_registry().cell("lstm"), n_layer=2, n_hidden=8).train()
    for steps, whole in ((record_in_steps(model, vocab, text, chunk=64), record(model, vocab, text)),
                         (score_in_steps(model, vocab, vocab.encode(text), seq_len=50), score(model, vocab, text))):
        fractions = []
        while True:
            try:
                fractions.append(next(steps))
            except StopIteration as done:
                result = done.value
                break
            assert model.training and torch.is_grad_enabled()  # between chunks the caller's mode is back
        assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > 3
        if isinstance(result, Recording):
            np.testing.assert_allclose(result.states[1]["c"], whole.states[1]["c"], atol=1e-6)  # other chunks
        else:
            np.testing.assert_allclose(result.nats, whole.nats, rtol=1e-6)
    with pytest.raises(UserError):  # bad input fails at the call, not at the first step
        record_in_steps(model, vocab, "")


def test_a_score_from_a_recording_equals_a_score_of_the_text():
    text = "the cat sat on the mat; the rat ran\n" * 4
    vocab = Vocab.from_text(text)
    model = CharModel(len(vocab), get_registry().cell("lstm"), n_layer=2, n_hidden=16)
    direct, recorded = score(model, vocab, text), score_recording(model, vocab, record(model, vocab, text))
    np.testing.assert_allclose(recorded.nats, direct.nats, rtol=1e-5)
    np.testing.assert_array_equal(recorded.top_ids[1:, 0], direct.top_ids[1:, 0])
    np.testing.assert_allclose(recorded.top_probs, direct.top_probs, rtol=1e-4, atol=1e-7)
