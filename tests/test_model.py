"""Model building, the Lite0 ImageNet port, export, and loading with TensorFlow alone."""

import json
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from facerec.nets import lite0
from facerec.nets.losses import TripletSemiHardLoss
from facerec.nets.model import build_model, export_model, load_export_weights
from facerec.runtime.base import BadModel, default_model_path, fingerprint
from facerec.runtime import load_embedder
from facerec.runtime.savedmodel import SavedModelEmbedder

import keras  # noqa: E402  (after facerec, which silences TensorFlow)

SIZE, DIM = 32, 16


def faces(n, seed=0, size=SIZE):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    model = build_model("tiny", input_size=SIZE, embedding_dim=DIM)
    model.compile(optimizer="adam", loss=TripletSemiHardLoss())
    # One training step so BN statistics are not the identity and the export is non-trivial.
    model.fit(faces(16).astype(np.float32), np.arange(16) % 4, batch_size=16, epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def export(tiny, tmp_path_factory):
    return export_model(tiny, tmp_path_factory.mktemp("export") / "model", {"backbone": "tiny", "threshold": 0.6})


def test_tiny_model_embeds_pixels_to_unit_vectors(tiny):
    assert tiny.input_shape == (None, SIZE, SIZE, 3) and tiny.output_shape == (None, DIM)
    out = tiny.predict(faces(3).astype(np.float32), verbose=0)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert tiny.get_layer("backbone").count_params() > 0


def test_efficientnet_b0_from_scratch_builds():
    model = build_model("efficientnet-b0", input_size=64, embedding_dim=8, weights=None)
    out = model.predict(faces(2, size=64).astype(np.float32), verbose=0)
    assert out.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("kwargs", [{"backbone": "resnet"}, {"backbone": "tiny", "weights": "random"}])
def test_bad_build_arguments(kwargs):
    with pytest.raises(ValueError):
        build_model(**kwargs)


def grace_hopper_224():
    """The photo matplotlib ships (a pinned dependency), centre-cropped and resized as in the reference run."""
    import matplotlib
    from PIL import Image

    img = Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB")
    w, h = img.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return np.asarray(img.crop(box).resize((224, 224), Image.BILINEAR), np.float32)[None]


def test_lite0_port_classifies_imagenet_photo_like_pytorch():
    logits = lite0.imagenet_classifier(224).predict(grace_hopper_224(), verbose=0)[0]
    # 652 military uniform, 667 mortarboard, 906 Windsor tie, 834 suit, 400 academic gown.
    top5 = [652, 667, 906, 834, 400]
    assert list(np.argsort(-logits)[:5]) == top5
    # Logits of the same input through the PyTorch package's own model (torch 2.13, one-off run).
    torch_logits = [7.4043, 6.164, 5.9365, 5.7918, 5.6455]
    np.testing.assert_allclose(logits[top5], torch_logits, atol=2e-4)


def test_lite0_embedding_model_carries_imagenet_weights():
    model = build_model("efficientnet-lite0", input_size=64, embedding_dim=32)
    stem = model.get_layer("backbone").get_layer("conv_stem").get_weights()[0]
    state = lite0.read_torch_state_dict(lite0.weights_path())
    np.testing.assert_array_equal(stem, state["_conv_stem.weight"].transpose(2, 3, 1, 0))
    assert model.predict(faces(2, size=64).astype(np.float32), verbose=0).shape == (2, 32)


def test_weights_reader_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    header = b"".join(pickle.dumps(v, protocol=2) for v in (lite0._MAGIC, lite0._PROTOCOL, {"little_endian": True}))
    evil = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    (tmp_path / "evil.pth").write_bytes(header + evil)
    with pytest.raises(pickle.UnpicklingError, match="refusing global os.system"):
        lite0.read_torch_state_dict(tmp_path / "evil.pth")
    assert not marker.exists()


def test_export_layout_and_card(tiny, export):
    assert (export / "saved_model" / "saved_model.pb").is_file()
    assert sorted(p.name for p in export.iterdir()) == ["model_card.json", "saved_model"]  # one weights copy
    card = json.loads((export / "model_card.json").read_text())
    assert card["backbone"] == "tiny" and card["input_size"] == SIZE and card["embedding_dim"] == DIM
    assert card["fingerprint"] == fingerprint(tiny.weights) and len(card["fingerprint"]) == 64
    assert card["facerec_version"]


def test_embedder_matches_keras_and_batches(tiny, export):
    emb = load_embedder(export / "saved_model")  # TensorFlow; the default runtime: tests/test_runtime.py
    assert (emb.input_size, emb.dim, emb.threshold, emb.path, emb.runtime) == (SIZE, DIM, 0.6, export, "tensorflow")
    x = faces(70, seed=5)
    got = emb.embed(x, batch_size=32)
    assert got.dtype == np.float32 and got.shape == (70, DIM)
    np.testing.assert_allclose(got, tiny.predict(x.astype(np.float32), verbose=0), atol=1e-5)
    np.testing.assert_allclose(emb.embed(x[:5]), emb.embed(x)[:5], atol=1e-6)  # batch size only reorders sums
    assert emb.embed(np.zeros((0, SIZE, SIZE, 3), np.uint8)).shape == (0, DIM)
    with pytest.raises(ValueError, match="uint8"):
        emb.embed(x.astype(np.float32))
    with pytest.raises(ValueError):
        emb.embed(faces(1, size=SIZE + 1))


def test_fresh_tensorflow_process_reproduces_embeddings(tiny, export, tmp_path):
    x = faces(8, seed=9)
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(f"""
        import sys, numpy as np, tensorflow as tf
        serve = tf.saved_model.load({str(export / "saved_model")!r}).signatures["serving_default"]
        out = serve(faces=tf.constant(np.load({str(tmp_path / "x.npy")!r})))["embeddings"].numpy()
        assert not any(m == "facerec" or m.startswith("facerec.") for m in sys.modules)
        np.save({str(tmp_path / "y.npy")!r}, out)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, capture_output=True, timeout=120,
                   env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"})
    out = np.load(tmp_path / "y.npy")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, tiny.predict(x.astype(np.float32), verbose=0), atol=1e-5)


def test_export_weights_restart_the_same_architecture(tiny, export):
    again = build_model("tiny", input_size=SIZE, embedding_dim=DIM, weights=None)
    load_export_weights(again, export)
    x = faces(4, seed=2).astype(np.float32)
    np.testing.assert_allclose(again.predict(x, verbose=0), tiny.predict(x, verbose=0), atol=1e-6)
    assert fingerprint(again.weights) == fingerprint(tiny.weights)
    with pytest.raises(BadModel, match="do not fit"):
        load_export_weights(build_model("tiny", input_size=SIZE, embedding_dim=DIM + 1, weights=None), export)


def test_fingerprint_follows_weights(tiny, export, tmp_path):
    twin = build_model("tiny", input_size=SIZE, embedding_dim=DIM)
    twin.set_weights(tiny.get_weights())
    assert fingerprint(twin.weights) == fingerprint(tiny.weights)
    w = twin.get_weights()
    w[0] = w[0] + 1e-3
    twin.set_weights(w)
    assert fingerprint(twin.weights) != fingerprint(tiny.weights)
    # Without a fingerprint in the card, the Embedder derives the same one from the SavedModel's variables.
    copy = Path(shutil.copytree(export, tmp_path / "copy"))
    card = json.loads((copy / "model_card.json").read_text())
    del card["fingerprint"], card["threshold"]
    (copy / "model_card.json").write_text(json.dumps(card))
    emb = SavedModelEmbedder(copy / "saved_model")  # the subfolder is accepted too
    assert emb.fingerprint == fingerprint(tiny.weights) and emb.path == copy and emb.threshold is None


def test_bad_models_have_one_line_reasons(export, tmp_path, bad_model_reason):
    reason = bad_model_reason
    assert "no such directory" in reason(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    assert "not a directory" in reason(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    assert "no saved_model" in reason(tmp_path / "empty")

    broken = Path(shutil.copytree(export, tmp_path / "broken"))
    (broken / "model_card.json").write_text("{not json")
    assert "unreadable model_card.json" in reason(broken)
    (broken / "model_card.json").write_text("[1, 2]")
    assert "not a JSON object" in reason(broken)
    (broken / "model_card.json").write_text(json.dumps({"input_size": SIZE + 1}))
    assert "input_size" in reason(broken)
    (broken / "model_card.json").unlink()
    assert "no model_card.json" in reason(broken)
    (broken / "model_card.json").write_text("{}")
    (broken / "saved_model" / "saved_model.pb").write_bytes(b"garbage")
    assert "cannot load saved_model" in reason(broken)


def test_default_model_path(monkeypatch):
    monkeypatch.setenv("FACEREC_MODEL", "/somewhere/model")
    assert default_model_path() == Path("/somewhere/model")
    monkeypatch.delenv("FACEREC_MODEL")
    assert default_model_path() == Path(__file__).resolve().parents[1] / "artifacts" / "model"
