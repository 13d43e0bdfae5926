import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facerec.training.data import Item, Prepared, _write_shard, load_cache
from facerec.training.batches import PKBatches, augmented_faces, tight_crop
from facerec.training.config import TrainConfig
from facerec.training.train import normalise_name, train, training_cache


@pytest.fixture(scope="module")
def fake_cache(tmp_path_factory):
    """Six identities × 5 faces of random pixels with a per-identity tint: learnable, no detector needed."""
    root = tmp_path_factory.mktemp("cache")
    rng = np.random.default_rng(0)
    results = []
    for k in range(6):
        tint = rng.integers(0, 255, 3)
        for i in range(5):
            crop = np.clip(rng.normal(tint, 30, (48, 48, 3)), 0, 255).astype(np.uint8)
            mesh = np.full((478, 2), np.nan, np.float32)
            results.append(Prepared(Item(f"/x/p{k}/{i}.jpg", f"Person {k}"), crop, np.zeros((5, 2), np.float32),
                                    mesh, np.zeros(4, np.float32), 1))
    _write_shard(root, 0, results, 48)
    (root / "pairs.txt").write_text("1\nPerson_5\t1\t2\n")
    return root


def test_pk_batches_mix_masked_and_unmasked():
    labels = np.repeat(np.arange(10), 3)
    idx, masked = next(iter(PKBatches(labels, P=4, K=4, mask_prob=0.5, seed=0)))
    per_id = labels[idx].reshape(4, 4)
    assert len(set(per_id[:, 0])) == 4 and (per_id == per_id[:, :1]).all()
    m = masked.reshape(4, 4)
    assert m.any(axis=1).all() and (~m).any(axis=1).all()


def test_tight_crop_replicates_the_border_outside_a_box_and_keeps_the_face():
    face = np.random.default_rng(3).integers(0, 255, (112, 112, 3), dtype=np.uint8)
    for seed in range(20):
        out = tight_crop(face, np.random.default_rng(seed))
        assert out.shape == face.shape and out.dtype == np.uint8
        # The kept box: where the output is the face itself (random pixels rarely repeat by chance).
        eq = (out == face).all(axis=2)
        rows, cols = np.where(eq[:, 56])[0], np.where(eq[56, :])[0]
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        assert y0 < 42 and y1 > 84 and x0 < 38 and x1 > 74  # the centre of the face is never cut
        # Outside it, each pixel repeats the nearest pixel of the box.
        r = np.clip(np.arange(112), y0, y1 - 1)[:, None]
        c = np.clip(np.arange(112), x0, x1 - 1)[None, :]
        assert np.array_equal(out, face[r, c])
    assert len({tight_crop(face, np.random.default_rng(s)).tobytes() for s in range(5)}) == 5


def test_masked_faces_are_misaligned_as_inference_would_frame_them(fake_cache):
    cache = load_cache(fake_cache)
    idx = np.arange(8)
    masked = np.arange(8) < 4
    none = np.zeros(8, bool)
    plain = augmented_faces(cache, idx, masked, none, np.random.default_rng(0), misalign_prob=0.0)
    moved = augmented_faces(cache, idx, masked, none, np.random.default_rng(0), misalign_prob=1.0)
    assert np.array_equal(plain[4:], cache.faces[4:8]) and np.array_equal(moved[4:], cache.faces[4:8])
    assert not np.array_equal(plain[0], cache.faces[0])  # masked
    assert all(not np.array_equal(moved[j], plain[j]) for j in range(4))  # and then warped


def test_training_cache_excludes_pairs_people_and_merges_names(fake_cache):
    cfg = TrainConfig(caches=[str(fake_cache)], out="", exclude_pairs=[str(fake_cache / "pairs.txt")])
    c = training_cache(cfg)
    assert normalise_name("Person 5") not in set(c.identity) and len(set(c.identity)) == 5
    assert normalise_name("Barack Obama") == normalise_name("Barack_Obama")


