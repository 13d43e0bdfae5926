"""Build the face-embedding network (Keras) and export it: training and export only.

An export folder holds saved_model/ (serving signature: uint8 faces [N,S,S,3] ->
L2-normalised float32 embeddings [N,D]; its variables, in Keras order, are the one copy of the
weights, from which `load_export_weights` starts fine-tuning) and model_card.json. Recognition
loads exports through `facerec.runtime` and never imports this module.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from facerec import __version__
from facerec import _quiet  # noqa: F401  (before TensorFlow)
from facerec.runtime.base import CARD_FILE, OUTPUT_KEY, SIGNATURE, BadModel, fingerprint
import tensorflow as tf

BACKBONES = ("sface", "efficientnet-lite0", "efficientnet-b0", "tiny")


def build_model(backbone: str = "efficientnet-lite0", input_size: int = 112, embedding_dim: int = 128,
                dropout: float = 0.2, weights: str | None = "pretrained"):
    """A keras.Model from float32 RGB pixels 0..255 [N,S,S,3] to L2-normalised embeddings [N,D].

    The backbone is the layer named "backbone" (freeze it with `.trainable = False`).
    weights="pretrained" starts from the weights each backbone has offline: SFace's (the whole face
    network, from the checked ONNX file, see facerec.runtime.sface) for sface, ImageNet's for
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
        from facerec.nets import sfacenet

        if (input_size, embedding_dim) != (sfacenet.INPUT_SIZE, sfacenet.EMBEDDING_DIM):
            raise ValueError(f"sface takes {sfacenet.INPUT_SIZE}-px faces and gives {sfacenet.EMBEDDING_DIM}-d "
                             f"embeddings, not {input_size} / {embedding_dim}")
        pixels = keras.Input(shape, name="pixels")
        features = keras.Model(pixels, sfacenet.features(pixels), name="backbone")
        outputs = layers.UnitNormalization(name="l2_normalize")(sfacenet.head(features(inputs), dropout))
        model = keras.Model(inputs, outputs, name="facerec_sface")
        if weights == "pretrained":
            from facerec.runtime.sface import WEIGHTS

            sfacenet.load_sface_weights(model, WEIGHTS.require())
        return model
    if backbone == "efficientnet-lite0":
        from facerec.nets import lite0

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
