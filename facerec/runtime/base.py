"""The `Embedder` interface and the model-path conventions (`facerec.runtime.load_embedder` picks a runtime by them).

A model export folder holds saved_model/ (the model of record, TensorFlow), model_card.json, and may hold
openvino-int8.xml/.bin (a quantised file facerec-export writes there on request). Loading a path:

- an export folder: the default runtime, OpenVINO: the folder's int8 file when it is present and made
  from this saved_model (same fingerprint), else a float32 file made at first use into the user cache
  (keyed by the fingerprint; that one-time conversion imports TensorFlow);
- its saved_model/ subfolder: TensorFlow itself (`tf.saved_model.load`);
- a `.xml` file: that OpenVINO file; a `.tflite` file: TensorFlow Lite.

Nothing here imports TensorFlow; each runtime module imports what it needs when it loads.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

SIGNATURE = "serving_default"
OUTPUT_KEY = "embeddings"
CARD_FILE = "model_card.json"
_REPO = Path(__file__).resolve().parents[2]


def default_model_path() -> Path:
    """Where recognisers look for a model: $FACEREC_MODEL, else <repo>/artifacts/model."""
    return Path(os.environ.get("FACEREC_MODEL") or _REPO / "artifacts" / "model")


def cache_dir() -> Path:
    """$FACEREC_CACHE, else <cache>/facerec (<cache> = $XDG_CACHE_HOME or ~/.cache): derived files live here."""
    if os.environ.get("FACEREC_CACHE"):
        return Path(os.environ["FACEREC_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "facerec"


def fingerprint(values: Iterable) -> str:
    """sha256 hex of weight values in order (dtype, shape and bytes): equal weights, equal hash."""
    h = hashlib.sha256()
    for v in values:
        a = np.ascontiguousarray(np.asarray(v))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class BadModel(Exception):
    """A model path that cannot be used, with a one-line reason (str: "PATH: reason")."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class Embedder:
    """Aligned uint8 RGB faces [N,S,S,3] -> L2-normalised float32 embeddings [N,D], whatever runs the network.

    A runtime sets path, card, input_size, dim and fingerprint, calls `_take_card`, and implements `_run`.
    """

    runtime = "?"
    path: Path
    card: dict
    input_size: int
    dim: int
    fingerprint: str
    threshold: float | None

    def _take_card(self, path, card_name: str) -> None:
        """Check the card (`self.card`, named `card_name` in errors) against the network; set the threshold."""
        for key, actual in (("input_size", self.input_size), ("embedding_dim", self.dim)):
            if key in self.card and self.card[key] != actual:
                raise BadModel(path, f"{card_name} says {key} {self.card[key]} but the network has {actual}")
        threshold = self.card.get("threshold")
        if threshold is not None and not isinstance(threshold, (int, float)):
            raise BadModel(path, f"threshold in {card_name} is not a number: {threshold!r}")
        self.threshold = None if threshold is None else float(threshold)

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
        """One batch through the network."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, input_size={self.input_size}, dim={self.dim})"


def export_root(path: str | os.PathLike) -> Path:
    """The export folder of a folder path or of its saved_model/ subfolder."""
    p = Path(path)
    return p.parent if p.name == "saved_model" and (p / "saved_model.pb").is_file() else p


def check_export(path: str | os.PathLike) -> Path:
    """The export folder at `path` (or above its saved_model/), or BadModel saying why it is not one."""
    given = Path(path)
    if not given.exists():
        raise BadModel(path, "no such directory")
    if not given.is_dir():
        raise BadModel(path, "not a directory (expected a model export folder, or a .xml / .tflite file)")
    root = export_root(given)
    if not (root / "saved_model" / "saved_model.pb").is_file():
        raise BadModel(path, "no saved_model/saved_model.pb inside (not a model export)")
    return root


def read_card(path, card_path: Path) -> dict:
    """The JSON object in `card_path`, or BadModel (reported against `path`)."""
    if not card_path.is_file():
        raise BadModel(path, f"no {CARD_FILE} next to saved_model/")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BadModel(path, f"unreadable {CARD_FILE} ({first_line(e)})") from None
    if not isinstance(card, dict):
        raise BadModel(path, f"{CARD_FILE} is not a JSON object")
    return card


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity (exports L2-normalise, but an untrained net's tiny vectors may not be)."""
    return np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)


def first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
