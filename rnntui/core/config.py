"""A run's configuration: every hyperparameter, the presets, the checks, and the learning-rate schedule.

Plain Python (no torch), so the app and the command line resolve presets and options into a ``TrainConfig`` and
check it before a run's process starts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from rnntui.errors import UserError


class ConfigError(UserError):
    pass


OPTIMIZERS = ("adamw", "adam", "rmsprop", "adagrad", "sgd")
SCHEDULES = ("constant", "cosine", "decay")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "auto")


@dataclass
class TrainConfig:
    corpus: str = "python-docs"  # a registered corpus name, a path to a text file or directory, or "-" (stdin)
    encoding: str = "utf-8"
    normalize_newlines: bool = True  # CRLF and lone CR become LF (a leading BOM is always dropped)
    include: list[str] = field(default_factory=list)  # globs: the files of a directory corpus to read ...
    exclude: list[str] = field(default_factory=list)  # ... and the files and directories to leave out
    corpus_options: dict[str, Any] = field(default_factory=dict)  # a registered corpus's options (e.g. depth=8)
    corpus_fingerprint: str | None = None  # set when the run is built: identifies the exact text; resume checks it
    val_fraction: float = 0.1
    cell: str = "lstm"
    cell_options: dict[str, Any] = field(default_factory=dict)
    n_layer: int = 2
    n_hidden: int = 256
    n_embd: int | None = None  # embedding size; None = n_hidden
    dropout: float = 0.0
    seq_len: int = 100
    batch_size: int = 64
    optimizer: str = "adamw"  # one of OPTIMIZERS
    lr: float = 2e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    alpha: float = 0.99  # RMSprop smoothing
    momentum: float = 0.0  # SGD
    schedule: str = "constant"  # one of SCHEDULES
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1  # cosine ends at lr * min_lr_ratio
    decay_rate: float = 0.97  # char-rnn: lr *= decay_rate each epoch ...
    decay_after: int = 10  # ... once this many epochs are done
    clip: float = 5.0  # 0 = no clipping
    clip_mode: str = "norm"  # norm (global L2 norm) or value (element-wise)
    max_steps: int | None = None
    max_time: float | None = None  # seconds of training (evaluation and sampling excluded)
    eval_every: int = 250
    eval_chars: int | None = None  # validate on the first N characters of the split (None: all of it)
    sample_every: int = 250
    sample_length: int = 200
    sample_temperature: float = 0.8
    keep_checkpoints: int = 3
    seed: int = 1337
    device: str = "auto"
    threads: int | None = None  # CPU threads for torch (None: torch's default, one per core)
    precision: str = "fp32"  # fp32, bf16 (autocast; fast on CPUs with AMX/AVX-512 BF16 and on recent GPUs), auto
    preset: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        """The inverse of ``to_json``; keys this version does not know (a newer rnntui's) are left out."""
        names = {f.name for f in fields(cls)}
        config = cls(**{k: v for k, v in data.items() if k in names})
        config.betas = tuple(config.betas)
        return config


PRESETS: dict[str, dict[str, Any]] = {
    # Karpathy's min-char-rnn gist: one tanh RNN layer, one stream, Adagrad, element-wise clipping.
    "min-char-rnn": dict(
        cell="rnn", n_layer=1, n_hidden=100, seq_len=25, batch_size=1, optimizer="adagrad", lr=0.1,
        clip=5.0, clip_mode="value", schedule="constant", eval_every=1000, sample_every=1000,
    ),
    # Karpathy's char-rnn defaults (train.lua).
    "char-rnn": dict(
        cell="lstm", cell_options={"forget_bias": 1.0}, n_layer=2, n_hidden=128, seq_len=50, batch_size=50,
        optimizer="rmsprop", lr=2e-3, alpha=0.95, schedule="decay", decay_rate=0.97, decay_after=10,
        clip=5.0, clip_mode="value", eval_every=1000, sample_every=1000,
    ),
    # The best validation loss per CPU minute we found (benchmarks/quality.py; results in the README).
    # A GRU learned fastest per CPU second among the LSTM/GRU shapes, batches and rates we tried (an LSTM runs
    # 1.5x the characters per second through oneDNN but learns less per step); bf16 autocast (where the CPU has
    # AMX/AVX-512 BF16) doubles the characters per second; short sequences (32-48) learned more per second than
    # 64-100. One thread: with the sleeping OpenMP threads rnntui asks for (rnntui/__init__.py), the GRU's many
    # small per-step operations ran 1.7x slower on 2 threads than on 1.
    "default": dict(
        cell="gru", n_layer=2, n_hidden=256, n_embd=64, seq_len=40, batch_size=96, optimizer="adamw", lr=8e-3,
        betas=(0.9, 0.99), weight_decay=0.0, schedule="cosine", warmup_steps=50, min_lr_ratio=0.1,
        clip=1.0, clip_mode="norm", dropout=0.0, precision="auto", threads=1,
    ),
}
DEFAULT_PRESET = "default"

# With a time budget of several minutes (--max-time) the 2x256 GRU of the default preset overfits, and a wider
# one with dropout ends lower; the default preset switches to it from this budget on.
LONG_BUDGET_S = 240.0
DEFAULT_FOR_LONG_BUDGETS = dict(n_hidden=512, dropout=0.1, lr=5e-3, min_lr_ratio=0.02, seq_len=64, batch_size=64)


def apply_preset(name: str, **overrides: Any) -> TrainConfig:
    """The preset's configuration with ``overrides`` (TrainConfig fields) on top."""
    if name not in PRESETS:
        raise ConfigError(f"no preset {name!r}; choose one of: {', '.join(PRESETS)}")
    values = dict(PRESETS[name])
    if name == "default" and (overrides.get("max_time") or 0) >= LONG_BUDGET_S:
        values.update(DEFAULT_FOR_LONG_BUDGETS)
    return TrainConfig(**{**values, "preset": name, **overrides})


def check_val_fraction(value: float) -> None:
    if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
        raise ConfigError(f"validation fraction must be in [0, 1), got {value}")


def validate(c: TrainConfig) -> None:
    """Raise a ConfigError naming the first value that cannot work."""
    positive = {"n_layer": c.n_layer, "n_hidden": c.n_hidden, "seq_len": c.seq_len, "batch_size": c.batch_size,
                "eval_every": c.eval_every, "sample_every": c.sample_every, "keep_checkpoints": c.keep_checkpoints}
    for name in ("n_embd", "eval_chars", "threads"):
        if getattr(c, name) is not None:
            positive[name] = getattr(c, name)
    for name, value in positive.items():
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name.replace('_', '-')} must be a positive whole number (got {value})")
    for name, value in (("max_steps", c.max_steps), ("max_time", c.max_time)):
        if value is not None and (not math.isfinite(value) or value <= 0):
            raise ConfigError(f"{name.replace('_', '-')} must be positive (got {value})")
    if not (math.isfinite(c.lr) and c.lr > 0):
        raise ConfigError(f"learning rate must be a positive number (got {c.lr}); try 2e-3")
    if not 0 <= c.dropout < 1:
        raise ConfigError(f"dropout must be in [0, 1) (got {c.dropout})")
    if not (math.isfinite(c.clip) and c.clip >= 0):
        raise ConfigError(f"clip must be 0 (off) or a positive number (got {c.clip})")
    check_val_fraction(c.val_fraction)
    choices = {"optimizer": (c.optimizer, OPTIMIZERS), "schedule": (c.schedule, SCHEDULES),
               "clip_mode": (c.clip_mode, ("norm", "value")), "device": (c.device, DEVICES),
               "precision": (c.precision, PRECISIONS)}
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{name.replace('_', '-')} {value!r} is not one of: {', '.join(allowed)}")
    if c.sample_length < 0:
        raise ConfigError("sample-length must be 0 or more")


