"""Building runs: the one place that turns a configuration into a model and a dataset, using the plugin registry
(for the cell) and the corpora (for the text), and hands them to the core's Trainer.

``build_trainer(config)`` starts a new run; ``resume_trainer(path)`` continues one exactly; ``load_model(path)``
loads a checkpoint's model for generation. The command line, the engine's run process, tests and benchmarks all
come through here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from rnntui.core import checkpoint, runs
from rnntui.core.cells import count_parameters
from rnntui.core.config import ConfigError, TrainConfig, validate
from rnntui.core.data import Dataset, Vocab
from rnntui.core.device import available_memory, estimate_memory, pick_device
from rnntui.core.model import CharModel
from rnntui.core.runs import CheckpointError
from rnntui.core.trainer import CellOrigin, Trainer
from rnntui.corpora.sources import ProgressFn
from rnntui.corpora.textcache import load_dataset as load_corpus_dataset
from rnntui.plugins import get_registry


def build_model(config: TrainConfig, vocab_size: int) -> CharModel:
    """The configuration's model, its cell looked up in the plugin registry."""
    try:
        cell_class = get_registry().cell(config.cell)
    except LookupError as e:
        raise ConfigError(str(e)) from None
    try:
        return CharModel(vocab_size, cell_class, config.n_layer, config.n_hidden, config.n_embd, config.dropout,
                         config.cell_options)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"cell {config.cell!r} cannot be built with these options: {e}") from None


def cell_origin(cell: str) -> CellOrigin:
    registry = get_registry()
    info = registry.plugin_of("cell", cell)
    return CellOrigin(registry.label("cell", cell), info.name if info else "", info.version if info else "")


def load_dataset(config: TrainConfig, progress: ProgressFn | None = None) -> Dataset:
    """The configuration's corpus, encoded (through the on-disk cache when large) and split. ``progress``, if
    given, receives rnntui.corpora.sources.TextProgress reports (reading, encoding, notes such as skipped files)."""
    return load_corpus_dataset(config.corpus, config.val_fraction, encoding=config.encoding,
                               normalize_newlines=config.normalize_newlines, include=config.include,
                               exclude=config.exclude, options=config.corpus_options, progress=progress,
                               corpora=get_registry().corpora)


def _prepare_torch(config: TrainConfig) -> torch.device:
    """Seed (the model's initial weights depend on it), set the threads, and pick the device."""
    validate(config)
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    return pick_device(config.device)


def _check_memory(config: TrainConfig, vocab_size: int, device: torch.device) -> None:
    """Refuse a model that cannot fit, before allocating it."""
    have = available_memory(device)
    c = config
    generous = c.n_layer * 12 * c.n_hidden * ((c.n_embd or c.n_hidden) + c.n_hidden + 2)  # more than any cell's
    if have is None or estimate_memory(c, generous, vocab_size) <= 0.1 * have:
        return
    with torch.device("meta"):  # near the limit: count exactly, still without allocating (slower)
        n_params = count_parameters(build_model(c, vocab_size))
    need = estimate_memory(c, n_params, vocab_size)
    if need > 0.8 * have:
        raise ConfigError(f"this model needs about {need / 2**30:.1f} GiB to train but only {have / 2**30:.1f} GiB "
                          "is free; lower --hidden, --layers, --batch-size or --seq-len")


def build_trainer(config: TrainConfig, run_dir: Path | None = None, progress: ProgressFn | None = None) -> Trainer:
    """A new run of ``config``. Everything (configuration, text, memory) is checked, raising a UserError, before
    anything is written."""
    device = _prepare_torch(config)
    dataset = load_dataset(config, progress)
    config = replace(config, corpus_fingerprint=dataset.fingerprint)
    _check_memory(config, len(dataset.vocab), device)
    model = build_model(config, len(dataset.vocab))
    run_dir = Path(run_dir) if run_dir else runs.new_run_dir(Path(dataset.name).stem, config.cell)
    return Trainer(config, model, dataset, run_dir, cell_origin(config.cell))


def resume_trainer(path: str | Path, max_steps: int | None = None, max_time: float | None = None,
                   device: str | None = None, progress: ProgressFn | None = None) -> Trainer:
    """Continue the run at ``path`` (its directory or a checkpoint) exactly. A new budget counts the run's total
    steps and training time; none given keeps the run's own."""
    saved = checkpoint.load(path)
    own = TrainConfig.from_json(saved.meta["config"])
    config = replace(own, max_steps=max_steps or own.max_steps, max_time=max_time or own.max_time,
                     device=device or own.device)
    _prepare_torch(config)
    dataset = load_dataset(config, progress)
    if dataset.vocab != Vocab(tuple(saved.meta["vocab"])) or (
            config.corpus_fingerprint is not None and dataset.fingerprint != config.corpus_fingerprint):
        raise ConfigError(f"the corpus {config.corpus} changed since this run started; resume needs the same text")
    model = build_model(config, len(dataset.vocab))
    return Trainer.resume(saved, config, model, replace(dataset, name=saved.meta["corpus"]), cell_origin(config.cell))


def load_model(path: str | Path, best: bool = False, device: str = "cpu") -> tuple[CharModel, Vocab, dict]:
    """A run directory or checkpoint -> (model in eval mode, vocabulary, checkpoint metadata), for generation."""
    if best:
        path = runs.best_checkpoint(Path(path) if Path(path).is_dir() else runs.run_dir_of(Path(path)))
    saved = checkpoint.load(path)
    config = TrainConfig.from_json(saved.meta["config"])
    vocab = Vocab(tuple(saved.meta["vocab"]))
    try:
        model = build_model(config, len(vocab))
    except ConfigError as e:
        plugin = saved.meta.get("cell_plugin") or "a plugin"
        raise CheckpointError(f"this checkpoint needs cell {config.cell!r} from {plugin}: {e}") from None
    checkpoint.load_weights(model, saved.tensors, saved.path)
    return model.to(pick_device(device)).eval(), vocab, saved.meta
