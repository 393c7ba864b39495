"""Looking inside a trained model over a text: what each character costs it and what it guessed (``score``), and
every layer's hidden state, memory cell and gates at every character (``record``). Ranking units against text
features and gate saturation, computed from a recording, are in rnntui.core.units.

Nothing here changes the model: it runs in eval mode without gradients, puts the mode back, and writes no file.
Karpathy, Johnson & Fei-Fei 2015 ("Visualizing and Understanding Recurrent Networks") is the model for the views.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch

from rnntui.core.data import DataError, Vocab
from rnntui.core.model import CharModel
from rnntui.core.decode import prepare_prompt

TOP = 5  # guesses kept per character
SEQ_LEN = 256  # characters per forward pass when scoring (the state is carried between them)
CHUNK = 2048  # characters per pass when recording: bounds the memory of one pass, not the result's


@contextmanager
def reading(model: CharModel):
    """Eval mode (no dropout) and no gradients for the block, then the model's own mode back."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model.head.weight.device
    finally:
        model.train(was_training)


def encode(vocab: Vocab, text: str, skip_unknown: bool = False, what: str = "the text") -> tuple[str, np.ndarray]:
    """The text's symbol ids, under the sampling policy for characters the model never saw (refuse, naming them,
    or drop them). Returns the text as it will be read and its ids."""
    if not text:
        raise DataError(f"{what} is empty; give some text to read")
    text, _ = prepare_prompt(vocab, text, skip_unknown, what)
    if not text:
        raise DataError(f"{what} has no character the model knows")
    return text, vocab.encode(text)


# -- per-character surprisal ------------------------------------------------------------------------------------------


@dataclass
class Score:
    """The model's loss at every character of ``text`` and its likeliest guesses there (before reading it)."""

    text: str
    vocab: Vocab
    nats: np.ndarray  # (len(text),) float64; NaN at the first character, which nothing predicts
    top_ids: np.ndarray  # (len(text), k) the guesses, likeliest first
    top_probs: np.ndarray  # (len(text), k)

    @property
    def chars(self) -> int:
        return int(np.isfinite(self.nats).sum())

    @property
    def nats_per_char(self) -> float:
        return float(np.nansum(self.nats) / self.chars)

    @property
    def bits_per_char(self) -> float:
        return self.nats_per_char / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats_per_char)

    @property
    def bits(self) -> np.ndarray:
        return self.nats / math.log(2)

    def totals(self) -> dict[str, Any]:
        return {"bits_per_char": self.bits_per_char, "nats_per_char": self.nats_per_char,
                "perplexity": self.perplexity, "chars": self.chars}

    def guesses(self, t: int) -> list[tuple[str, float]]:
        return [(self.vocab.chars[int(i)], float(p)) for i, p in zip(self.top_ids[t], self.top_probs[t])]

    def per_char(self) -> Iterator[dict[str, Any]]:
        """One JSON-ready record per character: ``char``, ``bits`` (None for the first), ``top`` [[char, prob]]."""
        bits = self.bits
        for t, char in enumerate(self.text):
            scored = bool(np.isfinite(bits[t]))
            yield {"char": char, "bits": float(bits[t]) if scored else None,
                   "top": [[c, p] for c, p in self.guesses(t)] if scored else []}


