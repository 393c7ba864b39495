"""Where a run computes: the device, whether bfloat16 is native there, and how much memory it has."""

from __future__ import annotations

import os

import torch

from rnntui.core.config import ConfigError, TrainConfig


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


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            return set(next((line for line in f if line.startswith("flags")), "").partition(":")[2].split())
    except OSError:
        return set()


def fast_bf16(device: torch.device) -> bool:
    """Whether bfloat16 matrix products run natively here (AMX or AVX-512 BF16 on the CPU, Ampere+ GPUs)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bfloat16 when asked for, or under "auto" where it is native; None means full precision."""
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
