"""TFLite export: the converted file embeds like its SavedModel, carries its card, and loads where a model does."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from facerec.cli.export import main as export_cli
from facerec.cli.gallery import main as gallery_cli
from facerec.cli.match import main as match_cli
from facerec.runtime.base import BadModel, cosines, default_model_path
from facerec.runtime import load_embedder
from facerec.runtime.tflite import PARITY_MIN_COSINE, TFLiteEmbedder, convert


def run(cli, args):
    r = CliRunner().invoke(cli, args)
    assert "Traceback" not in r.output, r.output
    return r


@pytest.fixture(scope="module")
def tiny_tflite(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("tflite") / "tiny.tflite"
    r = run(export_cli, [str(tiny_model), "--tflite", str(out), "--json"])
    assert r.exit_code == 0, r.output
    return out, json.loads(r.stdout)


def test_export_carries_the_card_and_embeds_like_the_saved_model(tiny_model, tiny_tflite):
    path, printed = tiny_tflite
    source = load_embedder(tiny_model / "saved_model")
    lite = load_embedder(path)
    assert isinstance(lite, TFLiteEmbedder)
    assert (lite.input_size, lite.dim, lite.threshold) == (source.input_size, source.dim, 0.5)
    assert lite.fingerprint == source.fingerprint  # same function, so galleries are shared (docs/deploy.md)
    assert lite.card["tflite"]["float16_weights"] is False and printed["bytes"] == path.stat().st_size
    assert printed["tflite"]["check_min_cosine"] >= PARITY_MIN_COSINE
    x = np.random.default_rng(3).integers(0, 256, (70, source.input_size, source.input_size, 3), np.uint8)
    got, want = lite.embed(x, batch_size=32), source.embed(x)
    assert got.shape == (70, source.dim) and got.dtype == np.float32
    assert np.min(cosines(got, want)) >= 0.9999
    np.testing.assert_allclose(lite.embed(x[:1]), got[:1], atol=1e-5)  # batch size changes nothing


def test_float16_weights_halve_the_file(tiny_model, tiny_tflite, tmp_path):
    half = tmp_path / "half.tflite"
    card = convert(tiny_model, half, float16=True)
    assert card["tflite"]["float16_weights"] is True
    assert half.stat().st_size < 0.75 * tiny_tflite[0].stat().st_size
    assert load_embedder(half).fingerprint == card["fingerprint"]


def test_bad_tflite_files_have_one_line_reasons(tiny_tflite, tmp_path, bad_model_reason):
    reason = bad_model_reason
    good = tiny_tflite[0].read_bytes()
    assert reason(tmp_path / "missing.tflite") == "no such file"
    (tmp_path / "dir.tflite").mkdir()
    assert "not a file" in reason(tmp_path / "dir.tflite")
    (tmp_path / "junk.tflite").write_bytes(b"not a model" * 50)
    assert "not a TFLite model" in reason(tmp_path / "junk.tflite")
    (tmp_path / "cut.tflite").write_bytes(good[: len(good) // 2])
    assert "truncated" in reason(tmp_path / "cut.tflite")
    flipped = bytearray(good)
    flipped[len(good) // 3] ^= 0xFF  # inside the weights: the interpreter would run it, wrongly
    (tmp_path / "flipped.tflite").write_bytes(bytes(flipped))
    assert "damaged" in reason(tmp_path / "flipped.tflite")


def test_plain_tflite_without_a_card_is_refused(tiny_model, tmp_path):
    import tensorflow as tf

    module = tf.saved_model.load(str(tiny_model / "saved_model"))
    plain = tf.lite.TFLiteConverter.from_concrete_functions([module.signatures["serving_default"]], module).convert()
    (tmp_path / "plain.tflite").write_bytes(plain)
    with pytest.raises(BadModel, match="not made by facerec-export"):
        load_embedder(tmp_path / "plain.tflite")


def test_export_cli_errors_are_one_line(tiny_model, tmp_path):
    for args, words in (([str(tmp_path / "nope"), "--tflite", str(tmp_path / "a.tflite")], "no such directory"),
                        ([str(tiny_model), "--tflite", str(tmp_path / "a.onnx")], "must end in .tflite"),
                        ([str(tiny_model), "--tflite", str(tmp_path / "no" / "a.tflite")], "no such folder")):
        r = run(export_cli, args)
        assert r.exit_code == 1 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output
    assert not list(tmp_path.glob("*.tflite")) and not list(tmp_path.glob(".*"))


def test_match_and_gallery_take_a_tflite_model(tiny_model, tiny_tflite, celeb_dir, lfw_photo, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEREC_GALLERY", str(tmp_path / "g.h5"))
    lite = str(tiny_tflite[0])
    built = run(gallery_cli, ["build", str(celeb_dir), "--mask-templates", "0", "--model", str(tiny_model)])
    assert built.exit_code == 0, built.output
    assert run(gallery_cli, ["enroll", "--name", "Aaron", str(lfw_photo), "--model", lite]).exit_code == 0
    by_saved = json.loads(run(match_cli, [str(lfw_photo), "--json", "--model", str(tiny_model)]).stdout)
    by_lite = json.loads(run(match_cli, [str(lfw_photo), "--json", "--model", lite]).stdout)
    assert [m["identity"] for m in by_lite["faces"][0]["matches"]][0] == "Aaron"  # enrolled by the .tflite
    for a, b in zip(by_saved["faces"][0]["matches"], by_lite["faces"][0]["matches"]):
        assert a["identity"] == b["identity"] and abs(a["score"] - b["score"]) <= 2e-4


def test_shipped_model_parity_on_real_faces(data_dir, detector, tmp_path):
    """The acceptance check: the shipped model's .tflite (float32 and float16 weights) against its SavedModel."""
    from facerec.faces.align import aligned_faces
    from facerec.images import load_image

    lfw = data_dir / "lfw" / "lfw-deepfunneled"
    source = load_embedder(default_model_path() / "saved_model")
    crops = []
    for person in sorted(p for p in lfw.iterdir() if p.is_dir())[:24]:
        image = load_image(sorted(person.glob("*.jpg"))[0])
        crops += [f.crop for f in aligned_faces(image, detector.detect(image)[:1], source.input_size)]
    faces = np.stack(crops)
    assert len(faces) >= 20
    want = source.embed(faces)
    for float16 in (False, True):
        out = tmp_path / f"shipped-{float16}.tflite"
        convert(default_model_path(), out, float16=float16)
        got = load_embedder(out).embed(faces)
        assert np.min(cosines(got, want)) >= PARITY_MIN_COSINE, float16


def test_a_copy_keeps_working(tiny_tflite, tmp_path):
    """Nothing beside the file is needed: the card travels inside it."""
    lone = tmp_path / "alone" / "m.tflite"
    lone.parent.mkdir()
    shutil.copy(tiny_tflite[0], lone)
    assert load_embedder(lone).fingerprint == tiny_tflite[1]["fingerprint"]
