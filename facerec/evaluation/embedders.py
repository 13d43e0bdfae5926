"""Photo embedders behind one small interface, so evaluation compares pipelines, not parts.

Each embedder takes whole RGB photos and does its own detection and alignment,
because a peer's detector failing on a masked face is part of how it performs:

- "model": our pipeline, MediaPipe detection -> main face -> ArcFace alignment
  -> exported SavedModel; cosine similarity.
- "dlib": the classic face_recognition pipeline (dlib HOG detection, 5-point
  alignment, 128-d ResNet; optional extra `facerec[peer]`); score = -Euclidean distance.
- "dlib-mediapipe": dlib's descriptor on the face box of our detector, to tell
  dlib's detector failures (HOG misses tight and masked faces) from its descriptor.
- "sface": OpenCV Zoo's SFace through `cv2.FaceRecognizerSF` on our detection and alignment (its
  weights: `facerec-data fetch-sface`): the free model users would pick instead of ours.
- "imagenet": our detection and alignment, then the global-average-pooled
  ImageNet features of the EfficientNet-Lite0 backbone, L2-normalised: the floor
  a face-trained model must clear.

`EmbedderSpec` is the picklable recipe, so worker processes build their own.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

NAMES = ("model", "sface", "dlib", "dlib-mediapipe", "imagenet")
IMAGENET_SIZE = 112  # the training issue's input size


class PhotoEmbedder(Protocol):
    name: str
    metric: str  # "cosine" or "euclidean"
    no_face: str  # the failure reason when no face is found

    def embed_photo(self, image: np.ndarray) -> np.ndarray | None:
        """Descriptor of the main face in an RGB uint8 photo, or None when there is no face."""

    def embed_photos(self, images: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        """`embed_photo` over many photos (batched where the network allows)."""


def scores(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """Similarity of rows of `a` and `b` (broadcasting), higher = more likely the same person."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if metric == "cosine":
        return np.sum(a * b, axis=-1)
    if metric == "euclidean":
        return -np.linalg.norm(a - b, axis=-1)
    raise ValueError(f"unknown metric {metric!r}")


def similarity_matrix(probes: np.ndarray, gallery: np.ndarray, metric: str) -> np.ndarray:
    """[P, G] scores of every probe row against every gallery row (one matrix product, not P*G*D memory)."""
    p, g = np.asarray(probes, np.float64), np.asarray(gallery, np.float64)
    dots = p @ g.T
    if metric == "cosine":
        return dots
    if metric == "euclidean":
        sq = np.sum(p * p, 1)[:, None] + np.sum(g * g, 1)[None, :] - 2 * dots
        return -np.sqrt(np.maximum(sq, 0.0))
    raise ValueError(f"unknown metric {metric!r}")


@dataclass(frozen=True)
class EmbedderSpec:
    """What to build: `name` in NAMES, and `model_path` for "model"."""

    name: str
    model_path: str | None = None

    def __post_init__(self):
        if self.name not in NAMES:
            raise ValueError(f"unknown embedder {self.name!r}; choose from {', '.join(NAMES)}")

    @property
    def metric(self) -> str:
        return "euclidean" if self.name.startswith("dlib") else "cosine"

    @property
    def label(self) -> str:
        if self.name != "model":
            return self.name
        from facerec.runtime.base import default_model_path

        return f"model:{self.model_path or default_model_path()}"

    def build(self) -> PhotoEmbedder:
        if self.name == "model":
            from facerec.faces.masks import MASK_TEMPLATES
            from facerec.runtime import load_embedder
            from facerec.runtime.base import default_model_path

            return PipelineEmbedder("model", load_embedder(self.model_path or default_model_path()),
                                    mask_templates=MASK_TEMPLATES)
        if self.name == "sface":
            from facerec.runtime.sface import SFaceNetwork

            return PipelineEmbedder("sface", SFaceNetwork())
        if self.name == "dlib":
            return DlibEmbedder()
        if self.name == "dlib-mediapipe":
            from facerec.faces.detect import FaceDetector

            return DlibEmbedder(FaceDetector())
        return PipelineEmbedder("imagenet", ImagenetFeatures())

    def threshold(self, masked: bool = False) -> float | None:
        """The calibrated open-set threshold (model card; `masked`: the one for masked faces, where the
        card has it), without loading the model; None if uncalibrated."""
        if self.name != "model":
            return None
        from facerec.runtime.base import CARD_FILE, default_model_path

        root = Path(self.model_path or default_model_path())
        root = root.parent if root.name == "saved_model" else root
        try:
            card = json.loads((root / CARD_FILE).read_text())
            value = card.get("threshold_masked", card.get("threshold")) if masked else card.get("threshold")
        except (OSError, ValueError, AttributeError):
            return None
        return float(value) if isinstance(value, (int, float)) else None


