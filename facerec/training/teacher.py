"""Precompute a teacher's embeddings of the unmasked training faces, once per face.

They are the targets of mask-invariant distillation: the student's embedding of a (synthetically)
masked crop is pulled toward the teacher's embedding of the same photo unmasked. Teachers:
"sface" (OpenCV Zoo's SFace on our aligned crop, in-process) and "dlib" (the dlib peer's descriptor
of the photo's face box, in worker processes: it is slow). Stored beside the caches in
`teacher-<name>.h5`, keyed by photo path, so a new cache only computes its new faces.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import h5py
import numpy as np

from facerec.training.data import Cache

TEACHERS = ("sface", "dlib")
DIM = 128
_peer = None


def _init() -> None:
    global _peer
    from facerec.runtime.peer import DlibPeer

    _peer = DlibPeer()


def _embed(args: tuple[str, np.ndarray]) -> np.ndarray:
    from facerec.images import load_image

    path, box = args
    v = _peer.embed_photo(load_image(path), box)
    return np.full(DIM, np.nan, np.float32) if v is None else v


def _dlib(cache: Cache, todo: list[int], workers: int | None, progress: bool) -> list[np.ndarray]:
    from tqdm import tqdm

    args = [(cache.path[i], cache.box[i]) for i in todo]
    with mp.get_context("spawn").Pool(workers or os.cpu_count(), initializer=_init) as pool:
        # disable=None: tqdm draws the bar on a terminal only, never into a training log.
        return list(tqdm(pool.imap(_embed, args, chunksize=8), total=len(args), desc="teacher",
                         disable=None if progress else True))


def _sface(cache: Cache, todo: list[int]) -> list[np.ndarray]:
    import cv2

    from facerec.runtime.sface import INPUT_SIZE, SFaceNetwork

    net, out = SFaceNetwork(), []
    for start in range(0, len(todo), 512):
        faces = cache.faces[np.asarray(todo[start:start + 512])]
        if faces.shape[1] != INPUT_SIZE:
            faces = np.stack([cv2.resize(f, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA) for f in faces])
        out.extend(net.embed(faces))
    return out


def teacher_targets(name: str, cache: Cache, store: str | os.PathLike, workers: int | None = None,
                    progress: bool = True) -> np.ndarray:
    """[N, 128] embeddings by teacher `name` of `cache`'s unmasked faces (NaN rows where it found none),
    computing (and storing) only the missing ones."""
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r}; choose from {', '.join(TEACHERS)}")
    store = Path(store)
    known: dict[str, np.ndarray] = {}
    if store.exists():
        with h5py.File(store, "r") as f:
            known = dict(zip(f["path"][:].astype(str), f["embedding"][:]))
    todo = [i for i, p in enumerate(cache.path) if p not in known]
    if todo:
        vecs = _sface(cache, todo) if name == "sface" else _dlib(cache, todo, workers, progress)
        known.update(zip((cache.path[i] for i in todo), vecs))
        tmp = store.with_suffix(".tmp")
        with h5py.File(tmp, "w") as f:
            f.create_dataset("path", data=list(known), dtype=h5py.string_dtype("utf-8"))
            f.create_dataset("embedding", data=np.stack(list(known.values())).astype(np.float32))
        os.replace(tmp, store)
    return np.stack([known[p] for p in cache.path])
