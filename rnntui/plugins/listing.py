"""What the registry holds, as plain rows (JSON-ready dicts): the cells, the corpora and the plugins. `rnntui cells`,
`rnntui corpora`, `rnntui plugins` and the app's screens (through rnntui.engine.inventory) all show these rows."""

from __future__ import annotations

import json
from typing import Any

import torch

from rnntui.core.cells import count_parameters
from rnntui.plugins.contract import description_of, hyperparameters_of
from rnntui.plugins.registry import PluginError, Registry


def _json_safe(options: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(options, default=repr))


def parameter_count(cell_class: type, input_size: int, hidden_size: int) -> int | None:
    """One layer's parameters at these sizes (None when the cell cannot be built at them)."""
    for device in ("meta", "cpu"):  # meta: counts without allocating; some cells may insist on real tensors
        try:
            with torch.device(device):
                return count_parameters(cell_class(input_size, hidden_size))
        except Exception:
            continue
    return None


def cell_rows(registry: Registry, input_size: int = 256, hidden_size: int = 256,
              only: str | None = None) -> list[dict[str, Any]]:
    """One row per registered cell (or only the one named): its plugin, description, options, whether it has a
    whole-sequence path, and its parameter count for one layer of the given sizes."""
    rows = []
    for name, cls in registry.cells.items():
        if only is not None and name != only:
            continue
        info = registry.plugin_of("cell", name)
        description = description_of(cls)
        rows.append({
            "name": name, "plugin": info.name if info else "", "plugin_version": info.version if info else "",
            "source": info.source if info else "", "summary": " ".join(description.split("\n\n")[0].split()),
            "description": description, "hyperparameters": _json_safe(hyperparameters_of(cls)),
            "sequence_path": getattr(cls, "forward_sequence", None) is not None,
            "input_size": input_size, "hidden_size": hidden_size,
            "parameters": parameter_count(cls, input_size, hidden_size),
        })
    return rows


def corpus_rows(registry: Registry) -> list[dict[str, Any]]:
    """One row per registered corpus, by name: its plugin, size (when known cheaply), whether it is available
    offline now, description, source, licence, download URL and options."""
    rows = []
    for name in sorted(registry.corpora):
        corpus = registry.corpora[name]
        try:
            offline = corpus.is_available()
        except Exception:  # a plugin's own availability check that fails: not available
            offline = False
        rows.append({"name": name, "plugin": registry.owners.get(("corpus", name), "?"), "size": corpus.size_hint(),
                     "offline": offline, "description": corpus.description, "source": corpus.source,
                     "licence": corpus.licence, "url": corpus.url, "options": _json_safe(dict(corpus.options))})
    return rows


def _error_text(error: PluginError) -> str:
    head = f"{error.stage}{f' of {error.item}' if error.item else ''}: {error.message}"
    return f"{head}\n{error.traceback}".rstrip()


def plugin_rows(registry: Registry) -> list[dict[str, Any]]:
    """One row per plugin found (loaded, skipped or failed): name, version, source, location, what it registered,
    a status, its failures (with tracebacks) and why it was not loaded."""
    rows = []
    for info in registry.plugins.values():
        errors = [_error_text(e) for e in info.errors]
        status = ("✗ failed" if errors and not (info.cells or info.corpora) else
                  f"⚠ {len(errors)} problem(s)" if errors else "✓ loaded" if info.loaded else "– not loaded")
        rows.append({"name": info.name, "version": info.version or "", "source": info.source,
                     "location": info.location, "cells": list(info.cells), "corpora": list(info.corpora),
                     "errors": errors, "note": info.note, "status": status})
    return rows
