"""`Recognizer`: the Python API behind `facerec-gallery` and `facerec-match`.

    from facerec import Recognizer
    rec = Recognizer()                      # shipped model, default gallery
    rec.enroll("Ada Lovelace", ["ada.jpg"])
    rec.identify("masked.jpg")              # dict in the `facerec-match --json` format

The model and detector load on first use, never at import.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facerec.gallery import Gallery, default_gallery_path, editing, validate_name
from facerec.images import BadInput, load_image

# Used only when the model card carries no calibrated threshold (a warning says so).
FALLBACK_THRESHOLD = 0.5
MIN_FACE_PX = 20
# Synthetic-masked templates added per enrolled photo, in this style order.
MASK_TEMPLATE_STYLES = ("surgical_blue", "black_cloth", "n95", "surgical_white", "patterned_cloth")


@dataclass
class EnrollReport:
    name: str
    photos: int = 0
    templates: int = 0
    problems: list[dict] = field(default_factory=list)  # {"path", "reason"}: photos that added nothing
    notes: list[str] = field(default_factory=list)  # e.g. other faces ignored


class Recognizer:
    def __init__(self, model: str | os.PathLike | None = None, gallery: str | os.PathLike | None = None,
                 threshold: float | None = None, mask_templates: int = 3, aggregate: str = "max"):
        from facerec.model import default_model_path

        self.model_path = Path(model) if model else default_model_path()
        self.gallery_path = Path(gallery) if gallery else default_gallery_path()
        self._threshold = threshold
        self.mask_templates = mask_templates
        self.aggregate = aggregate
        self._embedder = None
        self._detector = None
        self._gallery: tuple[float, Gallery] | None = None

    # ------------------------------------------------------------ lazy parts

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
        return self._threshold is not None or self.embedder.threshold is not None

    @property
    def threshold(self) -> float:
        if self._threshold is not None:
            return float(self._threshold)
        t = self.embedder.threshold
        return float(t) if t is not None else FALLBACK_THRESHOLD

    def gallery(self) -> Gallery:
        """The gallery file, re-read when it changed on disk; refuses a gallery of another model."""
        mtime = self.gallery_path.stat().st_mtime_ns if self.gallery_path.exists() else None
        if self._gallery is None or self._gallery[0] != mtime:
            g = Gallery.load(self.gallery_path)
            g.check_model(self.embedder.fingerprint, self.gallery_path)
            self._gallery = (mtime, g)
        return self._gallery[1]

    # ------------------------------------------------------------ faces

    def faces(self, image: np.ndarray):
        """Aligned faces large enough to recognise (largest first), and the number too small."""
        from facerec.align import aligned_faces

        found = self.detector.detect(image)
        big = [f for f in found if min(f.box[2], f.box[3]) >= MIN_FACE_PX]
        return aligned_faces(image, big, self.embedder.input_size), len(found) - len(big)

    def _templates(self, crop: np.ndarray, mesh: np.ndarray | None, source: str) -> tuple[list[np.ndarray], list[str]]:
        from facerec.masks import apply_mask

        crops, kinds = [crop], ["photo"]
        seed = int.from_bytes(hashlib.sha256(source.encode()).digest()[:8], "little")
        for i in range(self.mask_templates):
            style = MASK_TEMPLATE_STYLES[i % len(MASK_TEMPLATE_STYLES)]
            crops.append(apply_mask(crop, mesh, style=style, seed=seed + i))
            kinds.append(f"synthetic-mask:{style}")
        return crops, kinds

    # ------------------------------------------------------------ enrolment

    def enroll(self, name: str, photos: list[str | os.PathLike], new_gallery: bool = False) -> EnrollReport:
        """Add templates of `name` from each photo's largest face (others are ignored, and noted)."""
        return self.enroll_many({name: photos}, new_gallery=new_gallery)[0]

    def enroll_many(self, people: dict[str, list], new_gallery: bool = False, progress=None) -> list[EnrollReport]:
        """Enrol several people in one gallery write. `new_gallery` starts from an empty gallery."""
        reports, rows = [], []
        for name, photos in people.items():
            report = EnrollReport(validate_name(name))
            for photo in photos:
                crops, kinds, thumb = self._enroll_photo(photo, report)
                if crops:
                    rows.append((report.name, crops, kinds, str(photo), thumb))
                    report.photos += 1
                    report.templates += len(crops)
                if progress:
                    progress()
            reports.append(report)
        emb = self.embedder
        vecs = [emb.embed(np.stack(crops)) for _, crops, _, _, _ in rows]  # before taking the lock
        with editing(self.gallery_path, emb.fingerprint, emb.dim, new=new_gallery) as g:
            for (name, crops, kinds, source, thumb), v in zip(rows, vecs):
                g.add(name, v, kinds, [source] * len(crops), [thumb] + [b""] * (len(crops) - 1))
        self._gallery = None
        return reports

    def _enroll_photo(self, photo, report: EnrollReport):
        try:
            image = load_image(photo)
        except BadInput as e:
            report.problems.append({"path": str(photo), "reason": e.reason})
            return None, None, None
        faces, small = self.faces(image)
        if not faces:
            reason = "face too small to enrol" if small else "no face found"
            report.problems.append({"path": str(photo), "reason": reason})
            return None, None, None
        if len(faces) + small > 1:
            report.notes.append(f"{photo}: {len(faces) + small} faces found; enrolled the largest")
        af = faces[0]
        crops, kinds = self._templates(af.crop, af.mesh, str(photo))
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(af.crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        return crops, kinds, jpg.tobytes() if ok else b""

    def remove(self, name: str) -> int:
        emb = self.embedder
        with editing(self.gallery_path, emb.fingerprint, emb.dim, create=False) as g:
            n = g.remove(name)
        self._gallery = None
        return n

    # ------------------------------------------------------------ identification

    def identify(self, photo: str | os.PathLike | np.ndarray, top_k: int = 5) -> dict:
        """Match every face of a photo against the gallery (format of `facerec-match --json`)."""
        image = load_image(photo) if not isinstance(photo, np.ndarray) else photo
        g = self.gallery()
        faces, small = self.faces(image)
        out = {"image": str(photo) if not isinstance(photo, np.ndarray) else "<array>",
               "threshold": self.threshold, "faces": []}
        if small:
            out["skipped_small_faces"] = small
        if not faces:
            return out
        vecs = self.embedder.embed(np.stack([f.crop for f in faces]))
        for af, matches in zip(faces, g.search(vecs, top_k, self.aggregate)):
            best = matches[0] if matches else (None, -1.0)
            out["faces"].append({
                "box": [round(float(v), 1) for v in af.face.box],
                "masked": None,  # no mask classifier: we do not guess
                "identity": best[0] if best[1] >= self.threshold else None,
                "score": round(best[1], 4),
                "matches": [{"identity": n, "score": round(s, 4)} for n, s in matches],
            })
        return out
