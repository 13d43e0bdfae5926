"""Property-based fuzzing (hypothesis) of what reads untrusted bytes: the image decoder and the gallery
reader. Random, truncated and mutated files get one clear error each, never another exception, and a
gallery that cannot be read is never rewritten."""

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from facerec.search.gallery import Gallery, GalleryError, editing
from facerec.images import BadInput, check_image, decode_image

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _encoded(fmt: str, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (24, 32, 3), np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


IMAGES = [_encoded("PNG"), _encoded("JPEG"), _encoded("PNG", "LA"), _encoded("BMP"), _encoded("WEBP"),
          _encoded("TIFF"), _encoded("GIF", "P")]


def _gallery_bytes() -> bytes:
    rng = np.random.default_rng(1)
    g = Gallery("fp", 8)
    for name in ("Ann", "Bo"):
        e = rng.normal(size=(2, 8))
        g.add(name, e / np.linalg.norm(e, axis=1, keepdims=True), ["photo", "synthetic-mask:n95"], ["a.jpg"] * 2,
              [b"\xff\xd8jpeg", b""], "ab" * 32)
    g.calibration = {"threshold": 0.4, "far": 0.01, "strangers": 100, "people": 2}
    with tempfile.TemporaryDirectory() as tmp:
        g.save(Path(tmp) / "g.h5")
        return (Path(tmp) / "g.h5").read_bytes()


GALLERY = _gallery_bytes()


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """A valid file cut short, with bytes overwritten, inserted or deleted, or several of these."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        op = draw(st.sampled_from(["truncate", "overwrite", "insert", "delete"]))
        if op == "truncate":
            del data[at:]
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at:at + len(chunk)] = chunk
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at:at + draw(st.integers(1, 16))]
    return bytes(data)


@FUZZ
@given(st.one_of(st.binary(max_size=512), mutated(IMAGES)))
def test_image_decoder_gives_one_clear_error_or_an_rgb_image(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.jpg"
        path.write_bytes(data)
        for read in (lambda: decode_image(data, path), lambda: check_image(path)):
            try:
                img = read()
            except BadInput as e:
                assert e.reason and "\n" not in str(e) and str(e).startswith(str(path))
            else:
                assert img is None or (img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3)


@FUZZ
@given(st.one_of(st.binary(max_size=512), mutated([GALLERY])))
def test_gallery_reader_gives_one_clear_error_and_never_rewrites_a_bad_file(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.h5"
        path.write_bytes(data)
        try:
            g = Gallery.load(path)
        except GalleryError as e:
            assert e.reason and "\n" not in str(e)
            with pytest.raises(GalleryError):
                with editing(path, "fp") as h:  # an enrolment into it
                    h.remove("Ann")
            assert path.read_bytes() == data  # unchanged
        else:  # bytes the reader never looks at: still a consistent gallery
            assert g.embeddings.shape == (len(g), g.embedding_dim) and len(g.people()) <= len(g)
            g.search(np.ones(g.embedding_dim) / np.sqrt(g.embedding_dim), 1)
