"""Character n-gram baselines: interpolated modified Kneser-Ney models of orders 1..N, and the n-gram oracle.

The smoothing is interpolated modified Kneser-Ney (Chen & Goodman 1998, "An Empirical Study of Smoothing
Techniques for Language Modeling", section 3 and their eq. 26), with three discounts per order:

    p_k(w | h) = (max(c(hw) - D(c(hw)), 0) + (D1 N1(h.) + D2 N2(h.) + D3 N3+(h.)) p_{k-1}(w | h')) / sum_w c(hw)

where h is the last k-1 characters, h' the last k-2, N_j(h.) the number of characters seen after h exactly j
times (N3+: three or more), and D(c) = D1, D2, D3 for c = 1, 2, >= 3 (D(0) = 0). At the model's top order c is
the raw count; at every lower order it is the continuation count, the number of distinct characters seen before
hw. A history never seen in training (sum_w c(hw) = 0) falls back to p_{k-1} entirely, which is why orders beyond
the data's support do not diverge. Below order 1 is the uniform distribution over the vocabulary, so every
character of the validation text has a probability > 0. Discounts per order and count type come from the counts
of counts n_1..n_4: Y = n1 / (n1 + 2 n2), D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3 = 3 - 4Y n4/n3; where some
n_j is 0 or an estimate falls outside (0, j], D_j = j / 2 (tiny or very repetitive texts).

Training and evaluation follow a run's split: trained on ``dataset.train``, scored on every character of
``dataset.val`` after the first (what rnntui.core.data.eval_chunks scores), each with as many preceding validation
characters as the order allows (the first n-2 targets use the largest order their context permits).
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rnntui.errors import UserError
from rnntui.analysis import ngram_counts
from rnntui.analysis.ngram_counts import MAX_POSITIONS, Level, NGramCounts

VARIANT = "interpolated modified Kneser-Ney (Chen & Goodman 1998), three discounts per order"
VERSION = 1  # bump when results change, so cached ones are not reused
DEFAULT_ORDER = 8
MAX_ORDER = 20  # Karpathy et al. (2015) compare with up to 20-grams; longer contexts are rarely seen twice
ORACLE_ORDERS = 9  # the lecture's n-gram oracle: n = 1..9
ENTRY_BYTES = 12  # an int64 key and an int32 count per stored n-gram
DENSE_CELLS = 1 << 21  # (targets x vocabulary) probabilities held at once by the oracle
BLOCK = 1 << 21  # validation targets scored at once


class NGramError(UserError):
    pass


def check_order(order: Any, train_chars: int | None = None, val_chars: int | None = None) -> int:
    """The order as an int, or an NGramError that says what to do (the lengths are checked when given)."""
    if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= MAX_ORDER:
        raise NGramError(f"n-gram order must be a whole number from 1 to {MAX_ORDER} (got {order}); try 8")
    if train_chars is None or val_chars is None:
        return order
    if train_chars <= order:
        raise NGramError(f"the training split has {train_chars} characters, too few for {order}-grams; "
                         "lower --order or use a longer text")
    if val_chars < 2:
        raise NGramError(f"the validation split has {val_chars} characters; it needs at least 2 "
                         "(raise --val-fraction or use a longer text)")
    if train_chars > MAX_POSITIONS:
        raise NGramError("the n-gram baseline handles texts up to 2**31 characters")
    return order


def discounts(coc: np.ndarray) -> np.ndarray:
    """[0, D1, D2, D3] from counts of counts (coc[j] = entries with count j), Chen & Goodman's estimates."""
    n = [float(coc[j]) for j in range(5)]
    d = np.array([0.0, 0.5, 1.0, 1.5])
    if min(n[1:5]) > 0:
        y = n[1] / (n[1] + 2 * n[2])
        for j in (1, 2, 3):
            estimate = j - (j + 1) * y * n[j + 1] / n[j]
            if 0 < estimate <= j:
                d[j] = estimate
    return d


