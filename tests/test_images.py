import io

import numpy as np
import pytest
from PIL import Image

from facerec.images import BadInput, load_image


def _save(tmp_path, name, img: Image.Image, **kw):
    p = tmp_path / name
    img.save(p, **kw)
    return p


def _gradient(w=64, h=48):
    x = np.linspace(0, 255, w, dtype=np.uint8)
    return np.stack([np.tile(x, (h, 1))] * 3, axis=-1)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("hello, I am not a picture"), "not a readable image"),
    ],
)
def test_bad_files(tmp_path, make, reason):
    p = tmp_path / "x.jpg"
    make(p)
    with pytest.raises(BadInput, match=reason) as e:
        load_image(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(_gradient(256, 256)).save(buf, "JPEG")
    p = tmp_path / "cut.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(BadInput, match="truncated"):
        load_image(p)


def test_missing_and_directory(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(BadInput, match="directory"):
        load_image(tmp_path)


def test_decompression_bomb(tmp_path):
    p = _save(tmp_path, "bomb.png", Image.new("L", (5000, 5000)))
    with pytest.raises(BadInput, match="too large"):
        load_image(p, max_pixels=10_000_000)


def test_grayscale_cmyk_16bit_alpha(tmp_path):
    g = _gradient()
    gray = load_image(_save(tmp_path, "g.jpg", Image.fromarray(g[..., 0])))
    assert gray.shape == (48, 64, 3) and gray.dtype == np.uint8
    cmyk = load_image(_save(tmp_path, "c.jpg", Image.fromarray(g).convert("CMYK"), quality=95))
    assert cmyk.shape == (48, 64, 3) and abs(int(cmyk[:, -1].mean()) - 255) < 10
    im16 = Image.fromarray(g[..., 0].astype(np.uint16) * 257)
    a16 = load_image(_save(tmp_path, "w.png", im16))
    assert a16[:, -1].min() > 245 and a16[:, 0].max() < 10  # scaled, not clipped
    rgba = np.dstack([g, np.zeros(g.shape[:2], np.uint8)])  # fully transparent
    alpha = load_image(_save(tmp_path, "a.png", Image.fromarray(rgba)))
    assert alpha.min() == 255  # composited on white


def test_exif_rotation_is_applied(tmp_path):
    img = Image.fromarray(_gradient(64, 32))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    p = tmp_path / "rot.jpg"
    img.save(p, exif=exif)
    assert load_image(p).shape == (64, 32, 3)