def test_tiny_training_run_exports_a_model(fake_cache, tmp_path):
    out = tmp_path / "run"
    cfg = TrainConfig(caches=[str(fake_cache)], out=str(out), backbone="tiny", input_size=48, embedding_dim=16,
                      identities_per_batch=3, images_per_identity=3, epochs=2, steps_per_epoch=3,
                      val_identities=0.34, val_pairs=10)
    train(cfg, progress=0)
    card = json.loads((out / "model_card.json").read_text())
    assert card["epochs_trained"] == 2 and 0 <= card["validation"]["val_masked_acc"] <= 1
    assert isinstance(card["threshold"], float) and card["data"]["train_identities"] == 4
    assert (out / "saved_model" / "saved_model.pb").exists() and not (out / "backup").exists()
    with pytest.raises(SystemExit):
        (out / "backup").mkdir()
        train(cfg, progress=0)


def test_init_starts_from_an_exported_model(fake_cache, tmp_path):
    import dataclasses

    import tensorflow as tf

    first = TrainConfig(caches=[str(fake_cache)], out=str(tmp_path / "a"), backbone="tiny", input_size=48,
                        embedding_dim=16, identities_per_batch=3, images_per_identity=3, epochs=1, steps_per_epoch=2,
                        val_identities=0.34, val_pairs=10, seed=1)
    train(first, progress=0)
    # Learning rate 0: the fine-tuned run's trainable weights are exactly the ones it started from.
    again = dataclasses.replace(first, out=str(tmp_path / "b"), init=first.out, learning_rate=0.0, seed=2)
    train(again, progress=0)
    a, b = ([v for v in tf.saved_model.load(str(Path(c.out) / "saved_model")).weights if v.trainable]
            for c in (first, again))
    assert len(a) == len(b) > 0 and all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a, b))
    cards = [json.loads((Path(c.out) / "model_card.json").read_text()) for c in (first, again)]
    assert cards[1]["init_fingerprint"] == cards[0]["fingerprint"] and cards[0]["init_fingerprint"] is None


def test_real_mask_rank1_scores_the_selection_half_only():
    from facerec.training.data import Cache
    from facerec.training.train import real_mask_rank1

    # Sorted identities A B C D: A and C select, B and D report. Each face's pixel value keys its embedding.
    rows = [("A", 0, [1, 0, 0]), ("A", 1, [1, 0, 0]), ("B", 0, [0, 1, 0]), ("B", 1, [0, 0, 1]),
            ("C", 0, [0, 0, 1]), ("C", 1, [0.8, 0.6, 0]), ("D", 0, [0, 1, 0]), ("D", 1, [0, 1, 0])]
    n = len(rows)
    faces = np.stack([np.full((4, 4, 3), i, np.uint8) for i in range(n)])
    vectors = np.array([r[2] for r in rows], np.float32)
    cache = Cache(faces=faces, keypoints=np.zeros((n, 5, 2), np.float32), mesh=np.zeros((n, 478, 2), np.float32),
                  box=np.zeros((n, 4), np.float32), identity=np.array([r[0] for r in rows]),
                  path=np.array([f"/{i}.jpg" for i in range(n)]), masked=np.array([r[1] for r in rows], np.int8))
    # Selection half: A's masked face finds A; C's finds A (0.8 > 0): rank-1 1/2. B and D are never scored.
    assert real_mask_rank1(lambda f: vectors[f[:, 0, 0, 0]], cache) == 0.5


def test_frozen_backbone_trains_only_the_head(fake_cache, tmp_path):
    import dataclasses

    import tensorflow as tf

    first = TrainConfig(caches=[str(fake_cache)], out=str(tmp_path / "a"), backbone="tiny", input_size=48,
                        embedding_dim=16, identities_per_batch=3, images_per_identity=3, epochs=1, steps_per_epoch=2,
                        val_identities=0.34, val_pairs=10, seed=1)
    train(first, progress=0)
    again = dataclasses.replace(first, out=str(tmp_path / "b"), init=first.out, learning_rate=0.05,
                                freeze_fraction=1.0)
    train(again, progress=0)
    a, b = ({v.name.split(":")[0]: v.numpy() for v in tf.saved_model.load(str(Path(c.out) / "saved_model")).weights}
            for c in (first, again))
    convs = [k for k in a if k.startswith("conv") and k.endswith("kernel")]
    assert len(convs) == 3 and all(np.array_equal(a[k], b[k]) for k in convs)
    assert not np.array_equal(a["embedding/kernel"], b["embedding/kernel"])


