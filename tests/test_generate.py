"""Fast generation (rnntui.core.decode, sampler, numpy_cells, torch_stepper): the fast paths write exactly the
characters of the step path for the same seed, the sampler draws from the right distributions, beam search is
exact where it can be checked by enumeration, and stop texts end streams without being shown."""

import itertools
import subprocess
import sys

import numpy as np
import pytest
import torch

from rnntui.core import numpy_cells
from rnntui.core.cells import GRU, LSTM, RNN
from rnntui.core.data import DataError, Streams, make_dataset
from rnntui.core.decode import BeamSearch, Sampling, StopText, parse_stops
from rnntui.core.model import CharModel
from rnntui.core.numpy_cells import NumpyStepper
from rnntui.core.sampler import NotFiniteError, Sampler, log_softmax, parse_temperatures
from rnntui.core.sampling import filter_logits
from rnntui.core.torch_stepper import TorchStepper, snapshot_stepper
from rnntui.plugins import get_registry

TEXT = "".join(
    f"{name}:\nthe {a} {b} jumps over the lazy {c}, and the {c} sleeps.\n\n"
    for name, a, b, c in itertools.islice(itertools.cycle(zip(
        ["ROMEO", "JULIET", "NURSE", "FRIAR"], ["quick", "brown", "sly", "old"], ["fox", "cat", "owl", "hen"],
        ["dog", "bird", "cow", "pig", "ram"])), 400))
BUILTINS = [("gru", {}), ("lstm", {}), ("rnn", {}), ("rnn", {"nonlinearity": "relu"})]
GALLERY = ["mgu", "lstm-peephole", "delta-rnn", "mingru", "indrnn"]
CASES = [(1.0, None, None), (0.6, 8, None), (1.3, None, 0.9)]  # temperature, top-k, top-p


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small models at batch 1: more threads only contend (a busy 2-core machine ran these 10x slower)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def train_briefly(cell, options=None, steps=40, seed=0):
    """A 2-layer model trained for a few steps on TEXT: peaked distributions, as a user's model has."""
    torch.manual_seed(seed)
    data = make_dataset(TEXT)
    cell_class = {"gru": GRU, "lstm": LSTM, "rnn": RNN}.get(cell) or get_registry().cell(cell)
    model = CharModel(len(data.vocab), cell_class, n_layer=2, n_hidden=32, n_embd=16, cell_options=options)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    streams = Streams(data.train, batch_size=16, seq_len=32)
    states = model.initial_state(16)
    for i in range(steps):
        x, y, reset = streams.batch(i)
        if reset:
            states = model.initial_state(16)
        logits, states = model(x, states)
        states = [tuple(s.detach() for s in state) for state in states]
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), data.vocab


def numpy_stepper(model, cell, options=None):
    return NumpyStepper({k: v.detach().numpy() for k, v in model.state_dict().items()}, cell, options)


def texts(stepper, vocab, temperatures, seeds, top_k=None, top_p=None, stops=(), prime="ROMEO:\n", length=300):
    sampling = Sampling(stepper, vocab, prime, temperatures, seeds, top_k, top_p, stops)
    out = [""] * len(seeds)
    for stream, piece in sampling.run(length):
        out[stream] += piece
    return out, sampling.results


@pytest.fixture(scope="module", params=BUILTINS + [(name, {}) for name in GALLERY],
                ids=lambda p: p[0] + "".join(f"-{v}" for v in p[1].values()))
def trained(request):
    cell, options = request.param
    model, vocab = train_briefly(cell, options)
    return cell, options, model, vocab


def fast_steppers(cell, options, model):
    fast = [TorchStepper(model)]
    if cell in numpy_cells.BUILTIN_CELLS:
        fast.append(numpy_stepper(model, cell, options))
    return fast


