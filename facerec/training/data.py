"""Datasets on disk → a cache of aligned faces → `tf.data`.

Discovery: every folder that directly holds images is an identity named after
the folder (LFW `lfw-deepfunneled/<Name>/`, `images/<Name>/`, or a user's
`train/<name>/` + `val/<name>/`, which merge). A `manifest.csv` with
`path,identity,masked` (RMFRD) takes precedence and gives the masked flag.

The cache is a folder of HDF5 shards, each written atomically, so an
interrupted `prepare` resumes where it stopped and never leaves a broken shard.
"""

from __future__ import annotations

import csv
import multiprocessing as mp
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from facerec.images import BadInput, is_image_path, load_image

MESH_POINTS = 478
SHARD_SIZE = 256


@dataclass(frozen=True)
class Item:
    path: str
    identity: str
    masked: int = -1  # 1 masked, 0 unmasked, -1 unknown


def data_root(explicit: str | os.PathLike | None = None) -> Path | None:
    """`explicit`, else $FACEREC_DATA, else ../shared/data beside the repo, if it exists."""
    for cand in (explicit, os.environ.get("FACEREC_DATA"), Path(__file__).resolve().parents[3] / "shared" / "data"):
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


def discover(src: str | os.PathLike) -> list[Item]:
    """All images under `src` with their identities, in a stable order."""
    src = Path(src)
    if not src.is_dir():
        raise BadInput(src, "dataset folder not found")
    manifest = src / "manifest.csv"
    if manifest.is_file():
        return _from_manifest(manifest)
    items = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        images = sorted(f for f in filenames if is_image_path(f))
        if images and Path(dirpath) != src:
            name = Path(dirpath).name
            items += [Item(str(Path(dirpath) / f), name) for f in images]
    return items


def _from_manifest(manifest: Path) -> list[Item]:
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    # A file listed under two people would be a label we cannot trust.
    return [
        Item(str(manifest.parent / r["path"]), r["identity"], int(r.get("masked") or -1))
        for r in rows
        if r.get("cross_identity_duplicate", "0") != "1"
    ]


def read_people(path: str | os.PathLike) -> list[str]:
    """Names in an LFW `people*.txt` / `peopleDev*.txt` file (its count lines are skipped)."""
    names = []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and not parts[0].isdigit():
            names.append(parts[0])
    return names


def read_pairs_people(path: str | os.PathLike) -> set[str]:
    """Every person named in an LFW pairs file."""
    people = set()
    for line in Path(path).read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) == 3:
            people.add(parts[0])
        elif len(parts) == 4:
            people.update((parts[0], parts[2]))
    return people


# ---------------------------------------------------------------- preparing


@dataclass
class Prepared:
    """One item's outcome: an aligned face, or the reason there is none."""

    item: Item
    crop: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    mesh: np.ndarray | None = None
    box: np.ndarray | None = None
    n_faces: int = 0
    reason: str | None = None


_worker_detector = None


def _init_worker() -> None:
    global _worker_detector
    from facerec.faces.detect import FaceDetector

    _worker_detector = FaceDetector()


def prepare_item(item: Item, size: int = 112, detector=None) -> Prepared:
    """Detect, keep the main face and align it; never raises for bad files."""
    from facerec.faces.align import aligned_faces

    detector = detector or _worker_detector
    try:
        image = load_image(item.path)
    except BadInput as e:
        return Prepared(item, reason=e.reason)
    faces = detector.detect(image)
    if not faces:
        return Prepared(item, reason="no face detected")
    af = aligned_faces(image, faces[:1], size)[0]
    mesh = af.mesh if af.mesh is not None else np.full((MESH_POINTS, 2), np.nan, np.float32)
    return Prepared(item, af.crop, af.keypoints, mesh, faces[0].box, len(faces))


def _prepare_star(args: tuple[Item, int]) -> Prepared:
    return prepare_item(*args)


def _shards(cache: Path) -> list[Path]:
    return sorted(cache.glob("part-*.h5"))


def _write_shard(cache: Path, index: int, results: list[Prepared], size: int) -> None:
    ok = [r for r in results if r.crop is not None]
    bad = [r for r in results if r.crop is None]
    final = cache / f"part-{index:05d}.h5"
    tmp = final.with_suffix(".h5.tmp")
    str_t = h5py.string_dtype("utf-8")
    with h5py.File(tmp, "w") as f:
        f.attrs["size"] = size
        f.create_dataset("faces", data=np.stack([r.crop for r in ok]) if ok else np.zeros((0, size, size, 3), np.uint8))
        f.create_dataset("keypoints", data=np.array([r.keypoints for r in ok], np.float32).reshape(-1, 5, 2))
        f.create_dataset("mesh", data=np.array([r.mesh for r in ok], np.float16).reshape(-1, MESH_POINTS, 2))
        f.create_dataset("box", data=np.array([r.box for r in ok], np.float32).reshape(-1, 4))
        f.create_dataset("identity", data=[r.item.identity for r in ok], dtype=str_t)
        f.create_dataset("path", data=[r.item.path for r in ok], dtype=str_t)
        f.create_dataset("masked", data=np.array([r.item.masked for r in ok], np.int8))
        f.create_dataset("n_faces", data=np.array([r.n_faces for r in ok], np.int8))
        f.create_dataset("failed_path", data=[r.item.path for r in bad], dtype=str_t)
        f.create_dataset("failed_reason", data=[r.reason for r in bad], dtype=str_t)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def _done_paths(cache: Path) -> set[str]:
    done: set[str] = set()
    for shard in _shards(cache):
        with h5py.File(shard, "r") as f:
            done.update(p.decode() for p in f["path"][:])
            done.update(p.decode() for p in f["failed_path"][:])
    return done


