"""`Recognizer`: the Python API behind `facerec-gallery` and `facerec-match`.

    from facerec import Recognizer
    rec = Recognizer()                      # shipped model, default gallery
    rec.enroll("Ada Lovelace", ["ada.jpg"])
    rec.identify("masked.jpg")              # dict in the `facerec-match --json` format
    rec.verify("a.jpg", "b.jpg")            # 1:1: {"same": bool, "score", "threshold", ...}
    rec.embed("a.jpg")                      # per face: box, masked, the embedding the gallery would store

The model and detector load on first use, never at import.
Several faces in a photo: `identify` matches each and `embed` embeds each (main face first: see
`facerec.faces.detect.prominence`); enrolment and `verify` use the main face and note that the others
were ignored. Faces under MIN_FACE_PX are skipped. A photo already enrolled under a name (same
file content) is not enrolled again.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from facerec.search.gallery import AGGREGATES, INDEXES, Gallery, default_gallery_path, editing, validate_name
from facerec.faces.masks import MASK_TEMPLATES
from facerec.images import BadInput, decode_image, read_bytes

# Used only when neither the gallery nor the model card carries a calibrated threshold (the CLIs warn).
FALLBACK_THRESHOLD = 0.5
# Faces whose detected box has a side under this many photo pixels are skipped: too little to recognise.
MIN_FACE_PX = 20


@dataclass
class EnrollReport:
    name: str
    photos: int = 0
    templates: int = 0
    problems: list[dict] = field(default_factory=list)  # {"path", "reason"}: photos that added nothing
    notes: list[str] = field(default_factory=list)  # photos of several faces, main face enrolled (the CLI counts them)
    already: list[str] = field(default_factory=list)  # photos skipped: the same file is enrolled under this name


class Recognizer:
    """Enrol people into a gallery file and identify the faces of photos against it."""

    def __init__(self, model: str | os.PathLike | None = None, gallery: str | os.PathLike | None = None,
                 threshold: float | None = None, mask_templates: int = MASK_TEMPLATES,
                 aggregate: str = AGGREGATES[0], thumbnails: bool = True, index: str = "exact"):
        if mask_templates < 0:
            raise ValueError(f"mask_templates must be >= 0, not {mask_templates}")
        if index not in INDEXES:
            raise ValueError(f"unknown index {index!r} (choose from {', '.join(INDEXES)})")
        if aggregate not in AGGREGATES:
            raise ValueError(f"unknown aggregate {aggregate!r} (choose from {', '.join(AGGREGATES)})")
        self._model_path = Path(model) if model else None
        self.gallery_path = Path(gallery) if gallery else default_gallery_path()
        self._threshold = threshold
        self.mask_templates = mask_templates
        self.aggregate = aggregate
        self.index = index  # "exact", or "ann": Gallery.search
        self.thumbnails = thumbnails
        self._embedder = None
        self._detector = None
        self._gallery: tuple[tuple, Gallery] | None = None

    # ------------------------------------------------------------ lazy parts

    @property
    def model_path(self) -> Path:
        """`model=`, else facerec.runtime.base.default_model_path() ($FACEREC_MODEL, else the shipped model)."""
        if self._model_path is None:
            from facerec.runtime.base import default_model_path

            self._model_path = default_model_path()
        return self._model_path

    @property
    def embedder(self):
        if self._embedder is None:
            from facerec.runtime import load_embedder

            self._embedder = load_embedder(self.model_path)
        return self._embedder

    @property
    def detector(self):
        if self._detector is None:
            from facerec.faces.detect import FaceDetector

            self._detector = FaceDetector()
        return self._detector

    @property
    def presence(self):
        """The mask-presence CNN (facerec.faces.presence), loaded on first use; the detector's own, which
        confirms masked faces with it."""
        return self.detector.presence

    def mask_fields(self, crops) -> list[dict]:
        """{"masked": bool, "mask_score": 0..1} per aligned crop."""
        return [{"masked": m, "mask_score": s} for m, s in self.presence.masked(crops)]

    @property
    def calibrated(self) -> bool:
        """False when the threshold is the uncalibrated fallback."""
        return self.threshold_source != "fallback"

    @property
    def threshold(self) -> float:
        """The open-set threshold identification accepts a match at (see `threshold_source`)."""
        return self._open_set_threshold()[0]

    @property
    def threshold_source(self) -> str:
        """Where `threshold` comes from, first found: "flag" (`threshold=`), "gallery" (`facerec-gallery
        calibrate`), "model" (the card's, from `facerec-eval calibrate-gallery`), else "fallback"."""
        return self._open_set_threshold()[1]

    def _open_set_threshold(self) -> tuple[float, str]:
        if self._threshold is not None:
            return float(self._threshold), "flag"
        calibration = self.gallery().calibration
        if calibration:
            return float(calibration["threshold"]), "gallery"
        t = self.embedder.threshold
        return (float(t), "model") if t is not None else (FALLBACK_THRESHOLD, "fallback")

    @property
    def masked_threshold(self) -> float:
        """The threshold for faces the mask-presence model calls masked: the model card's
        `threshold_masked` (`facerec-eval calibrate-gallery`: the same strangers wearing synthetic
        masks, the same FAR) when `threshold` is the card's; otherwise `threshold` itself."""
        return self._masked_threshold(*self._open_set_threshold())

    def _masked_threshold(self, threshold: float, source: str) -> float:
        masked = self.embedder.card.get("threshold_masked")
        return float(masked) if source == "model" and isinstance(masked, (int, float)) else threshold

    def pair_threshold(self) -> tuple[float, str, float | None]:
        """(threshold, source, per-pair FAR) of 1:1 verification: the card's `verify_threshold`
        (`facerec-eval calibrate`), else FALLBACK_THRESHOLD with source "fallback" and FAR None."""
        calibration = self.embedder.card.get("verify_threshold")
        if isinstance(calibration, dict) and isinstance(calibration.get("threshold"), (int, float)):
            return float(calibration["threshold"]), "model", calibration.get("far")
        return FALLBACK_THRESHOLD, "fallback", None

    def gallery(self) -> Gallery:
        """The gallery file, re-read when it changed on disk; refuses a gallery of another model."""
        try:
            st = self.gallery_path.stat()
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            key = None
        if self._gallery is None or self._gallery[0] != key:
            g = Gallery.load(self.gallery_path)
            g.check_model(self.embedder.fingerprint, self.gallery_path)
            self._gallery = (key, g)
        return self._gallery[1]

    # ------------------------------------------------------------ faces

    def faces(self, image: np.ndarray):
        """Aligned faces large enough to recognise (main face first), and the number too small."""
        from facerec.faces.align import aligned_faces

        found = self.detector.detect(image)
        big = [f for f in found if min(f.box[2], f.box[3]) >= MIN_FACE_PX]
        return aligned_faces(image, big, self.embedder.input_size), len(found) - len(big)

    # ------------------------------------------------------------ enrolment

    def enroll(self, name: str, photos: list) -> EnrollReport:
        """Add templates of `name` from each photo's main face (others are ignored, and noted).

        A photo is a path, or a (source name, encoded image bytes) pair (an upload).

        An existing name gets more templates; the gallery is created if needed. Raises ValueError
        for an unacceptable name; unusable photos are listed in the report's `problems`.
        """
        validate_name(name)
        return self.enroll_many({name: photos})[0]

    def enroll_many(self, people: dict[str, list], new_gallery: bool = False,
                    progress: Callable[[], None] | None = None) -> list[EnrollReport]:
        """Enrol several people in one gallery write; `new_gallery` starts from an empty gallery (build).

        A person whose name is refused is reported (problems), not enrolled; nothing is written
        when no photo could be used (a build then leaves any previous gallery as it was).
        """
        emb = self.embedder
        reports, rows = [], []
        before = Gallery.load(self.gallery_path) if not new_gallery and self.gallery_path.is_file() else None
        seen: set[tuple[str, str]] = set()  # (name, content hash) enrolled by this call
        for name, photos in people.items():
            try:
                report = EnrollReport(validate_name(name))
            except ValueError as e:
                where = str(Path(photos[0]).parent) if photos else str(name)  # build: the person's folder
                reports.append(EnrollReport(str(name), problems=[{"path": where, "reason": str(e)}]))
                for _ in photos:
                    if progress:
                        progress()
                continue
            for photo in photos:
                found = self._enroll_photo(photo, report, before, seen)
                if found is not None:
                    crops, kinds, thumb, sha = found
                    vectors = emb.embed(crops)  # now, so only vectors (not crops) wait for the write
                    rows.append((report.name, vectors, kinds, _source(photo), thumb, sha))
                    report.photos += 1
                    report.templates += len(vectors)
                if progress:
                    progress()
            reports.append(report)
        if rows:
            with editing(self.gallery_path, emb.fingerprint, emb.dim, new=new_gallery) as g:
                for name, vectors, kinds, source, thumb, sha in rows:
                    g.add(name, vectors, kinds, [source] * len(kinds), [thumb] + [b""] * (len(kinds) - 1), sha)
        self._gallery = None
        return reports

    def _enroll_photo(self, photo, report: EnrollReport, before: Gallery | None, seen: set[tuple[str, str]]):
        """(crops, kinds, thumbnail, content hash) of the photo's templates; None when it adds nothing.
        `photo` is a path, or a (source name, encoded image bytes) pair (an upload to facerec-serve)."""
        source = _source(photo)
        try:
            data = photo[1] if isinstance(photo, tuple) else read_bytes(photo)
            sha = content_hash(data)
            enrolled = before.enrolled_photo(report.name, sha) if before is not None else None
            if enrolled is not None or (report.name, sha) in seen:
                same = f" (same content as {enrolled})" if enrolled not in (None, source) else ""
                report.already.append(f"{source}: already enrolled under {report.name}{same}; skipped")
                return None
            image = decode_image(data, source)
        except BadInput as e:
            report.problems.append({"path": source, "reason": e.reason})
            return None
        faces, small = self.faces(image)
        if not faces:
            reason = f"face too small to enrol (under {MIN_FACE_PX} px)" if small else "no face found"
            report.problems.append({"path": source, "reason": reason})
            return None
        if len(faces) + small > 1:
            report.notes.append(f"{source}: {len(faces) + small} faces found; enrolled the main face, ignored the others")
        af = faces[0]
        from facerec.faces.masks import mask_templates

        crops, kinds = mask_templates(af.crop, af.mesh, sha, self.mask_templates)
        thumb = b""
        if self.thumbnails:
            ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(af.crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
            thumb = jpg.tobytes() if ok else b""
        seen.add((report.name, sha))
        return crops, kinds, thumb, sha

    def remove(self, name: str) -> int:
        """Delete every template of `name` (no model needed); returns how many there were."""
        with editing(self.gallery_path, None, create=False) as g:
            n = g.remove(name)
        self._gallery = None
        return n

    def people(self) -> dict[str, dict]:
        """name → {"templates": n, "photos": n} (no model needed)."""
        return Gallery.load(self.gallery_path).people()

    def calibrate(self, strangers: list[str | os.PathLike], far: float = 0.01,
                  progress: Callable[[], None] | None = None) -> dict:
        """Pick and store this gallery's own open-set threshold: the lowest that accepts at most `far`
        of the strangers' main faces (photos of people not in the gallery) as someone in it.

        A small gallery accepts fewer strangers than the model card's threshold (calibrated on a
        1,000-person gallery) allows for, so it can use a lower one and accept more of its people.
        A photo whose content is enrolled is no stranger's and is skipped. Returns what was stored
        and measured; the gallery's templates are unchanged.
        """
        from facerec.search.gallery import GalleryError
        from facerec.evaluation.metrics import open_set_threshold

        if not 0 < far < 1:
            raise ValueError(f"--far must be between 0 and 1, not {far}")
        g = self.gallery()
        if not len(g):
            raise GalleryError(self.gallery_path, "empty gallery: enrol people before calibrating it")
        scores, problems, enrolled_photos = [], [], []
        for photo in strangers:
            try:
                data = read_bytes(photo)
                enrolled = g.people_of_photo(content_hash(data))
                if enrolled:
                    enrolled_photos.append(f"{photo}: enrolled as {', '.join(sorted(enrolled))}; not a stranger, skipped")
                    continue
                faces, small = self.faces(decode_image(data, photo))
            except BadInput as e:
                problems.append({"path": str(photo), "reason": e.reason})
                continue
            finally:
                if progress:
                    progress()
            if not faces:
                reason = f"face too small (under {MIN_FACE_PX} px)" if small else "no face found"
                problems.append({"path": str(photo), "reason": reason})
                continue
            matches = g.search(self.embedder.embed(faces[0].crop[None]), 1, self.aggregate, self.index)[0]
            scores.append(round(matches[0][1], 4))
        if not scores:
            raise ValueError(f"no stranger's face found in {len(strangers)} photo(s); gallery unchanged")
        s = np.array(scores)
        threshold = open_set_threshold(s, far)
        calibration = {"threshold": threshold, "far": far, "strangers": len(s), "people": len(g.people())}
        with editing(self.gallery_path, self.embedder.fingerprint) as stored:
            stored.calibration = calibration
        self._gallery = None
        return {**calibration, "false_accepts": int((s >= threshold).sum()), "far_there": float(np.mean(s >= threshold)),
                "far_resolvable": len(s) * far >= 1, "model_threshold": self.embedder.threshold,
                "model_threshold_far_there": None if self.embedder.threshold is None else
                float(np.mean(s >= self.embedder.threshold)),
                "failed": problems, "notes": enrolled_photos}

    # ------------------------------------------------------------ identification

    def identify(self, photo: str | os.PathLike | np.ndarray, top_k: int = 5) -> dict:
        """Match every face of a photo (a path, or an RGB uint8 array) against the gallery.

        Returns the `facerec-match --json` object; raises BadInput for an unreadable file and
        GalleryError for a missing, corrupt or other-model gallery (the CLI turns a bad photo into
        an `error` entry instead).
        """
        return self.identify_faces(photo, top_k)[0]

    def identify_faces(self, photo: str | os.PathLike | np.ndarray, top_k: int = 5) -> tuple[dict, np.ndarray]:
        """`identify`'s result and the faces' embeddings [F, D], in its order (video tracks compare them)."""
        image = _image(photo)
        g = self.gallery()
        faces, small = self.faces(image)
        threshold, source = self._open_set_threshold()
        masked_threshold = self._masked_threshold(threshold, source)
        out = {"image": _name(photo), "threshold": threshold, "threshold_masked": masked_threshold,
               "threshold_source": source, "faces": []}
        if small:
            out["skipped_small_faces"] = small
        if not faces:
            if not small:  # what a face must measure to be found here (a large photo: more than MIN_FACE_PX)
                out["smallest_findable_face_px"] = max(MIN_FACE_PX, self.detector.smallest_face(image.shape))
            return out, np.zeros((0, self.embedder.dim), np.float32)
        vecs = self.embedder.embed(np.stack([f.crop for f in faces]))
        masks = self.mask_fields([f.crop for f in faces])
        for af, mask, matches in zip(faces, masks, g.search(vecs, top_k, self.aggregate, self.index)):
            name, score = matches[0] if matches else (None, -1.0)
            score = round(score, 4)  # the identity decision uses the score as printed
            face_threshold = masked_threshold if mask["masked"] else threshold
            out["faces"].append({
                "box": [round(float(v), 1) for v in af.face.box],
                **mask,
                "identity": name if score >= face_threshold else None,
                "score": score,
                "threshold": face_threshold,
                "matches": [{"identity": n, "score": round(s, 4)} for n, s in matches],
            })
        return out, vecs

    # ------------------------------------------------------------ 1:1 and embeddings

    def embed(self, photo: str | os.PathLike | np.ndarray) -> list[dict]:
        """Per face (main face first): {"box", "masked", "mask_score", "embedding"}, the embedding an L2-normalised
        float32 vector: what enrolling the photo would store as its "photo" template (as float16).
        `masked` comes from the mask-presence CNN (facerec.faces.presence). Raises BadInput for an unreadable file."""
        faces, _ = self.faces(_image(photo))
        if not faces:
            return []
        vecs = _unit(self.embedder.embed(np.stack([f.crop for f in faces])))
        masks = self.mask_fields([f.crop for f in faces])
        return [{"box": [round(float(v), 1) for v in af.face.box], **mask, "embedding": v}
                for af, mask, v in zip(faces, masks, vecs)]

    def verify(self, a: str | os.PathLike | np.ndarray, b: str | os.PathLike | np.ndarray,
               threshold: float | None = None) -> dict:
        """Are the main faces of photos `a` and `b` the same person? The `facerec-verify --json` object:
        {"same", "score" (cosine), "threshold", "threshold_source" ("flag" | "model" | "fallback"),
        "threshold_far" (per pair), "faces": [per photo {"image", "box", "masked", "mask_score", "faces_found"}]};
        "same" and "score" are None, with a "reason", when a photo shows no face. No gallery is
        needed. Raises BadInput for an unreadable file."""
        t, source, far = (float(threshold), "flag", None) if threshold is not None else self.pair_threshold()
        out = {"same": None, "score": None, "threshold": t, "threshold_source": source, "threshold_far": far,
               "faces": []}
        crops, missing = [], []
        for photo in (a, b):
            faces, small = self.faces(_image(photo))
            side = {"image": _name(photo), "box": None, "masked": None, "mask_score": None,
                    "faces_found": len(faces) + small}
            if faces:
                side["box"] = [round(float(v), 1) for v in faces[0].face.box]
                side.update(self.mask_fields([faces[0].crop])[0])
                crops.append(faces[0].crop)
            else:
                missing.append(f"{_name(photo)}: " + (f"face too small (under {MIN_FACE_PX} px)" if small else "no face found"))
            out["faces"].append(side)
        if missing:
            out["reason"] = "; ".join(missing)
            return out
        va, vb = _unit(self.embedder.embed(np.stack(crops)))
        score = round(float(np.clip(va @ vb, -1.0, 1.0)), 4)  # decided as printed, like identify
        out.update(same=score >= t, score=score)
        return out


def content_hash(data: bytes) -> str:
    """SHA-256 (hex) of a photo file's bytes: what makes it "the same photo" for enrolment."""
    return hashlib.sha256(data).hexdigest()


def _source(photo) -> str:
    """The name a photo is reported and stored under: its path, or an upload's given name."""
    return str(photo[0] if isinstance(photo, tuple) else photo)


def _image(photo: str | os.PathLike | np.ndarray) -> np.ndarray:
    return photo if isinstance(photo, np.ndarray) else decode_image(read_bytes(photo), photo)


def _name(photo: str | os.PathLike | np.ndarray) -> str:
    return "<array>" if isinstance(photo, np.ndarray) else str(photo)


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (the model's output already is, to float rounding)."""
    v = np.asarray(vectors, np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
