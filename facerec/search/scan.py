"""Exact top-K scan of float16 templates: faiss's SIMD scalar-quantizer scanner run over our own array.

An exact scan is bound by the bytes it reads, so templates are held as float16 (half of float32)
and scanned without a copy: faiss's fp16 codes are the IEEE half bytes of the array. The rows are
split over the CPU cores (faiss releases the GIL), and a batch of queries is scanned block by
block, so each block is read from memory once for the whole batch and from cache for each query.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import faiss
import numpy as np

_BLOCK = 8192  # rows (2 MB of 128-d float16) scanned for every query of a batch before the next block
_HEAP_BYTES = 64 << 20  # per-query heaps of one batch (scores + rows, on each core) stay under this
_OFFSET = 32  # faiss labels a scanned row (list_no << 32 | offset); we pass a block's first row as list_no


def top_templates(templates: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) [Q, min(k, N)] of each query's k most similar templates (inner product), best first.

    `templates` is a C-contiguous [N, D] float16 array; `queries` [Q, D] float32.
    """
    n, d = templates.shape
    k = min(k, n)
    q = np.ascontiguousarray(queries, np.float32).reshape(-1, d)
    if k < 1:
        return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
    codes = templates.view(np.uint8)  # [N, 2D]: faiss's QT_fp16 codes
    cores = max(1, min(len(os.sched_getaffinity(0)), n // _BLOCK or 1))
    cuts = np.linspace(0, n, cores + 1).astype(np.int64)
    per_batch = max(1, _HEAP_BYTES // (12 * k * cores))
    scores, rows = [], []
    with ThreadPoolExecutor(cores) as pool:
        for b in range(0, len(q), per_batch):
            qb = q[b:b + per_batch]
            parts = list(pool.map(lambda c: _scan(codes, d, qb, int(cuts[c]), int(cuts[c + 1]), k), range(cores)))
            s = np.concatenate([p[0] for p in parts], axis=1)
            r = np.concatenate([p[1] for p in parts], axis=1)
            order = np.argsort(-s, axis=1, kind="stable")[:, :k]
            scores.append(np.take_along_axis(s, order, 1))
            rows.append(np.take_along_axis(r, order, 1))
    return np.concatenate(scores), np.concatenate(rows)


def _scan(codes: np.ndarray, d: int, queries: np.ndarray, lo: int, hi: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Unsorted top-k (scores, rows) of rows [lo, hi) for each query: faiss min-heaps, filled block by block."""
    sq = faiss.ScalarQuantizer(d, faiss.ScalarQuantizer.QT_fp16)
    scanners = []
    for qv in queries:
        s = sq.select_InvertedListScanner(faiss.METRIC_INNER_PRODUCT, None, True, None, False)
        s.set_query(faiss.swig_ptr(qv))
        scanners.append(s)
    scores = np.full((len(queries), k), -np.inf, np.float32)
    labels = np.full((len(queries), k), -1, np.int64)
    for start in range(lo, hi, _BLOCK):
        end = min(start + _BLOCK, hi)
        block = faiss.swig_ptr(codes[start:end])
        for s, row_s, row_l in zip(scanners, scores, labels):
            s.set_list(start, 0.0)
            s.scan_codes(end - start, block, None, faiss.swig_ptr(row_s), faiss.swig_ptr(row_l), k)
    rows = np.where(labels >= 0, (labels >> _OFFSET) + (labels & ((1 << _OFFSET) - 1)), -1)
    return scores, rows
