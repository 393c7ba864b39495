"""Training: configuration, presets, and the loop, which yields typed events (rnntui.events) as it goes."""

from __future__ import annotations

import json
import math
import os
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from rnntui import __version__, events
from rnntui.core import checkpoint, runs
from rnntui.core.cells import count_parameters
from rnntui.core.data import Dataset, Streams, Vocab, eval_chunks
from rnntui.core.errors import UserError
from rnntui.core.model import CharModel, detach
from rnntui.core.sampling import generate


class ConfigError(UserError):
    pass


@dataclass
class TrainConfig:
    corpus: str = "python-docs"  # a registered corpus name, a path to a text file or directory, or "-" (stdin)
    encoding: str = "utf-8"
    normalize_newlines: bool = True  # CRLF and lone CR become LF (a leading BOM is always dropped)
    include: list[str] = field(default_factory=list)  # globs: the files of a directory corpus to read ...
    exclude: list[str] = field(default_factory=list)  # ... and the files and directories to leave out
    corpus_options: dict[str, Any] = field(default_factory=dict)  # a registered corpus's options (e.g. depth=8)
    corpus_fingerprint: str | None = None  # set by the Trainer: identifies the exact text; resume checks it
    val_fraction: float = 0.1
    cell: str = "lstm"
    cell_options: dict[str, Any] = field(default_factory=dict)
    n_layer: int = 2
    n_hidden: int = 256
    n_embd: int | None = None  # embedding size; None = n_hidden
    dropout: float = 0.0
    seq_len: int = 100
    batch_size: int = 64
    optimizer: str = "adamw"  # adamw, adam, rmsprop, adagrad, sgd
    lr: float = 2e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    alpha: float = 0.99  # RMSprop smoothing
    momentum: float = 0.0  # SGD
    schedule: str = "constant"  # constant, cosine, decay
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

GRAD_FLOW_EVERY = 10  # steps between GradFlow events (per-layer gradient norms)

# With a time budget of several minutes (--max-time) the 2x256 GRU of the default preset overfits, and a wider
# one with dropout ends lower; the default preset switches to it from this budget on.
LONG_BUDGET_S = 240.0
DEFAULT_FOR_LONG_BUDGETS = dict(n_hidden=512, dropout=0.1, lr=5e-3, min_lr_ratio=0.02, seq_len=64, batch_size=64)


def apply_preset(name: str, **overrides: Any) -> TrainConfig:
    if name not in PRESETS:
        raise ConfigError(f"no preset {name!r}; choose one of: {', '.join(PRESETS)}")
    values = dict(PRESETS[name])
    if name == "default" and (overrides.get("max_time") or 0) >= LONG_BUDGET_S:
        values.update(DEFAULT_FOR_LONG_BUDGETS)
    return TrainConfig(**{**values, "preset": name, **overrides})


def validate(c: TrainConfig) -> None:
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
    choices = {"optimizer": (c.optimizer, OPTIMIZERS), "schedule": (c.schedule, SCHEDULES),
               "clip_mode": (c.clip_mode, ("norm", "value")), "device": (c.device, ("auto", "cpu", "cuda", "mps")),
               "precision": (c.precision, ("fp32", "bf16", "auto"))}
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{name.replace('_', '-')} {value!r} is not one of: {', '.join(allowed)}")
    if c.sample_length < 0:
        raise ConfigError("sample-length must be 0 or more")


OPTIMIZERS = {
    "adamw": lambda p, c: torch.optim.AdamW(p, lr=c.lr, betas=c.betas, weight_decay=c.weight_decay),
    "adam": lambda p, c: torch.optim.Adam(p, lr=c.lr, betas=c.betas, weight_decay=c.weight_decay),
    "rmsprop": lambda p, c: torch.optim.RMSprop(p, lr=c.lr, alpha=c.alpha, weight_decay=c.weight_decay),
    "adagrad": lambda p, c: torch.optim.Adagrad(p, lr=c.lr, weight_decay=c.weight_decay),
    "sgd": lambda p, c: torch.optim.SGD(p, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay),
}
SCHEDULES = ("constant", "cosine", "decay")


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


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps: Apple's MPS is not available here; use --device cpu or auto")
    return torch.device(name)


