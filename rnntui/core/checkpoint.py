"""Checkpoints: tensors in safetensors, everything else in JSON beside it. Nothing is ever unpickled.

Both files are written atomically (temporary file, fsync, rename), tensors first: the JSON names the tensor file
and its sha256, so a checkpoint exists only once both are whole, and a half-written or damaged one is detected
instead of loaded. The file layout and the JSON side are in rnntui.core.runs (no torch there); this module holds
the tensors: the model's weights, the optimizer's state, the RNG state and the carried hidden states.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as serialize
from torch import nn

from rnntui.core.runs import FORMAT, FORMAT_VERSION, CheckpointError, resolve, run_dir_of, verify_checkpoint
from rnntui.util.files import atomic_write, write_json


@dataclass
class Saved:
    """A checkpoint read back: where it is, its tensors (on the CPU) and its JSON."""

    path: Path  # the JSON file
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]

    @property
    def run_dir(self) -> Path:
        return run_dir_of(self.path)

    @property
    def step(self) -> int:
        return self.meta["step"]


def save(directory: Path, step: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write checkpoint ``step`` into ``directory``; returns the path of its JSON file."""
    stem = f"step-{step:08d}"
    tensor_path = directory / f"{stem}.safetensors"
    blob = serialize({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()})
    atomic_write(tensor_path, lambda f: f.write(blob))
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "step": step, "tensors": tensor_path.name,
              "tensors_sha256": hashlib.sha256(blob).hexdigest(), **meta}
    json_path = directory / f"{stem}.json"
    write_json(json_path, header)
    return json_path


def load(path: str | Path) -> Saved:
    """Read and verify a checkpoint (a run directory means its newest)."""
    tensor_path, meta = verify_checkpoint(path)
    try:
        tensors = load_file(tensor_path, device="cpu")
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{tensor_path} cannot be read ({e}); use an earlier checkpoint") from None
    return Saved(resolve(path), tensors, meta)


def load_weights(model: nn.Module, tensors: dict[str, torch.Tensor], what: Path | str) -> None:
    """Put a checkpoint's ``model.*`` tensors into ``model`` (built from the checkpoint's configuration)."""
    weights = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[-1].strip()
        raise CheckpointError(f"{what}: the weights do not fit the checkpoint's configuration ({first})") from None


# -- the rest of a run's state, as flat named tensors ------------------------------------------------------------


def model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {f"model.{k}": v for k, v in model.state_dict().items()}


def state_tensors(states: list[tuple[torch.Tensor, ...]]) -> dict[str, torch.Tensor]:
    """The hidden states carried between batches, layer i part j as ``state.i.j``."""
    return {f"state.{i}.{j}": s for i, state in enumerate(states) for j, s in enumerate(state)}


def states_from(tensors: dict[str, torch.Tensor], n_layer: int, device) -> list[tuple[torch.Tensor, ...]]:
    states = []
    for i in range(n_layer):
        parts = sorted((int(k.rsplit(".", 1)[1]), v) for k, v in tensors.items() if k.startswith(f"state.{i}."))
        states.append(tuple(v.to(device) for _, v in parts))
    return states


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The optimizer's state as tensors (``optim.<param id>.<key>``) and JSON (param groups, scalar entries)."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                   device: torch.device) -> None:
    per_param: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            per_param.setdefault(int(pid), {})[key] = value if key == "step" else value.to(device)
    for name, value in meta["scalars"].items():
        pid, key = name.split(".", 1)
        per_param.setdefault(int(pid), {})[key] = value
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]]
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})


def rng_tensors(device: torch.device) -> dict[str, torch.Tensor]:
    rng = {"rng.cpu": torch.get_rng_state()}
    if device.type == "cuda":
        rng["rng.cuda"] = torch.cuda.get_rng_state(device)
    return rng


def restore_rng(tensors: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(tensors["rng.cpu"])
    if device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
