"""Find faces with MediaPipe and give each five ArcFace-order keypoints.

Both detectors run on every photo and their faces are merged (the full-range
model finds small faces, but misses some masked faces that the short-range one
finds: 38 of 41 lost masked faces in `facerec-eval --masked`); a 478-point face
mesh run on each face's crop gives precise eye centres (irises) and mouth
corners. Tight crops with no margin (RMFRD) defeat both, so the photo is retried
with the short-range model on padded canvases (grey padding finds ~2/3 of the
masked crops that black padding misses; on a photo over YUNET_SIDE, its shrunk copy is
padded) before giving up. On a photo larger than
SINGLE_PASS_SIDE a face counts only where the mesh finds it too, about as wide
as its box (else patterned backgrounds gave faces, and a smooth photo a "face" as
large as itself), and where YuNet sees it too on a crop (colour-noise photos gave
"faces" that the mesh fitted).

MediaPipe's detectors see the whole photo shrunk to 128/192 px, so a face under
~10 % of the photo's width vanishes. A photo larger than SINGLE_PASS_SIDE is
therefore also searched by YuNet (`facerec.faces.yunet`) at up to YUNET_SIDE px
(MediaPipe runs on that shrunk copy too), where MediaPipe's mesh-checked faces
are not: a confident YuNet face counts when the mesh finds it, and any YuNet
face (doubtful ones too, which patterns also give) when YuNet finds it again,
confidently, on a crop where it is RESCORE_FACE_PX wide (small and masked faces,
which MediaPipe and the mesh miss: then YuNet's keypoints where the mesh fails); a small one scored lower
still counts where MediaPipe finds it on a crop, the mesh fits and the mask-presence CNN calls it masked
(masks are what YuNet scores low on). Faces YuNet barely sees there (seeds, scored under YUNET_DOUBTFUL: tight
masked crops of 60-100 px on a 12 MP photo) are looked at again, all in one YuNet run on a mosaic of tiles where
each is 2.5 times larger, and count where MediaPipe and the mesh confirm them on a crop. Tight masked faces
YuNet does not box at all, the Ultra-Light detector (`facerec.faces.ulfd`) boxes on the same view; its candidates
are confirmed alike. MediaPipe's faces come first and keep their boxes (on a larger photo, one far wider
than its mesh is looked for again around the mesh), so LFW-size photos (one pass,
YuNet not run) detect exactly as before. Measured on pasted-face canvases:
scripts/bench_detect.py, docs/evaluation.md#detection.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING

import cv2
import numpy as np

from facerec._lazy import import_mediapipe
from facerec._stderr import native_stderr_silenced
from facerec.faces.align import align_face
from facerec.faces.face import Face
from facerec.faces.presence import MaskPresence

if TYPE_CHECKING:
    from facerec.faces.ulfd import Ulfd

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
# On a photo larger than SINGLE_PASS_SIDE (with YuNet), a MediaPipe face, of its first pass or of the padded retries,
# counts only where YuNet sees it too, YUNET_SEES up, on the crop `_rescore` gives it: colour noise gave "faces" the
# mesh fitted (the retries' on 3 canvases of bench_detect seeds 6-8: no box there or 0.03), where tight crops upscaled
# to 450-1200 px that needed the retries scored 0.57-0.91 (14 of 200 RMFRD masked crops) and 0.09-0.89 (5 of 100 LFW
# crops cut at the face box); seeds 1, 2, 6, 7 and 8 lost no face to it.
YUNET_SEES = 0.05
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
# Below YUNET_DOUBTFUL, down to YUNET_SEED, a box YUNET_MIN_PX to SEED_MAX_PX wide in YuNet's input is a seed:
# tight masked crops of 60-100 px on a 12 MP photo score 0.01-0.04 there, and 0.5-0.9 seen 2.5 times larger. The
# MAX_SEEDS most confident seeds (fewer on a photo under 1280x960) are looked at again on SEED_TILE-px tiles of
# SEED_CROP x their box, cut from the photo itself, in one YuNet run on a mosaic of the tiles (640x480 photos:
# 0.05 -> 0.08 s); a seed YuNet scores SEED_RESCORE up there counts where
# MediaPipe finds it on a crop (MASKED_CONFIRM_SCORE up) and the mesh fits (chosen on bench_detect seeds 1 and 2:
# +6 faces in 296 canvases, no false face more; SEED_RESCORE 0.6 +4; seeds from 0.002, 96 px or 96 a photo: no more).
YUNET_SEED = 0.005
SEED_MAX_PX = 48
MAX_SEEDS = 48
SEED_TILE = 160
SEED_CROP = 2.5
SEED_RESCORE = 0.3
_MOSAIC_COLUMNS = 8
# The Ultra-Light detector (`facerec.faces.ulfd`, trained on WIDER FACE) on the same view boxes tight masked crops
# that YuNet does not box at all, scored 0.78-1.0 and the most confident candidate of their photo. Its boxes from
# ULFD_SCORE up, at least YUNET_MIN_PX wide there, the MAX_ULFD most confident of a photo not where a face was
# found, count where MediaPipe finds them on a crop (MASKED_CONFIRM_SCORE up) or YuNet re-scores them YUNET_RESCORE
# up, with a mesh that fits. Chosen on bench_detect seeds 1 and 2 (296 canvases): +4 faces >= 60 px, +2 grid faces,
# +1 false face; also keeping a box scored 0.9 up where the mesh alone fits it: +5, +2, +3 (and a floral "face" on an
# empty seed-0 canvas).
ULFD_SCORE = 0.3
MAX_ULFD = 8
# Faces YuNet finds where neither the mesh nor MediaPipe does are kept when YuNet scores them at least
# YUNET_RESCORE on a crop of _RESCORE_CROP x the face, the face RESCORE_FACE_PX wide there (chosen on
# scripts/bench_detect.py --seed 1; seed 0 is the figure of record).
YUNET_RESCORE = 0.8
# A confident face the mesh misses that scores YUNET_RESCORE_MASKED up there counts too where the mask-presence CNN
# calls it masked: masks lower YuNet's scores (bench_detect seed 2: two masked faces at 0.79-0.80; patterns that
# score so high are called bare).
YUNET_RESCORE_MASKED = 0.7
RESCORE_FACE_PX = 128
_RESCORE_CROP = 3.0
# The crop a doubtful YuNet face is looked for by MediaPipe on: this many times its box, at most _CONFIRM_INPUT px.
_CONFIRM_CROP = 2.0
_CONFIRM_INPUT = 256
# The mesh's width over its box's, within which the mesh is taken to be that face's; below _SNUG_MESH a box is
# looked for again around the mesh (bench_detect seeds 1 and 2: 0.73-1.19 for 98 % of boxes on a face).
_MESH_WIDTH = (0.5, 2.0)
_SNUG_MESH = 0.6
# Two YuNet boxes are one face's only within this ratio of widths: a doubtful box five times a face's size,
# which patterns give, must not hide the face whose centre it holds.
_DISTINCT_WIDTH = (0.5, 2.0)


class FaceDetector:
    """MediaPipe detector + face mesh; one instance per process (not thread-safe)."""

    def __init__(self, min_score: float = 0.5, multiscale: bool = True):
        """`multiscale` searches large photos with YuNet too, when its weights are there (`facerec-data
        fetch-yunet`; without them large photos get MediaPipe alone, and `smallest_face` says so), and with the
        Ultra-Light detector beside it when its weights are there too (`facerec-data fetch-ulfd`)."""
        from facerec.weights import WeightsUnavailable
        from facerec.faces.yunet import YuNet

        try:
            self._yunet = YuNet(min_score=YUNET_SEED) if multiscale else None
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
        self._presence: MaskPresence | None = None

    @cached_property
    def _ulfd(self) -> Ulfd | None:
        """The Ultra-Light detector, loaded on the first photo that needs it (compiling it costs every process ~0.1 s,
        which photos of SINGLE_PASS_SIDE or less never use); None without YuNet or without its weights."""
        from facerec.faces.ulfd import Ulfd
        from facerec.weights import WeightsUnavailable

        if self._yunet is None:
            return None
        try:
            return Ulfd(min_score=ULFD_SCORE)
        except WeightsUnavailable:
            return None

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
            for model, pad, grey in _RETRIES:  # on the shrunk copy too: padding a 12 MP photo took ~0.4 s
                if faces:
                    break
                faces = self._meshed(image, [_rescaled(f, 1 / scale) for f in self._detect(small, model, pad, grey)])
        return sorted(faces, key=lambda f: prominence(f.box, image.shape), reverse=True)

    def _meshed(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        """The faces with their meshes; on a photo larger than SINGLE_PASS_SIDE, only those the mesh finds
        too and YuNet sees on a crop (YUNET_SEES), one per place: there both detectors see faces in patterned
        backgrounds, and the padded retries reported one as large as a smooth photo. Small photos keep every
        face (tight crops, RMFRD's, which the retries exist for: the mesh misses 28 of 780 masked ones)."""
        faces = [self._refine(image, f) for f in faces]
        if max(image.shape[:2]) <= SINGLE_PASS_SIDE:
            return faces
        faces = [self._snug(image, f) for f in faces if f.mesh is not None and _mesh_fits(f.mesh, f.box)]
        if self._yunet is not None:
            faces = [f for f in faces if self._rescore(image, f.box, YUNET_SEES) is not None]
        # One face per place among boxes of about its width: the two models' boxes of one face overlapped under
        # _merge's IoU (one inside the other), and a box looked for again around its mesh may join another's.
        return _distinct(faces)

    def _snug(self, image: np.ndarray, face: Face) -> Face:
        """`face`, or where its mesh is narrower than _SNUG_MESH x its box (MediaPipe on the shrunk photo gave a
        100-px face a 183-px box), the face MediaPipe finds on a crop around the mesh, if the mesh fits it."""
        lo, hi = face.mesh.min(axis=0), face.mesh.max(axis=0)
        if hi[0] - lo[0] >= _SNUG_MESH * face.box[2]:
            return face
        snug = self._confirmed_mesh(image, np.concatenate([lo, hi - lo]).astype(np.float32))
        return face if snug is None else snug

    def smallest_face(self, shape: tuple) -> int:
        """The narrowest face (px) findable in a photo of this shape: what to say when none was found."""
        side = max(shape[:2])
        if self._yunet is not None and side > SINGLE_PASS_SIDE:
            return int(np.ceil(YUNET_MIN_PX * side / min(side, YUNET_SIDE)))
        return int(np.ceil(0.1 * side))

    def _multiscale(self, image: np.ndarray, small: np.ndarray, scale: float, known: list[Face]) -> list[Face]:
        """YuNet's faces on the photo (`small`: shrunk by `scale` to YUNET_SIDE) where none of `known` is.
        A confident one (KEEP_MIN_PX up, the MAX_CONFIDENT most confident) counts where the mesh finds it, else
        where YuNet finds it again confidently on a crop where it is RESCORE_FACE_PX wide (`_rescore`: masked
        faces, which both MediaPipe models and the mesh miss; then YuNet's keypoints; a little less confidently
        where the mask-presence CNN calls it masked). A doubtful one (the MAX_DOUBTFUL most confident) counts
        where MediaPipe's short-range model finds it on a crop (from YUNET_CONFIRM up; then with its box) and
        the mesh too, or where `_rescore` confirms it (faces YuNet only glimpsed at YUNET_SIDE; patterns score
        low there), with the mesh where it fits, or, below YUNET_CONFIRM, by `_masked_confirmed`. Seeds (under
        YUNET_DOUBTFUL) are left to `_seeded`."""
        rows = self._yunet.detect(small)
        width, score = rows[:, 2], rows[:, 14]
        kept = (score >= YUNET_DOUBTFUL) & (width >= np.where(score >= YUNET_KEEP, KEEP_MIN_PX, YUNET_MIN_PX))
        seeds = (score < YUNET_DOUBTFUL) & (width >= YUNET_MIN_PX) & (width <= SEED_MAX_PX)
        rows[:, :14] /= np.float32(scale)
        candidates = _distinct(_yunet_faces(rows[kept]))
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
            if face is not None and not _same_place(face.box, [k.box for k in known + faces]):  # its box moved
                faces.append(face)
        # The most confident seeds first (a textured 12 MP photo gives over 1,000): _distinct keeps its prefix.
        seeds = np.flatnonzero(seeds)[np.argsort(-score[seeds], kind="stable")][:4 * MAX_SEEDS]
        # The mosaic at most as large as YuNet's view of the photo: it at most doubles YuNet's time.
        limit = min(MAX_SEEDS, small.shape[0] * small.shape[1] // SEED_TILE**2)
        faces += self._seeded(image, _distinct(_yunet_faces(rows[seeds])), known + faces, limit)
        return faces if self._ulfd is None else faces + self._ultralight(image, small, scale, known + faces)

    def _ultralight(self, image: np.ndarray, small: np.ndarray, scale: float, known: list[Face]) -> list[Face]:
        """The Ultra-Light detector's faces on `small` (the photo shrunk by `scale`; the MAX_ULFD most confident not
        where `known` are, YUNET_MIN_PX wide there) that MediaPipe finds on a crop (MASKED_CONFIRM_SCORE up) or YuNet
        re-scores YUNET_RESCORE up (`_rescore`), with a mesh that fits: then with the mesh's keypoints."""
        found: list[Face] = []
        tried = 0
        for row in self._ulfd.detect(small):
            box = row[:4] / np.float32(scale)
            if row[2] < YUNET_MIN_PX or _same_place(box, [k.box for k in known + found]):
                continue
            tried += 1
            if tried > MAX_ULFD:
                break
            meshed = self._confirmed_mesh(image, box, MASKED_CONFIRM_SCORE)
            if meshed is None:
                rescored = self._rescore(image, box)
                meshed = None if rescored is None else self._fitting_mesh(image, rescored)
            if meshed is not None and not _same_place(meshed.box, [k.box for k in known + found]):
                found.append(meshed)
        return found

    def _seeded(self, image: np.ndarray, seeds: list[Face], known: list[Face], limit: int) -> list[Face]:
        """The faces at YuNet's seeds (the `limit` most confident not where `known` are) that YuNet finds again
        on a mosaic of tiles where they are larger (`_mosaic_rescore`) and MediaPipe finds on a crop, with a mesh
        that fits: then with MediaPipe's box and the mesh's keypoints."""
        seeds = [f for f in seeds if not _same_place(f.box, [k.box for k in known])][:limit]
        found: list[Face] = []
        for f in self._mosaic_rescore(image, seeds):
            if _same_place(f.box, [k.box for k in known + found]):
                continue
            meshed = self._confirmed_mesh(image, f.box, MASKED_CONFIRM_SCORE)
            if meshed is not None and not _same_place(meshed.box, [k.box for k in known + found]):
                found.append(meshed)
        return found

    def _mosaic_rescore(self, image: np.ndarray, seeds: list[Face]) -> list[Face]:
        """Per seed, YuNet's most confident face (SEED_RESCORE up) on its tile, in photo pixels, where it overlaps
        the seed: one YuNet run on a mosaic of SEED_TILE-px tiles of SEED_CROP x each seed's box, _MOSAIC_COLUMNS
        a row."""
        if not seeds:
            return []
        rows = -(-len(seeds) // _MOSAIC_COLUMNS)
        mosaic = np.full((rows * SEED_TILE, _MOSAIC_COLUMNS * SEED_TILE, 3), 128, np.uint8)
        maps = []
        for i, f in enumerate(seeds):
            scale = SEED_TILE / (SEED_CROP * max(f.box[2], f.box[3]))
            r, c = divmod(i, _MOSAIC_COLUMNS)
            tile, offset = _centred_crop(image, f.box, scale, SEED_TILE)
            mosaic[r * SEED_TILE:(r + 1) * SEED_TILE, c * SEED_TILE:(c + 1) * SEED_TILE] = tile
            maps.append((scale, offset + np.float32(SEED_TILE) * np.array([c, r], np.float32)))  # photo -> mosaic
        best: dict[int, Face] = {}
        for row in self._yunet.detect(mosaic):
            cx, cy = row[0] + row[2] / 2, row[1] + row[3] / 2
            i = int(cy // SEED_TILE) * _MOSAIC_COLUMNS + int(cx // SEED_TILE)
            if row[14] < SEED_RESCORE or i >= len(seeds) or (i in best and best[i].score >= row[14]):
                continue
            scale, shift = maps[i]
            box = _uncropped_box(row[:4], shift, scale)
            if iou(box, seeds[i].box) >= 0.2 or _same_place(box, [seeds[i].box]):
                keypoints = _uncropped(row[4:14].reshape(5, 2), shift, scale)
                best[i] = Face(box=box, score=float(row[14]), keypoints=keypoints)
        return list(best.values())

    def _accepted(self, image: np.ndarray, f: Face, small: bool) -> Face | None:
        """YuNet's face `f` as `_multiscale` keeps it, or None; `small`: at most MASKED_CONFIRM_PX wide in
        YuNet's input."""
        if f.score >= YUNET_KEEP:
            meshed = self._fitting_mesh(image, f)
            if meshed is not None:
                return meshed
            rescored = self._rescore(image, f.box, YUNET_RESCORE_MASKED)
            if rescored is None or rescored.score >= YUNET_RESCORE:
                return rescored
            return rescored if self._masked(image, rescored) else None
        meshed = self._confirmed_mesh(image, f.box) if f.score >= YUNET_CONFIRM else None
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
        meshed = self._confirmed_mesh(image, box, MASKED_CONFIRM_SCORE)
        return meshed if meshed is not None and self._masked(image, meshed) else None

    def _confirmed_mesh(self, image: np.ndarray, box: np.ndarray, min_score: float = 0.0) -> Face | None:
        """MediaPipe's face at `box` (`_confirm`, scoring `min_score` up) with the mesh's keypoints, where the
        mesh fits it; else None."""
        confirmed = self._confirm(image, box)
        if confirmed is None or confirmed.score < min_score:
            return None
        return self._fitting_mesh(image, confirmed)

    @property
    def presence(self) -> MaskPresence:
        """The mask-presence CNN, loaded on first use: by a masked face to confirm, or by the Recognizer,
        which shares it."""
        if self._presence is None:
            self._presence = MaskPresence()
        return self._presence

    def _masked(self, image: np.ndarray, face: Face) -> bool:
        """The mask-presence CNN calls the face masked."""
        ((masked, _),) = self.presence.masked([align_face(image, face.keypoints)[0]])
        return masked

    def _fitting_mesh(self, image: np.ndarray, f: Face) -> Face | None:
        """`f` with the mesh's keypoints where the mesh finds it, about as wide as its box; else None."""
        meshed = self._refine(image, f)
        return meshed if meshed.mesh is not None and _mesh_fits(meshed.mesh, f.box) else None

    def _confirm(self, image: np.ndarray, box: np.ndarray) -> Face | None:
        """MediaPipe's short-range face on a square crop of _CONFIRM_CROP x `box`, if it overlaps `box`."""
        side = _CONFIRM_CROP * max(box[2], box[3])
        size = int(min(_CONFIRM_INPUT, round(side)))
        scale = size / side
        crop, offset = _centred_crop(image, box, scale, size)
        for f in self._detect(crop, 0, 0.0, 0):
            f = replace(f, box=_uncropped_box(f.box, offset, scale), keypoints=_uncropped(f.keypoints, offset, scale))
            if iou(f.box, box) >= 0.3:
                return f
        return None

    def _rescore(self, image: np.ndarray, box: np.ndarray, min_score: float = YUNET_RESCORE) -> Face | None:
        """YuNet's face at `box` on a crop of _RESCORE_CROP x its size where the face is RESCORE_FACE_PX
        wide, if it scores at least `min_score` there: a face YuNet only glimpsed on the shrunk photo
        scores high there, a pattern does not."""
        scale = RESCORE_FACE_PX / max(box[2], box[3])
        crop, offset = _centred_crop(image, box, scale, int(round(_RESCORE_CROP * RESCORE_FACE_PX)))
        best = None
        for r in self._yunet.detect(crop, min_score):
            found = _uncropped_box(r[:4], offset, scale)
            if r[14] >= min_score and iou(found, box) >= 0.3 and (best is None or r[14] > best.score):
                best = Face(box=found, score=float(r[14]), keypoints=_uncropped(r[4:14].reshape(5, 2), offset, scale))
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


def _centred_crop(image: np.ndarray, box: np.ndarray, scale: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A `size`-px square crop of the photo scaled by `scale` around `box`'s centre (grey past the edges), and
    the offset that, with `scale`, maps photo pixels to the crop's: crop = scale * photo + offset."""
    x, y, bw, bh = box
    M = np.array([[scale, 0, size / 2 - scale * (x + bw / 2)], [0, scale, size / 2 - scale * (y + bh / 2)]], np.float32)
    crop = cv2.warpAffine(image, M, (size, size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
    return crop, M[:, 2]


def _uncropped(points: np.ndarray, offset: np.ndarray, scale: float) -> np.ndarray:
    """Points found on a `_centred_crop`, in photo pixels."""
    return ((points - offset) / scale).astype(np.float32)


def _uncropped_box(box: np.ndarray, offset: np.ndarray, scale: float) -> np.ndarray:
    """An x y w h box found on a `_centred_crop`, in photo pixels."""
    return np.concatenate([_uncropped(box[:2], offset, scale), np.asarray(box[2:4]) / scale]).astype(np.float32)


def _yunet_faces(rows: np.ndarray) -> list[Face]:
    """YuNet's rows (x y w h, five keypoints, score) as faces."""
    return [Face(box=r[:4].copy(), score=float(r[14]), keypoints=r[4:14].reshape(5, 2).copy()) for r in rows]


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
    points = (_IRIS[0], _IRIS[1], _NOSE_TIP, _MOUTH[0], _MOUTH[1])
    return np.stack([mesh[i] for i in points]).astype(np.float32)


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
