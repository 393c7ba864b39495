"""Generation: prime the model with text, then draw one character at a time (temperature, top-k, top-p)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from torch import Tensor

from rnntui.core.data import Vocab
from rnntui.core.model import CharModel
from rnntui.core.sampler import GREEDY_BELOW, check_options


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    check_options([temperature], top_k, top_p)


def filter_logits(logits: Tensor, temperature: float, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """(B, V) logits -> logits with temperature applied and everything outside top-k / top-p set to -inf."""
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        sorted_drop = cumulative - sorted_logits.softmax(-1) >= top_p  # keep the smallest prefix reaching mass p
        drop = torch.zeros_like(sorted_drop).scatter(-1, order, sorted_drop)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


@torch.no_grad()
def generate(
    model: CharModel,
    vocab: Vocab,
    prime: str = "",
    length: int | None = 200,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
) -> Iterator[str]:
    """Yield characters one at a time (``length=None``: forever). Memory stays constant: only the state is kept.

    The prime must hold only known characters (see ``rnntui.core.decode.prepare_prompt``); an empty prime starts after a newline
    (or a random symbol if the corpus has none).
    """
    check_sampling(temperature, top_k, top_p)
    was_training = model.training
    model.eval()
    device = model.head.weight.device
    generator = torch.Generator(device=device)
    generator.manual_seed(seed if seed is not None else int.from_bytes(os.urandom(7)))  # leaves the global RNG alone
    try:
        states = model.initial_state(1)
        if prime:
            ids = torch.from_numpy(vocab.encode(prime).astype("int64")).to(device)
            logits, states = model.forward(ids[None, :], states)
            logits = logits[:, -1]
        elif "\n" in vocab.chars:
            logits, states = model.step(torch.tensor([vocab.chars.index("\n")], device=device), states)
        else:
            logits = torch.zeros(1, len(vocab), device=device)
        produced = 0
        while length is None or produced < length:
            if temperature < GREEDY_BELOW:
                next_id = logits.argmax(-1)
            else:
                probs = filter_logits(logits, temperature, top_k, top_p).softmax(-1)
                next_id = torch.multinomial(probs, 1, generator=generator)[:, 0]
            yield vocab.chars[int(next_id)]
            produced += 1
            logits, states = model.step(next_id, states)
    finally:
        model.train(was_training)
