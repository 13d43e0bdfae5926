"""TensorFlow Lite: one `.tflite` file per model export, for phones and small machines, and its loader.

The file carries the export's model card (fingerprint, threshold, sizes) as TFLite metadata named
`facerec_model_card`, so it needs nothing beside it. It keeps its SavedModel's fingerprint: it computes
the same embedding (conversion is checked at export, cosine >= PARITY_MIN_COSINE), so a gallery
enrolled with either works with the other; the card's `tflite` entry says how it was converted.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

from facerec._stderr import native_stderr_silenced
from facerec.runtime.base import OUTPUT_KEY, SIGNATURE, BadModel, Embedder, cosines, first_line

CARD_METADATA = "facerec_model_card"
# Least cosine between the .tflite's and the SavedModel's embeddings of the export-time check faces.
PARITY_MIN_COSINE = 0.999
_CHECK_FACES = 16


def convert(export_dir: str | os.PathLike, out: str | os.PathLike, float16: bool = False) -> dict:
    """Convert a model export to `out` (.tflite) and return the card written into it.

    Variables are frozen into constants first: `TFLiteConverter.from_saved_model` on our exports keeps
    them as resource variables that the interpreter never initialises (READ_VARIABLE fails at run time).
    """
    out = Path(out)
    if out.suffix.lower() != ".tflite":
        raise ValueError(f"{out}: the output must end in .tflite (that is how --model recognises it)")
    if not out.parent.is_dir():
        raise ValueError(f"{out}: no such folder {out.parent}")
    from facerec.runtime.savedmodel import SavedModelEmbedder

    source = SavedModelEmbedder(export_dir)  # refuses anything that is not a usable export
    started = time.monotonic()
    content = _convert(source, float16)
    seconds = round(time.monotonic() - started, 1)

    faces = np.random.default_rng(0).integers(0, 256, (_CHECK_FACES, source.input_size, source.input_size, 3),
                                              np.uint8)
    interpreter = _interpreter(content, out)
    got = _runner(interpreter)(faces=faces)[OUTPUT_KEY]
    cosine = float(np.min(cosines(got, source.embed(faces))))
    if cosine < PARITY_MIN_COSINE:
        raise BadModel(export_dir, f"the TFLite conversion disagrees with the SavedModel (cosine {cosine:.4f} "
                                   f"< {PARITY_MIN_COSINE})")
    card = {**source.card, "tflite": {"converted_from": str(source.path), "float16_weights": float16,
                                      "check_min_cosine": round(cosine, 6), "check_faces": _CHECK_FACES,
                                      "convert_seconds": seconds}}
    content, card = _with_card(content, card)
    _write_atomically(out, content)
    return card


def _tf():
    """TensorFlow, imported silenced when first needed (the TFLite interpreter is part of it)."""
    from facerec import _quiet  # noqa: F401  (before TensorFlow)
    import tensorflow as tf

    return tf


def _convert(source, float16: bool) -> bytes:
    tf = _tf()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    with native_stderr_silenced():  # grappler logs its session start
        frozen = convert_variables_to_constants_v2(source.serve)
    s = source.input_size

    @tf.function(input_signature=[tf.TensorSpec([None, s, s, 3], tf.uint8, name="faces")], autograph=False)
    def serve(faces):
        return {OUTPUT_KEY: frozen(faces)[0]}  # named as in the SavedModel's serving signature

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], source.module)
    if float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    try:
        with native_stderr_silenced():  # the MLIR converter logs every pass
            return converter.convert()
    except Exception as e:  # the converter raises many types, with multi-line messages
        raise BadModel(source.path, f"cannot convert to TFLite ({first_line(e)})") from None


def _with_card(content: bytes, card: dict) -> tuple[bytes, dict]:
    """`content` with the card as one more named metadata buffer (how TFLite files carry extra data),
    and the card as written.

    The card records a digest of every other buffer (the weights), so a damaged file is refused
    instead of embedding faces wrongly: the interpreter does not notice flipped weight bytes.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(content)
    card = {**card, "tflite": {**card["tflite"], "weights_sha256": _digest(b.data for b in model.buffers)}}
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(card).encode(), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = CARD_METADATA.encode(), len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), card


