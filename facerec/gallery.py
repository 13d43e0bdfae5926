"""The gallery: one HDF5 file of L2-normalised templates, searched by cosine similarity.

Schema (plain h5py can read it):
  embeddings [N, D] float32   identities [N] utf-8   template_kind [N] utf-8 ("photo" | "synthetic-mask:<style>")
  source [N] utf-8            thumbnails [N] vlen uint8 (JPEG of the aligned face; empty for synthetic rows)
  attrs: schema_version, model_fingerprint, embedding_dim, facerec_version

Every write replaces the file atomically (temporary file in the same folder,
fsync, rename) under an advisory lock, so a killed process leaves the old or the
new gallery, concurrent writers never lose each other's entries, and readers
never see a partial file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from facerec import __version__

SCHEMA_VERSION = 1
_STR = h5py.string_dtype("utf-8")
_CHUNK = 65536  # templates scored at once: bounds search memory at Q × 65536 floats


class GalleryError(Exception):
    """A gallery that cannot be used, with a one-line reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def default_gallery_path() -> Path:
    """$FACEREC_GALLERY, else ~/.facerec/gallery.h5."""
    return Path(os.environ.get("FACEREC_GALLERY") or Path.home() / ".facerec" / "gallery.h5")


def validate_name(name: str) -> str:
    """A person's name as stored: Unicode welcome; empty, path separators and control characters refused."""
    name = unicodedata.normalize("NFC", name.strip())
    if not name:
        raise ValueError("name is empty")
    if "/" in name or "\\" in name:
        raise ValueError(f"name {name!r} contains a path separator")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise ValueError(f"name {name!r} contains control characters")
    if len(name) > 200:
        raise ValueError("name is longer than 200 characters")
    return name


