"""The gallery: one HDF5 file of L2-normalised templates, searched by cosine similarity.

Schema (plain h5py can read it; see docs/gallery.md and docs/search.md):
  embeddings [N, D] float16   identities [N] utf-8   template_kind [N] utf-8 ("photo" | "synthetic-mask:<style>")
  source [N] utf-8            thumbnails [N] vlen uint8 (JPEG of the aligned face; empty for synthetic rows)
  photo_sha256 [N] utf-8 (the enrolled file's content hash; optional: files before it load with "")
  attrs: schema_version (2; version 1, float32 embeddings, still loads), model_fingerprint,
  embedding_dim, facerec_version; optional `threshold` with threshold_far, threshold_strangers and
  threshold_people (the gallery's own open-set threshold: `facerec-gallery calibrate`)
Templates are held, stored and scanned as float16: an exact scan is bound by the bytes it reads,
and RMFRD/LFW rank-1 measured unchanged by the rounding (docs/search.md). Rows of one identity are
kept contiguous (in enrolment order), so search scores them as a slice, without copying.

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

SCHEMA_VERSION = 2
TEMPLATE_DTYPE = np.float16
_READABLE_SCHEMAS = (1, 2)  # 1: float32 embeddings, rounded to float16 on load
AGGREGATES = ("centroid", "max", "top2")  # the first is the default
INDEXES = ("exact", "ann")
_STR = h5py.string_dtype("utf-8")
_BYTES = h5py.vlen_dtype(np.uint8)
# Search retrieves the _SLACK × k × (templates per identity) best templates, then scores their identities
# from all of their templates; exact search retrieves _GROWTH times more until that provably is the top-k.
_SLACK = 4
_GROWTH = 8
_LOAD_ROWS = 65536  # schema-1 rows converted to float16 at a time (bounds the load's extra memory)
# Bidirectional overrides/isolates would let a name rewrite how a terminal line reads.
_BIDI = set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))
_JOINERS = {0x200C, 0x200D}  # zero-width (non-)joiner: part of Persian, Indic and emoji names


class GalleryError(Exception):
    """A gallery that cannot be used, with a one-line reason (str: "PATH: reason")."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def default_gallery_path() -> Path:
    """$FACEREC_GALLERY, else ~/.facerec/gallery.h5."""
    return Path(os.environ.get("FACEREC_GALLERY") or Path.home() / ".facerec" / "gallery.h5")


def validate_name(name: str) -> str:
    """A person's name as stored (NFC, outer spaces trimmed). Any script is welcome; empty names, path
    separators, control/format characters (except zero-width joiners) and line breaks are refused."""
    name = unicodedata.normalize("NFC", str(name).strip())
    if not name:
        raise ValueError("name is empty")
    if "/" in name or "\\" in name:
        raise ValueError(f"name {name!r} contains a path separator")
    for c in name:
        cat = unicodedata.category(c)
        if (cat.startswith("C") and ord(c) not in _JOINERS) or cat in ("Zl", "Zp") or ord(c) in _BIDI:
            raise ValueError(f"name {name!r} contains a control character (U+{ord(c):04X})")
    if len(name) > 200:
        raise ValueError("name is longer than 200 characters")
    return name


