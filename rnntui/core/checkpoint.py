"""Checkpoints: tensors in safetensors, everything else in JSON beside it. Nothing is ever unpickled.

A checkpoint is the pair ``step-00000100.safetensors`` + ``step-00000100.json``. Both are written atomically
(temporary file, fsync, rename), tensors first: the JSON names the tensor file and its sha256, so a checkpoint
exists only once both are whole, and a half-written or damaged one is detected instead of loaded.
``best.json`` points at the checkpoint with the lowest validation loss, which pruning keeps.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnntui.core.errors import UserError

if TYPE_CHECKING:  # torch is imported where tensors are made: generation reads checkpoints without it
    import torch

FORMAT = "rnntui-checkpoint"
FORMAT_VERSION = 1
PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # pickle protocol 2+ and torch.save's zip container


class CheckpointError(UserError):
    """A checkpoint that cannot be used; the message is one line that says what to do."""


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_json(path: Path, data: Any) -> None:
    _atomic_write(path, lambda f: f.write(json.dumps(data, indent=1).encode()))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def serialize(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save as to_bytes  # imports torch, hence here and not at the top

    return to_bytes(tensors)


def save(directory: Path, step: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write checkpoint ``step`` into ``directory``; returns the path of its JSON file."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"step-{step:08d}"
    tensor_path = directory / f"{stem}.safetensors"
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    blob = serialize(cpu)
    _atomic_write(tensor_path, lambda f: f.write(blob))
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "step": step,
        "tensors": tensor_path.name,
        "tensors_sha256": hashlib.sha256(blob).hexdigest(),
        **meta,
    }
    json_path = directory / f"{stem}.json"
    write_json(json_path, header)
    return json_path


def refuse_pickle(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(4)
    if any(head.startswith(m) for m in PICKLE_MAGIC) or path.suffix in (".pt", ".pth", ".pkl", ".bin", ".ckpt"):
        raise CheckpointError(
            f"{path} is a pickle/torch.save file, which rnntui never loads (unpickling can run arbitrary code); "
            "give an rnntui run directory or its .json checkpoint"
        )


def resolve(path: str | Path) -> Path:
    """A run directory, a checkpoints directory, or a checkpoint file -> the checkpoint's JSON file (latest in a
    directory)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such run directory or checkpoint; list runs with `rnntui runs`")
    if path.is_dir():
        directory = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        found = sorted(directory.glob("step-*.json"))
        if not found:
            raise CheckpointError(f"{path} holds no checkpoint; train first, or give a run directory that has one")
        return found[-1]
    refuse_pickle(path)
    if path.suffix == ".safetensors":
        path = path.with_suffix(".json")
    return path


def best(path: str | Path) -> Path:
    """The checkpoint ``best.json`` points at, from a run directory or one of its checkpoint files."""
    path = Path(path)
    run_dir = path if path.is_dir() else path.parent.parent
    try:
        pointer = json.loads((run_dir / "checkpoints" / "best.json").read_text())
    except (OSError, ValueError):
        raise CheckpointError(f"{run_dir} has no best checkpoint yet (none was validated); drop --best") from None
    return run_dir / "checkpoints" / pointer["checkpoint"]


def load(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a checkpoint -> (tensors on the CPU, metadata)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    tensor_path, meta = verify(path)
    try:
        tensors = load_file(tensor_path, device="cpu")
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{tensor_path} cannot be read ({e}); use an earlier checkpoint") from None
    return tensors, meta


def verify(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """Find and check a checkpoint (format, version, checksum) -> (its tensor file, metadata). Needs no torch."""
    json_path = resolve(path)
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{json_path} is damaged ({e.__class__.__name__}); use an earlier checkpoint") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{json_path} is not an rnntui checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{json_path} has checkpoint format version {meta.get('format_version')}, this rnntui reads version "
            f"{FORMAT_VERSION}; use the rnntui version that wrote it"
        )
    tensor_path = json_path.parent / meta["tensors"]
    if not tensor_path.exists():
        raise CheckpointError(f"{tensor_path} is missing; use an earlier checkpoint")
    if _sha256(tensor_path) != meta["tensors_sha256"]:
        raise CheckpointError(f"{tensor_path} is truncated or damaged (checksum mismatch); use an earlier checkpoint")
    return tensor_path, meta


def prune(directory: Path, keep: int, protect: set[str]) -> None:
    """Delete all but the newest ``keep`` checkpoints, never those named in ``protect`` (the best one)."""
    found = sorted(directory.glob("step-*.json"))
    for json_path in found[: max(0, len(found) - keep)]:
        if json_path.name in protect:
            continue
        json_path.unlink(missing_ok=True)  # the JSON goes first: a checkpoint without it no longer exists
        json_path.with_suffix(".safetensors").unlink(missing_ok=True)