@dataclass
class Gallery:
    model_fingerprint: str
    embedding_dim: int
    embeddings: np.ndarray = None  # [N, D] float32
    identities: np.ndarray = None  # [N] object (str)
    template_kind: np.ndarray = None
    source: np.ndarray = None
    thumbnails: list = field(default_factory=list)  # N bytes objects

    def __post_init__(self):
        if self.embeddings is None:
            self.embeddings = np.zeros((0, self.embedding_dim), np.float32)
            self.identities = np.array([], object)
            self.template_kind = np.array([], object)
            self.source = np.array([], object)
        self._index = None

    def __len__(self) -> int:
        return len(self.identities)

    # ------------------------------------------------------------ file I/O

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Gallery":
        path = Path(path)
        if not path.exists():
            raise GalleryError(path, "no gallery here (create one with `facerec-gallery build` or `enroll`)")
        if path.is_dir():
            raise GalleryError(path, "is a directory, not a gallery file")
        try:
            with h5py.File(path, "r") as f:
                version = int(f.attrs.get("schema_version", -1))
                if version != SCHEMA_VERSION:
                    raise GalleryError(path, f"not a facerec gallery (schema_version {version}, expected {SCHEMA_VERSION})")
                g = cls(
                    model_fingerprint=str(f.attrs["model_fingerprint"]),
                    embedding_dim=int(f.attrs["embedding_dim"]),
                    embeddings=f["embeddings"][:].astype(np.float32),
                    identities=f["identities"].asstr()[:].astype(object),
                    template_kind=f["template_kind"].asstr()[:].astype(object),
                    source=f["source"].asstr()[:].astype(object),
                    thumbnails=[bytes(t) for t in f["thumbnails"][:]],
                )
        except GalleryError:
            raise
        except (OSError, KeyError, ValueError) as e:
            raise GalleryError(path, f"corrupt or not a gallery file ({str(e).splitlines()[0][:100]})") from None
        n = len(g.identities)
        if g.embeddings.shape != (n, g.embedding_dim) or not (len(g.template_kind) == len(g.source) == len(g.thumbnails) == n):
            raise GalleryError(path, "corrupt gallery (datasets disagree in length)")
        return g

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically: a reader or a crash sees the old file or the new one, never a mix."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w+b") as fh, h5py.File(fh, "w") as f:
                f.attrs["schema_version"] = SCHEMA_VERSION
                f.attrs["model_fingerprint"] = self.model_fingerprint
                f.attrs["embedding_dim"] = self.embedding_dim
                f.attrs["facerec_version"] = __version__
                f.create_dataset("embeddings", data=self.embeddings.astype(np.float32), chunks=True if len(self) else None,
                                 maxshape=(None, self.embedding_dim))
                f.create_dataset("identities", data=list(self.identities), dtype=_STR)
                f.create_dataset("template_kind", data=list(self.template_kind), dtype=_STR)
                f.create_dataset("source", data=list(self.source), dtype=_STR)
                thumbs = f.create_dataset("thumbnails", (len(self),), dtype=h5py.vlen_dtype(np.uint8))
                for i, t in enumerate(self.thumbnails):
                    thumbs[i] = np.frombuffer(t, np.uint8)
                f.flush()
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    # ------------------------------------------------------------ editing

    def check_model(self, fingerprint: str, path: str | os.PathLike = "gallery") -> None:
        if fingerprint != self.model_fingerprint:
            raise GalleryError(path, f"made with another model (gallery model {self.model_fingerprint[:12]}, "
                                     f"this model {fingerprint[:12]}): rebuild it with this model or pass the other one")

    def add(self, identity: str, embeddings: np.ndarray, kinds: list[str], sources: list[str], thumbnails: list[bytes]) -> None:
        identity = validate_name(identity)
        e = np.asarray(embeddings, np.float32).reshape(-1, self.embedding_dim)
        self.embeddings = np.concatenate([self.embeddings, e])
        self.identities = np.concatenate([self.identities, np.array([identity] * len(e), object)])
        self.template_kind = np.concatenate([self.template_kind, np.array(kinds, object)])
        self.source = np.concatenate([self.source, np.array(sources, object)])
        self.thumbnails = self.thumbnails + list(thumbnails)
        self._index = None

    def remove(self, identity: str) -> int:
        keep = self.identities != identity
        removed = int((~keep).sum())
        self.embeddings, self.identities = self.embeddings[keep], self.identities[keep]
        self.template_kind, self.source = self.template_kind[keep], self.source[keep]
        self.thumbnails = [t for t, k in zip(self.thumbnails, keep) if k]
        self._index = None
        return removed

    def people(self) -> dict[str, dict]:
        """name → {"templates": n, "photos": n} in name order."""
        out: dict[str, dict] = {}
        for name, kind in zip(self.identities, self.template_kind):
            d = out.setdefault(name, {"templates": 0, "photos": 0})
            d["templates"] += 1
            d["photos"] += kind == "photo"
        return dict(sorted(out.items()))

    def thumbnail(self, identity: str) -> bytes | None:
        """JPEG of the first enrolled photo of `identity`."""
        for name, kind, t in zip(self.identities, self.template_kind, self.thumbnails):
            if name == identity and kind == "photo" and t:
                return t
        return None

    # ------------------------------------------------------------ search

    def _grouped(self):
        """Templates reordered so each identity is contiguous: (order, names, group starts)."""
        if self._index is None:
            names, codes = np.unique(self.identities.astype(str), return_inverse=True)
            order = np.argsort(codes, kind="stable")
            starts = np.r_[0, np.flatnonzero(np.diff(codes[order])) + 1]
            self._index = (order, names, starts)
        return self._index

    def search(self, queries: np.ndarray, k: int = 5, aggregate: str = "max") -> list[list[tuple[str, float]]]:
        """Top-k identities per query, best first. An identity's score is its best template's cosine
        similarity (`max`), or the mean of its two best (`top2`; its single template if it has one)."""
        q = np.asarray(queries, np.float32).reshape(-1, self.embedding_dim)
        if len(self) == 0:
            return [[] for _ in q]
        order, names, starts = self._grouped()
        ends = np.r_[starts[1:], len(order)]
        scores = np.empty((len(q), len(names)), np.float32)
        g = 0
        while g < len(names):  # chunks of whole identities, about _CHUNK templates each
            g_end = max(g + 1, int(np.searchsorted(starts, starts[g] + _CHUNK, "right")) - 1)
            g_end = min(g_end, len(names))
            lo, hi = starts[g], ends[g_end - 1]
            sims = q @ self.embeddings[order[lo:hi]].T  # [Q, templates of these identities]
            local = starts[g:g_end] - lo
            best = np.maximum.reduceat(sims, local, axis=1)
            if aggregate == "top2":
                sizes = ends[g:g_end] - starts[g:g_end]
                is_best = sims == np.repeat(best, sizes, axis=1)
                n_best = np.add.reduceat(is_best.astype(np.int32), local, axis=1)
                second = np.maximum.reduceat(np.where(is_best, -np.inf, sims), local, axis=1)
                second = np.where((n_best > 1) | ~np.isfinite(second), best, second)
                best = (best + second) / 2
            elif aggregate != "max":
                raise ValueError(f"unknown aggregate {aggregate!r} (max, top2)")
            scores[:, g:g_end] = best
            g = g_end
        k = min(k, len(names))
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        results = []
        for i in range(len(q)):
            idx = top[i][np.argsort(-scores[i, top[i]], kind="stable")]
            results.append([(str(names[j]), float(scores[i, j])) for j in idx])
        return results


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Exclusive advisory lock serialising writers of `path` (a sidecar `.lock` file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def editing(path: str | os.PathLike, fingerprint: str, dim: int, create: bool = True, new: bool = False) -> Iterator[Gallery]:
    """Read-modify-write `path` under the lock; the change lands only if the block completes.

    `new=True` starts from an empty gallery (build); otherwise the file must exist unless `create`.
    """
    with locked(path):
        # Under the lock, temporary files can only be left over from writers that were killed.
        for stale in Path(path).parent.glob(f".{Path(path).name}.*.tmp"):
            stale.unlink(missing_ok=True)
        if new or (create and not Path(path).exists()):
            g = Gallery(model_fingerprint=fingerprint, embedding_dim=dim)
        else:
            g = Gallery.load(path)
            g.check_model(fingerprint, path)
        yield g
        g.save(path)
