"""Find faces with MediaPipe and give each five ArcFace-order keypoints.

Both detectors run on every photo and their faces are merged (the full-range
model finds small faces, but misses some masked faces that the short-range one
finds: 38 of 41 lost masked faces in `facerec-eval --masked`); a 478-point face
mesh run on each face's crop gives precise eye centres (irises) and mouth
corners. Tight crops with no margin (RMFRD) defeat both, so the photo is retried
with the short-range model on padded canvases (grey padding finds ~2/3 of the
masked crops that black padding misses) before giving up. On a photo larger than
SINGLE_PASS_SIDE a face counts only where the mesh finds it too, about as wide
as its box (else patterned backgrounds gave faces, and a smooth photo a "face" as
large as itself).

MediaPipe's detectors see the whole photo shrunk to 128/192 px, so a face under
~10 % of the photo's width vanishes. A photo larger than SINGLE_PASS_SIDE is
therefore also searched by YuNet (`facerec.faces.yunet`) at up to YUNET_SIDE px
(MediaPipe runs on that shrunk copy too), where MediaPipe's mesh-checked faces
are not: a confident YuNet face counts when the mesh finds it, and any YuNet
face (doubtful ones too, which patterns also give) when YuNet finds it again,
confidently, on a crop where it is RESCORE_FACE_PX wide (small and masked faces,
which MediaPipe and the mesh miss: then YuNet's keypoints where the mesh fails); a small one scored lower
still counts where MediaPipe finds it on a crop, the mesh fits and the mask-presence CNN calls it masked
(masks are what YuNet scores low on).
MediaPipe's faces come first and keep their boxes, so LFW-size photos (one pass,
YuNet not run) detect exactly as before. Measured on pasted-face canvases:
scripts/bench_detect.py, docs/evaluation.md#detection.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from facerec._lazy import import_mediapipe
from facerec._stderr import native_stderr_silenced
from facerec.faces.align import align_face
from facerec.faces.face import Face
from facerec.faces.presence import MaskPresence

# Mesh indices (MediaPipe FaceMesh with refined irises), image-left first for an upright face.
_IRIS = (468, 473)
_NOSE_TIP = 1
_MOUTH = (61, 291)
# ArcFace template: mouth width / eye distance, used when only the mouth centre is known.
_MOUTH_HALF_WIDTH = 0.414
_MESH_INPUT = 256
# When neither model finds a face on the photo itself: (model_selection, padding as a fraction of the
# longer side, padding grey level), tried in order until one finds a face; measured on RMFRD's masked crops.
_RETRIES = ((0, 0.35, 128), (0, 0.35, 0), (0, 0.2, 128), (0, 0.6, 128), (0, 0.1, 128))
# Photos whose longer side is at most this are searched by MediaPipe alone (it sees faces down to ~40 px
# there; LFW's 250 px photos pay nothing more); larger ones by YuNet too.
SINGLE_PASS_SIDE = 400
# YuNet sees the photo shrunk to this longer side at most: 12 MP in ~0.3 s here, faces of ~16 px in its
# input (YUNET_MIN_PX) still found: ~40 px on a 4000x3000 photo (20 lost a 60-px face's 17-px box there).
YUNET_SIDE = 1600
YUNET_MIN_PX = 16
# YuNet faces scoring at least this are kept as they are; from YUNET_DOUBTFUL up ("doubtful", at least
# YUNET_MIN_PX wide in YuNet's input, the MAX_DOUBTFUL most confident of a photo) they must be confirmed.
YUNET_KEEP = 0.6
YUNET_DOUBTFUL = 0.05
MAX_DOUBTFUL = 12
# Confident faces count from KEEP_MIN_PX wide in YuNet's input (~30 px on a 4000x3000 photo), the MAX_CONFIDENT
# most confident of a photo: a textured 12 MP photo gave 503 confident 9-11 px "faces" there, each meshed
# and re-scored (11 s on this AVX2 machine).
KEEP_MIN_PX = 12
MAX_CONFIDENT = 64
# Doubtful faces from this score up also count where MediaPipe's short-range model finds them on a crop and
# the mesh fits (lower ones gave false faces that way: 5 in 148 canvases of bench_detect --seed 1).
YUNET_CONFIRM = 0.3
# Below YUNET_CONFIRM, a doubtful face at most MASKED_CONFIRM_PX wide in YuNet's input (MediaPipe sees larger
# ones itself) counts when MediaPipe finds it on the crop scoring at least MASKED_CONFIRM_SCORE, the mesh fits
# and the mask-presence CNN calls it masked: masked faces are what YuNet scores low and MediaPipe finds
# (bench_detect seeds 1 and 2: +6 faces, +1 false face in 296 canvases).
MASKED_CONFIRM_PX = 256
MASKED_CONFIRM_SCORE = 0.6
# Faces YuNet finds where neither the mesh nor MediaPipe does are kept when YuNet scores them at least
# YUNET_RESCORE on a crop of _RESCORE_CROP x the face, the face RESCORE_FACE_PX wide there (chosen on
# scripts/bench_detect.py --seed 1; seed 0 is the figure of record).
YUNET_RESCORE = 0.8
RESCORE_FACE_PX = 128
_RESCORE_CROP = 3.0
# The crop a doubtful YuNet face is looked for by MediaPipe on: this many times its box, at most _CONFIRM_INPUT px.
_CONFIRM_CROP = 2.0
_CONFIRM_INPUT = 256
# The mesh's width over its box's, within which the mesh is taken to be that face's.
_MESH_WIDTH = (0.5, 2.0)
# Two YuNet boxes are one face's only within this ratio of widths: a doubtful box five times a face's size,
# which patterns give, must not hide the face whose centre it holds.
_DISTINCT_WIDTH = (0.5, 2.0)


class FaceDetector:
    """MediaPipe detector + face mesh; one instance per process (not thread-safe)."""

    def __init__(self, min_score: float = 0.5, multiscale: bool = True):
        """`multiscale` searches large photos with YuNet too, when its weights are there (`facerec-data
        fetch-yunet`; without them large photos get MediaPipe alone, and `smallest_face` says so)."""
        from facerec.weights import WeightsUnavailable
        from facerec.faces.yunet import YuNet

        try:
            self._yunet = YuNet(min_score=YUNET_DOUBTFUL) if multiscale else None
        except WeightsUnavailable:
            self._yunet = None
        with native_stderr_silenced():
            mp = import_mediapipe()
            self._detectors = [
                mp.solutions.face_detection.FaceDetection(model_selection=m, min_detection_confidence=min_score)
                for m in (0, 1)
            ]
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.3
            )
            # The first inference initialises TFLite delegates and logs; do it while silenced.
            self._mesh.process(np.zeros((_MESH_INPUT, _MESH_INPUT, 3), np.uint8))
            for d in self._detectors:
                d.process(np.zeros((64, 64, 3), np.uint8))
        self.min_score = min_score
        self._presence = None  # the mask-presence CNN, loaded when a masked face needs confirming

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in an RGB uint8 photo, the main face first (`prominence`)."""
        image = np.ascontiguousarray(image)
        with native_stderr_silenced():  # MediaPipe logs warnings on its first landmarks
            # Both models: the full-range one misses some masked faces that the short-range one
            # finds, and stopping at the first that finds anything loses them. MediaPipe sees the
            # photo at 128/192 px anyway: on a large one it runs on the copy shrunk for YuNet (the
            # same input, without converting a 36 MB photo for it).
            scale = min(1.0, YUNET_SIDE / max(image.shape[:2])) if self._yunet is not None else 1.0
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
            found = _merge(self._detect(small, 1, 0.0, 0) + self._detect(small, 0, 0.0, 0))
            faces = self._meshed(image, [_rescaled(f, 1 / scale) for f in found])
            if self._yunet is not None and max(image.shape[:2]) > SINGLE_PASS_SIDE:
                faces += self._multiscale(image, small, scale, faces)
            for model, pad, grey in _RETRIES:
                if faces:
                    break
                faces = self._meshed(image, self._detect(image, model, pad, grey))
        return sorted(faces, key=lambda f: prominence(f.box, image.shape), reverse=True)

    def _meshed(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        """The faces with their meshes; on a photo larger than SINGLE_PASS_SIDE, only those the mesh finds
        too: there both detectors see faces in patterned backgrounds, and the padded retries reported one
        as large as a smooth photo. Small photos keep every face (tight crops, RMFRD's, which the retries
        exist for: the mesh misses 28 of 780 masked ones)."""
        faces = [self._refine(image, f) for f in faces]
        if max(image.shape[:2]) <= SINGLE_PASS_SIDE:
            return faces
        return [f for f in faces if f.mesh is not None and _mesh_fits(f.mesh, f.box)]

    def smallest_face(self, shape: tuple) -> int:
        """The narrowest face (px) findable in a photo of this shape: what to say when none was found."""
        side = max(shape[:2])
        if self._yunet is not None and side > SINGLE_PASS_SIDE:
            return int(np.ceil(YUNET_MIN_PX * side / min(side, YUNET_SIDE)))
        return int(np.ceil(0.1 * side))

    def _multiscale(self, image: np.ndarray, small: np.ndarray, scale: float, known: list[Face]) -> list[Face]:
        """YuNet's faces on the photo (`small`: shrunk by `scale` to YUNET_SIDE) where none of `known`
        is. A confident one (KEEP_MIN_PX up, the MAX_CONFIDENT most confident) counts where the mesh finds
        it, else where YuNet finds it again confidently on a crop where it is RESCORE_FACE_PX wide (`_rescore`: masked faces, which both MediaPipe models
        and the mesh miss; then YuNet's keypoints). A doubtful one (the MAX_DOUBTFUL most confident) counts
        where MediaPipe's short-range model finds it on a crop (from YUNET_CONFIRM up; then with its box)
        and the mesh too, or where `_rescore` confirms it (faces YuNet only glimpsed at YUNET_SIDE;
        patterns score low there), with the mesh where it fits, or, below YUNET_CONFIRM, by
        `_masked_confirmed`."""
        rows = self._yunet.detect(small)
        rows = rows[rows[:, 2] >= np.where(rows[:, 14] >= YUNET_KEEP, KEEP_MIN_PX, YUNET_MIN_PX)]
        rows[:, :14] /= np.float32(scale)
        candidates = _distinct([Face(box=r[:4].copy(), score=float(r[14]), keypoints=r[4:14].reshape(5, 2).copy())
                                for r in rows])
        faces: list[Face] = []
        confident = doubtful = 0
        for f in candidates:  # the most confident first
            if _same_place(f.box, [k.box for k in known + faces]):
                continue
            if f.score >= YUNET_KEEP:
                confident += 1
                if confident > MAX_CONFIDENT:
                    continue
            else:
                doubtful += 1
                if doubtful > MAX_DOUBTFUL:
                    break
            face = self._accepted(image, f, f.box[2] * scale <= MASKED_CONFIRM_PX)
            if face is not None:
                faces.append(face)
        return faces

    def _accepted(self, image: np.ndarray, f: Face, small: bool) -> Face | None:
        """YuNet's face `f` as `_multiscale` keeps it, or None; `small`: at most MASKED_CONFIRM_PX wide in
        YuNet's input."""
        if f.score >= YUNET_KEEP:
            meshed = self._fitting_mesh(image, f)
            return meshed if meshed is not None else self._rescore(image, f.box)
        confirmed = self._confirm(image, f.box) if f.score >= YUNET_CONFIRM else None
        meshed = None if confirmed is None else self._fitting_mesh(image, confirmed)
        if meshed is not None:
            return meshed
        rescored = self._rescore(image, f.box)
        if rescored is not None:
            meshed = self._fitting_mesh(image, rescored)
            return meshed if meshed is not None else rescored
        return self._masked_confirmed(image, f.box) if small and f.score < YUNET_CONFIRM else None

    def _masked_confirmed(self, image: np.ndarray, box: np.ndarray) -> Face | None:
        """The face at `box` where MediaPipe finds it on a crop (MASKED_CONFIRM_SCORE up), the mesh fits and
        the mask-presence CNN calls it masked; else None."""
        confirmed = self._confirm(image, box)
        if confirmed is None or confirmed.score < MASKED_CONFIRM_SCORE:
            return None
        meshed = self._fitting_mesh(image, confirmed)
        if meshed is None:
            return None
        if self._presence is None:
            self._presence = MaskPresence()
        ((masked, _),) = self._presence.masked([align_face(image, meshed.keypoints)[0]])
        return meshed if masked else None

    def _fitting_mesh(self, image: np.ndarray, f: Face) -> Face | None:
        """`f` with the mesh's keypoints where the mesh finds it, about as wide as its box; else None."""
        meshed = self._refine(image, f)
        return meshed if meshed.mesh is not None and _mesh_fits(meshed.mesh, f.box) else None

    def _confirm(self, image: np.ndarray, box: np.ndarray) -> Face | None:
        """MediaPipe's short-range face on a square crop of _CONFIRM_CROP x `box`, if it overlaps `box`."""
        x, y, bw, bh = box
        side = _CONFIRM_CROP * max(bw, bh)
        size = int(min(_CONFIRM_INPUT, round(side)))
        scale = size / side
        M = np.array([[scale, 0, size / 2 - scale * (x + bw / 2)], [0, scale, size / 2 - scale * (y + bh / 2)]],
                     np.float32)
        crop = cv2.warpAffine(image, M, (size, size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
        for f in self._detect(crop, 0, 0.0, 0):
            f = replace(f, box=np.concatenate([(f.box[:2] - M[:, 2]) / scale, f.box[2:] / scale]).astype(np.float32),
                        keypoints=((f.keypoints - M[:, 2]) / scale).astype(np.float32))
            if iou(f.box, box) >= 0.3:
                return f
        return None

    def _rescore(self, image: np.ndarray, box: np.ndarray) -> Face | None:
        """YuNet's face at `box` on a crop of _RESCORE_CROP x its size where the face is RESCORE_FACE_PX
        wide, if it scores at least YUNET_RESCORE there: a face YuNet only glimpsed on the shrunk photo
        scores high there, a pattern does not."""
        x, y, bw, bh = box
        scale = RESCORE_FACE_PX / max(bw, bh)
        size = int(round(_RESCORE_CROP * RESCORE_FACE_PX))
        M = np.array([[scale, 0, size / 2 - scale * (x + bw / 2)], [0, scale, size / 2 - scale * (y + bh / 2)]],
                     np.float32)
        crop = cv2.warpAffine(image, M, (size, size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
        best = None
        for r in self._yunet.detect(crop):
            found = np.concatenate([(r[:2] - M[:, 2]) / scale, r[2:4] / scale]).astype(np.float32)
            if r[14] >= YUNET_RESCORE and iou(found, box) >= 0.3 and (best is None or r[14] > best.score):
                keypoints = ((r[4:14].reshape(5, 2) - M[:, 2]) / scale).astype(np.float32)
                best = Face(box=found, score=float(r[14]), keypoints=keypoints)
        return best

    def _detect(self, image: np.ndarray, model: int, pad: float, grey: int) -> list[Face]:
        """One model's faces on the photo (padded by `pad`), with the detector's keypoints; no mesh yet."""
        h, w = image.shape[:2]
        p = int(round(pad * max(h, w)))
        src = cv2.copyMakeBorder(image, p, p, p, p, cv2.BORDER_CONSTANT, value=(grey,) * 3) if p else image
        result = self._detectors[model].process(src)
        faces = []
        for det in result.detections or []:
            loc = det.location_data
            rb = loc.relative_bounding_box
            sh, sw = src.shape[:2]
            box = np.array([rb.xmin * sw - p, rb.ymin * sh - p, rb.width * sw, rb.height * sh], np.float32)
            kp = np.array([[k.x * sw - p, k.y * sh - p] for k in loc.relative_keypoints], np.float32)
            faces.append(Face(box=box, score=float(det.score[0]), keypoints=_keypoints_from_detector(kp)))
        return faces

    def _refine(self, image: np.ndarray, face: Face) -> Face:
        """The mesh's irises, nose tip and mouth corners replace the detector's keypoints where it fits."""
        mesh = self._mesh_for(image, face.box)
        return face if mesh is None else replace(face, keypoints=_keypoints_from_mesh(mesh), mesh=mesh)

    def _mesh_for(self, image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """Run the face mesh on a square crop around `box`; points back in photo pixels."""
        x, y, bw, bh = box
        side = 1.7 * max(bw, bh)
        cx, cy = x + bw / 2, y + bh / 2
        scale = _MESH_INPUT / side
        M = np.array([[scale, 0, _MESH_INPUT / 2 - scale * cx], [0, scale, _MESH_INPUT / 2 - scale * cy]], np.float32)
        crop = cv2.warpAffine(image, M, (_MESH_INPUT, _MESH_INPUT), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        result = self._mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        lm = result.multi_face_landmarks[0].landmark
        pts = np.array([[p.x * _MESH_INPUT, p.y * _MESH_INPUT] for p in lm], np.float32)
        pts = (pts - M[:, 2]) / scale
        # The mesh runs its own detector: reject it if it locked onto another face.
        centre = pts[[_IRIS[0], _IRIS[1], _NOSE_TIP]].mean(axis=0)
        if not (x - 0.25 * bw <= centre[0] <= x + 1.25 * bw and y - 0.25 * bh <= centre[1] <= y + 1.25 * bh):
            return None
        return pts

    def close(self) -> None:
        for d in self._detectors:
            d.close()
        self._mesh.close()


def iou(a, b) -> float:
    """Intersection over union of two x y w h boxes."""
    return float(_ious(a, b)[0])


def _ious(a, boxes) -> np.ndarray:
    """Intersection over union of x y w h box `a` with each of `boxes` (one box, or [N, 4])."""
    a, b = np.asarray(a, np.float64), np.asarray(boxes, np.float64).reshape(-1, 4)
    lo, hi = np.maximum(a[:2], b[:, :2]), np.minimum(a[:2] + a[2:], b[:, :2] + b[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    return inter / (a[2] * a[3] + b[:, 2] * b[:, 3] - inter + 1e-9)


def _same_place(a: np.ndarray, boxes: list[np.ndarray]) -> bool:
    """Box `a` and one of `boxes` (of either detector's convention) on one face: they overlap (IoU >= 0.3),
    or one's centre is in the other. Vectorised: a textured 12 MP photo gives YuNet hundreds of doubtful boxes."""
    if not len(boxes):
        return False
    a, b = np.asarray(a, np.float64), np.asarray(boxes, np.float64).reshape(-1, 4)
    overlap = _ious(a, b) >= 0.3
    ca, cb = a[:2] + a[2:] / 2, b[:, :2] + b[:, 2:] / 2
    a_in_b = np.all((b[:, :2] <= ca) & (ca <= b[:, :2] + b[:, 2:]), axis=1)
    b_in_a = np.all((a[:2] <= cb) & (cb <= a[:2] + a[2:]), axis=1)
    return bool(np.any(overlap | a_in_b | b_in_a))


def _rescaled(face: Face, factor: float) -> Face:
    """A face found on a resized photo, in the photo's pixels (itself when `factor` is 1)."""
    if factor == 1:
        return face
    return replace(face, box=face.box * np.float32(factor), keypoints=face.keypoints * np.float32(factor))


def _mesh_fits(mesh: np.ndarray, box: np.ndarray) -> bool:
    """The mesh is about as wide as the box: not a face the mesh found inside a box many times larger
    (a 2,000-px MediaPipe box on a 4000x3000 photo whose mesh crop held a 250-px face)."""
    width = float(mesh[:, 0].max() - mesh[:, 0].min())
    return _MESH_WIDTH[0] * box[2] <= width <= _MESH_WIDTH[1] * box[2]


def _distinct(faces: list[Face]) -> list[Face]:
    """One face per place (`_same_place` among boxes of about its width), the most confident kept."""
    kept: list[Face] = []
    for f in sorted(faces, key=lambda f: f.score, reverse=True):
        lo, hi = _DISTINCT_WIDTH[0] * f.box[2], _DISTINCT_WIDTH[1] * f.box[2]
        if not _same_place(f.box, [k.box for k in kept if lo <= k.box[2] <= hi]):
            kept.append(f)
    return kept


def _merge(faces: list[Face], min_iou: float = 0.3) -> list[Face]:
    """One face per place: the most confident of detections that overlap."""
    kept: list[Face] = []
    for f in sorted(faces, key=lambda f: f.score, reverse=True):
        if all(iou(f.box, k.box) < min_iou for k in kept):
            kept.append(f)
    return kept


def prominence(box: np.ndarray, shape: tuple) -> float:
    """How much an x y w h box is the photo's main face: its area less twice the squared distance of its
    centre from the photo's (FaceNet's align_dataset_mtcnn rule). Scale-free; a bystander cut by the edge
    no longer outranks the centred subject, as the largest box did whenever a mask shrank the subject's."""
    x, y, w, h = (float(v) for v in box)
    dx, dy = x + w / 2 - shape[1] / 2, y + h / 2 - shape[0] / 2
    return float(w * h - 2.0 * (dx * dx + dy * dy))


def _keypoints_from_mesh(mesh: np.ndarray) -> np.ndarray:
    return np.stack([mesh[_IRIS[0]], mesh[_IRIS[1]], mesh[_NOSE_TIP], mesh[_MOUTH[0]], mesh[_MOUTH[1]]]).astype(np.float32)


def _keypoints_from_detector(kp: np.ndarray) -> np.ndarray:
    """Detector gives eyes, nose and mouth centre; mouth corners are placed by template proportions."""
    left_eye, right_eye, nose, mouth = kp[0], kp[1], kp[2], kp[3]
    half = _MOUTH_HALF_WIDTH * (right_eye - left_eye)
    return np.stack([left_eye, right_eye, nose, mouth - half, mouth + half]).astype(np.float32)


_default: FaceDetector | None = None


def detect_faces(image: np.ndarray) -> list[Face]:
    """Faces in `image` (main face first) with a lazily created shared detector."""
    global _default
    if _default is None:
        _default = FaceDetector()
    return _default.detect(image)
