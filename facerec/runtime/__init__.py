"""Runtimes that embed aligned faces: one `Embedder` interface (base), one module per runtime, and
`load_embedder`, which picks the runtime for a model path (the conventions: facerec/runtime/base.py).

Here rather than in base, so the runtimes import base and nothing imports back.
"""

from __future__ import annotations

import os
from pathlib import Path

from facerec.runtime.base import Embedder, check_export


def load_embedder(path: str | os.PathLike) -> Embedder:
    """The embedder for a model path (see the module docstring for which runtime); raises BadModel with a reason."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".tflite":
        from facerec.runtime.tflite import TFLiteEmbedder

        return TFLiteEmbedder(path)
    if suffix == ".xml":
        from facerec.runtime.openvino import OpenVINOEmbedder

        return OpenVINOEmbedder(path)
    root = check_export(path)
    if p.name == "saved_model":
        from facerec.runtime.savedmodel import SavedModelEmbedder

        return SavedModelEmbedder(path)
    from facerec.runtime.openvino import for_export

    return for_export(root, path)
