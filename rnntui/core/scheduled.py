"""Scheduled sampling (Bengio, Vinyals, Jaitly & Shazeer 2015, "Scheduled Sampling for Sequence Prediction with
Recurrent Neural Networks", section 2.4): train on the model's own predictions part of the time.

At every position of a truncated-BPTT window but the first, a coin decides the input: with probability eps the
true previous character (teacher forcing), otherwise a character sampled from the model's own prediction at the
previous position (no gradient flows through the sampling, as in the paper's experiments). The first position
of a window always reads the true character (the previous window's prediction is not kept). eps decays over
training by a schedule; eps = 1 is ordinary teacher forcing, and then the plain forward pass runs, bit for bit.

Schedules (``--scheduled-sampling SCHEDULE``; i is the optimizer step, counting from 0):

    constant:P                   eps = P
    linear:START,END,STEPS       eps = max(END, START - (START - END) i / STEPS)   the paper's max(eps, k - c i)
    exponential:K[,MIN]          eps = max(MIN, K ** i), 0 < K <= 1                 the paper's k^i
    inverse-sigmoid:K[,MIN]      eps = max(MIN, K / (K + exp(i / K))), K >= 1      the paper's k / (k + exp(i/k))

e.g. ``linear:1.0,0.5,2000`` (from all true inputs to half in 2,000 steps), ``inverse-sigmoid:500``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from rnntui.errors import UserError
from rnntui.core.model import CharModel, States

# name -> (parameter names, how many may be left out, an example)
SCHEDULES = {
    "constant": (("P",), 0, "constant:0.75"),
    "linear": (("START", "END", "STEPS"), 0, "linear:1.0,0.5,2000"),
    "exponential": (("K", "MIN"), 1, "exponential:0.9995"),
    "inverse-sigmoid": (("K", "MIN"), 1, "inverse-sigmoid:500"),
}
FEEDS = ("sample", "argmax")


class ScheduleError(UserError):
    pass


def check_probability(value: float, what: str = "the teacher-forcing probability") -> float:
    if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        raise ScheduleError(f"{what} must be in [0, 1] (got {value})")
    return float(value)


@dataclass(frozen=True)
class Schedule:
    """The teacher-forcing probability as a function of the optimizer step: ``schedule(step)``."""

    name: str
    params: tuple[float, ...]

    def __call__(self, step: int) -> float:
        p = self.params
        if self.name == "constant":
            return p[0]
        if self.name == "linear":
            start, end, steps = p
            return max(end, start - (start - end) * step / steps)
        floor = p[1] if len(p) > 1 else 0.0
        if self.name == "exponential":
            return max(floor, p[0] ** step)
        k = p[0]  # inverse sigmoid; exp overflows past i / k ~ 709, where eps is 0 anyway
        return max(floor, k / (k + math.exp(step / k)) if step / k < 700 else 0.0)

    def __str__(self) -> str:
        return f"{self.name}:" + ",".join(f"{v:g}" for v in self.params)


def parse_schedule(text: str) -> Schedule:
    """``NAME:ARG,ARG,...`` (see the module docstring) -> Schedule, or a ScheduleError saying what to write."""
    name, _, args = str(text).strip().partition(":")
    name = name.strip().lower().replace("_", "-")
    if name not in SCHEDULES:
        examples = ", ".join(example for _, _, example in SCHEDULES.values())
        raise ScheduleError(f"no scheduled-sampling schedule {name!r}; choose one of: {', '.join(SCHEDULES)} "
                            f"(e.g. {examples})")
    names, optional, example = SCHEDULES[name]
    usage = f"{name}:{','.join(names[:len(names) - optional])}" + (
        f"[,{','.join(names[len(names) - optional:])}]" if optional else "")
    parts = [a.strip() for a in args.split(",")] if args.strip() else []
    if not len(names) - optional <= len(parts) <= len(names):
        raise ScheduleError(f"schedule {name} takes {usage} (e.g. {example}); got {text!r}")
    try:
        values = tuple(float(a) for a in parts)
    except ValueError:
        raise ScheduleError(f"schedule {name} takes numbers: {usage} (e.g. {example}); got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise ScheduleError(f"schedule {name} takes finite numbers (got {text!r})")
    given = dict(zip(names, values))
    for key in ("P", "START", "END", "MIN"):
        if key in given:
            check_probability(given[key], f"{key} in {name}:{args}")
    if name == "linear" and given["STEPS"] <= 0:
        raise ScheduleError(f"STEPS in {text} must be positive (the steps from START to END)")
    if name == "exponential" and not 0 < given["K"] <= 1:
        raise ScheduleError(f"K in {text} must be in (0, 1]: eps = K ** step decays from 1 (e.g. {example})")
    if name == "inverse-sigmoid" and given["K"] < 1:
        raise ScheduleError(f"K in {text} must be at least 1: eps = K / (K + exp(step / K)) (e.g. {example})")
    return Schedule(name, values)


def step_generator(seed: int, step: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator for the coins and samples of optimizer step ``step``: a function of the run's seed and the
    step alone, so a resumed run draws exactly what the uninterrupted run would, with no state to checkpoint."""
    generator = torch.Generator(device=device)
    generator.manual_seed((seed * 0x9E3779B97F4A7C15 + step) % 2**63)
    return generator


def sampled_forward(model: CharModel, x: Tensor, states: States, teacher_forcing: float,
                    generator: torch.Generator | None = None, feed: str = "sample",
                    ) -> tuple[Tensor, States, Tensor]:
    """The model over the window ``x`` (B, T), each input after the first being the true character with probability
    ``teacher_forcing`` and the model's own guess otherwise (``feed``: sampled from its prediction, or its argmax).
    Returns (logits (B, T, V), the states after the window, a (B, T) mask of the positions that read the true
    character). ``teacher_forcing`` = 1 runs the plain forward pass (fused where the cell has one)."""
    check_probability(teacher_forcing)
    if feed not in FEEDS:
        raise ScheduleError(f"feed must be one of {', '.join(FEEDS)} (got {feed!r})")
    if teacher_forcing >= 1.0:
        logits, states = model(x, states)
        return logits, states, torch.ones_like(x, dtype=torch.bool)
    if generator is None:
        raise ScheduleError("sampled_forward needs a torch.Generator below full teacher forcing")
    return _sampled_steps(model, x, states, teacher_forcing, generator, feed)


def _sampled_steps(model, x, states, teacher_forcing, generator, feed):
    batch, length = x.shape
    inputs, outputs, masks = x[:, 0], [], [torch.ones(batch, dtype=torch.bool, device=x.device)]
    logits = None  # the prediction of the step before: what the next input is sampled from
    for t in range(length):
        if t > 0:
            with torch.no_grad():  # the choice of input is not differentiated (the paper's choice too)
                if feed == "argmax":
                    guess = logits.argmax(-1)
                else:
                    guess = torch.multinomial(logits.float().softmax(-1), 1, generator=generator)[:, 0]
                true = torch.rand(batch, generator=generator, device=x.device) < teacher_forcing
            inputs = torch.where(true, x[:, t], guess)
            masks.append(true)
        logits, states = model.step(inputs, states)
        outputs.append(logits)
    return torch.stack(outputs, dim=1), states, torch.stack(masks, dim=1)