@dataclass
class Gallery:
    """Templates in memory; `load`/`save` move them to and from the HDF5 file."""

    model_fingerprint: str
    embedding_dim: int
    embeddings: np.ndarray = None  # [N, D] float16
    identities: np.ndarray = None  # [N] object (str)
    template_kind: np.ndarray = None
    source: np.ndarray = None
    thumbnails: list = field(default_factory=list)  # N bytes objects (b"" = none)
    photo_sha256: np.ndarray = None  # [N] object (str; "" = unknown: enrolled before hashes were kept)
    path: Path | None = None  # the file it was loaded from: the ANN index is cached beside it
    # The gallery's own threshold: {"threshold", "far", "strangers", "people"} (None: not calibrated).
    calibration: dict | None = None

    def __post_init__(self):
        if self.embeddings is None:
            self.embeddings = np.zeros((0, self.embedding_dim), TEMPLATE_DTYPE)
            self.identities = np.array([], object)
            self.template_kind = np.array([], object)
            self.source = np.array([], object)
        if self.photo_sha256 is None:
            self.photo_sha256 = np.full(len(self.identities), "", object)
        self.embeddings = np.ascontiguousarray(self.embeddings, TEMPLATE_DTYPE)
        self._templates_changed()

    def _templates_changed(self) -> None:
        """Forget what was derived from the templates (exact index, ANN index, centroids): rebuilt on the next search."""
        self._index = self._ann = self._cent = None

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
                if version not in _READABLE_SCHEMAS:
                    raise GalleryError(path, f"not a facerec gallery (schema_version {version}, expected "
                                             f"{' or '.join(map(str, _READABLE_SCHEMAS))})")
                g = cls(
                    model_fingerprint=str(f.attrs["model_fingerprint"]),
                    embedding_dim=int(f.attrs["embedding_dim"]),
                    embeddings=_read_templates(f["embeddings"]),
                    identities=f["identities"].asstr()[:].astype(object),
                    template_kind=f["template_kind"].asstr()[:].astype(object),
                    source=f["source"].asstr()[:].astype(object),
                    thumbnails=[bytes(t) for t in f["thumbnails"][:]],
                    photo_sha256=(f["photo_sha256"].asstr()[:].astype(object) if "photo_sha256" in f else None),
                    path=path,
                    calibration=_read_calibration(f.attrs),
                )
        except GalleryError:
            raise
        # HDF5 reports some damage as RuntimeError, and a mangled object as something else than a
        # dataset (AttributeError): found by tests/test_fuzz.py.
        except (OSError, KeyError, ValueError, TypeError, RuntimeError, AttributeError) as e:
            raise GalleryError(path, f"corrupt or not a gallery file ({str(e).splitlines()[0][:100]})") from None
        n = len(g.identities)
        if g.embeddings.shape != (n, g.embedding_dim) or not (
                len(g.template_kind) == len(g.source) == len(g.thumbnails) == len(g.photo_sha256) == n):
            raise GalleryError(path, "corrupt gallery (datasets disagree in length)")
        return g

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically: a reader or a crash sees the old file or the new one, never a mix.

        Call it under `locked(path)` (as `editing` does) when other processes may write too.
        """
        path = Path(path)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
        os.close(fd)
        try:
            with h5py.File(tmp, "w") as f:
                f.attrs["schema_version"] = SCHEMA_VERSION
                f.attrs["model_fingerprint"] = self.model_fingerprint
                f.attrs["embedding_dim"] = self.embedding_dim
                f.attrs["facerec_version"] = __version__
                for key, value in (self.calibration or {}).items():
                    f.attrs[_CALIBRATION_KEYS[key]] = value
                f.create_dataset("embeddings", data=self.embeddings.reshape(-1, self.embedding_dim))
                f.create_dataset("identities", data=self.identities.astype(object), dtype=_STR)
                f.create_dataset("template_kind", data=self.template_kind.astype(object), dtype=_STR)
                f.create_dataset("source", data=self.source.astype(object), dtype=_STR)
                f.create_dataset("photo_sha256", data=self.photo_sha256.astype(object), dtype=_STR)
                thumbs = np.empty(len(self.thumbnails), object)
                for i, t in enumerate(self.thumbnails):
                    thumbs[i] = np.frombuffer(t, np.uint8)
                f.create_dataset("thumbnails", data=thumbs, dtype=_BYTES)
            _fsync(tmp)  # the data is on disk before the name points at it
            os.replace(tmp, path)
            _fsync(path.parent)  # and the rename itself survives a power cut
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    # ------------------------------------------------------------ editing

    def check_model(self, fingerprint: str, path: str | os.PathLike = "gallery") -> None:
        if fingerprint != self.model_fingerprint:
            raise GalleryError(path, f"made with another model (gallery model {self.model_fingerprint[:12]}, "
                                     f"this model {fingerprint[:12]}): rebuild it with this model or pass the other one")

    def add(self, identity: str, embeddings: np.ndarray, kinds: list[str], sources: list[str], thumbnails: list[bytes],
            photo_sha256: str = "") -> None:
        """Append templates of `identity` right after its existing ones (rows stay grouped by identity);
        `photo_sha256` is the content hash of the photo they all come from."""
        identity = validate_name(identity)
        e = np.asarray(embeddings, TEMPLATE_DTYPE).reshape(-1, self.embedding_dim)
        n = len(e)
        if not len(kinds) == len(sources) == len(thumbnails) == n:
            raise ValueError(f"{n} templates but {len(kinds)} kinds, {len(sources)} sources, {len(thumbnails)} thumbnails")
        mine = np.flatnonzero(self.identities == identity)
        at = int(mine[-1]) + 1 if len(mine) else len(self)

        def put(column: np.ndarray, values) -> np.ndarray:
            new = np.empty(n, object)
            new[:] = list(values)
            return np.concatenate([column[:at], new, column[at:]])

        self.embeddings = np.concatenate([self.embeddings[:at], e, self.embeddings[at:]])
        self.identities = put(self.identities, [identity] * n)
        self.template_kind = put(self.template_kind, kinds)
        self.source = put(self.source, sources)
        self.photo_sha256 = put(self.photo_sha256, [photo_sha256] * n)
        self.thumbnails = self.thumbnails[:at] + list(thumbnails) + self.thumbnails[at:]
        self._templates_changed()

    def remove(self, identity: str) -> int:
        """Delete every template of `identity`; returns how many there were."""
        keep = self.identities != validate_name(identity)
        removed = int((~keep).sum())
        self.embeddings, self.identities = self.embeddings[keep], self.identities[keep]
        self.template_kind, self.source = self.template_kind[keep], self.source[keep]
        self.photo_sha256 = self.photo_sha256[keep]
        self.thumbnails = [t for t, k in zip(self.thumbnails, keep) if k]
        self._templates_changed()
        return removed

    def people(self) -> dict[str, dict]:
        """name → {"templates": n, "photos": n} in name order."""
        out: dict[str, dict] = {}
        for name, kind in zip(self.identities, self.template_kind):
            d = out.setdefault(name, {"templates": 0, "photos": 0})
            d["templates"] += 1
            d["photos"] += kind == "photo"
        return dict(sorted(out.items()))

    def enrolled_photo(self, identity: str, sha256: str) -> str | None:
        """The source of `identity`'s templates from a photo with content hash `sha256`, if any."""
        rows = np.flatnonzero((self.identities == identity) & (self.photo_sha256 == sha256)) if sha256 else []
        return str(self.source[rows[0]]) if len(rows) else None

    def people_of_photo(self, sha256: str) -> set[str]:
        """Who is enrolled from a photo with content hash `sha256` (not a stranger's, then)."""
        return set(self.identities[self.photo_sha256 == sha256]) if sha256 else set()

    def thumbnail(self, identity: str) -> bytes | None:
        """JPEG of the first enrolled photo of `identity` that has one."""
        for name, kind, t in zip(self.identities, self.template_kind, self.thumbnails):
            if name == identity and kind == "photo" and t:
                return t
        return None

    # ------------------------------------------------------------ search

    def _grouped(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(templates with each identity contiguous, identity names, first row of each identity)."""
        if self._index is None:
            ids = self.identities
            starts = np.r_[0, np.flatnonzero(ids[1:] != ids[:-1]) + 1]
            names = ids[starts]
            if len(set(names)) == len(names):  # already grouped (as `add` keeps it): no copy
                self._index = (self.embeddings, names, starts)
            else:  # a file written by other tools: group once
                names, codes = np.unique(ids.astype(str), return_inverse=True)
                order = np.argsort(codes, kind="stable")
                starts = np.r_[0, np.flatnonzero(np.diff(codes[order])) + 1]
                self._index = (self.embeddings[order], names.astype(object), starts)
        return self._index

    def search(self, queries: np.ndarray, k: int = 5, aggregate: str = AGGREGATES[0],
               index: str = "exact") -> list[list[tuple[str, float]]]:
        """Top-k identities per query, best first, by cosine similarity (queries L2-normalised).

        `centroid` (the default) scores an identity by the nearer of two means: of its photo
        templates and of its synthetic-mask templates (each L2-normalised): a mean of several photos
        is a steadier picture of a face than its best single photo (RMFRD: docs/gallery.md).
        `max` scores its best template, `top2` the mean of its two best (a single template counts
        alone); with any of them many photos of one person do not add up.
        `index="exact"` scans every template (or centroid); `"ann"` asks the IVF index
        (facerec.search.index) for the nearest ones instead, so an identity none of whose templates it
        returns can be missed. Either way the identities found are scored exactly.
        """
        if aggregate not in AGGREGATES:
            raise ValueError(f"unknown aggregate {aggregate!r} (choose from {', '.join(AGGREGATES)})")
        if index not in INDEXES:
            raise ValueError(f"unknown index {index!r} (choose from {', '.join(INDEXES)})")
        q = np.asarray(queries, np.float32).reshape(-1, self.embedding_dim)
        if len(self) == 0 or k < 1:
            return [[] for _ in q]
        if aggregate == "centroid":
            return self._search_centroids(q, k, index)
        emb, names, starts = self._grouped()
        k = min(k, len(names))
        want = min(len(emb), _SLACK * k * -(-len(emb) // len(names)))  # templates to retrieve per query
        results: list = [None] * len(q)
        pending = np.arange(len(q))
        while len(pending):
            if index == "ann":
                scores, rows = self._ann_index().search(q[pending], want)
            else:
                from facerec.search.scan import top_templates  # faiss: loaded by searches only

                scores, rows = top_templates(emb, q[pending], want)
            retry = []
            for i, s_row, r_row in zip(pending, scores, rows):
                found = self._best_identities(q[i], r_row[r_row >= 0], k, aggregate)
                # An identity with no template retrieved scores at most the last one retrieved.
                bound = s_row[-1] if len(r_row) < len(emb) else -np.inf
                if index == "ann" or (len(found) == k and found[-1][1] >= bound):
                    results[i] = found
                else:
                    retry.append(i)
            pending = np.array(retry, np.int64)
            want = min(len(emb), want * _GROWTH)
        return results

    def _best_identities(self, query: np.ndarray, rows: np.ndarray, k: int, aggregate: str) -> list[tuple[str, float]]:
        """The top-k of the identities owning `rows`, each scored from all of its templates."""
        emb, names, starts = self._grouped()
        groups = np.unique(np.searchsorted(starts, rows, "right") - 1)
        lo = starts[groups]
        sizes = np.r_[starts[1:], len(emb)][groups] - lo
        local = np.r_[0, np.cumsum(sizes)[:-1]]
        template_rows = np.repeat(lo - local, sizes) + np.arange(sizes.sum())
        sims = (emb[template_rows].astype(np.float32) @ query)[None]
        scores = _aggregate(sims, local, sizes, aggregate)[0]
        best = np.argsort(-scores, kind="stable")[:k]
        # float16 templates can put a unit query's cosine a hair over 1: report a cosine.
        return [(str(names[groups[j]]), float(min(scores[j], 1.0))) for j in best]

    def _centroids(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(centroids [C, D] float16 to scan, the same in float32 to score, their identity names [C]):
        per identity, the L2-normalised mean of its photo templates and that of its synthetic-mask
        templates (one row for each kind it has)."""
        if self._cent is None:
            cent, owners = centroids(self.embeddings, self.identities, self.template_kind)
            self._cent = (np.ascontiguousarray(cent, TEMPLATE_DTYPE), cent, owners)
        return self._cent

    def _search_centroids(self, q: np.ndarray, k: int, index: str) -> list[list[tuple[str, float]]]:
        """Top-k identities by their nearer centroid. An identity has at most two, so the best 2k
        centroids hold the top-k; the float16 scan retrieves 4k, scored again in float32 (the ANN
        index may miss some)."""
        cent16, cent, owners = self._centroids()
        want = min(len(cent), 4 * k)
        if index == "ann":
            _, rows = self._ann_index(centroids=True).search(q, want)
        else:
            from facerec.search.scan import top_templates  # faiss: loaded by searches only

            _, rows = top_templates(cent16, q, want)
        results = []
        for query, r_row in zip(q, rows):
            r_row = r_row[r_row >= 0]
            scores = cent[r_row] @ query
            best: dict[str, float] = {}
            for j in np.argsort(-scores, kind="stable"):
                best.setdefault(owners[r_row[j]], float(min(scores[j], 1.0)))
            results.append(list(best.items())[:k])
        return results

    def _ann_index(self, centroids: bool = False):
        """The ANN index of the grouped templates (or of the centroids): cached beside the gallery
        file, rebuilt when stale."""
        if self._ann is None or self._ann[0] != centroids:
            from facerec.search.index import AnnIndex

            suffix = ".centroids.faiss" if centroids else ".faiss"
            cache = self.path.with_name(self.path.name + suffix) if self.path else None
            self._ann = (centroids, AnnIndex.cached(self._centroids()[0] if centroids else self._grouped()[0], cache))
        return self._ann[1]


def centroids(embeddings: np.ndarray, identities, kinds) -> tuple[np.ndarray, np.ndarray]:
    """Per identity, the L2-normalised mean of its "photo" templates and that of its other (synthetic-
    mask) templates: ([C, D] float32, owner name of each row [C]); what "centroid" search scores."""
    tags = ["\0photo" if str(k) == "photo" else "\0mask" for k in kinds]
    keys, rows = np.unique([f"{name}{t}" for name, t in zip(identities, tags)], return_inverse=True)
    sums = np.zeros((len(keys), np.shape(embeddings)[1]), np.float32)
    np.add.at(sums, rows, np.asarray(embeddings, np.float32))
    sums /= np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return sums, np.array([key.rsplit("\0", 1)[0] for key in keys], object)


def _aggregate(sims: np.ndarray, local: np.ndarray, sizes: np.ndarray, aggregate: str) -> np.ndarray:
    """Per-identity scores [Q, G] from template similarities [Q, T] of identities starting at `local`."""
    best = np.maximum.reduceat(sims, local, axis=1)
    if aggregate == "max":
        return best
    is_best = sims == np.repeat(best, sizes, axis=1)
    ties = np.add.reduceat(is_best, local, axis=1, dtype=np.int32)
    second = np.maximum.reduceat(np.where(is_best, -np.inf, sims), local, axis=1)
    second = np.where((ties > 1) | (sizes == 1), best, second)  # tied best, or a single template
    return (best + second) / 2


# Gallery.calibration key -> HDF5 attribute.
_CALIBRATION_KEYS = {"threshold": "threshold", "far": "threshold_far", "strangers": "threshold_strangers",
                     "people": "threshold_people"}


def _read_calibration(attrs) -> dict | None:
    """The stored threshold and how it was chosen (None when the gallery was never calibrated)."""
    if "threshold" not in attrs:
        return None
    out = {key: attrs[name].item() for key, name in _CALIBRATION_KEYS.items() if name in attrs}
    if not isinstance(out["threshold"], float) or not -1.0 <= out["threshold"] <= 1.01:
        raise ValueError(f"threshold attribute is not a cosine: {out['threshold']!r}")
    return out


def _read_templates(dataset: h5py.Dataset) -> np.ndarray:
    """[N, D] float16 from the file's embeddings (float32 in schema 1), converted a slice at a time."""
    out = np.empty(dataset.shape, TEMPLATE_DTYPE)
    for lo in range(0, len(out), _LOAD_ROWS):
        out[lo:lo + _LOAD_ROWS] = dataset[lo:lo + _LOAD_ROWS]
    return out


def _fsync(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Exclusive advisory lock serialising writers of `path` (a sidecar `<path>.lock` file, mode 0600)."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(str(path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def editing(path: str | os.PathLike, fingerprint: str | None, dim: int | None = None, create: bool = True,
            new: bool = False) -> Iterator[Gallery]:
    """Read-modify-write `path` under the lock; the change lands only if the block completes.

    `new=True` starts from an empty gallery (build); otherwise the file must exist unless `create`.
    A gallery made with a model other than `fingerprint` is refused; `fingerprint=None` skips the
    check, for edits that add no embeddings (remove).
    """
    path = Path(path)
    with locked(path):
        # Under the lock, temporary files can only be left over from writers that were killed.
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        if new or (create and not path.exists()):
            if fingerprint is None or dim is None:
                raise GalleryError(path, "no gallery here")
            g = Gallery(model_fingerprint=fingerprint, embedding_dim=dim)
        else:
            g = Gallery.load(path)
            if fingerprint is not None:
                g.check_model(fingerprint, path)
        yield g
        g.save(path)
