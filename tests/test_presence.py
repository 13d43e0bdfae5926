import numpy as np
import pytest

from facerec.faces.align import aligned_faces
from facerec.images import load_image


@pytest.fixture(scope="module")
def presence():
    from facerec.faces.presence import MaskPresence

    return MaskPresence()


@pytest.fixture(scope="module")
def lfw_face(detector, lfw_photo):
    image = load_image(lfw_photo)
    return aligned_faces(image, detector.detect(image)[:1], 112)[0]


def test_bare_face_is_unmasked_and_drawn_or_photographic_masks_are_masked(presence, lfw_face, data_dir):
    from facerec.faces.mask_photos import apply_photo_mask
    from facerec.faces.masks import STYLES, apply_mask

    crops = [lfw_face.crop] + [apply_mask(lfw_face.crop, lfw_face.mesh, style=s, seed=1) for s in STYLES]
    rng = np.random.default_rng(0)
    crops += [apply_photo_mask(lfw_face.crop, lfw_face.mesh, data_dir / "mask_overlays", rng) for _ in range(4)]
    calls = presence.masked(np.stack(crops))
    assert calls[0][0] is False and calls[0][1] < 0.5
    assert all(m for m, _ in calls[1:]), calls
    assert all(0.0 <= s <= 1.0 for _, s in calls)


def test_real_masks_told_apart_on_rmfrd(presence, detector, data_dir):
    """The first 40 masked and 40 unmasked RMFRD photos by path (never trained on): nearly all right."""
    import csv

    rows = sorted(csv.DictReader(open(data_dir / "rmfrd" / "manifest.csv")), key=lambda r: r["path"])
    right = {"1": 0, "0": 0}
    for flag in ("1", "0"):
        chosen = [r for r in rows if r["masked"] == flag][:40]
        crops = []
        for r in chosen:
            image = load_image(data_dir / "rmfrd" / r["path"])
            faces = detector.detect(image)
            if faces:
                crops.append(aligned_faces(image, faces[:1], 112)[0].crop)
        calls = presence.masked(np.stack(crops))
        right[flag] = sum(m == (flag == "1") for m, _ in calls)
    assert right["1"] >= 36 and right["0"] >= 36, right


def test_empty_batch(presence):
    assert presence.masked(np.zeros((0, 112, 112, 3), np.uint8)) == []


def test_photo_mask_covers_the_lower_face_only(lfw_face, data_dir):
    from facerec.faces.mask_photos import apply_photo_mask, load_templates

    templates, textures = load_templates(str(data_dir / "mask_overlays"))
    assert len(templates) >= 18 and textures
    out = apply_photo_mask(lfw_face.crop, lfw_face.mesh, data_dir / "mask_overlays", np.random.default_rng(3))
    changed = np.abs(out.astype(int) - lfw_face.crop.astype(int)).sum(axis=2) > 30
    assert changed[75:100, 40:72].mean() > 0.8  # mouth and chin
    assert changed[:40].mean() < 0.02  # forehead and eyes untouched


def test_mask_templates_folder_must_exist(tmp_path):
    from facerec.faces.mask_photos import load_templates

    with pytest.raises(ValueError, match="masks.cfg"):
        load_templates(str(tmp_path))


def test_text_output_shows_mask_presence():
    from facerec.match import table

    face = {"box": [0, 0, 9, 9], "identity": "ada", "score": 0.8, "masked": True, "mask_score": 0.97,
            "matches": [{"identity": "ada", "score": 0.8}]}
    bare = {**face, "masked": False, "mask_score": 0.02}
    text = table({"image": "x.jpg", "threshold": 0.5, "faces": [face, bare]}).splitlines()
    assert "face 1  masked  0.97  ada" in text[1] and "face 2  no mask 0.02  ada" in text[2]


def test_the_recognizer_and_its_detector_share_one_mask_presence_model(tmp_path):
    """The detector confirms masked faces with the CNN and the Recognizer reports mask fields with it:
    one copy, loaded once."""
    from facerec import Recognizer

    rec = Recognizer(gallery=tmp_path / "g.h5")
    assert rec.presence is rec.detector.presence is rec.presence


def test_mask_presence_compiles_on_the_process_openvino_core(monkeypatch):
    """Each OpenVINO Core holds a CPU plugin and its thread pool: the mask-presence CNN uses the process's one
    (`facerec._lazy.openvino_core`, the embedding runtime's too), never a Core of its own."""
    from facerec import _lazy
    from facerec.faces.presence import MODEL_PATH, MaskPresence

    real, compiled = _lazy.openvino_core(), []

    class Spy:
        def compile_model(self, model, *args):
            compiled.append(model)
            return real.compile_model(model, *args)

    monkeypatch.setattr(_lazy, "_openvino_core", Spy())
    presence = MaskPresence()
    assert compiled == [str(MODEL_PATH)]
    assert presence.scores(np.zeros((2, 112, 112, 3), np.uint8)).shape == (2,)
