"""Approximate nearest-neighbour index of a gallery's templates (faiss IVF), cached beside the gallery.

For galleries too large for an exact scan per face. An inverted file: k-means cells of about
sqrt(N) templates, float16 codes; a query scans the 1/8 of the cells nearest to it (at least 32). On 2 cores
this builds 1 M templates in about 15 s, where an HNSW graph (M 32) had not finished after 20
minutes and IVF-PQ codebooks took 4 minutes, for less recall. The index is built on first use and written to
`<gallery>.faiss`, whose first line holds the fingerprint of the templates it was built from (and of
the build parameters); an index whose fingerprint differs from the gallery's is never used: it is
rebuilt and replaced (atomically, so concurrent readers see the old file or the new one).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import faiss
import numpy as np

PROBE_FRACTION = 8  # a query scans 1/8 of the cells: recall@1 >= 99 % against exact at 1 M (bench_match.py)
MIN_PROBES = 32  # and at least 32: masked faces lie far from their templates, and small galleries scan fast
_TRAIN_PER_CELL = 64  # k-means sample: templates per cell (faiss wants 39 to 256)
_MIN_PER_CELL = 39
_MAGIC = b"facerec-ann 1 "
_BUILD_ROWS = 65536  # templates converted to float32 and added at a time (bounds the build's extra memory)


def spec(n: int) -> str:
    """faiss index_factory string for n templates: about sqrt(n) cells (one for tiny galleries)."""
    return f"IVF{max(1, min(round(n ** 0.5), n // _MIN_PER_CELL))},SQfp16"


def fingerprint(templates: np.ndarray) -> str:
    """sha256 of the templates (in the order the index numbers them) and of the build parameters."""
    h = hashlib.sha256(f"{spec(len(templates))} {_TRAIN_PER_CELL} {templates.shape} {templates.dtype}\n".encode())
    h.update(memoryview(np.ascontiguousarray(templates)).cast("B"))
    return h.hexdigest()


class AnnIndex:
    """IVF index of [N, D] templates; `search` gives (scores, rows) like `facerec.search.scan.top_templates`."""

    def __init__(self, index: faiss.Index):
        self.index = index

    @classmethod
    def build(cls, templates: np.ndarray) -> "AnnIndex":
        index = faiss.index_factory(templates.shape[1], spec(len(templates)), faiss.METRIC_INNER_PRODUCT)
        index.cp.min_points_per_centroid = 1  # a tiny gallery has one cell: no k-means warning on stderr
        sample = np.random.default_rng(0).permutation(len(templates))[:_TRAIN_PER_CELL * index.nlist]
        index.train(templates[np.sort(sample)].astype(np.float32))
        for lo in range(0, len(templates), _BUILD_ROWS):
            index.add(templates[lo:lo + _BUILD_ROWS].astype(np.float32))
        return cls(index)

    @classmethod
    def cached(cls, templates: np.ndarray, cache: str | os.PathLike | None) -> "AnnIndex":
        """The index of `templates`: read from `cache` if it was built from exactly these, else built
        (and written to `cache`, when given and writable)."""
        fp = fingerprint(templates)
        if cache is not None:
            found = _read(Path(cache), fp)
            if found is not None:
                return cls(found)
        ann = cls.build(templates)
        if cache is not None:
            with contextlib.suppress(OSError):  # a read-only folder: the index still serves, uncached
                _write(Path(cache), fp, ann.index)
        return ann

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) [Q, k] best first; rows -1 (score -inf) where fewer than k were found."""
        q = np.ascontiguousarray(queries, np.float32).reshape(-1, self.index.d)
        k = min(k, self.index.ntotal)
        self.index.nprobe = min(self.index.nlist, max(MIN_PROBES, self.index.nlist // PROBE_FRACTION))
        scores, rows = self.index.search(q, k)
        return np.where(rows >= 0, scores, -np.inf).astype(np.float32), rows


def _read(path: Path, fp: str) -> faiss.Index | None:
    """The index in `path` if its header carries fingerprint `fp`; None if missing, stale or unreadable."""
    try:
        with open(path, "rb") as f:
            if f.readline() != _MAGIC + fp.encode() + b"\n":
                return None
            return faiss.read_index(faiss.PyCallbackIOReader(f.read))
    except (OSError, RuntimeError):  # RuntimeError: faiss could not parse the rest
        return None


def _write(path: Path, fp: str, index: faiss.Index) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_MAGIC + fp.encode() + b"\n")
            faiss.write_index(index, faiss.PyCallbackIOWriter(f.write))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