def _read_card(content: bytes) -> tuple[bytes | None, str]:
    """The card's bytes (None if absent) and the digest of the other buffers; ValueError if not TFLite."""
    _tf()
    from tensorflow.lite.python import schema_py_generated as schema

    if not schema.Model.ModelBufferHasIdentifier(content, 0):
        raise ValueError("no TFL3 identifier")
    model = schema.Model.GetRootAs(content, 0)
    where = None
    for i in range(model.MetadataLength()):
        if model.Metadata(i).Name() == CARD_METADATA.encode():
            where = model.Metadata(i).Buffer()
    raw = None if where is None else model.Buffers(where).DataAsNumpy().tobytes()
    return raw, _digest(model.Buffers(i).DataAsNumpy() for i in range(model.BuffersLength()) if i != where)


def _digest(buffers) -> str:
    """sha256 of buffer contents in order (an empty buffer reads as None or 0, depending on the API)."""
    h = hashlib.sha256()
    for data in buffers:
        raw = np.asarray(data, np.uint8).tobytes() if isinstance(data, np.ndarray) else b""
        h.update(len(raw).to_bytes(8, "little") + raw)
    return h.hexdigest()


def _interpreter(content: bytes, path):
    tf = _tf()
    try:
        with warnings.catch_warnings(), native_stderr_silenced():  # deprecation notice; XNNPACK's INFO line
            warnings.simplefilter("ignore")
            interpreter = tf.lite.Interpreter(model_content=content)
            interpreter.allocate_tensors()
    except Exception as e:  # corrupt flatbuffers fail in many ways
        raise BadModel(path, f"cannot load the TFLite model ({first_line(e)})") from None
    return interpreter


def _runner(interpreter):
    with native_stderr_silenced():
        return interpreter.get_signature_runner(SIGNATURE)


def _write_atomically(path: Path, data: bytes) -> None:
    """No half-written model is ever left under the name a loader would use."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class TFLiteEmbedder(Embedder):
    """A `.tflite` file made by `convert`, run by tf.lite.Interpreter: an Embedder."""

    runtime = "tflite"

    def __init__(self, path: str | os.PathLike):
        p = Path(path)
        if not p.is_file():
            raise BadModel(path, "no such file" if not p.exists() else "not a file (expected a .tflite model)")
        try:
            content = p.read_bytes()
            raw, digest = _read_card(content)
        except OSError as e:
            raise BadModel(path, f"cannot read ({e.strerror or e})") from None
        except ValueError as e:
            raise BadModel(path, f"not a TFLite model ({e})") from None
        except Exception:  # the flatbuffer reader reads past the end of a cut file (struct.error, IndexError)
            raise BadModel(path, "not a TFLite model, or a truncated one") from None
        if raw is None:
            raise BadModel(path, f"no {CARD_METADATA} inside: not made by facerec-export")
        try:
            card = json.loads(raw)
        except ValueError as e:
            raise BadModel(path, f"unreadable {CARD_METADATA} ({first_line(e)})") from None
        if not isinstance(card, dict) or not isinstance(card.get("fingerprint"), str):
            raise BadModel(path, f"{CARD_METADATA} has no fingerprint")
        written = card.get("tflite")
        if not isinstance(written, dict) or "weights_sha256" not in written:
            raise BadModel(path, f"{CARD_METADATA} has no weights checksum: not made by facerec-export")
        if digest != written["weights_sha256"]:
            raise BadModel(path, "damaged: its weights differ from those written at export (checksum)")
        self.path, self.card = p, card
        self._interpreter = _interpreter(content, path)
        try:
            self._signature = _runner(self._interpreter)
        except ValueError as e:
            raise BadModel(path, f"no {SIGNATURE!r} signature ({first_line(e)})") from None
        inputs, outputs = self._signature.get_input_details(), self._signature.get_output_details()
        spec, out = inputs.get("faces"), outputs.get(OUTPUT_KEY)
        if (spec is None or out is None or spec["dtype"] != np.uint8 or len(spec["shape"]) != 4
                or spec["shape"][3] != 3 or spec["shape"][1] != spec["shape"][2]):
            raise BadModel(path, f"{SIGNATURE} is not uint8 faces [N,S,S,3] -> {OUTPUT_KEY}")
        self.input_size, self.dim = int(spec["shape"][1]), int(out["shape"][-1])
        self._take_card(path, CARD_METADATA)
        self.fingerprint = card["fingerprint"]

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self._signature(faces=batch)[OUTPUT_KEY]
