"""Every bad input gets a one-line reason and a non-zero exit (or a recorded skip), never a traceback."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from facerec.cli.gallery import main as gallery_cli
from facerec.cli.match import main as match_cli


@pytest.fixture()
def gallery(tmp_path, tiny_model, celeb_dir, monkeypatch):
    monkeypatch.setenv("FACEREC_MODEL", str(tiny_model))
    monkeypatch.setenv("FACEREC_GALLERY", str(tmp_path / "g.h5"))
    assert CliRunner().invoke(gallery_cli, ["build", str(celeb_dir)]).exit_code == 0
    return tmp_path / "g.h5"


def run(cli, args):
    r = CliRunner().invoke(cli, args)
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit), r.output
    return r


def _bad_files(tmp_path, lfw_photo):
    good = lfw_photo.read_bytes()
    files = {
        "zero-byte": (tmp_path / "zero.jpg", b"", "empty file"),
        "truncated JPEG": (tmp_path / "cut.jpg", good[: len(good) // 2], "truncated"),
        "text named .jpg": (tmp_path / "text.jpg", b"hello, not a photo\n", "not a readable image"),
    }
    for path, data, _ in files.values():
        path.write_bytes(data)
    bomb = tmp_path / "bomb.png"
    Image.new("L", (9000, 9000)).save(bomb)
    (tmp_path / "adir").mkdir()
    files["decompression bomb"] = (bomb, None, "too large")
    files["directory"] = (tmp_path / "adir", None, "directory")
    files["missing path"] = (tmp_path / "nowhere.jpg", None, "no such file")
    return files


@pytest.mark.parametrize("case", ["zero-byte", "truncated JPEG", "text named .jpg", "decompression bomb", "directory",
                                  "missing path"])
def test_bad_photo(gallery, tmp_path, lfw_photo, case):
    path, _, reason = _bad_files(tmp_path, lfw_photo)[case]
    r = run(match_cli, [str(path), "--json"])
    assert r.exit_code == 1, case
    assert r.stderr.startswith(f"facerec-match: error: {path}: ") and reason in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert json.loads(r.stdout) == {"image": str(path), "error": json.loads(r.stdout)["error"], "faces": []}
    r = run(gallery_cli, ["enroll", "--name", "x", str(path)])
    assert r.exit_code == 1 and f"facerec-gallery: error: {path}: " in r.stderr and reason in r.stderr, r.stderr
    assert "x" not in [p["name"] for p in json.loads(run(gallery_cli, ["list", "--json"]).stdout)]


def _variant(lfw_photo, tmp_path, kind):
    img = Image.open(lfw_photo)
    p = tmp_path / f"{kind}.{'png' if kind in ('png16', 'alpha') else 'jpg'}"
    if kind == "gray":
        img.convert("L").save(p)
    elif kind == "cmyk":
        img.convert("CMYK").save(p, quality=95)
    elif kind == "png16":
        Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257).save(p)
    elif kind == "alpha":
        rgba = img.convert("RGBA")
        rgba.putalpha(255)
        rgba.save(p)
    elif kind == "exif":
        exif = Image.Exif()
        exif[0x0112] = 8
        img.rotate(-90, expand=True).save(p, exif=exif)
    return p


@pytest.mark.parametrize("kind", ["gray", "cmyk", "png16", "alpha", "exif"])
def test_unusual_but_valid_photos_are_matched(gallery, tmp_path, lfw_photo, kind):
    r = run(match_cli, [str(_variant(lfw_photo, tmp_path, kind)), "--json"])
    assert r.exit_code == 0, r.output
    faces = json.loads(r.stdout)["faces"]
    assert len(faces) == 1
    if kind == "exif":  # turned upright before detection: the same face box as the original photo
        original = json.loads(run(match_cli, [str(lfw_photo), "--json"]).stdout)["faces"][0]["box"]
        np.testing.assert_allclose(faces[0]["box"], original, atol=6)
    r = run(gallery_cli, ["enroll", "--name", kind, str(_variant(lfw_photo, tmp_path, kind)), "--mask-templates", "0"])
    assert r.exit_code == 0, r.output


def test_no_face_and_several_faces(gallery, tmp_path, data_dir):
    blank = tmp_path / "wall.jpg"
    Image.new("RGB", (300, 200), (180, 170, 160)).save(blank)
    r = run(match_cli, [str(blank), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["faces"] == [] and "no face" in r.stderr
    r = run(gallery_cli, ["enroll", "--name", "wall", str(blank)])
    assert r.exit_code == 1 and "no face found" in r.stderr
    lfw = data_dir / "lfw" / "lfw-deepfunneled"
    a = Image.open(lfw / "Abdullah_Gul" / "Abdullah_Gul_0001.jpg")
    b = Image.open(lfw / "Alejandro_Toledo" / "Alejandro_Toledo_0001.jpg").resize((200, 200))
    two = Image.new("RGB", (520, 260), (0, 0, 0))
    two.paste(a, (0, 0)), two.paste(b, (300, 30))
    group = tmp_path / "two.jpg"
    two.save(group)
    r = run(match_cli, [str(group), "--json"])
    faces = json.loads(r.stdout)["faces"]
    assert r.exit_code == 0 and len(faces) == 2 and "2 faces" in r.stderr
    assert faces[0]["box"][2] * faces[0]["box"][3] >= faces[1]["box"][2] * faces[1]["box"][3]
    r = run(gallery_cli, ["enroll", "--name", "Group Photo", str(group)])
    assert r.exit_code == 0 and "enrolled the main face" in r.stderr


def test_face_below_size_limit(gallery, lfw_photo, monkeypatch):
    import facerec.recognizer as R

    monkeypatch.setattr(R, "MIN_FACE_PX", 10_000)
    r = run(match_cli, [str(lfw_photo), "--json"])
    out = json.loads(r.stdout)
    assert r.exit_code == 0 and out["faces"] == [] and out["skipped_small_faces"] == 1
    assert "1 face(s) under 10000 px skipped" in r.stderr
    r = run(gallery_cli, ["enroll", "--name", "tiny", str(lfw_photo)])
    assert r.exit_code == 1 and "too small" in r.stderr


def test_corrupt_and_foreign_galleries(gallery, tmp_path, lfw_photo):
    import h5py

    cases = {}
    text = tmp_path / "text.h5"
    text.write_text("definitely not HDF5")
    cases[text] = "corrupt or not a gallery"
    cut = tmp_path / "cut.h5"
    cut.write_bytes(gallery.read_bytes()[:4000])
    cases[cut] = "corrupt"
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.arange(3)
    cases[foreign] = "not a facerec gallery"
    for path, reason in cases.items():
        before = path.read_bytes()
        for cli, args in ((match_cli, [str(lfw_photo)]), (gallery_cli, ["enroll", "--name", "x", str(lfw_photo)]),
                          (gallery_cli, ["list"])):
            r = run(cli, [*args, "--gallery", str(path)])
            assert r.exit_code == 1 and reason in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert path.read_bytes() == before  # never "repaired" into something else


@pytest.mark.parametrize("name, ok", [("", False), ("   ", False), ("a/b", False), ("../etc", False),
                                      ("bell\x07", False), ("Zoë Ångström-山田", True)])
def test_names(gallery, lfw_photo, name, ok):
    r = run(gallery_cli, ["enroll", "--name", name, str(lfw_photo), "--mask-templates", "0"])
    assert (r.exit_code == 0) == ok, r.output
    if ok:
        listed = json.loads(run(gallery_cli, ["list", "--json"]).stdout)
        assert name in [p["name"] for p in listed]
    else:
        assert "name" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not list(gallery.parent.glob("*etc*")) and not (gallery.parent / "a").exists()