class PipelineEmbedder:
    """Our photo pipeline in front of any aligned-face network with `.input_size` and `.embed(uint8 faces)`."""

    metric = "cosine"
    no_face = "no face detected"

    def __init__(self, name: str, network, detector=None, mask_templates: int = 0):
        from facerec.faces.detect import FaceDetector

        self.name = name
        self.network = network
        self.detector = detector or FaceDetector()
        self.mask_templates = mask_templates  # synthetic-mask templates per enrolled photo (ours: as enrolment)

    def aligned(self, image: np.ndarray):
        """The aligned main face (crop and mesh), or None."""
        from facerec.faces.align import aligned_faces

        faces = self.detector.detect(image)
        return aligned_faces(image, faces[:1], self.network.input_size)[0] if faces else None

    def crop(self, image: np.ndarray) -> np.ndarray | None:
        """The aligned crop of the main face, or None."""
        face = self.aligned(image)
        return None if face is None else face.crop

    def embed_templates(self, images: Sequence[np.ndarray], hashes: Sequence[str]) -> list:
        """Per photo, (vectors [T, D], kinds) of the templates enrolment stores (the photo and its
        synthetic-mask copies, seeded by the content hash), or None without a face."""
        from facerec.faces.masks import mask_templates

        out = []
        for image, sha in zip(images, hashes):
            face = self.aligned(image)
            if face is None:
                out.append(None)
                continue
            crops, kinds = mask_templates(face.crop, face.mesh, sha, self.mask_templates)
            out.append((self.network.embed(crops), kinds))
        return out

    def embed_photo(self, image: np.ndarray) -> np.ndarray | None:
        return self.embed_photos([image])[0]

    def embed_photos(self, images: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        crops = [self.crop(im) for im in images]
        found = [i for i, c in enumerate(crops) if c is not None]
        out: list[np.ndarray | None] = [None] * len(crops)
        if found:
            vecs = self.network.embed(np.stack([crops[i] for i in found]))
            for i, v in zip(found, vecs):
                out[i] = v
        return out


class DlibEmbedder:
    """The dlib peer. With its own HOG detector it is the pipeline face_recognition users run;
    with `detector` (ours) it isolates dlib's descriptor from dlib's detector.
    """

    metric = "euclidean"

    def __init__(self, detector=None):
        from facerec.runtime.peer import DlibPeer

        self.peer = DlibPeer()
        self.detector = detector
        self.name = "dlib" if detector is None else "dlib-mediapipe"
        self.no_face = "no face detected (dlib HOG)" if detector is None else "no face detected"

    def embed_photo(self, image: np.ndarray) -> np.ndarray | None:
        if self.detector is None:
            return self.peer.embed_photo(image)
        faces = self.detector.detect(image)
        return self.peer.embed_photo(image, faces[0].box) if faces else None

    def embed_photos(self, images: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        return [self.embed_photo(im) for im in images]

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Descriptors of aligned crops taken as the face box (for throughput benchmarks)."""
        s = crops.shape[1]
        box = np.array([0, 0, s, s], np.float32)
        return np.stack([self.peer.embed_photo(c, box) for c in crops])


class ImagenetFeatures:
    """EfficientNet-Lite0 ImageNet backbone, global-average-pooled and L2-normalised (1280-d)."""

    input_size = IMAGENET_SIZE

    def __init__(self, input_size: int = IMAGENET_SIZE):
        from facerec import _quiet  # noqa: F401  (before TensorFlow)
        import keras
        import tensorflow as tf

        from facerec.nets.model import build_model

        full = build_model("efficientnet-lite0", input_size=input_size, weights="pretrained")
        pixels = keras.Input((input_size, input_size, 3))
        pooled = keras.layers.GlobalAveragePooling2D()(full.get_layer("backbone")(pixels))
        self._model = keras.Model(pixels, keras.layers.UnitNormalization()(pooled))
        spec = tf.TensorSpec([None, input_size, input_size, 3], tf.uint8)
        self._run = tf.function(lambda x: self._model(tf.cast(x, tf.float32), training=False), input_signature=[spec])
        self.input_size = input_size
        self.dim = int(self._model.output_shape[-1])

    def embed(self, faces: np.ndarray, batch_size: int = 64) -> np.ndarray:
        faces = np.asarray(faces, np.uint8)
        return np.concatenate([np.asarray(self._run(faces[i:i + batch_size])) for i in range(0, len(faces), batch_size)])


def single_threaded() -> None:
    """One thread each for TensorFlow, OpenMP and OpenCV: for each of several worker processes on few cores.

    Call before TensorFlow starts; environment variables only, so a dlib worker never imports it.
    """
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ[var] = "1"
    import cv2

    cv2.setNumThreads(1)
