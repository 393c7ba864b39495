"""Runs without a budget: a learning rate that needs no horizon, overfitting made visible, and early stopping.

Cosine decay (rnntui.core.config.learning_rate) needs to know where the run ends; a run without a budget (the app's
default) then holds the peak rate for ever, and a small model on a small corpus overfits: the validation loss
rises while the training loss falls. The pieces here need only the steps and evaluations seen so far:

- ``PlateauSchedule``: warm-up, then the peak rate, halved whenever the best validation loss is ``patience_steps``
  old (reduce-on-plateau, counted in steps so it means the same whatever ``eval_every`` is), down to a floor;
- ``inverse_sqrt``: warm-up, then ``lr * sqrt(timescale / (timescale + steps after warm-up))``;
- ``OverfitWatch``: says once, in a line a user can act on, when the validation loss has risen for several
  evaluations while the training loss fell;
- ``Patience``: says when K evaluations in a row brought no better validation loss (``--patience K``).

Pure Python, no torch: the Trainer (or a benchmark) calls them; their state is a small dict for checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from rnntui.errors import UserError


def warmup(lr: float, step: int, warmup_steps: int) -> float | None:
    """The warm-up's rate at optimizer step ``step`` (from 0), or None once it is over."""
    return lr * (step + 1) / warmup_steps if step < warmup_steps else None


def inverse_sqrt(lr: float, step: int, warmup_steps: int = 0, timescale: int = 1000) -> float:
    """Warm-up, then the peak rate falling as the inverse square root of the steps since: halved after
    3 * ``timescale`` steps, a quarter after 15 * ``timescale``; never zero, so a run can go on."""
    rate = warmup(lr, step, warmup_steps)
    if rate is not None:
        return rate
    return lr * math.sqrt(timescale / (timescale + step - warmup_steps))


@dataclass
class PlateauSchedule:
    """Warm-up, then the peak rate, multiplied by ``factor`` each time the best validation loss gets
    ``patience_steps`` old (a new best must beat the old by ``threshold``, relative), never below
    ``min_ratio`` of the peak. Call ``observe`` after each evaluation and ``rate`` before each step."""

    lr: float
    warmup_steps: int = 0
    factor: float = 0.5
    patience_steps: int = 500
    min_ratio: float = 0.01
    threshold: float = 1e-3
    scale: float = 1.0
    best: float = math.inf
    best_step: int = 0  # the step of the best validation loss, or of the last cut (a cut restarts the wait)
    cuts: list[int] = field(default_factory=list)  # the steps at which the rate was cut

    def rate(self, step: int) -> float:
        rate = warmup(self.lr, step, self.warmup_steps)
        return rate if rate is not None else self.lr * self.scale

    def observe(self, step: int, val_loss: float) -> bool:
        """Record the validation loss at ``step``; returns whether the rate was cut."""
        if not math.isfinite(val_loss):
            return False
        if val_loss < self.best * (1 - self.threshold):
            self.best, self.best_step = val_loss, step
            return False
        if step - self.best_step < self.patience_steps or step < self.warmup_steps:
            return False
        floor = self.min_ratio
        if self.scale <= floor:
            return False
        self.scale = max(floor, self.scale * self.factor)
        self.best_step = step  # give the lower rate as long to help
        self.cuts.append(step)
        return True

    def state(self) -> dict:
        state = asdict(self)
        state["best"] = None if math.isinf(self.best) else self.best
        return state

    @classmethod
    def from_state(cls, state: dict) -> PlateauSchedule:
        state = dict(state)
        state["best"] = math.inf if state.get("best") is None else state["best"]
        return cls(**state)


@dataclass
class Evaluation:
    step: int
    train_loss: float  # the smoothed training loss at the evaluation
    val_loss: float


class OverfitWatch:
    """Watches the evaluations for overfitting: the validation loss above its best by more than ``margin``
    (relative) for ``evaluations`` evaluations in a row, while the smoothed training loss is below where it was at
    the best. Says so once per episode (a new best starts a new one)."""

    def __init__(self, evaluations: int = 3, margin: float = 0.01):
        if evaluations < 1:
            raise ValueError("evaluations must be at least 1")
        self.evaluations = evaluations
        self.margin = margin
        self.best: Evaluation | None = None
        self.above = 0  # evaluations in a row above the best by more than the margin
        self.warned = False

    def observe(self, step: int, train_loss: float, val_loss: float) -> str | None:
        """Record an evaluation; returns the warning the first time this episode is overfitting, else None."""
        now = Evaluation(step, train_loss, val_loss)
        if not (math.isfinite(val_loss) and math.isfinite(train_loss)):
            return None
        if self.best is None or val_loss < self.best.val_loss:
            self.best, self.above, self.warned = now, 0, False
            return None
        self.above = self.above + 1 if val_loss > self.best.val_loss * (1 + self.margin) else 0
        if self.warned or self.above < self.evaluations or train_loss >= self.best.train_loss:
            return None
        self.warned = True
        return overfit_message(self.best, now)


def overfit_message(best: Evaluation, now: Evaluation) -> str:
    rise = (now.val_loss / best.val_loss - 1) * 100
    return (f"overfitting: the validation loss rose {rise:.0f} % since its best ({best.val_loss:.3f} at step "
            f"{best.step:,}, now {now.val_loss:.3f}) while the training loss fell ({best.train_loss:.3f} → "
            f"{now.train_loss:.3f}); try dropout (--dropout 0.2), a bigger corpus, a smaller model, or stop: "
            "the best checkpoint is kept")


class Patience:
    """``--patience K``: the run stops after K evaluations in a row without a better validation loss."""

    def __init__(self, evaluations: int):
        check_patience(evaluations)
        self.evaluations = evaluations
        self.best = math.inf
        self.waited = 0

    def observe(self, val_loss: float) -> bool:
        """Record an evaluation; returns whether the run should stop now."""
        if val_loss < self.best:
            self.best, self.waited = val_loss, 0
            return False
        self.waited += 1
        return self.waited >= self.evaluations

    def reason(self) -> str:
        return (f"no better validation loss in {self.evaluations} evaluations (best {self.best:.4f}); "
                "stopped by --patience")


def check_patience(value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"--patience must be a positive whole number of evaluations (got {value}); e.g. "
                        "--patience 5 stops after 5 evaluations without a better validation loss")