def test_sface_teacher_with_relational_distillation(fake_cache, tmp_path):
    from facerec.runtime import sface

    try:
        sface.WEIGHTS.require()
    except sface.WeightsUnavailable as e:
        pytest.skip(f"SFace weights absent ({e}); CI fetches them with `facerec-data fetch-sface`")
    out = tmp_path / "run"
    cfg = TrainConfig(caches=[str(fake_cache)], out=str(out), backbone="tiny", input_size=48, embedding_dim=128,
                      identities_per_batch=3, images_per_identity=3, epochs=1, steps_per_epoch=2,
                      val_identities=0.34, val_pairs=10, teacher="sface", relational_weight=1.0)
    train(cfg, progress=0)
    logs = json.loads((out / "history.json").read_text())[0]
    assert logs["distill"] > 0 and logs["relational"] > 0
    assert (fake_cache.parent / "teacher-sface.h5").is_file()
    with pytest.raises(SystemExit, match="unknown teacher"):
        train(TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "x"), "teacher": "sface,nobody"}), progress=0)


MIRRORED = r"""
import sys, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from facerec.training.config import TrainConfig
from facerec.training.train import get_strategy, make_trainer
from facerec.nets.model import build_model
import keras
cfg = TrainConfig(caches=[], out="", backbone="tiny", input_size=32, embedding_dim=8, strategy="mirrored")
strategy = get_strategy("mirrored")
assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
with strategy.scope():
    m = build_model("tiny", 32, 8, weights=None)
    t = make_trainer(m, cfg, strategy.num_replicas_in_sync)
    t.compile(optimizer=keras.optimizers.SGD(0.1))
rng = np.random.default_rng(0)
x = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
y = {"label": np.repeat(np.arange(4), 2).astype("int32"), "target": np.zeros((8, 1, 8), "float32"),
     "weight": np.zeros((8, 1), "float32")}
before = [w.numpy().copy() for w in m.trainable_weights]
hist = t.fit(tf.data.Dataset.from_tensors((x, y)).repeat(), steps_per_epoch=2, epochs=1, verbose=0)
after = [w.numpy() for w in m.trainable_weights]
assert np.isfinite(hist.history["loss"][-1])
assert any(np.abs(a - b).max() > 0 for a, b in zip(after, before))
print("MIRRORED_OK", strategy.num_replicas_in_sync)
"""


def test_two_steps_under_mirrored_strategy():
    r = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, timeout=300)
    assert "MIRRORED_OK 2" in r.stdout, r.stderr[-3000:]


def test_photographic_masks_replace_drawn_ones_where_asked(monkeypatch):
    from facerec.faces import mask_photos
    from facerec.faces.masks import canonical_mesh
    from facerec.training.data import Cache

    def marked(face, mesh, folder, rng):  # stands in for the photographic mask: records where it went
        assert folder == "overlays" and np.isfinite(mesh).all()
        return np.full_like(face, 7)

    monkeypatch.setattr(mask_photos, "apply_photo_mask", marked)
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (3, 48, 48, 3), dtype=np.uint8)
    mesh = np.stack([canonical_mesh(48), np.full((478, 2), np.nan), canonical_mesh(48)])
    cache = Cache(faces=crops, keypoints=np.zeros((3, 5, 2), np.float32), mesh=mesh.astype(np.float32),
                  box=np.zeros((3, 4), np.float32), identity=np.array(["a"] * 3), path=np.array(["x", "y", "z"]),
                  masked=np.zeros(3, np.int8))
    idx, masked, none = np.arange(3), np.array([True, True, False]), np.zeros(3, bool)

    def photographic(prob, folder="overlays"):
        out = augmented_faces(cache, idx, masked, none, np.random.default_rng(1), photo_masks=folder,
                              photo_mask_prob=prob)
        assert not np.array_equal(out[1], crops[1]) and np.array_equal(out[2], crops[2])  # drawn; unmasked
        return [bool((f == 7).all()) for f in out]

    assert photographic(1.0) == [True, False, False]  # only the masked face that has a mesh
    assert photographic(0.0) == photographic(1.0, None) == [False, False, False]