@pytest.mark.parametrize("temperature,top_k,top_p", CASES)
def test_fast_paths_write_the_step_paths_characters(trained, temperature, top_k, top_p):
    cell, options, model, vocab = trained
    reference = TorchStepper(model, reference=True)
    for seed in (1, 2, 3):  # one stream, as `rnntui sample` runs it
        want = texts(reference, vocab, [temperature], [seed], top_k, top_p)[0]
        for stepper in fast_steppers(cell, options, model):
            assert texts(stepper, vocab, [temperature], [seed], top_k, top_p)[0] == want, type(stepper).__name__
    batch, batch_results = texts(reference, vocab, [temperature] * 3, [1, 2, 3], top_k, top_p)
    for stepper in fast_steppers(cell, options, model):  # three streams in one batch
        got, results = texts(stepper, vocab, [temperature] * 3, [1, 2, 3], top_k, top_p)
        assert got == batch, type(stepper).__name__
        for r, want in zip(results, batch_results):
            assert r.logprob == pytest.approx(want.logprob, rel=1e-5)
    assert len(set(batch)) == 3 and all(len(text) == 300 for text in batch)  # the seeds matter


def test_numpy_logits_match_torch_for_every_builtin_shape(monkeypatch):
    for (cell, options), table in itertools.product(BUILTINS, (True, False)):
        if not table:
            monkeypatch.setattr(numpy_cells, "TABLE_LIMIT", 0)  # a huge vocabulary: project the embedding per step
        torch.manual_seed(1)
        model = CharModel(11, {"gru": GRU, "lstm": LSTM, "rnn": RNN}[cell], n_layer=3, n_hidden=20, n_embd=7,
                          cell_options=options).eval()
        fast, ref = numpy_stepper(model, cell, options), TorchStepper(model, reference=True)
        assert (fast.table is not None) == table
        prompt = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.int64)
        np.testing.assert_allclose(fast.prime(prompt), ref.prime(prompt), atol=2e-6)
        for stepper in (fast, ref):
            stepper.select(np.array([0, 0, 0]))
        for ids in ([5, 3, 5], [0, 10, 2], [7, 7, 1]):
            ids = np.array(ids, dtype=np.int64)
            np.testing.assert_allclose(fast.feed(ids), ref.feed(ids), atol=2e-6)
        monkeypatch.undo()


def test_a_snapshot_of_a_live_model_keeps_generating_what_the_weights_said_when_it_was_taken():
    for cell, options in (("gru", {}), ("rnn", {"nonlinearity": "relu"}), ("mgu", {})):
        model, vocab = train_briefly(cell, options, steps=10)
        before = texts(TorchStepper(model, reference=True), vocab, [1.0], [5])[0]
        snapshot = snapshot_stepper(model)
        assert isinstance(snapshot, NumpyStepper) == (cell in numpy_cells.BUILTIN_CELLS)
        assert texts(snapshot, vocab, [1.0], [5])[0] == before
        if isinstance(snapshot, NumpyStepper):
            with torch.no_grad():  # training moves on; the snapshot does not
                for p in model.parameters():
                    p.mul_(0.5)
            assert texts(snapshot, vocab, [1.0], [5])[0] == before
            assert texts(TorchStepper(model, reference=True), vocab, [1.0], [5])[0] != before


def test_beam_of_one_is_greedy(trained):
    cell, options, model, vocab = trained
    for stepper in [TorchStepper(model, reference=True)] + fast_steppers(cell, options, model):
        greedy, results = texts(stepper, vocab, [1e-4], [0], length=120)
        search = BeamSearch(stepper, vocab, "ROMEO:\n", 1)
        assert "".join(search.run(120)) == greedy[0] == search.results[0].text
        assert search.results[0].logprob == results[0].logprob  # the same numbers summed in the same order


