"""Loading a trained model from a checkpoint for generation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnntui.core import checkpoint
from rnntui.core.checkpoint import CheckpointError
from rnntui.core.data import Vocab
from rnntui.core.model import CharModel
from rnntui.core.train import ConfigError, TrainConfig, model_from_config, pick_device


def load_model(path: Path, best: bool = False, device: str = "cpu") -> tuple[CharModel, Vocab, dict[str, Any]]:
    """A run directory or checkpoint -> (model in eval mode, vocabulary, checkpoint metadata)."""
    if best:
        path = checkpoint.best(path)
    tensors, meta = checkpoint.load(path)
    config = TrainConfig.from_json(meta["config"])
    vocab = Vocab(tuple(meta["vocab"]))
    try:
        model = model_from_config(config, len(vocab))
    except ConfigError as e:
        plugin = meta.get("cell_plugin") or "a plugin"
        raise CheckpointError(f"this checkpoint needs cell {config.cell!r} from {plugin}: {e}") from None
    weights = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError:
        raise CheckpointError(f"{path}: the weights do not match the checkpoint's configuration") from None
    return model.to(pick_device(device)).eval(), vocab, meta
