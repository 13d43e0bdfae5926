"""Build the face-embedding network, export it, and load exports with TensorFlow alone.

An export folder holds saved_model/ (serving signature: uint8 faces [N,S,S,3] ->
L2-normalised float32 embeddings [N,D]; its variables, in Keras order, are the one copy of the
weights, from which `load_export_weights` starts fine-tuning) and model_card.json. Loading for
recognition only needs `tf.saved_model.load`, so Keras is imported lazily by the functions that
build or export models.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from facerec import __version__
from facerec import _quiet  # noqa: F401  (before TensorFlow)
import tensorflow as tf

BACKBONES = ("sface", "efficientnet-lite0", "efficientnet-b0", "tiny")
SIGNATURE = "serving_default"
OUTPUT_KEY = "embeddings"
CARD_FILE = "model_card.json"
_REPO = Path(__file__).resolve().parents[1]


def default_model_path() -> Path:
    """Where recognisers look for a model: $FACEREC_MODEL, else <repo>/artifacts/model."""
    return Path(os.environ.get("FACEREC_MODEL") or _REPO / "artifacts" / "model")


def build_model(backbone: str = "efficientnet-lite0", input_size: int = 112, embedding_dim: int = 128,
                dropout: float = 0.2, weights: str | None = "pretrained"):
    """A keras.Model from float32 RGB pixels 0..255 [N,S,S,3] to L2-normalised embeddings [N,D].

    The backbone is the layer named "backbone" (freeze it with `.trainable = False`).
    weights="pretrained" starts from the weights each backbone has offline: SFace's (the whole face
    network, from the checked ONNX file, see facerec.sface) for sface, ImageNet's for
    efficientnet-lite0; efficientnet-b0 and tiny always start from scratch.
    """
    import keras
    from keras import layers

    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose from {', '.join(BACKBONES)}")
    if weights not in ("pretrained", None):
        raise ValueError(f"weights must be 'pretrained' or None, not {weights!r}")
    shape = (input_size, input_size, 3)
    inputs = keras.Input(shape, name="pixels")
    if backbone == "sface":
        from facerec import sfacenet

        if (input_size, embedding_dim) != (sfacenet.INPUT_SIZE, sfacenet.EMBEDDING_DIM):
            raise ValueError(f"sface takes {sfacenet.INPUT_SIZE}-px faces and gives {sfacenet.EMBEDDING_DIM}-d "
                             f"embeddings, not {input_size} / {embedding_dim}")
        pixels = keras.Input(shape, name="pixels")
        features = keras.Model(pixels, sfacenet.features(pixels), name="backbone")
        outputs = layers.UnitNormalization(name="l2_normalize")(sfacenet.head(features(inputs), dropout))
        model = keras.Model(inputs, outputs, name="facerec_sface")
        if weights == "pretrained":
            from facerec.sface import require

            sfacenet.load_sface_weights(model, require())
        return model
    if backbone == "efficientnet-lite0":
        from facerec import lite0

        pixels = keras.Input(shape, name="pixels")
        features = keras.Model(pixels, lite0.features(pixels), name="backbone")
        if weights == "pretrained":
            lite0.load_imagenet_weights(features)
    elif backbone == "efficientnet-b0":  # rescales 0..255 inside
        features = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=shape,
                                                     name="backbone")
    else:
        features = _tiny(shape)

    x = layers.GlobalAveragePooling2D(name="pool")(features(inputs))
    x = layers.Dropout(dropout, name="embedding_dropout")(x)
    x = layers.Dense(embedding_dim, use_bias=False, name="embedding")(x)  # BN supplies the offset
    x = layers.BatchNormalization(name="embedding_bn")(x)
    outputs = layers.UnitNormalization(name="l2_normalize")(x)
    return keras.Model(inputs, outputs, name="facerec_" + backbone.replace("-", "_"))


def _tiny(shape):
    """Three strided convs: a backbone that trains in seconds, for tests."""
    import keras
    from keras import layers

    pixels = keras.Input(shape, name="pixels")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(pixels)
    for i, filters in enumerate((16, 32, 64)):
        x = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
    return keras.Model(pixels, x, name="backbone")


def fingerprint(values: Iterable) -> str:
    """sha256 hex of weight values in order (dtype, shape and bytes): equal weights, equal hash."""
    h = hashlib.sha256()
    for v in values:
        a = np.ascontiguousarray(np.asarray(v))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def export_model(model, out_dir: str | os.PathLike, card: dict) -> Path:
    """Write out_dir/saved_model and out_dir/model_card.json; return out_dir."""
    out = Path(out_dir)
    size, dim = int(model.input_shape[1]), int(model.output_shape[-1])
    weights = list(model.weights)
    card = {**card, "input_size": size, "embedding_dim": dim, "fingerprint": fingerprint(weights),
            "facerec_version": __version__}
    text = json.dumps(card, indent=2)  # fail on a non-JSON card before writing anything

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8, name="faces")], autograph=False)
    def serve(faces):
        return {OUTPUT_KEY: model(tf.cast(faces, tf.float32), training=False)}

    module = tf.Module()
    module.weights = weights  # tracked in Keras order, so a loader can re-derive the fingerprint
    module.serve = serve
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "saved_model", ignore_errors=True)
    tf.saved_model.save(module, str(out / "saved_model"), signatures={SIGNATURE: serve})
    (out / CARD_FILE).write_text(text + "\n")
    return out


def load_export_weights(model, export_dir: str | os.PathLike) -> None:
    """Set `model`'s weights from an export made from the same architecture (fine-tuning starts here)."""
    module = tf.saved_model.load(str(Path(export_dir) / "saved_model"))
    saved = [v.numpy() for v in module.weights]
    shapes = [tuple(w.shape) for w in model.weights]
    if [a.shape for a in saved] != shapes:
        raise BadModel(export_dir, f"its weights do not fit this architecture ({len(saved)} arrays, expected "
                                   f"{len(shapes)} of {model.name}'s shapes)")
    for w, a in zip(model.weights, saved):
        w.assign(a)