def _interpolate(c, total, backoff, lower, d):
    """(max(c - D(c), 0) + backoff * lower) / total where the history was seen (total > 0), else lower."""
    seen = total > 0
    discounted = np.maximum(c - d[np.minimum(c, 3).astype(np.int64)], 0.0)
    return np.where(seen, (discounted + backoff * lower) / np.where(seen, total, 1.0), lower)


def _sweep(level: Level, V: int, queries: np.ndarray, histories: np.ndarray, dense: bool, cont: bool):
    """One pass over a level's table: the id and counts of each query key (-1 and 0 when unseen) and, for each
    history in the sorted array ``histories``, the sums over its continuations: total count and backoff mass
    (raw, and continuation counts if ``cont``), or in ``dense`` mode also the counts of every next symbol."""
    d_raw = discounts(level.raw_coc)
    d_cont = discounts(level.cont_coc) if cont else None
    order = np.argsort(queries)
    sorted_q = queries[order]
    q_id = np.full(len(queries), -1, np.int64)
    q_raw = np.zeros(len(queries), np.int64)
    q_cont = np.zeros(len(queries), np.int64)
    nh = len(histories)
    stats = {name: np.zeros(nh) for name in ("t_raw", "g_raw", "t_cont", "g_cont")}
    dense_raw = np.zeros((nh, V)) if dense else None
    dense_cont = np.zeros((nh, V)) if dense and cont else None
    for start, keys in level.keys.chunks(max(1, ngram_counts.CHUNK // 4)):  # ~100 bytes of work per entry
        raw = level.raw.read(start, start + len(keys)).astype(np.int64)
        cnt = level.cont.read(start, start + len(keys)).astype(np.int64) if cont else None
        lo, hi = np.searchsorted(sorted_q, keys[0]), np.searchsorted(sorted_q, keys[-1], side="right")
        if hi > lo:
            pos = np.minimum(np.searchsorted(keys, sorted_q[lo:hi]), len(keys) - 1)
            hit = keys[pos] == sorted_q[lo:hi]
            which, pos = order[lo:hi][hit], pos[hit]
            q_id[which], q_raw[which] = start + pos, raw[pos]
            if cont:
                q_cont[which] = cnt[pos]
        parent = keys // V
        hl, hh = np.searchsorted(histories, parent[0]), np.searchsorted(histories, parent[-1], side="right")
        if hh <= hl:
            continue
        span = histories[hl:hh]
        idx = np.minimum(np.searchsorted(span, parent), len(span) - 1)
        match = span[idx] == parent
        rows, r = idx[match], raw[match]
        stats["t_raw"][hl:hh] += np.bincount(rows, weights=r, minlength=hh - hl)
        stats["g_raw"][hl:hh] += np.bincount(rows, weights=d_raw[np.minimum(r, 3)], minlength=hh - hl)
        if dense:
            dense_raw[hl + rows, keys[match] % V] = r
        if cont:
            cc = cnt[match]
            stats["t_cont"][hl:hh] += np.bincount(rows, weights=cc, minlength=hh - hl)
            stats["g_cont"][hl:hh] += np.bincount(rows, weights=d_cont[np.minimum(cc, 3)], minlength=hh - hl)
            if dense:
                dense_cont[hl + rows, keys[match] % V] = cc
    return q_id, q_raw, q_cont, stats, dense_raw, dense_cont, d_raw, d_cont


def _score_block(levels: list[Level], V: int, seg: np.ndarray, seg_start: int, first: int, dense: bool):
    """Score the targets seg[first:] (seg[j] is validation position seg_start + j) with the models of every order
    in ``levels``. Returns per order the probability of each target, and in ``dense`` mode each model's top-1
    guess for each target."""
    seg = seg.astype(np.int64)
    t = np.arange(first, len(seg))
    m = len(t)
    target = seg[t]
    lower = np.full((m, V) if dense else m, 1.0 / V)  # the continuation chain, from the uniform distribution up
    model_prev = lower
    vid_prev = np.zeros(len(seg), np.int64)  # the id of the (k-1)-gram ending at each position; 0-grams: root 0
    probs, guesses = [], []
    for level in levels:
        k = level.order
        if k == 1:
            qpos = np.arange(len(seg))
            queries = seg.copy()
        else:
            qpos = np.nonzero(vid_prev[:-1] >= 0)[0] + 1
            queries = vid_prev[qpos - 1] * V + seg[qpos]
        hist = vid_prev[t - 1]
        known = hist >= 0
        histories = np.unique(hist[known])
        cont = level.cont is not None
        q_id, q_raw, q_cont, stats, dense_raw, dense_cont, d_raw, d_cont = _sweep(
            level, V, queries, histories, dense, cont)
        row = np.searchsorted(histories, hist[known])

        def gather(values, shape=m):
            out = np.zeros(shape)
            out[known] = values[row]
            return out

        truncated = seg_start + t < k - 1  # the validation text starts less than k-1 characters before
        if dense:
            counts = gather(dense_raw, (m, V))
            model = _interpolate(counts, gather(stats["t_raw"])[:, None], gather(stats["g_raw"])[:, None],
                                 lower, d_raw)
        else:
            counts = np.zeros(len(seg))
            counts[qpos] = q_raw
            model = _interpolate(counts[t], gather(stats["t_raw"]), gather(stats["g_raw"]), lower, d_raw)
        model[truncated] = model_prev[truncated]
        if cont:
            if dense:
                c = gather(dense_cont, (m, V))
                lower = _interpolate(c, gather(stats["t_cont"])[:, None], gather(stats["g_cont"])[:, None],
                                     lower, d_cont)
            else:
                c = np.zeros(len(seg))
                c[qpos] = q_cont
                lower = _interpolate(c[t], gather(stats["t_cont"]), gather(stats["g_cont"]), lower, d_cont)
        vid_prev = np.full(len(seg), -1, np.int64)
        vid_prev[qpos] = q_id
        model_prev = model
        if dense:
            probs.append(model[np.arange(m), target])
            guesses.append(model.argmax(axis=1))
        else:
            probs.append(model)
    return probs, guesses


def _blocks(val: np.ndarray, max_order: int, size: int):
    """(segment, its first validation position, first target in it) covering every target val[1:] once, each
    segment starting max_order characters before its first target, for context."""
    for first in range(1, len(val), size):
        start = max(0, first - max_order)
        yield np.asarray(val[start:min(first + size, len(val))]), start, first - start


def evaluate(counts: NGramCounts, val: np.ndarray) -> list[dict[str, Any]]:
    """Per order: mean loss in nats and bits per character over val[1:], and the model's size."""
    levels, V = counts.levels, counts.V
    total = np.zeros(len(levels))
    for seg, start, first in _blocks(val, len(levels), BLOCK):
        probs, _ = _score_block(levels, V, seg, start, first, dense=False)
        total += [-np.log(p).sum() for p in probs]
    results, entries = [], 0
    for level, nats in zip(levels, total / (len(val) - 1)):
        entries += level.size
        results.append({"order": level.order, "loss": float(nats), "bpc": float(nats / math.log(2)),
                        "size": entries, "bytes": entries * ENTRY_BYTES})
    return results


def _dataset_key(dataset, max_order: int) -> str:
    content = dataset.fingerprint
    if content is None:  # a text held in memory: hash it (cheap next to counting)
        h = hashlib.sha256()
        for part in (dataset.train, dataset.val):
            for start in range(0, len(part), ngram_counts.CHUNK):
                h.update(np.ascontiguousarray(part[start:start + ngram_counts.CHUNK]).tobytes())
            h.update(b"|")
        content = h.hexdigest()
    spec = {"content": content, "train": len(dataset.train), "val": len(dataset.val),
            "vocab": len(dataset.vocab), "order": max_order, "version": VERSION}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]


def baseline(dataset, max_order: int = DEFAULT_ORDER, cache_dir: Path | None = None,
             progress: Callable[[str], None] | None = None, budget: int | None = None) -> dict[str, Any]:
    """Train n-gram models of orders 1..max_order on ``dataset.train`` and score them on ``dataset.val``.

    Returns ``{"variant", "orders": [{"order", "loss", "bpc", "size", "bytes"}, ...], "train_chars",
    "val_chars", "vocab_size", "seconds", "cached"}``. Loss is in nats per character; size is the number of
    n-grams stored by the model of that order (all orders up to it), bytes that at ENTRY_BYTES each. With
    ``cache_dir`` the result is kept in ``cache_dir/ngram/KEY.json`` for the exact text and split, and the
    counts' work files go in a temporary directory there (they can reach ~16 bytes a character)."""
    max_order = check_order(max_order, len(dataset.train), len(dataset.val))
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / "ngram" / f"{_dataset_key(dataset, max_order)}.json"
        try:
            return {**json.loads(cache_file.read_text()), "cached": True}
        except (OSError, ValueError):
            pass
    started = time.perf_counter()
    work_root = None if cache_dir is None else Path(cache_dir) / "ngram"
    if work_root is not None:
        work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="counts-", dir=work_root) as work:
        counts = NGramCounts(dataset.train, len(dataset.vocab), max_order, Path(work),
                             **({"budget": budget} if budget else {}), progress=progress)
        if progress:
            progress("scoring the validation text")
        orders = evaluate(counts, dataset.val)
    result = {"variant": VARIANT, "orders": orders, "train_chars": len(dataset.train),
              "val_chars": len(dataset.val), "vocab_size": len(dataset.vocab),
              "seconds": round(time.perf_counter() - started, 3)}
    if cache_file is not None:
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(result))
        tmp.replace(cache_file)
    return {**result, "cached": False}