def fast_bf16(device: torch.device) -> bool:
    """Whether bfloat16 matrix products run natively here (AMX or AVX-512 BF16 on the CPU, Ampere+ GPUs)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "bf16" or (precision == "auto" and fast_bf16(device)):
        return torch.bfloat16
    return None


def available_memory(device: torch.device) -> int | None:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def estimate_memory(c: TrainConfig, n_params: int, vocab_size: int) -> int:
    """A generous estimate of training memory in bytes: weights, gradients and two optimizer moments, plus the
    activations kept for backpropagation (gates, states and logits at every position of a batch)."""
    per_position = c.n_layer * c.n_hidden * 12 + vocab_size * 3 + (c.n_embd or c.n_hidden)
    return 4 * (4 * n_params + c.batch_size * c.seq_len * per_position)


def load_text(spec: str, encoding: str = "utf-8", normalize_newlines: bool = True) -> tuple[str, str]:
    """A corpus name or a file path -> (the whole text, display name). For small texts; training streams the
    text through ``load_dataset`` instead, so it never needs to fit in one string."""
    from rnntui.corpora.sources import open_source

    source = open_source(spec, encoding, normalize_newlines)
    try:
        return "".join(source.text()), source.name
    finally:
        source.close()


def load_dataset(c: TrainConfig, progress=None) -> Dataset:
    """The configuration's corpus, encoded (through the on-disk cache when large) and split. ``progress``, if
    given, receives rnntui.corpora.sources.TextProgress reports (reading, encoding, notes such as skipped files)."""
    from rnntui.corpora.textcache import load_dataset as load
    from rnntui.plugins import get_registry

    return load(c.corpus, c.val_fraction, encoding=c.encoding, normalize_newlines=c.normalize_newlines,
                include=c.include, exclude=c.exclude, options=c.corpus_options, progress=progress,
                corpora=get_registry().corpora)


def model_from_config(c: TrainConfig, vocab_size: int) -> CharModel:
    from rnntui.plugins import get_registry

    try:
        cell_class = get_registry().cell(c.cell)
    except LookupError as e:
        raise ConfigError(str(e)) from None
    try:
        return CharModel(vocab_size, cell_class, c.n_layer, c.n_hidden, c.n_embd, c.dropout, c.cell_options)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"cell {c.cell!r} cannot be built with these options: {e}") from None


def _state_tensors(states) -> dict[str, torch.Tensor]:
    return {f"state.{i}.{j}": s for i, state in enumerate(states) for j, s in enumerate(state)}


def _states_from(tensors: dict[str, torch.Tensor], n_layer: int, device) -> list[tuple[torch.Tensor, ...]]:
    states = []
    for i in range(n_layer):
        parts = sorted((int(k.rsplit(".", 1)[1]), v) for k, v in tensors.items() if k.startswith(f"state.{i}."))
        states.append(tuple(v.to(device) for _, v in parts))
    return states


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    per_param: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            per_param.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split(".", 1)
        per_param.setdefault(int(pid), {})[key] = value
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]]
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})


class Trainer:
    """One training run. Construction checks everything (config, text, memory) and raises a UserError before
    anything is written; ``run()`` then yields events until the budget is spent or the consumer stops asking."""

    def __init__(self, config: TrainConfig, run_dir: Path | None = None, resume: Path | None = None,
                 progress=None):
        self.resumed_from = None
        if resume is not None:
            tensors, meta = checkpoint.load(resume)
            saved = TrainConfig.from_json(meta["config"])
            # a new budget counts the run's total steps and training time; none given keeps the run's own
            config = replace(saved, max_steps=config.max_steps or saved.max_steps,
                             max_time=config.max_time or saved.max_time, device=config.device)
            run_dir = checkpoint.resolve(resume).parent.parent
            self.resumed_from = (tensors, meta)
        validate(config)
        self.config = c = config
        torch.manual_seed(c.seed)
        if c.threads:
            torch.set_num_threads(c.threads)
        self.device = pick_device(c.device)
        if self.resumed_from:
            meta = self.resumed_from[1]
            self.vocab = Vocab(tuple(meta["vocab"]))
            self.corpus_name = meta["corpus"]
            self.dataset = load_dataset(c, progress)
            if self.dataset.vocab != self.vocab or (
                    c.corpus_fingerprint is not None and self.dataset.fingerprint != c.corpus_fingerprint):
                raise ConfigError(f"the corpus {c.corpus} changed since this run started; resume needs the same text")
        else:
            self.dataset = load_dataset(c, progress)
            self.corpus_name = self.dataset.name
            self.vocab = self.dataset.vocab
            self.config = c = replace(c, corpus_fingerprint=self.dataset.fingerprint)
        self.streams = Streams(self.dataset.train, c.batch_size, c.seq_len)
        have = available_memory(self.device)
        e = c.n_embd or c.n_hidden
        generous = c.n_layer * 12 * c.n_hidden * (e + c.n_hidden + 2)  # more weights than any cell we know
        if have is not None and estimate_memory(c, generous, len(self.vocab)) > 0.1 * have:
            with torch.device("meta"):  # near the limit: count exactly, still without allocating (slower)
                n_params = count_parameters(model_from_config(c, len(self.vocab)))
            need = estimate_memory(c, n_params, len(self.vocab))
            if need > 0.8 * have:
                raise ConfigError(
                    f"this model needs about {need / 2**30:.1f} GiB to train but only {have / 2**30:.1f} GiB is "
                    "free; lower --hidden, --layers, --batch-size or --seq-len"
                )
        self.model = model_from_config(c, len(self.vocab)).to(self.device)
        self.n_params = count_parameters(self.model)
        self.amp_dtype = autocast_dtype(c.precision, self.device)
        self.optimizer = OPTIMIZERS[c.optimizer](self.model.parameters(), c)
        self.step = 0
        self.best_val_loss = math.inf
        self.grad_flow: dict[str, float] = {}
        self.log: runs.RunLog | None = None  # open while run() is; others (the engine) may add events to it
        self.train_time = 0.0  # seconds spent in training steps, summed over resumes
        self.states = self.model.initial_state(c.batch_size)
        if self.resumed_from:
            self._restore(*self.resumed_from)
        self.run_dir = Path(run_dir) if run_dir else runs.new_run_dir(Path(self.corpus_name).stem, c.cell)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.ckpt_dir = self.run_dir / "checkpoints"
        if not self.resumed_from:
            self._write_run_files()
        self.last_val_loss: float | None = None

    # -- run directory and checkpoints ---------------------------------------------------------------------------

    def _write_run_files(self) -> None:
        checkpoint.write_json(self.run_dir / "config.json", {
            "config": self.config.to_json(), "corpus": self.corpus_name, "vocab": "".join(self.vocab.chars),
            "n_params": self.n_params, "created": time.strftime("%Y-%m-%d %H:%M:%S"), "rnntui": __version__,
        })

    def _cell_name(self) -> str:
        """The run's cell and the plugin it comes from, for error messages."""
        from rnntui.plugins import cell_label

        return cell_label(self.config.cell)

    def _cell_origin(self) -> dict[str, str]:
        from rnntui.plugins import get_registry

        registry = get_registry()
        plugin = registry.owners.get(("cell", self.config.cell), "")
        info = registry.plugins.get(plugin)
        return {"cell": self.config.cell, "cell_plugin": plugin, "cell_plugin_version": info.version if info else ""}

    def save_checkpoint(self) -> events.Checkpoint:
        c = self.config
        model_tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        optim_tensors, optim_meta = _optimizer_tensors(self.optimizer)
        rng = {"rng.cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        meta = {
            "config": c.to_json(), "vocab": list(self.vocab.chars), "corpus": self.corpus_name,
            "best_val_loss": None if math.isinf(self.best_val_loss) else self.best_val_loss,
            "val_loss": self.last_val_loss, "train_time": self.train_time, "optimizer": optim_meta,
            "data_position": self.step % self.streams.per_epoch, "state_policy": "carry, reset when streams wrap",
            "n_params": self.n_params, "rnntui": __version__, **self._cell_origin(),
        }
        path = checkpoint.save(
            self.ckpt_dir, self.step,
            {**model_tensors, **optim_tensors, **rng, **_state_tensors(self.states)}, meta,
        )
        best = self.last_val_loss is not None and self.last_val_loss <= self.best_val_loss
        if best:
            checkpoint.write_json(self.ckpt_dir / "best.json", {"checkpoint": path.name, "step": self.step,
                                                                 "val_loss": self.last_val_loss})
        best_name = self._best_checkpoint_name()
        checkpoint.prune(self.ckpt_dir, c.keep_checkpoints, {best_name} if best_name else set())
        return events.Checkpoint(self.step, str(path), best, self.last_val_loss)

    def _best_checkpoint_name(self) -> str | None:
        try:
            return json.loads((self.ckpt_dir / "best.json").read_text())["checkpoint"]
        except (OSError, ValueError, KeyError):
            return None

    def _restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        weights = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
        try:
            self.model.load_state_dict(weights)
        except RuntimeError as e:
            raise ConfigError(f"the checkpoint's weights do not fit its configuration ({e})") from None
        self.model.to(self.device)
        self.optimizer = OPTIMIZERS[self.config.optimizer](self.model.parameters(), self.config)
        _load_optimizer(self.optimizer, {k: v.to(self.device) if k.split(".")[-1] != "step" else v
                                         for k, v in tensors.items()}, meta["optimizer"])
        torch.set_rng_state(tensors["rng.cpu"])
        if self.device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self.states = _states_from(tensors, self.config.n_layer, self.device)
        self.step = meta["step"]
        self.best_val_loss = meta["best_val_loss"] if meta["best_val_loss"] is not None else math.inf
        self.train_time = meta["train_time"]

    # -- evaluation and sampling ---------------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> float | None:
        """Mean cross-entropy in nats per character over the whole validation split."""
        if len(self.dataset.val) < 2:
            return None
        self.model.eval()
        total, count, states = 0.0, 0, None
        val = self.dataset.val if self.config.eval_chars is None else self.dataset.val[: self.config.eval_chars + 1]
        for x, y, reset in eval_chunks(val, seq_len=max(self.config.seq_len, 128)):
            x, y = x.to(self.device), y.to(self.device)
            if reset or states is None:
                states = self.model.initial_state(x.shape[0])
            with self._autocast():
                logits, states = self.model(x, states)
            total += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum").item()
            count += y.numel()
        self.model.train()
        return total / count

    def sample(self, prime: str = "", length: int | None = None, temperature: float | None = None,
               seed: int | None = None, **kwargs: Any) -> str:
        c = self.config
        return "".join(generate(self.model, self.vocab, prime, c.sample_length if length is None else length,
                                c.sample_temperature if temperature is None else temperature, seed=seed, **kwargs))

    # -- the loop ------------------------------------------------------------------------------------------------

    def _progress(self) -> float | None:
        c = self.config
        parts = []
        if c.max_steps:
            parts.append(self.step / c.max_steps)
        if c.max_time:
            parts.append(self.train_time / c.max_time)
        return max(parts) if parts else None

    def _budget_spent(self) -> str | None:
        c = self.config
        if c.max_steps is not None and self.step >= c.max_steps:
            return "max_steps"
        if c.max_time is not None and self.train_time >= c.max_time:
            return "max_time"
        return None

    def _eta(self, seconds_per_step: float) -> float | None:
        c, left = self.config, []
        if c.max_steps:
            left.append((c.max_steps - self.step) * seconds_per_step)
        if c.max_time:
            left.append(c.max_time - self.train_time)
        return max(0.0, min(left)) if left else None

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def train_step(self) -> tuple[float, float, float]:
        """One optimizer step -> (loss in nats/char, pre-clip gradient norm, learning rate)."""
        c, model = self.config, self.model
        x, y, reset = self.streams.batch(self.step)
        x, y = x.to(self.device), y.to(self.device)
        if reset:
            self.states = model.initial_state(c.batch_size)
        epoch = self.step / self.streams.per_epoch
        lr = learning_rate(c, self.step, epoch, self._progress())
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self._autocast():
            logits, states = model(x, self.states)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"the loss became {loss_value} at step {self.step + 1}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if (self.step + 1) % GRAD_FLOW_EVERY == 0:
            self.grad_flow = model.grad_norms()  # before clipping, which scales every part alike
        params = [p for p in model.parameters() if p.grad is not None]
        if c.clip and c.clip_mode == "norm":
            norm = torch.nn.utils.clip_grad_norm_(params, c.clip)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in params])
            if c.clip:
                torch.nn.utils.clip_grad_value_(params, c.clip)
        norm_value = norm.item()
        if not math.isfinite(norm_value):
            raise FloatingPointError(f"the gradient norm became {norm_value} at step {self.step + 1}")
        self.optimizer.step()
        self.states = detach(states)
        self.step += 1
        return loss_value, norm_value, lr

    def run(self) -> Iterator[events.Event]:
        """Train, yielding events, and log them in the run directory. Closing the generator stops the run after
        the step in progress."""
        self.log = log = runs.RunLog(self.run_dir, self.step if self.resumed_from else None)
        try:
            for event in self._events():
                log.write(event)
                yield event
        finally:
            log.close()
            self.log = None

    def _events(self) -> Iterator[events.Event]:
        c, model = self.config, self.model
        yield events.Started(
            str(self.run_dir), self.step, self.n_params, str(self.device), self.corpus_name, c.cell,
            len(self.dataset.train), len(self.dataset.val), len(self.vocab), self.streams.per_epoch,
            c.max_steps, c.max_time, self.resumed_from is not None,
        )
        model.train()
        seconds_per_step = None
        reason = None
        while (reason := self._budget_spent()) is None:
            try:  # the step, its evaluation, checkpoint and sample; yielded after, so a failure leaves no half
                started = time.perf_counter()
                loss, norm, lr = self.train_step()
                dt = time.perf_counter() - started
                self.train_time += dt
                seconds_per_step = dt if seconds_per_step is None else 0.9 * seconds_per_step + 0.1 * dt
                produced = [events.Step(self.step, self.step / self.streams.per_epoch, loss, lr, norm,
                                        c.batch_size * c.seq_len / dt, self.train_time, self._eta(seconds_per_step))]
                if self.step % GRAD_FLOW_EVERY == 0:
                    produced.append(events.GradFlow(self.step, self.grad_flow))
                finished = self._budget_spent() is not None
                if self.step % c.eval_every == 0 or finished:
                    produced += self._eval_and_checkpoint()
                if self.step % c.sample_every == 0 or finished:
                    produced.append(self._sample_event())
            except FloatingPointError as e:
                kept = checkpoint.resolve(self.ckpt_dir).name if any(self.ckpt_dir.glob("step-*.json")) else None
                yield events.Error(
                    f"{e} ({self._cell_name()}): training stopped; "
                    + (f"the last good checkpoint ({kept}) is kept; " if kept else "")
                    + "lower --lr or set --clip (e.g. --clip 1)", self.step + 1)
                reason = "error"
                break
            except Exception as e:  # a plugin cell that raises: report it with its traceback and stop cleanly
                yield events.Error(f"step {self.step + 1} failed in {self._cell_name()}: {e.__class__.__name__}: {e}",
                                   self.step + 1, traceback.format_exc())
                reason = "error"
                break
            yield from produced
        yield events.Done(self.step, reason, None if math.isinf(self.best_val_loss) else self.best_val_loss,
                          self.train_time)

    def _eval_and_checkpoint(self) -> list[events.Event]:
        val = self.evaluate()
        if val is not None and not math.isfinite(val):
            raise FloatingPointError(f"the validation loss became {val} at step {self.step}")
        self.last_val_loss = val
        produced: list[events.Event] = []
        if val is not None:
            self.best_val_loss = min(self.best_val_loss, val)
            produced.append(events.Eval(self.step, val, events.bits(val), self.best_val_loss, self.train_time))
        return [*produced, self.save_checkpoint()]

    def _sample_event(self) -> events.Sample:
        text = self.sample(seed=self.config.seed + self.step)
        return events.Sample(self.step, text, self.train_time, self.last_val_loss, self.config.sample_temperature)