class BadModel(Exception):
    """A model path that cannot be used, with a one-line reason (str: "PATH: reason")."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class Embedder:
    """An exported model loaded with `tf.saved_model.load` alone: uint8 faces -> embeddings."""

    def __init__(self, path: str | os.PathLike):
        given = Path(path)
        if not given.exists():
            raise BadModel(path, "no such directory")
        if not given.is_dir():
            raise BadModel(path, "not a directory (expected a model export folder, or a .tflite file)")
        root = given.parent if given.name == "saved_model" and (given / "saved_model.pb").is_file() else given
        if not (root / "saved_model" / "saved_model.pb").is_file():
            raise BadModel(path, "no saved_model/saved_model.pb inside (not a model export)")
        self.path = root
        self.card = _read_card(path, root / CARD_FILE)
        try:
            self._module = tf.saved_model.load(str(root / "saved_model"))
        except Exception as e:  # TF raises many types, often with multi-line messages
            raise BadModel(path, f"cannot load saved_model ({_first_line(e)})") from None
        self._serve = self._module.signatures.get(SIGNATURE)
        if self._serve is None:
            raise BadModel(path, f"saved_model has no {SIGNATURE!r} signature")
        spec = self._serve.structured_input_signature[1].get("faces")
        out = self._serve.structured_outputs.get(OUTPUT_KEY)
        if spec is None or out is None or spec.dtype != tf.uint8 or spec.shape.rank != 4:
            raise BadModel(path, f"{SIGNATURE} is not uint8 faces [N,S,S,3] -> {OUTPUT_KEY}")
        self.input_size = int(spec.shape[1])
        self.dim = int(out.shape[-1])
        self._take_card(path, CARD_FILE)
        self.fingerprint: str = self.card.get("fingerprint") or fingerprint(v.numpy() for v in self._module.weights)

    def _take_card(self, path, card_name: str) -> None:
        """Check the card (`self.card`, named `card_name` in errors) against the network; set the threshold."""
        for key, actual in (("input_size", self.input_size), ("embedding_dim", self.dim)):
            if key in self.card and self.card[key] != actual:
                raise BadModel(path, f"{card_name} says {key} {self.card[key]} but the network has {actual}")
        threshold = self.card.get("threshold")
        if threshold is not None and not isinstance(threshold, (int, float)):
            raise BadModel(path, f"threshold in {card_name} is not a number: {threshold!r}")
        self.threshold: float | None = None if threshold is None else float(threshold)

    def embed(self, faces: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Embed aligned uint8 RGB faces [N,S,S,3] -> float32 [N,D], `batch_size` at a time."""
        faces = np.asarray(faces)
        s = self.input_size
        if faces.dtype != np.uint8 or faces.ndim != 4 or faces.shape[1:] != (s, s, 3):
            raise ValueError(f"expected uint8 faces [N,{s},{s},3], got {faces.dtype} {list(faces.shape)}")
        out = np.empty((len(faces), self.dim), np.float32)
        for i in range(0, len(faces), batch_size):
            out[i:i + batch_size] = self._run(faces[i:i + batch_size])
        return out

    def _run(self, batch: np.ndarray) -> np.ndarray:
        """One batch through the network (a TFLiteEmbedder runs its interpreter instead)."""
        return self._serve(faces=tf.constant(batch))[OUTPUT_KEY].numpy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, input_size={self.input_size}, dim={self.dim})"


def load_embedder(path: str | os.PathLike) -> Embedder:
    """Load an export folder (or its saved_model/ subfolder), or a `.tflite` file made by facerec-export;
    raises BadModel with a reason."""
    if Path(path).suffix.lower() == ".tflite":
        from facerec.tflite import TFLiteEmbedder

        return TFLiteEmbedder(path)
    return Embedder(path)


def _read_card(path, card_path: Path) -> dict:
    if not card_path.is_file():
        raise BadModel(path, f"no {CARD_FILE} next to saved_model/")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BadModel(path, f"unreadable {CARD_FILE} ({_first_line(e)})") from None
    if not isinstance(card, dict):
        raise BadModel(path, f"{CARD_FILE} is not a JSON object")
    return card


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