def test_beam_results_are_deterministic_and_in_descending_log_probability():
    model, vocab = train_briefly("gru")
    stepper = numpy_stepper(model, "gru")
    runs = []
    for _ in range(2):
        search = BeamSearch(stepper, vocab, "JULIET:\n", 5)
        streamed = "".join(search.run(80))
        runs.append([(r.text, r.logprob) for r in search.results])
        assert streamed == search.results[0].text
    assert runs[0] == runs[1]
    scores = [logprob for _, logprob in runs[0]]
    assert scores == sorted(scores, reverse=True) and len({text for text, _ in runs[0]}) == 5
    # each result's log-probability is its text's, recomputed by the step path
    ref = TorchStepper(model, reference=True)
    for text, logprob in runs[0]:
        logits, total = ref.prime(vocab.encode("JULIET:\n").astype(np.int64)), 0.0
        for ch in text:
            i = vocab.chars.index(ch)
            total += float(log_softmax(logits, np.empty((1, len(vocab))), np.empty((1, len(vocab))))[0, i])
            logits = ref.feed(np.array([i]))
        assert total == pytest.approx(logprob, rel=1e-5)


def test_beam_as_wide_as_the_vocabulary_finds_the_exact_best_two_character_continuations():
    model, vocab = train_briefly("lstm", steps=30)
    ref = TorchStepper(model, reference=True)
    V = len(vocab)
    first = log_softmax(ref.prime(vocab.encode("NURSE").astype(np.int64)), np.empty((1, V)), np.empty((1, V)))[0]
    totals = {}
    for a in range(V):
        ref.prime(vocab.encode("NURSE").astype(np.int64))
        second = log_softmax(ref.feed(np.array([a])), np.empty((1, V)), np.empty((1, V)))[0]
        for b in range(V):
            totals[vocab.chars[a] + vocab.chars[b]] = first[a] + second[b]
    exact = sorted(totals.items(), key=lambda kv: -kv[1])[:V]
    search = BeamSearch(numpy_stepper(model, "lstm"), vocab, "NURSE", V)
    list(search.run(2))
    assert [r.text for r in search.results] == [text for text, _ in exact]
    np.testing.assert_allclose([r.logprob for r in search.results], [s for _, s in exact], rtol=1e-5)


def test_stop_texts_end_streams_and_are_not_shown():
    model, vocab = train_briefly("gru")
    stepper = numpy_stepper(model, "gru")
    out, results = texts(stepper, vocab, [1.0] * 4, [1, 2, 3, 4], stops=["\n\n"], length=400)
    for text, r in zip(out, results):
        assert r.stop == "\n\n" and "\n\n" not in text and r.n_chars == len(text) + 2
    full, _ = texts(stepper, vocab, [1.0] * 4, [1, 2, 3, 4], length=400)
    assert all(f.startswith(t + "\n\n") for f, t in zip(full, out))  # the same draws up to the stop
    # beam search: finished beams drop their stop text; length normalisation favours the longer ones
    search = BeamSearch(stepper, vocab, "ROMEO:\n", 3, stops=["\n"])
    streamed = "".join(search.run(60))
    assert streamed == search.results[0].text and all("\n" not in r.text for r in search.results)
    normalised = BeamSearch(stepper, vocab, "ROMEO:\n", 3, stops=["\n"], length_norm=1.0)
    list(normalised.run(60))
    assert [r.mean_logprob for r in normalised.results] == sorted((r.mean_logprob for r in normalised.results),
                                                                  reverse=True)


def test_stop_text_holds_back_only_what_may_start_a_stop():
    watch = StopText(["\n\n", "END"])
    pieces = [watch.push(ch) for ch in "ab\ncE\nEN"]
    assert pieces == [("a", None), ("b", None), ("", None), ("\nc", None), ("", None), ("E", None), ("\n", None),
                      ("", None)]
    assert watch.push("D") == ("", "END")
    assert StopText(["xy"]).flush() == ""
    assert parse_stops(["\\n\\n", "a\\tb", "c\\\\n"]) == ["\n\n", "a\tb", "c\\n"]
    with pytest.raises(DataError, match="non-empty"):
        parse_stops([""])