def learning_rate(c: TrainConfig, step: int, epoch: float, progress: float | None) -> float:
    """The learning rate for optimizer step number ``step`` (counting from 0). ``progress`` in [0, 1] is how far
    through the budget the run is (None when it has no budget: cosine then holds the peak after warm-up)."""
    if c.schedule == "decay":  # char-rnn: multiply by decay_rate at the end of each epoch past decay_after
        return c.lr * c.decay_rate ** max(0, math.floor(epoch) - c.decay_after + 1) if epoch >= c.decay_after else c.lr
    if step < c.warmup_steps:
        return c.lr * (step + 1) / c.warmup_steps
    if c.schedule == "constant" or progress is None:
        return c.lr
    floor = c.lr * c.min_lr_ratio
    return floor + (c.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


# -- the budget: one definition for the Trainer, the app and the Runs screen -----------------------------------


def budget_spent(max_steps: int | None, max_time: float | None, step: int, train_time: float) -> str | None:
    """Why a run with this budget is over at ``step`` after ``train_time`` seconds: "max_steps", "max_time", or
    None while it has steps left."""
    if max_steps is not None and step >= max_steps:
        return "max_steps"
    if max_time is not None and math.isfinite(max_time) and train_time >= max_time - 1e-9:
        return "max_time"
    return None


def budget_progress(max_steps: int | None, max_time: float | None, step: int, train_time: float) -> float | None:
    """How far through its budget a run is, in [0, 1] (the larger of the two), or None without a budget."""
    parts = []
    if max_steps:
        parts.append(step / max_steps)
    if max_time:
        parts.append(train_time / max_time)
    return max(parts) if parts else None
