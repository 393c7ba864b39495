"""Opening a trained model for generation, as fast as the cell allows: the built-in cells on the CPU in numpy
(torch is never imported, so `rnntui sample` writes its first character in a fraction of a second), any other
cell or device through torch and the plugin registry (rnntui.run.load_model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnntui.core.data import Vocab
from rnntui.core.decode import Stepper
from rnntui.core.numpy_cells import BUILTIN_CELLS, NumpyStepper, load_weights
from rnntui.core.runs import best_checkpoint, run_dir_of, verify_checkpoint


def open_stepper(path: Path, best: bool = False, device: str = "cpu", compile: bool = False
                 ) -> tuple[Stepper, Vocab, dict[str, Any]]:
    """A run directory or checkpoint -> (the fastest stepper for it, vocabulary, checkpoint metadata)."""
    path = Path(path)
    if best:
        path = best_checkpoint(path if path.is_dir() else run_dir_of(path))
    tensor_path, meta = verify_checkpoint(path)
    config = meta.get("config", {})
    if config.get("cell") in BUILTIN_CELLS and device == "cpu":  # compile is for plugin cells
        stepper = NumpyStepper(load_weights(tensor_path), config["cell"], config.get("cell_options"))
        return stepper, Vocab(tuple(meta["vocab"])), meta
    from rnntui.core.torch_stepper import TorchStepper  # lazy: torch, only for plugin cells and other devices
    from rnntui.run import load_model  # lazy: likewise (the plugin registry)

    model, vocab, meta = load_model(path, device=device)
    return TorchStepper(model, compile=compile), vocab, meta
