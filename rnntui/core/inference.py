"""Loading a trained model from a checkpoint for generation."""

from __future__ import annotations

import json
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
        run_dir = path if path.is_dir() else path.parent.parent
        try:
            pointer = json.loads((run_dir / "checkpoints" / "best.json").read_text())
        except (OSError, ValueError):
            raise CheckpointError(f"{run_dir} has no best checkpoint yet (none was validated); drop --best") from None
        path = run_dir / "checkpoints" / pointer["checkpoint"]
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
