"""OpenVINO: the default runtime. An IR file pair (.xml + .bin) made from an export's SavedModel, and its loader.

The .xml carries the export's model card (fingerprint, threshold, sizes) as runtime info named
`facerec_model_card`, plus an `openvino` entry: precision, how it was checked, and the SHA-256 of the
.bin (so a damaged weights file is refused, not run). It keeps the SavedModel's fingerprint, so a
gallery enrolled with one works with the others.

Two precisions: float32 (the SavedModel's function, cosine >= FLOAT32_MIN_COSINE on the check faces),
and int8 (NNCF post-training quantisation, calibrated on aligned faces of people the model was trained
on, the head after the embedding's MatMul kept float32), an export folder's default when it holds one
(SHIPPED; the shipped model has none: its int8 file lost RMFRD rank-1 beyond the allowance,
docs/evaluation.md), else float32. A float32 file computes in bf16 on CPUs that have it natively
(`inference_precision`). Running a file needs only `openvino`; making one needs TensorFlow (and NNCF
for int8).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from facerec._lazy import openvino_core as core
from facerec.runtime.base import (CARD_FILE, OUTPUT_KEY, BadModel, Embedder, cache_dir, check_export, cosines,
                                  first_line, read_card)

CARD_KEY = "facerec_model_card"
SHIPPED = "openvino-int8.xml"  # beside saved_model/ in an export folder: its default runtime when present
PRECISIONS = ("float32", "int8")
FLOAT32_MIN_COSINE = 0.9999  # float32 IR against the SavedModel, on every check face
INT8_MIN_COSINE = 0.98  # int8 IR against the SavedModel: a broken quantisation is refused, not shipped
MAX_NORM_CHANGE = 0.01  # embedding norms against the SavedModel's, any precision
_CHECK_FACES = 16
PRECISION_ENV = "FACEREC_OPENVINO_PRECISION"  # f32 or bf16: what a float32 file computes in (inference_precision)


def inference_precision(file_precision: str | None) -> str:
    """What OpenVINO computes a file's float operations in (its INFERENCE_PRECISION_HINT).

    A float32 file: bf16 on CPUs that compute in it natively (AVX-512 BF16 or AMX, which OpenVINO reports
    as BF16): 1.8x the faces/s of f32 on the 2-core AVX-512 machine, embeddings within 0.9999 cosine of
    f32 on real faces, accuracy figures in docs/evaluation.md; elsewhere f32. FACEREC_OPENVINO_PRECISION=f32
    (or bf16) decides instead. An int8 file: f32, always: its float operations are the head, which keeps
    embedding norms (see `_head`).
    """
    if file_precision == "int8":
        return "f32"
    native = "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    asked = os.environ.get(PRECISION_ENV, "").strip().lower()
    if asked not in ("", "f32", "bf16"):
        raise ValueError(f"{PRECISION_ENV}={asked!r}: use f32 or bf16")
    if asked == "bf16" and not native:
        raise ValueError(f"{PRECISION_ENV}=bf16, but this CPU has no native bfloat16 (AVX-512 BF16 or AMX)")
    return asked or ("bf16" if native else "f32")


class OpenVINOEmbedder(Embedder):
    """An IR file pair made by `export`, compiled for the CPU in `inference_precision`."""

    runtime = "openvino"

    def __init__(self, path: str | os.PathLike, inference: str | None = None):
        """`inference`: "f32" or "bf16" for a float32 file; default `inference_precision(...)`."""
        p = Path(path)
        if not p.is_file():
            raise BadModel(path, "no such file" if not p.exists() else "not a file (expected an OpenVINO .xml)")
        weights = p.with_suffix(".bin")
        if not weights.is_file():
            raise BadModel(path, f"no {weights.name} beside it (an OpenVINO model is the .xml and its .bin)")
        try:
            digest = hashlib.sha256(weights.read_bytes()).hexdigest()
            model = core().read_model(str(p))
        except OSError as e:
            raise BadModel(path, f"cannot read ({e.strerror or e})") from None
        except Exception as e:  # OpenVINO raises RuntimeError with multi-line text for any bad IR
            raise BadModel(path, f"not an OpenVINO model, or a damaged one ({first_line(e)})") from None
        if not model.has_rt_info(CARD_KEY):
            raise BadModel(path, f"no {CARD_KEY} inside: not made by facerec-export")
        try:
            card = json.loads(model.get_rt_info(CARD_KEY).astype(str))
        except ValueError as e:
            raise BadModel(path, f"unreadable {CARD_KEY} ({first_line(e)})") from None
        if not isinstance(card, dict) or not isinstance(card.get("fingerprint"), str):
            raise BadModel(path, f"{CARD_KEY} has no fingerprint")
        written = card.get("openvino")
        if not isinstance(written, dict) or "weights_sha256" not in written:
            raise BadModel(path, f"{CARD_KEY} has no weights checksum: not made by facerec-export")
        if digest != written["weights_sha256"]:
            raise BadModel(path, f"damaged: {weights.name} differs from the one written at export (checksum)")
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise BadModel(path, "not one input of faces and one output of embeddings")
        shape, out = model.inputs[0].get_partial_shape(), model.outputs[0].get_partial_shape()
        if (model.inputs[0].get_element_type().get_type_name() != "u8" or shape.rank.get_length() != 4
                or not shape[1].is_static or shape[1] != shape[2] or shape[3] != 3 or not out[-1].is_static):
            raise BadModel(path, f"not uint8 faces [N,S,S,3] -> {OUTPUT_KEY} [N,D]")
        self.path, self.card = p, card
        self.input_size, self.dim = shape[1].get_length(), out[-1].get_length()
        self._take_card(path, CARD_KEY)
        self.fingerprint = card["fingerprint"]
        self.precision = written.get("precision")
        try:
            self.inference_precision = inference or inference_precision(self.precision)
        except ValueError as e:
            raise BadModel(path, str(e)) from None
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": self.inference_precision}
        try:
            self._compiled = core().compile_model(model, "CPU", {**config, **_compile_cache()})
        except Exception as e:
            raise BadModel(path, f"cannot compile for the CPU ({first_line(e)})") from None
        self._request = self._compiled.create_infer_request()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self._request.infer([np.ascontiguousarray(batch)])[0].copy()  # the request reuses its buffer


def _compile_cache() -> dict:
    """OpenVINO's compiled-model cache in the user cache, where it can be made. Measured on the loaded
    2-core machine: int8 compiles in 0.8-1.3 s, loads from there in 0.4 s; float32 0.6-1.0 s against
    0.24-0.35 s. OpenVINO keys an entry by a hash of the model (graph and weights), so a re-exported
    file compiles afresh."""
    folder = cache_dir() / "openvino" / "compiled"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return {}
    return {"CACHE_DIR": str(folder)} if os.access(folder, os.W_OK) else {}


def for_export(root: Path, given: str | os.PathLike) -> Embedder:
    """The default embedder of an export folder: its own int8 file if it has one made from this saved_model,
    else the float32 file of the user cache (made now, once, if missing). A card without a fingerprint
    (nothing to key a cache by) is run by TensorFlow."""
    card = read_card(given, root / CARD_FILE)
    fp = card.get("fingerprint")
    if not isinstance(fp, str):
        from facerec.runtime.savedmodel import SavedModelEmbedder

        return SavedModelEmbedder(given)
    shipped = root / SHIPPED
    if shipped.exists():
        emb = OpenVINOEmbedder(shipped)
        if emb.fingerprint != fp:
            raise BadModel(given, f"{SHIPPED} was made from another saved_model (fingerprint {emb.fingerprint[:12]}, "
                                  f"the card says {fp[:12]}): run facerec-export {root} --openvino {shipped} --int8 ...")
    else:
        emb = OpenVINOEmbedder(cached_float32(root, fp))
    # The folder's card is the one calibrations update (threshold); the file's own is a copy from its export.
    emb.card = {**card, "openvino": emb.card["openvino"]}
    emb._take_card(given, CARD_FILE)
    return emb


def cached_float32(root: Path, fp: str) -> Path:
    """The float32 file of the export at `root` (fingerprint `fp`) in the user cache, made now if missing."""
    cached = cache_dir() / "openvino" / fp[:32] / "model-float32.xml"
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        export(root, cached, "float32")
    return cached


def export(export_dir: str | os.PathLike, out: str | os.PathLike, precision: str = "float32",
           calibration: np.ndarray | None = None, calibration_source: str = "") -> dict:
    """Convert a model export's SavedModel to `out` (.xml, with its .bin) and return the card written into it.

    int8 needs `calibration`: aligned uint8 faces [N,S,S,3] of people the model was trained on (never of
    evaluation people); they are also the check faces. float32 is checked on random pixels.
    """
    out = Path(out)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if out.suffix.lower() != ".xml":
        raise ValueError(f"{out}: the output must end in .xml (that is how --model recognises it)")
    if not out.parent.is_dir():
        raise ValueError(f"{out}: no such folder {out.parent}")
    if precision == "int8" and (calibration is None or len(calibration) == 0):
        raise ValueError("int8 needs calibration faces")
    root = check_export(export_dir)
    import openvino as ov

    from facerec.runtime.savedmodel import SavedModelEmbedder

    source = SavedModelEmbedder(root)
    s = source.input_size
    started = time.monotonic()
    model = ov.convert_model(source.serve, input=[-1, s, s, 3])
    if precision == "int8":
        faces = np.asarray(calibration, np.uint8)
        model, quantisation = _quantise(model, faces)
        floor = INT8_MIN_COSINE
    else:
        faces = np.random.default_rng(0).integers(0, 256, (_CHECK_FACES, s, s, 3), np.uint8)
        floor, quantisation = FLOAT32_MIN_COSINE, {}
    seconds = round(time.monotonic() - started, 1)
    # Checked in f32 on every CPU (OpenVINO's default is bf16 where the CPU has it: cosine 0.9995 there).
    got = core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(faces)[0]
    want = source.embed(faces)
    c = cosines(got, want)
    if float(np.min(c)) < floor:
        raise BadModel(export_dir, f"the {precision} OpenVINO model disagrees with the SavedModel (cosine "
                                   f"{float(np.min(c)):.4f} < {floor})")
    norms = np.linalg.norm(got, axis=1) / np.maximum(np.linalg.norm(want, axis=1), 1e-30)
    if np.max(np.abs(norms - 1)) > MAX_NORM_CHANGE:  # scores are dot products: a changed norm changes them
        raise BadModel(export_dir, f"the {precision} OpenVINO model changes embedding norms by up to "
                                   f"{np.max(np.abs(norms - 1)):.1%} (more than {MAX_NORM_CHANGE:.0%})")
    info = {"precision": precision, "converted_from": str(root), "check_faces": len(faces),
            "check_faces_source": calibration_source if precision == "int8" else "random pixels",
            "check_min_cosine": round(float(np.min(c)), 6), "check_mean_cosine": round(float(np.mean(c)), 6),
            "convert_seconds": seconds, "openvino_version": ov.get_version(), **quantisation}
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.xml")
    try:
        ov.save_model(model, str(tmp), compress_to_fp16=False)  # first for the .bin, whose checksum the card holds
        info["weights_sha256"] = hashlib.sha256(tmp.with_suffix(".bin").read_bytes()).hexdigest()
        card = {**source.card, "openvino": info}
        model.set_rt_info(json.dumps(card), CARD_KEY)
        ov.save_model(model, str(tmp), compress_to_fp16=False)
        os.replace(tmp.with_suffix(".bin"), out.with_suffix(".bin"))
        os.replace(tmp, out)  # the .xml last: a loader never sees a new .xml with an old .bin
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".bin").unlink(missing_ok=True)
    return card


def _quantise(model, faces: np.ndarray):
    """NNCF post-training int8 quantisation, activations calibrated on `faces` (one at a time); the head
    (see `_head`) stays float32. Returns the model and what the card records about it."""
    import logging

    import nncf

    from facerec._stderr import native_stderr_silenced

    nncf.set_log_level(logging.WARNING)  # its INFO lines go to stdout, into `facerec-export --json`
    head = _head(model)
    with native_stderr_silenced():  # NNCF's progress bars
        model = nncf.quantize(model, nncf.Dataset([faces[i:i + 1] for i in range(len(faces))]),
                              subset_size=len(faces), preset=nncf.QuantizationPreset.MIXED,
                              ignored_scope=nncf.IgnoredScope(names=head))
    return model, {"nncf_version": nncf.__version__, "preset": "mixed", "float32_ops": head}


def _head(model) -> list[str]:
    """The operations after the last MatMul (the embedding's batch norm and L2 normalisation). Quantised,
    as NNCF does by default, the normalisation factor itself goes to 8 bits and embedding norms drift by
    up to 16 % (cosines to float32 of 1.16 measured): they are a few hundred multiplies, so float32 costs nothing."""
    ops = model.get_ordered_ops()
    last = max((i for i, o in enumerate(ops) if o.get_type_name() == "MatMul"), default=None)
    if last is None:
        return []
    return [o.get_friendly_name() for o in ops[last + 1:] if o.get_type_name() not in ("Constant", "Result")]
