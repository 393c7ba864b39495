"""Evaluations beside the validation loss: the model's predictions over a text (for probe metrics and the n-gram
oracle), and the free-running evaluation that measures exposure bias.

Each runs in eval mode and full precision without gradients, draws its random numbers from its own generator,
and puts the model back in the mode it found it in.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from rnntui.errors import UserError
from rnntui.core.model import CharModel
from rnntui.core.scheduled import FEEDS

CHUNK = 512  # characters per forward pass; the state is carried from one to the next


class _Eval:
    """Eval mode and no gradients inside, the model's own mode restored after."""

    def __init__(self, model: CharModel):
        self.model, self.mode = model, model.training
        self.grad = torch.no_grad()

    def __enter__(self):
        self.grad.__enter__()
        self.model.eval()

    def __exit__(self, *exc):
        self.model.train(self.mode)
        self.grad.__exit__(*exc)


def _stream(model: CharModel, ids: np.ndarray, chunk: int) -> Iterator[torch.Tensor]:
    """Logits (t, V) for ids[1:], one stream through the text, ``chunk`` characters at a time."""
    device = model.head.weight.device
    states = model.initial_state(1)
    for start in range(0, len(ids) - 1, chunk):
        x = torch.from_numpy(np.asarray(ids[start:min(start + chunk, len(ids) - 1)], dtype=np.int64)).to(device)
        logits, states = model(x[None], states)
        yield logits[0].float()


def log_probs(model: CharModel, ids: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
    """(len(ids) - 1, V) float32: row t holds the model's log-probabilities for ids[t + 1] given ids[:t + 1], the
    state carried through the whole text (what a corpus's ``metrics`` receives)."""
    with _Eval(model):
        parts = [F.log_softmax(logits, dim=-1).cpu().numpy() for logits in _stream(model, ids, chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, model.vocab_size), np.float32)


def top1(model: CharModel, ids: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
    """The model's most probable id for each of ids[1:] (its guesses for the n-gram oracle)."""
    with _Eval(model):
        parts = [logits.argmax(-1).cpu().numpy() for logits in _stream(model, ids, chunk)]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def free_running(model: CharModel, data: np.ndarray, free_chars: int = 100, score_chars: int = 100,
                 streams: int = 32, seed: int = 0, feed: str = "sample") -> dict[str, float]:
    """The exposure-bias gap. ``streams`` places in ``data`` (evenly spaced); at each, the model reads
    ``free_chars`` characters and is then scored, teacher-forced, on the next ``score_chars`` true characters.
    Teacher-forced, what it reads is the true text before that place; free-running, it reads the true character
    ``free_chars`` before and then its own guesses (``feed``: sampled from its predictions, or their argmax).
    Same positions, same targets: the gap is the price of having conditioned on its own text.

    Returns ``{"free_running_loss", "teacher_forced_loss", "gap"}`` in nats per character."""
    if feed not in FEEDS:
        raise UserError(f"feed must be one of {', '.join(FEEDS)} (got {feed!r})")
    if free_chars < 1 or score_chars < 1 or streams < 1:
        raise UserError("free-running evaluation needs free_chars, score_chars and streams of at least 1")
    if len(data) < free_chars + score_chars:
        raise UserError(f"the text has {len(data)} characters, fewer than free-running evaluation reads and "
                        f"scores ({free_chars} + {score_chars}); use a longer validation text")
    device = model.head.weight.device
    last = len(data) - score_chars
    starts = np.unique(np.linspace(free_chars, last, streams).round().astype(np.int64))
    windows = starts[:, None] + np.arange(-free_chars, score_chars)[None, :]
    ids = torch.from_numpy(np.asarray(data)[windows].astype(np.int64)).to(device)
    condition, scored = ids[:, :free_chars], ids[:, free_chars:]
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    with _Eval(model):
        teacher_logits, teacher_states = model(condition, model.initial_state(len(starts)))
        free_logits, free_states = _free_run(model, condition[:, 0], free_chars, generator, feed)
        losses = {}
        for name, last_logits, states in (("teacher_forced_loss", teacher_logits[:, -1], teacher_states),
                                          ("free_running_loss", free_logits, free_states)):
            logits, _ = model(scored[:, :-1], states)
            logits = torch.cat([last_logits[:, None], logits], dim=1).float()
            losses[name] = F.cross_entropy(logits.flatten(0, 1), scored.flatten()).item()
    return {**losses, "gap": losses["free_running_loss"] - losses["teacher_forced_loss"]}


def _free_run(model, first, steps, generator, feed):
    """Read ``first``, then ``steps`` - 1 of the model's own guesses; the logits after the last and the states."""
    states = model.initial_state(len(first))
    inputs = first
    for step in range(steps):
        logits, states = model.step(inputs, states)
        if step < steps - 1:
            if feed == "argmax":
                inputs = logits.argmax(-1)
            else:
                inputs = torch.multinomial(logits.float().softmax(-1), 1, generator=generator)[:, 0]
    return logits, states
