"""What the units track and how the gates behave, from a Recording (rnntui.core.inspection).

Units are ranked for each text feature (rnntui.core.features) by the absolute Pearson correlation of their
activation with the feature over the text, and for binary features also scored by the area under the ROC curve
(the probability that the unit is higher at a random position where the feature is on than at one where it is
off; 0.5 is chance, below 0.5 the unit turns off). Gate saturation follows Karpathy, Johnson & Fei-Fei 2015: the
fraction of characters at which each unit's gate is below 0.1 (left-saturated) and above 0.9 (right-saturated).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from rnntui.core.data import DataError
from rnntui.core.features import Feature
from rnntui.core.inspection import Recording, centred

TOP_UNITS = 10  # units listed per feature
LEFT, RIGHT = 0.1, 0.9  # the paper's saturation thresholds
MEMORY_FRACTION = 0.5  # a unit whose memory gate keeps the state at least this often is called out as memory


def correlations(recording: Recording, values: np.ndarray) -> np.ndarray:
    """The Pearson correlation of every unit (the columns of recording.matrix) with ``values`` (one per char)."""
    if len(values) != len(recording.text):
        raise ValueError(f"{len(values)} feature values for a text of {len(recording.text)} characters")
    units = recording.centred
    return units.T @ centred(np.asarray(values, dtype=np.float64)).astype(units.dtype)


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x``, ties sharing the mean of the ranks they span."""
    order = np.argsort(x, kind="stable")
    ordered = x[order]
    starts_group = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(starts_group)
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x))
    ranks[order] = ((starts + 1 + ends) / 2)[np.cumsum(starts_group) - 1]
    return ranks


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve of ``scores`` predicting binary ``labels`` (Mann-Whitney U; ties count half).
    None when the labels are all one class."""
    positive = np.asarray(labels) > 0.5
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return None
    ranks = average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def rank_units(recording: Recording, values: np.ndarray, binary: bool = False, top: int = TOP_UNITS
               ) -> list[dict[str, Any]]:
    """The ``top`` units that track ``values`` best, by |correlation|, best first: JSON-ready
    ``{"layer", "unit", "kind", "score" (the signed correlation), "auc" (binary features; else None)}``.
    Empty when the feature does not vary over the text (nothing to track)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2 or np.all(values == values[0]):
        return []
    r = correlations(recording, values)
    _, units = recording.matrix
    ranked = []
    for j in np.argsort(-np.abs(r), kind="stable")[:top]:
        unit = units[j]
        auc = roc_auc(recording.activation(unit), values) if binary else None
        ranked.append({"layer": unit.layer, "unit": unit.index, "kind": unit.kind, "score": round(float(r[j]), 4),
                       "auc": None if auc is None else round(auc, 4)})
    return ranked


def pick_features(available: Mapping[str, Feature], names: Iterable[str] | None = None) -> list[Feature]:
    """The features called ``names`` (all of them if None), refusing a name that is not registered."""
    if names is None:
        return list(available.values())
    picked = []
    for name in names:
        if name not in available:
            raise DataError(f"no feature {name!r}; choose one of: {', '.join(available)}")
        picked.append(available[name])
    return picked


def rank_features(recording: Recording, features: Iterable[Feature], top: int = TOP_UNITS
                  ) -> dict[str, list[dict[str, Any]]]:
    """For each feature, its best units (``rank_units``): the JSON of ``rnntui inspect``."""
    return {f.name: rank_units(recording, f(recording.text), f.binary, top) for f in features}


def gate_saturation(recording: Recording, left: float = LEFT, right: float = RIGHT,
                    memory_fraction: float = MEMORY_FRACTION) -> list[dict[str, Any]]:
    """Per layer and gate, the fraction of characters each unit spends left- (< ``left``) and right-saturated
    (> ``right``): ``{"layer", "gate", "left": [...], "right": [...]}``, one number per unit. For a gate that keeps
    the state when saturated (the cell's ``memory_gates``), also ``"keeps"`` (the side) and ``"memory"``: the
    units saturated on that side at least ``memory_fraction`` of the time, most saturated first (the paper's
    right-saturated forget gates: cells that integrate over long stretches). Empty for a cell without gates."""
    report = []
    for layer, gates in enumerate(recording.gates, 1):
        for name, values in gates.items():
            fractions = {"left": (values < left).mean(axis=0), "right": (values > right).mean(axis=0)}
            entry: dict[str, Any] = {"layer": layer, "gate": name,
                                     **{side: np.round(f, 4).tolist() for side, f in fractions.items()}}
            side = recording.memory_gates.get(name)
            if side in fractions:
                kept = fractions[side]
                order = np.argsort(-kept, kind="stable")
                entry["keeps"] = side
                entry["memory"] = [int(i) for i in order if kept[i] >= memory_fraction]
            report.append(entry)
    return report