def prepare(
    src: str | os.PathLike,
    cache: str | os.PathLike,
    size: int = 112,
    workers: int | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Detect and align every image of `src` into `cache`; resumes a partial cache.

    Returns the summary `{"images", "faces", "failed": [{"path", "reason"}]}` over the whole cache.
    """
    items = discover(src)[:limit] if limit else discover(src)
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    for stale in cache.glob("*.tmp"):
        stale.unlink()
    existing = _shards(cache)
    if existing:
        with h5py.File(existing[0], "r") as f:
            if int(f.attrs["size"]) != size:
                raise BadInput(cache, f"cache holds {int(f.attrs['size'])} px faces, not {size} px")
    done = _done_paths(cache)
    todo = [it for it in items if it.path not in done]
    next_index = int(existing[-1].stem.split("-")[1]) + 1 if existing else 0
    workers = workers or os.cpu_count() or 1
    for batch in _run(todo, size, workers, progress, len(items) - len(todo), len(items)):
        _write_shard(cache, next_index, batch, size)
        next_index += 1
    return summary(cache, n_images=len(items))


def _run(todo: list[Item], size: int, workers: int, progress: bool, initial: int, total: int) -> Iterator[list[Prepared]]:
    from tqdm import tqdm

    bar = tqdm(total=total, initial=initial, unit="img", disable=not progress, dynamic_ncols=True)
    batch: list[Prepared] = []
    args = [(it, size) for it in todo]
    if workers <= 1:
        _init_worker()
        results: Iterator[Prepared] = map(_prepare_star, args)
        pool = None
    else:
        pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker)
        results = pool.imap(_prepare_star, args, chunksize=4)
    try:
        for r in results:
            batch.append(r)
            bar.update(1)
            if len(batch) == SHARD_SIZE:
                yield batch
                batch = []
        if batch:
            yield batch
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()


def summary(cache: str | os.PathLike, n_images: int | None = None) -> dict:
    faces, failed = 0, []
    for shard in _shards(Path(cache)):
        with h5py.File(shard, "r") as f:
            faces += len(f["path"])
            failed += [{"path": p.decode(), "reason": r.decode()} for p, r in zip(f["failed_path"][:], f["failed_reason"][:])]
    images = n_images if n_images is not None else faces + len(failed)
    return {"images": images, "faces": faces, "failed": failed}


# ---------------------------------------------------------------- reading


_FIELDS = ("faces", "keypoints", "mesh", "box", "identity", "path", "masked")


@dataclass
class Cache:
    """A prepared cache in memory (all shards concatenated)."""

    faces: np.ndarray  # [N, S, S, 3] uint8
    keypoints: np.ndarray  # [N, 5, 2] float32, crop pixels
    mesh: np.ndarray  # [N, 478, 2] float32, crop pixels, NaN where the mesh failed
    box: np.ndarray  # [N, 4] float32 x, y, w, h of the face in the source photo
    identity: np.ndarray  # [N] str
    path: np.ndarray  # [N] str
    masked: np.ndarray  # [N] int8

    def __len__(self) -> int:
        return len(self.path)

    def subset(self, keep: np.ndarray) -> "Cache":
        return Cache(**{k: getattr(self, k)[keep] for k in _FIELDS})


def load_cache(cache: str | os.PathLike) -> Cache:
    shards = _shards(Path(cache))
    if not shards:
        raise BadInput(cache, "no prepared faces here (run `facerec-data prepare` first)")
    parts: dict[str, list] = {k: [] for k in _FIELDS}
    for shard in shards:
        with h5py.File(shard, "r") as f:
            for k in parts:
                v = f[k][:]
                parts[k].append(v.astype(str) if v.dtype.kind == "O" else v)
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    arrays["mesh"] = arrays["mesh"].astype(np.float32)
    return Cache(**arrays)


def as_dataset(cache: Cache):
    """`tf.data.Dataset` of dicts: face uint8 [S,S,3], mesh float32 [478,2], label int32 (index into sorted identities)."""
    from facerec import _quiet  # noqa: F401
    import tensorflow as tf

    names = np.unique(cache.identity)
    labels = np.searchsorted(names, cache.identity).astype(np.int32)
    return tf.data.Dataset.from_tensor_slices({"face": cache.faces, "mesh": cache.mesh, "label": labels})