def oracle(dataset, model_top1: np.ndarray, orders: int = ORACLE_ORDERS, cache_dir: Path | None = None,
           ) -> dict[str, Any]:
    """The n-gram oracle of Karpathy et al. (2015), section 4.4: of the model's wrong top-1 guesses on the
    validation text, the share that some n-gram model (n = 1..orders) guesses right.

    ``model_top1[i]`` is the model's most probable character id for ``dataset.val[i + 1]`` (its argmax over the
    same targets as evaluation). The n-gram models are those of ``baseline``; their top-1 is the argmax of the
    full smoothed distribution. Returns ``{"orders", "targets", "model_errors", "removable", "share",
    "by_order": {n: share of the model's errors that order n gets right}}``."""
    orders = check_order(orders, len(dataset.train), len(dataset.val))
    model_top1 = np.asarray(model_top1)
    if model_top1.shape != (len(dataset.val) - 1,):
        raise NGramError(f"the model's guesses must cover the {len(dataset.val) - 1} validation targets "
                         f"(got {model_top1.shape[0] if model_top1.ndim else 0})")
    V = len(dataset.vocab)
    work_root = None if cache_dir is None else Path(cache_dir) / "ngram"
    if work_root is not None:
        work_root.mkdir(parents=True, exist_ok=True)
    errors = removable = 0
    right_by_order = np.zeros(orders, np.int64)
    with tempfile.TemporaryDirectory(prefix="counts-", dir=work_root) as work:
        counts = NGramCounts(dataset.train, V, orders, Path(work))
        for seg, start, first in _blocks(dataset.val, orders, max(1, DENSE_CELLS // V)):
            _, guesses = _score_block(counts.levels, V, seg, start, first, dense=True)
            target = seg[first:].astype(np.int64)
            wrong = model_top1[start + first - 1:start + len(seg) - 1] != target
            right = np.stack([g == target for g in guesses]) & wrong
            errors += int(wrong.sum())
            removable += int(right.any(axis=0).sum())
            right_by_order += right.sum(axis=1)
    share = removable / errors if errors else 0.0
    return {"orders": orders, "targets": len(dataset.val) - 1, "model_errors": errors, "removable": removable,
            "share": share,
            "by_order": {n: (int(r) / errors if errors else 0.0) for n, r in enumerate(right_by_order, 1)}}
