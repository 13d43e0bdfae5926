"""The runtime layer: OpenVINO files embed like their SavedModel, are refused when damaged, and the match path
runs without TensorFlow."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from facerec import _lazy
from facerec.cli.export import main as export_cli
from facerec.runtime.base import BadModel, cache_dir, cosines, default_model_path
from facerec.runtime import load_embedder
from facerec.runtime.openvino import (FLOAT32_MIN_COSINE, PRECISION_ENV, SHIPPED, OpenVINOEmbedder, _quantise, core,
                                      inference_precision)


def faces(n, size=112, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), np.uint8)


@pytest.fixture(scope="module")
def tiny_xml(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("ov") / "tiny.xml"
    r = CliRunner().invoke(export_cli, [str(tiny_model), "--openvino", str(out), "--json"])
    assert r.exit_code == 0, r.output
    return out, json.loads(r.stdout)


def test_export_embeds_like_the_saved_model_and_keeps_the_card(tiny_model, tiny_xml, monkeypatch):
    monkeypatch.setenv(PRECISION_ENV, "f32")  # the float32 file as written, on any CPU
    path, printed = tiny_xml
    ov, tf = load_embedder(path), load_embedder(tiny_model / "saved_model")
    assert isinstance(ov, OpenVINOEmbedder) and ov.runtime == "openvino" and tf.runtime == "tensorflow"
    assert (ov.input_size, ov.dim, ov.threshold, ov.fingerprint) == (tf.input_size, tf.dim, 0.5, tf.fingerprint)
    assert printed["openvino"]["precision"] == "float32" and printed["bytes"] > path.stat().st_size
    x = faces(70, seed=3)
    got = ov.embed(x, batch_size=32)
    assert got.shape == (70, tf.dim) and got.dtype == np.float32
    assert np.min(cosines(got, tf.embed(x))) >= FLOAT32_MIN_COSINE
    np.testing.assert_allclose(ov.embed(x[:1]), got[:1], atol=1e-5)


class _Capabilities:
    def __init__(self, native_bf16):
        self.caps = ["FP32", "INT8"] + (["BF16"] if native_bf16 else [])

    def get_property(self, device, name):
        assert (device, name) == ("CPU", "OPTIMIZATION_CAPABILITIES")
        return self.caps


def test_float32_files_compute_in_bf16_only_where_the_cpu_has_it(monkeypatch):
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    for native, want in ((True, "bf16"), (False, "f32")):
        monkeypatch.setattr(_lazy, "_openvino_core", _Capabilities(native))
        assert inference_precision("float32") == want
        assert inference_precision("int8") == "f32"  # the head stays float32 (embedding norms)
        monkeypatch.setenv(PRECISION_ENV, "F32")
        assert inference_precision("float32") == "f32"
        monkeypatch.setenv(PRECISION_ENV, "fp64")
        with pytest.raises(ValueError, match="use f32 or bf16"):
            inference_precision("float32")
        monkeypatch.delenv(PRECISION_ENV)
    monkeypatch.setenv(PRECISION_ENV, "bf16")
    with pytest.raises(ValueError, match="no native bfloat16"):
        inference_precision("float32")


def test_a_bad_precision_setting_refuses_the_model_in_one_line(tiny_xml, monkeypatch):
    monkeypatch.setenv(PRECISION_ENV, "half")
    with pytest.raises(BadModel) as e:
        OpenVINOEmbedder(tiny_xml[0])
    assert PRECISION_ENV in str(e.value) and "\n" not in str(e.value)


def test_an_export_folder_runs_on_openvino_from_the_cache(tiny_model):
    emb = load_embedder(tiny_model)
    assert emb.runtime == "openvino" and emb.path.is_relative_to(cache_dir())
    assert emb.fingerprint[:32] in str(emb.path)  # keyed by the SavedModel's fingerprint
    made = emb.path.stat().st_mtime_ns
    again = load_embedder(tiny_model)
    assert again.path == emb.path and again.path.stat().st_mtime_ns == made  # made once


def test_bad_openvino_files_have_one_line_reasons(tiny_xml, tiny_model, tmp_path, bad_model_reason):
    reason = bad_model_reason
    good = tiny_xml[0]
    assert reason(tmp_path / "missing.xml") == "no such file"
    lone = tmp_path / "lone.xml"
    shutil.copy(good, lone)
    assert "no lone.bin beside it" in reason(lone)
    (tmp_path / "junk.xml").write_text("<not a model")
    (tmp_path / "junk.bin").write_bytes(b"")
    assert "not an OpenVINO model" in reason(tmp_path / "junk.xml")
    shutil.copy(good, tmp_path / "flip.xml")
    weights = bytearray(good.with_suffix(".bin").read_bytes())
    weights[len(weights) // 2] ^= 0xFF
    (tmp_path / "flip.bin").write_bytes(bytes(weights))
    assert "damaged" in reason(tmp_path / "flip.xml")

    import openvino as ov

    import tensorflow as tf

    module = tf.saved_model.load(str(tiny_model / "saved_model"))  # kept alive: the function uses its variables
    plain = ov.convert_model(module.signatures["serving_default"], input=[-1, 112, 112, 3])
    ov.save_model(plain, str(tmp_path / "plain.xml"))
    assert "not made by facerec-export" in reason(tmp_path / "plain.xml")

    other = tmp_path / "other"
    shutil.copytree(tiny_model, other)
    shutil.copy(good, other / SHIPPED)
    shutil.copy(good.with_suffix(".bin"), (other / SHIPPED).with_suffix(".bin"))
    card = json.loads((other / "model_card.json").read_text())
    (other / "model_card.json").write_text(json.dumps({**card, "fingerprint": "0" * 64}))
    assert "made from another saved_model" in reason(other)


def test_int8_keeps_the_head_float32_so_embedding_norms_hold(tiny_xml):
    """NNCF left alone quantises the L2 normalisation too (norms off by up to 16 % on the shipped model)."""
    float32 = core().read_model(str(tiny_xml[0]))
    int8, info = _quantise(float32, faces(8, seed=5))
    ops = int8.get_ordered_ops()
    last = max(i for i, o in enumerate(ops) if o.get_type_name() == "MatMul")
    assert info["float32_ops"] and not [o for o in ops[last + 1:] if o.get_type_name() == "FakeQuantize"]
    assert [o for o in ops[:last] if o.get_type_name() == "FakeQuantize"]  # the rest is quantised
    x = faces(6, seed=6)
    f32 = {"INFERENCE_PRECISION_HINT": "f32"}  # as OpenVINOEmbedder runs int8 files, on every CPU
    want, got = core().compile_model(float32, "CPU", f32)(x)[0], core().compile_model(int8, "CPU", f32)(x)[0]
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), np.linalg.norm(want, axis=1), rtol=1e-3)


def test_export_cli_usage_and_errors(tiny_model, tmp_path):
    for args, code, words in (([str(tiny_model)], 2, "one of them"),
                              ([str(tiny_model), "--openvino", str(tmp_path / "a.xml"), "--int8"], 2, "--calibration"),
                              ([str(tiny_model), "--tflite", str(tmp_path / "a.tflite"), "--int8"], 2, "for --openvino"),
                              ([str(tmp_path / "nope"), "--openvino", str(tmp_path / "a.xml")], 1, "no such directory"),
                              ([str(tiny_model), "--openvino", str(tmp_path / "a.onnx")], 1, "must end in .xml")):
        r = CliRunner().invoke(export_cli, args)
        assert r.exit_code == code and words in r.output and "Traceback" not in r.output, r.output
    assert not list(tmp_path.iterdir())


def test_shipped_model_runs_on_openvino_like_its_saved_model_on_real_faces(data_dir, detector):
    """Acceptance: the default runtime's float32 file within 0.9999 cosine of the SavedModel on real faces."""
    from facerec.faces.align import aligned_faces
    from facerec.images import load_image

    lfw = data_dir / "lfw" / "lfw-deepfunneled"
    crops = []
    for person in sorted(p for p in lfw.iterdir() if p.is_dir())[:24]:
        image = load_image(sorted(person.glob("*.jpg"))[0])
        crops += [f.crop for f in aligned_faces(image, detector.detect(image)[:1], 112)]
    x = np.stack(crops)
    assert len(x) >= 20
    tf = load_embedder(default_model_path() / "saved_model")
    want = tf.embed(x)
    default = load_embedder(default_model_path())
    assert default.runtime == "openvino" and default.card["openvino"]["precision"] == "float32"
    assert default.fingerprint == tf.fingerprint and default.threshold == tf.threshold
    assert default.inference_precision == inference_precision("float32")
    # bf16 where the CPU has it: 0.99992 the least cosine measured on 64 LFW faces
    assert np.min(cosines(default.embed(x), want)) >= 0.9995
    assert np.min(cosines(OpenVINOEmbedder(default.path, "f32").embed(x), want)) >= FLOAT32_MIN_COSINE


