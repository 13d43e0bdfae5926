"""Precompute the dlib peer's descriptors of unmasked training faces, once.

They are the targets of mask-invariant distillation: the student's embedding of
a (synthetically) masked crop is pulled toward the teacher's embedding of the
same photo unmasked. Stored beside the caches in an HDF5 file keyed by path.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import h5py
import numpy as np

from facerec.data import Cache

_peer = None


def _init() -> None:
    global _peer
    from facerec.peer import DlibPeer

    _peer = DlibPeer()


def _embed(args: tuple[str, np.ndarray]) -> np.ndarray:
    from facerec.images import load_image

    path, box = args
    v = _peer.embed_photo(load_image(path), box)
    return np.full(128, np.nan, np.float32) if v is None else v


def teacher_targets(cache: Cache, store: str | os.PathLike, workers: int | None = None, progress: bool = True) -> np.ndarray:
    """[N, 128] dlib descriptors for `cache`'s photos, computing (and storing) only the missing ones."""
    from tqdm import tqdm

    store = Path(store)
    known: dict[str, np.ndarray] = {}
    if store.exists():
        with h5py.File(store, "r") as f:
            known = dict(zip(f["path"][:].astype(str), f["embedding"][:]))
    todo = [i for i, p in enumerate(cache.path) if p not in known]
    if todo:
        args = [(cache.path[i], cache.box[i]) for i in todo]
        with mp.get_context("spawn").Pool(workers or os.cpu_count(), initializer=_init) as pool:
            vecs = list(tqdm(pool.imap(_embed, args, chunksize=8), total=len(args), disable=not progress, desc="teacher"))
        known.update(zip((cache.path[i] for i in todo), vecs))
        tmp = store.with_suffix(".tmp")
        with h5py.File(tmp, "w") as f:
            f.create_dataset("path", data=list(known), dtype=h5py.string_dtype("utf-8"))
            f.create_dataset("embedding", data=np.stack(list(known.values())).astype(np.float32))
        os.replace(tmp, store)
    return np.stack([known[p] for p in cache.path])