LOGITS = np.array([[2.0, 1.0, 0.5, 0.0, -1.0]], dtype=np.float32)


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, None, None), (0.7, 3, None), (1.3, None, 0.8),
                                                     (0.9, 4, 0.7)])
@pytest.mark.parametrize("batch", [1, 3])
def test_sampler_frequencies_follow_the_filtered_distribution(temperature, top_k, top_p, batch):
    expected = filter_logits(torch.from_numpy(LOGITS), temperature, top_k, top_p).softmax(-1)[0].numpy()
    sampler = Sampler(5, [temperature] * batch, list(range(batch)), top_k, top_p)
    logits = np.repeat(LOGITS, batch, axis=0)
    n = 12000
    counts = np.zeros((batch, 5))
    for _ in range(n):
        ids = sampler(logits)
        counts[np.arange(batch), ids] += 1
        np.testing.assert_allclose(sampler.logprob, np.log(torch.from_numpy(LOGITS).softmax(-1)[0].numpy())[ids],
                                   rtol=1e-6)
    np.testing.assert_allclose(counts / n, np.repeat(expected[None], batch, axis=0), atol=0.02)
    assert (counts[:, expected == 0] == 0).all()


def test_sampler_streams_are_independent_of_their_neighbours():
    mixed = Sampler(5, [1e-4, 1.0, 0.5], [7, 8, 9])
    alone = Sampler(5, [0.5], [9])
    logits = np.repeat(LOGITS, 3, axis=0)
    for _ in range(300):  # the draw block refills along the way
        ids = mixed(logits)
        assert ids[0] == 0  # greedy
        assert ids[2] == alone(LOGITS)[0]


@pytest.mark.parametrize("batch", [1, 2])
def test_a_diverged_model_is_reported_not_sampled(batch):
    for bad in (np.nan, np.inf, -np.inf):
        logits = np.repeat(LOGITS, batch, axis=0)
        logits[-1, :] = bad  # a whole row of -inf is as useless as a NaN
        if bad != -np.inf:
            logits[-1, 1:] = 0.0
        with pytest.raises(NotFiniteError, match="diverged"):
            Sampler(5, [1.0] * batch, list(range(batch)))(logits)
        with pytest.raises(NotFiniteError):
            log_softmax(logits, np.empty((batch, 5)), np.empty((batch, 5)))
    logits = np.repeat(LOGITS, batch, axis=0)
    logits[:, 0] = -np.inf  # a symbol the model rules out is fine
    assert Sampler(5, [1.0] * batch, list(range(batch)))(logits).min() > 0


@pytest.mark.parametrize("text,match", [("", "at least one"), (",", "at least one"), ("0.5,abc", "numbers"),
                                        ("0.5,0", "positive"), ("-1", "positive"), ("nan", "positive")])
def test_bad_temperature_lists(text, match):
    with pytest.raises(DataError, match=match):
        parse_temperatures(text)


def test_the_numpy_path_never_imports_torch(tmp_path):
    from rnntui.core import checkpoint

    model, vocab = train_briefly("lstm", steps=5)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    config = {"cell": "lstm", "n_layer": 2, "n_hidden": 32, "n_embd": 16, "cell_options": {}}
    checkpoint.save(tmp_path, 5, tensors, {"config": config, "vocab": list(vocab.chars)})
    probe = (
        "import sys; from pathlib import Path; from rnntui.core.decode import Sampling\n"
        "from rnntui.inference import open_stepper\n"
        f"stepper, vocab, meta = open_stepper(Path({str(tmp_path)!r}))\n"
        "out = ''.join(t for _, t in Sampling(stepper, vocab, 'ROMEO:', [0.8], [4]).run(200))\n"
        "print(type(stepper).__name__, 'torch' in sys.modules); print(out, end='')"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    first, text = result.stdout.split("\n", 1)
    assert first == "NumpyStepper False"
    assert text == texts(TorchStepper(model, reference=True), vocab, [0.8], [4], prime="ROMEO:", length=200)[0][0]