def test_matching_enrolment_and_video_import_no_tensorflow(tiny_model, celeb_dir, lfw_photo, tmp_path):
    load_embedder(tiny_model)  # the cached OpenVINO file exists, as after a first use
    script = textwrap.dedent(f"""
        import sys
        from facerec.cli.gallery import main as gallery
        from facerec.cli.match import main as match
        import facerec.video
        for cli, args in ((gallery, ["build", {str(celeb_dir)!r}, "--mask-templates", "1"]),
                          (gallery, ["enroll", "--name", "Aaron", {str(lfw_photo)!r}]),
                          (match, [{str(lfw_photo)!r}, "--json"])):
            try:
                cli(args, standalone_mode=False)
            except SystemExit as e:
                assert not e.code, e.code
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
        print("LOADED", loaded)
    """)
    env = {**os.environ, "FACEREC_MODEL": str(tiny_model), "FACEREC_GALLERY": str(tmp_path / "g.h5")}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "LOADED []" in r.stdout, r.stdout[-2000:]
    assert '"faces"' in r.stdout


def test_light_imports_leave_the_rest_for_first_use():
    """The match path loads MediaPipe's two face solutions and OpenVINO's runtime only; the rest of
    each library still loads when something asks for it."""
    script = textwrap.dedent("""
        import sys
        from facerec._lazy import import_mediapipe, import_openvino
        mp, ov = import_mediapipe(), import_openvino()
        assert mp.solutions.face_mesh.FaceMesh and mp.solutions.face_detection.FaceDetection and ov.Core
        heavy = ("matplotlib", "mediapipe.tasks", "mediapipe.python.solutions.hands", "openvino.tools.ovc")
        print("LOADED", [m for m in heavy if m in sys.modules])
        sys.modules["tensorflow"] = None  # mediapipe.tasks probes it; not what this test is about
        import mediapipe, openvino
        assert mediapipe.solutions.hands.Hands and mediapipe.tasks.vision and mediapipe.__version__
        assert callable(openvino.convert_model)
        print("LATER", [m for m in heavy if m not in sys.modules])
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "LOADED []" in r.stdout and "LATER []" in r.stdout, r.stdout