def windows(n_targets: int, streams: int, seq_len: int) -> Iterator[tuple[np.ndarray, bool]]:
    """The input positions (B, t) of each forward pass and whether it starts fresh streams: ``streams``
    contiguous stretches side by side, then one stream for the remainder. This is the layout of
    rnntui.core.data.eval_chunks, so with its defaults (64 streams, Trainer.evaluate's sequence length) a score
    of the validation split is the run's validation loss; with one stream every character sees all before it."""
    n_streams = max(1, min(streams, n_targets // seq_len or 1))
    stream_len = n_targets // n_streams
    starts = np.arange(n_streams)[:, None] * stream_len
    for t0 in range(0, stream_len, seq_len):
        yield starts + np.arange(t0, min(t0 + seq_len, stream_len))[None, :], t0 == 0
    rest = n_targets - n_streams * stream_len
    if rest:
        yield np.arange(n_targets - rest, n_targets)[None, :], True


def score(model: CharModel, vocab: Vocab, text: str, skip_unknown: bool = False, **options: Any) -> Score:
    """Score a text (see ``score_ids`` for the options)."""
    text, ids = encode(vocab, text, skip_unknown)
    return score_ids(model, vocab, ids, text, **options)


def score_ids(model: CharModel, vocab: Vocab, ids: np.ndarray, text: str | None = None, **options: Any) -> Score:
    """Score symbol ids (a run's validation split); see ``score_in_steps``."""
    return run_through(score_in_steps(model, vocab, ids, text, **options))


def score_in_steps(model: CharModel, vocab: Vocab, ids: np.ndarray, text: str | None = None, streams: int = 1,
                   seq_len: int = SEQ_LEN, top: int = TOP, amp_dtype: torch.dtype | None = None
                   ) -> Generator[float, None, Score]:
    """Every character after the first, predicted from those before it through the model's whole-sequence
    path, ``seq_len`` at a time with the state carried; ``streams`` > 1 reads that many stretches side by side,
    each from a fresh state, as Trainer.evaluate does; ``amp_dtype`` runs under autocast, as a run with
    --precision bf16 evaluates. A generator that yields the fraction done after each pass and returns the Score,
    so a caller can interleave it with other work; bad input raises at the call."""
    if len(ids) < 2:
        raise DataError("the text needs at least 2 characters: the first is only read, the others are scored")
    n, k = len(ids), min(top, len(vocab))
    nats = np.full(n, np.nan)
    top_ids = np.zeros((n, k), dtype=np.int64)
    top_probs = np.zeros((n, k), dtype=np.float32)

    def passes():
        states = None
        for positions, fresh in windows(n - 1, streams, seq_len):
            with reading(model) as device:
                where = torch.from_numpy(positions).to(device)
                if fresh or states is None:
                    states = model.initial_state(where.shape[0])
                with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    logits, states = model(torch.as_tensor(ids[positions], dtype=torch.long, device=device), states)
                log_probs = logits.float().log_softmax(-1)
                targets = torch.as_tensor(ids[positions + 1], dtype=torch.long, device=device)
                nats[positions + 1] = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).double().cpu().numpy()
                best = log_probs.topk(k, dim=-1)
                top_ids[positions + 1] = best.indices.cpu().numpy()
                top_probs[positions + 1] = best.values.exp().cpu().numpy()
            yield float(positions[-1, -1] + 1) / (n - 1)
        return Score(vocab.decode(ids) if text is None else text, vocab, nats, top_ids, top_probs)

    return passes()


def run_through(steps: Generator[float, None, Any]) -> Any:
    """Drive a ``*_in_steps`` generator to its end and return its result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


# -- hidden states, memory cells and gates ----------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Unit:
    """One unit of the model: ``layer`` counts from 1, ``kind`` is the state it belongs to ("h": the layer's
    output; "c": an LSTM's memory cell), ``index`` counts from 0. Written 2:17 (h) or 2:c:17."""

    layer: int
    kind: str
    index: int

    def __str__(self) -> str:
        return f"{self.layer}:{self.index}" if self.kind == "h" else f"{self.layer}:{self.kind}:{self.index}"


@dataclass
class Recording:
    """Every layer's states and gates at every character of ``text``: the values after reading character t
    (the gates: those used while reading it). Arrays are (len(text), hidden) float32."""

    text: str
    cell: str
    states: list[dict[str, np.ndarray]]  # per layer: {"h": ..., "c": ...}
    gates: list[dict[str, np.ndarray]]  # per layer: {"input": ..., "forget": ...}; {} for a cell without gates
    memory_gates: dict[str, str] = field(default_factory=dict)  # gate -> the side on which it keeps the state

    @property
    def n_layer(self) -> int:
        return len(self.states)

    @property
    def hidden_size(self) -> int:
        return self.states[0]["h"].shape[1]

    def activation(self, unit: Unit) -> np.ndarray:
        return self.states[unit.layer - 1][unit.kind][:, unit.index]

    @cached_property
    def matrix(self) -> tuple[np.ndarray, list[Unit]]:
        """All units side by side, (len(text), units), and which unit each column is."""
        blocks, units = [], []
        for layer, kinds in enumerate(self.states, 1):
            for kind, values in kinds.items():
                blocks.append(values)
                units += [Unit(layer, kind, i) for i in range(values.shape[1])]
        return np.concatenate(blocks, axis=1), units

    @cached_property
    def centred(self) -> np.ndarray:
        """``matrix`` centred and scaled column by column (rnntui.core.units correlates features with it)."""
        return centred(self.matrix[0])

    def parse_unit(self, spec: str) -> Unit:
        """LAYER:INDEX (a hidden unit) or LAYER:KIND:INDEX (e.g. 2:c:17, a memory cell) -> the Unit, checked."""
        parts = spec.strip().split(":")
        kinds = sorted(self.states[0])
        try:
            layer, index = int(parts[0]), int(parts[-1])
            kind = parts[1] if len(parts) == 3 else "h"
            if len(parts) not in (2, 3):
                raise ValueError
        except ValueError:
            raise DataError(f"unit {spec!r} is not LAYER:INDEX (e.g. 1:17) or LAYER:KIND:INDEX (e.g. 2:c:17)") from None
        if not (1 <= layer <= self.n_layer and 0 <= index < self.hidden_size and kind in kinds):
            raise DataError(f"the model has no unit {spec}: layers 1-{self.n_layer}, units 0-{self.hidden_size - 1}"
                            f", kinds {', '.join(kinds)} (h: hidden state)")
        return Unit(layer, kind, index)


def centred(values: np.ndarray) -> np.ndarray:
    """Columns minus their mean, scaled to unit length (constant ones stay 0): the product of two is their
    Pearson correlation."""
    values = values - values.mean(axis=0)
    norm = np.sqrt((values * values).sum(axis=0))
    return np.divide(values, norm, out=np.zeros_like(values), where=norm > 0)


def record(model: CharModel, vocab: Vocab, text: str, skip_unknown: bool = False, chunk: int = CHUNK) -> Recording:
    """Run the text through the model and keep every layer's states and gates at every character."""
    return run_through(record_in_steps(model, vocab, text, skip_unknown, chunk))


def record_in_steps(model: CharModel, vocab: Vocab, text: str, skip_unknown: bool = False, chunk: int = CHUNK
                    ) -> Generator[float, None, Recording]:
    """``record`` as a generator that yields the fraction done after each ``chunk`` characters and returns the
    Recording (bad input raises at the call). Eval mode and no-gradients hold only inside each chunk, so other
    work may run between them; the weights must not change meanwhile (record a copy of a model in training)."""
    text, ids = encode(vocab, text, skip_unknown)
    n = len(ids)
    states_out: list[dict[str, np.ndarray]] = [{} for _ in model.cells]
    gates_out: list[dict[str, np.ndarray]] = [{} for _ in model.cells]

    def chunks():
        states = None
        for t0 in range(0, n, chunk):
            with reading(model) as device:
                states = states or model.initial_state(1)
                x = model.embed(torch.as_tensor(ids[t0 : t0 + chunk], dtype=torch.long, device=device)[None])
                for i, cell in enumerate(model.cells):
                    x, states[i], kinds, gates = record_layer(cell, x, states[i])
                    for out, values in ((states_out[i], kinds), (gates_out[i], gates)):
                        for name, value in values.items():
                            if name not in out:  # filled chunk by chunk: no copy of the whole at the end
                                out[name] = np.empty((n, value.shape[1]), dtype=np.float32)
                            out[name][t0 : t0 + value.shape[0]] = value.cpu().numpy()
            yield min(n, t0 + chunk) / n
        cell = model.cells[0]
        return Recording(text, getattr(cell, "name", type(cell).__name__), states_out, gates_out,
                         dict(getattr(cell, "memory_gates", {}) or {}))

    return chunks()


def score_recording(model: CharModel, vocab: Vocab, recording: Recording, top: int = TOP) -> Score:
    """The Score of a recorded text without a second pass through the cells: the head applied to the last
    layer's recorded outputs (the same numbers as ``score`` of the text, for the app's view of both)."""
    text = recording.text
    if len(text) < 2:
        raise DataError("the text needs at least 2 characters: the first is only read, the others are scored")
    k = min(top, len(vocab))
    with reading(model) as device:
        h = torch.from_numpy(recording.states[-1]["h"][:-1]).to(device=device, dtype=model.head.weight.dtype)
        log_probs = model.head(h).float().log_softmax(-1)
        targets = torch.as_tensor(vocab.encode(text[1:]), dtype=torch.long, device=device)
        best = log_probs.topk(k, dim=-1)
        nats = np.full(len(text), np.nan)
        nats[1:] = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).double().cpu().numpy()
        top_ids = np.zeros((len(text), k), dtype=np.int64)
        top_probs = np.zeros((len(text), k), dtype=np.float32)
        top_ids[1:], top_probs[1:] = best.indices.cpu().numpy(), best.values.exp().cpu().numpy()
    return Score(text, vocab, nats, top_ids, top_probs)


def record_layer(cell, x: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple, dict, dict]:
    """One layer over a stretch: x (1, T, input) -> (h (1, T, hidden), final state, {kind: (T, hidden)},
    {gate: (T, hidden)}), by the cell's fastest path that gives the states at every step: ``inspect_sequence``;
    ``forward_sequence`` when the state is just the output; else the step loop. The gates at t depend only on
    x_t and the state at t-1, so they are computed for every step at once."""
    hidden, length = cell.hidden_size, x.shape[1]
    h = gates = None
    if getattr(cell, "inspect_sequence", None) is not None:
        h, sequence, gates = cell.inspect_sequence(x, state)
        gates = {name: value[0] for name, value in gates.items()}
    elif len(state) == 1 and getattr(cell, "forward_sequence", None) is not None:
        h, final = cell.forward_sequence(x, state)
        sequence = (h,)
        if not torch.equal(final[0], h[:, -1]):  # a state that is not the output: only the steps show it
            h = None
    if h is None:
        h, sequence = step_states(cell, x, state)
    if gates is None:
        gates = {}
        if getattr(cell, "gates", None) is not None:
            before = tuple(torch.cat([s0.unsqueeze(1), s[:, :-1]], dim=1)[0] for s0, s in zip(state, sequence))
            gates = cell.gates(cell.project_input(x)[0], before)
    for name, value in gates.items():
        if tuple(value.shape) != (length, hidden):
            raise ValueError(f"cell {cell.name!r}: its gate {name!r} has shape {tuple(value.shape[-2:])}; "
                             f"expected (batch, hidden_size) = {(length, hidden)}")
    kinds = {"h": h[0]}
    for name, values in zip(getattr(cell, "state_names", ("h",))[1:], sequence[1:]):
        if values.shape[2:] == (hidden,):
            kinds[name] = values[0]
    return h, tuple(s[:, -1] for s in sequence), kinds, gates


def step_states(cell, x: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
    """The step loop, keeping the whole state at every step: (h (B, T, hidden), states each (B, T, ...))."""
    outputs, states = [], []
    for x_t in cell.project_input(x).unbind(1):
        h, state = cell.step(x_t, state)
        outputs.append(h)
        states.append(state)
    return torch.stack(outputs, dim=1), tuple(torch.stack(parts, dim=1) for parts in zip(*states))
