"""`Recognizer`: the Python API behind `facerec-gallery` and `facerec-match`.

    from facerec import Recognizer
    rec = Recognizer()                      # shipped model, default gallery
    rec.enroll("Ada Lovelace", ["ada.jpg"])
    rec.identify("masked.jpg")              # dict in the `facerec-match --json` format

The model and detector load on first use, never at import.
Several faces in a photo: `identify` matches each (main face first: see
`facerec.detect.prominence`); enrolment uses the main face and notes that the others
were ignored. Faces under MIN_FACE_PX are skipped.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from facerec.gallery import INDEXES, Gallery, default_gallery_path, editing, validate_name
from facerec.images import BadInput, load_image

# Used only when the model card carries no calibrated threshold (the CLI warns that it is uncalibrated).
FALLBACK_THRESHOLD = 0.5
# Faces whose detected box has a side under this many photo pixels are skipped: too little to recognise.
MIN_FACE_PX = 20
# Synthetic-masked templates added per enrolled photo (the lead picks the default by measuring on RMFRD).
DEFAULT_MASK_TEMPLATES = 3
# Their styles, in this order (cycled beyond five).
MASK_TEMPLATE_STYLES = ("surgical_blue", "black_cloth", "n95", "surgical_white", "patterned_cloth")


@dataclass
class EnrollReport:
    name: str
    photos: int = 0
    templates: int = 0
    problems: list[dict] = field(default_factory=list)  # {"path", "reason"}: photos that added nothing
    notes: list[str] = field(default_factory=list)  # photos of several faces, main face enrolled (the CLI counts them)


class Recognizer:
    """Enrol people into a gallery file and identify the faces of photos against it."""

    def __init__(self, model: str | os.PathLike | None = None, gallery: str | os.PathLike | None = None,
                 threshold: float | None = None, mask_templates: int = DEFAULT_MASK_TEMPLATES,
                 aggregate: str = "max", thumbnails: bool = True, index: str = "exact"):
        if mask_templates < 0:
            raise ValueError(f"mask_templates must be >= 0, not {mask_templates}")
        if index not in INDEXES:
            raise ValueError(f"unknown index {index!r} (choose from {', '.join(INDEXES)})")
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
        """`model=`, else facerec.model.default_model_path() ($FACEREC_MODEL, else the shipped model)."""
        if self._model_path is None:
            from facerec.model import default_model_path  # imports TensorFlow: only when needed

            self._model_path = default_model_path()
        return self._model_path

    @property
    def embedder(self):
        if self._embedder is None:
            from facerec.model import load_embedder

            self._embedder = load_embedder(self.model_path)
        return self._embedder

    @property
    def detector(self):
        if self._detector is None:
            from facerec.detect import FaceDetector

            self._detector = FaceDetector()
        return self._detector

    @property
    def calibrated(self) -> bool:
        """False when the threshold is the uncalibrated fallback."""
        return self._threshold is not None or self.embedder.threshold is not None

    @property
    def threshold(self) -> float:
        """`threshold=` if given, else the model card's calibrated one, else FALLBACK_THRESHOLD."""
        if self._threshold is not None:
            return float(self._threshold)
        t = self.embedder.threshold
        return float(t) if t is not None else FALLBACK_THRESHOLD

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
        from facerec.align import aligned_faces

        found = self.detector.detect(image)
        big = [f for f in found if min(f.box[2], f.box[3]) >= MIN_FACE_PX]
        return aligned_faces(image, big, self.embedder.input_size), len(found) - len(big)

    def _templates(self, crop: np.ndarray, mesh: np.ndarray | None, source: str) -> tuple[np.ndarray, list[str]]:
        """The photo's crop and its synthetic-masked copies (seeded by the source path: reproducible)."""
        from facerec.masks import apply_mask

        crops, kinds = [crop], ["photo"]
        seed = int.from_bytes(hashlib.sha256(source.encode()).digest()[:8], "little")
        for i in range(self.mask_templates):
            style = MASK_TEMPLATE_STYLES[i % len(MASK_TEMPLATE_STYLES)]
            crops.append(apply_mask(crop, mesh, style=style, seed=seed + i))
            kinds.append(f"synthetic-mask:{style}")
        return np.stack(crops), kinds

    # ------------------------------------------------------------ enrolment

    def enroll(self, name: str, photos: list[str | os.PathLike]) -> EnrollReport:
        """Add templates of `name` from each photo's main face (others are ignored, and noted).

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
                found = self._enroll_photo(photo, report)
                if found is not None:
                    crops, kinds, thumb = found
                    vectors = emb.embed(crops)  # now, so only vectors (not crops) wait for the write
                    rows.append((report.name, vectors, kinds, str(photo), thumb))
                    report.photos += 1
                    report.templates += len(vectors)
                if progress:
                    progress()
            reports.append(report)
        if rows:
            with editing(self.gallery_path, emb.fingerprint, emb.dim, new=new_gallery) as g:
                for name, vectors, kinds, source, thumb in rows:
                    g.add(name, vectors, kinds, [source] * len(kinds), [thumb] + [b""] * (len(kinds) - 1))
        self._gallery = None
        return reports

    def _enroll_photo(self, photo, report: EnrollReport):
        try:
            image = load_image(photo)
        except BadInput as e:
            report.problems.append({"path": str(photo), "reason": e.reason})
            return None
        faces, small = self.faces(image)
        if not faces:
            reason = f"face too small to enrol (under {MIN_FACE_PX} px)" if small else "no face found"
            report.problems.append({"path": str(photo), "reason": reason})
            return None
        if len(faces) + small > 1:
            report.notes.append(f"{photo}: {len(faces) + small} faces found; enrolled the main face, ignored the others")
        af = faces[0]
        crops, kinds = self._templates(af.crop, af.mesh, str(photo))
        thumb = b""
        if self.thumbnails:
            ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(af.crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
            thumb = jpg.tobytes() if ok else b""
        return crops, kinds, thumb

    def remove(self, name: str) -> int:
        """Delete every template of `name` (no model needed); returns how many there were."""
        with editing(self.gallery_path, None, create=False) as g:
            n = g.remove(name)
        self._gallery = None
        return n

    def people(self) -> dict[str, dict]:
        """name → {"templates": n, "photos": n} (no model needed)."""
        return Gallery.load(self.gallery_path).people()

    # ------------------------------------------------------------ identification

    def identify(self, photo: str | os.PathLike | np.ndarray, top_k: int = 5) -> dict:
        """Match every face of a photo (a path, or an RGB uint8 array) against the gallery.

        Returns the `facerec-match --json` object; raises BadInput for an unreadable file and
        GalleryError for a missing, corrupt or other-model gallery.
        """
        is_array = isinstance(photo, np.ndarray)
        image = photo if is_array else load_image(photo)
        g = self.gallery()
        faces, small = self.faces(image)
        out = {"image": "<array>" if is_array else str(photo), "threshold": self.threshold, "faces": []}
        if small:
            out["skipped_small_faces"] = small
        if not faces:
            if not small:  # what a face must measure to be found here (a large photo: more than MIN_FACE_PX)
                out["smallest_findable_face_px"] = max(MIN_FACE_PX, self.detector.smallest_face(image.shape))
            return out
        vecs = self.embedder.embed(np.stack([f.crop for f in faces]))
        for af, matches in zip(faces, g.search(vecs, top_k, self.aggregate, self.index)):
            name, score = matches[0] if matches else (None, -1.0)
            score = round(score, 4)  # the identity decision uses the score as printed
            out["faces"].append({
                "box": [round(float(v), 1) for v in af.face.box],
                "masked": None,  # no mask classifier: we do not guess
                "identity": name if score >= self.threshold else None,
                "score": score,
                "matches": [{"identity": n, "score": round(s, 4)} for n, s in matches],
            })
        return out