def test_a_bad_photo_masks_folder_stops_training_before_it_starts(fake_cache, tmp_path):
    cfg = TrainConfig(caches=[str(fake_cache)], out=str(tmp_path / "run"), backbone="tiny", input_size=48,
                      photo_masks=str(tmp_path))
    with pytest.raises(SystemExit, match="--photo-masks: .*no masks.cfg"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_cached_views_train_only_the_layers_after_the_frozen_ones(fake_cache, tmp_path, capsys):
    import dataclasses

    import tensorflow as tf

    first = TrainConfig(caches=[str(fake_cache)], out=str(tmp_path / "a"), backbone="tiny", input_size=48,
                        embedding_dim=16, identities_per_batch=3, images_per_identity=3, epochs=1, steps_per_epoch=2,
                        val_identities=0.34, val_pairs=10, seed=1)
    train(first, progress=0)
    # tiny's backbone: pixels, rescaling, conv0, bn0, relu0 | conv1 ... relu2: 5 of its 11 layers frozen.
    again = dataclasses.replace(first, out=str(tmp_path / "b"), init=first.out, learning_rate=0.05,
                                freeze_fraction=0.5, cached_views=2, epochs=2)
    capsys.readouterr()
    train(again, progress=0)
    assert "caching 2 views of 20 faces" in capsys.readouterr().err
    a, b = ({v.name.split(":")[0]: v.numpy() for v in tf.saved_model.load(str(Path(c.out) / "saved_model")).weights}
            for c in (first, again))
    assert np.array_equal(a["conv0/kernel"], b["conv0/kernel"])
    assert all(not np.array_equal(a[k], b[k]) for k in ("conv1/kernel", "conv2/kernel", "embedding/kernel"))
    assert json.loads((Path(again.out) / "model_card.json").read_text())["epochs_trained"] == 2
    assert not (Path(again.out) / "views.npy").exists()  # gigabytes, kept only while a run can be resumed


def test_the_front_runs_once_per_set_of_validation_faces():
    from facerec.nets.model import build_model
    from facerec.training.cached import FrontRunner, split

    embedder = build_model("tiny", 48, 16, weights=None)
    runner = FrontRunner(split(embedder, 5)[0])
    calls = []
    net = runner.net
    runner.net = lambda x: calls.append(len(x)) or net(x)
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48, 3), dtype=np.uint8)
    first = runner.once(faces)
    assert np.array_equal(first, runner(faces)) and calls == [5, 5]
    assert np.array_equal(runner.once(faces.copy()), first) and calls == [5, 5]  # same faces: remembered
    other = faces.copy()
    other[0, 0, 0, 0] ^= 1
    runner.once(other)
    assert calls == [5, 5, 5]


def test_cached_batches_draw_masked_views_where_the_sampler_masks():
    from facerec.training.cached import cached_dataset

    labels = np.repeat(np.arange(4), 3)
    views = np.stack([np.broadcast_to((v * 100 + np.arange(12))[:, None, None, None], (12, 2, 2, 1))
                      for v in range(3)]).astype(np.float16)  # view v of face i holds 100 v + i
    cfg = TrainConfig(caches=[], out="", identities_per_batch=2, images_per_identity=4, mask_prob=0.5)
    x, y = next(iter(cached_dataset(views, labels, None, cfg)))
    value = x.numpy()[:, 0, 0, 0].astype(int)
    view, face = value // 100, value % 100
    assert np.array_equal(labels[face], y["label"].numpy())
    assert (view == 0).sum() == 4 and set(view[view > 0]) <= {1, 2}  # 2 of each person's 4 faces masked


def test_cached_views_refuse_what_cannot_be_cached(fake_cache, tmp_path):
    from facerec.nets.model import build_model
    from facerec.training.cached import split

    cfg = TrainConfig(caches=[str(fake_cache)], out=str(tmp_path / "run"), backbone="tiny", input_size=48,
                      cached_views=2)
    with pytest.raises(SystemExit, match="needs frozen layers"):
        train(cfg)
    with pytest.raises(SystemExit, match="leaves no masked view"):
        train(TrainConfig(**{**cfg.__dict__, "cached_views": 1, "freeze_fraction": 1.0}))
    assert not (tmp_path / "run").exists()
    lite0 = build_model("efficientnet-lite0", 112, 128, weights=None)
    with pytest.raises(SystemExit, match="does not split after layer"):  # inside a residual block
        split(lite0, len(lite0.get_layer("backbone").layers) // 2)
