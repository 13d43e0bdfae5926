import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from facerec.training.data import as_dataset, discover, load_cache, prepare, read_pairs_people, read_people


def test_discover_layouts(tmp_path):
    for rel in ("train/ann/1.jpg", "train/ann/2.png", "val/ann/3.jpg", "train/bob/1.jpg", "notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    items = discover(tmp_path)
    assert sorted({i.identity for i in items}) == ["ann", "bob"]
    assert len(items) == 4 and all(i.masked == -1 for i in items)


def test_manifest_skips_cross_identity_duplicates(tmp_path):
    (tmp_path / "manifest.csv").write_text(
        "path,identity,masked,cross_identity_duplicate\na/1.jpg,a,1,0\na/2.jpg,a,0,0\nb/2.jpg,b,0,1\n"
    )
    items = discover(tmp_path)
    assert [(i.identity, i.masked) for i in items] == [("a", 1), ("a", 0)]


def test_lfw_protocol_readers(tmp_path):
    (tmp_path / "people.txt").write_text("2\nAnn_A\t3\nBob_B\t1\n")
    (tmp_path / "pairs.txt").write_text("2\nAnn_A\t1\t2\nAnn_A\t1\tCid_C\t4\n")
    assert read_people(tmp_path / "people.txt") == ["Ann_A", "Bob_B"]
    assert read_pairs_people(tmp_path / "pairs.txt") == {"Ann_A", "Cid_C"}


@pytest.fixture()
def small_dataset(tmp_path, data_dir):
    root = tmp_path / "celebs"
    lfw = data_dir / "lfw" / "lfw-deepfunneled"
    for name in ("Abdullah_Gul", "Alejandro_Toledo"):
        (root / name).mkdir(parents=True)
        for p in sorted((lfw / name).glob("*.jpg"))[:2]:
            shutil.copy(p, root / name / p.name)
    bad = root / "Broken"
    bad.mkdir()
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "text.jpg").write_text("not an image")
    good = (lfw / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg").read_bytes()
    (bad / "cut.jpg").write_bytes(good[: len(good) // 2])
    Image.new("RGB", (200, 200), (128, 128, 128)).save(bad / "blank.png")
    return root


def test_prepare_counts_failures_and_round_trips(small_dataset, tmp_path):
    cache = tmp_path / "cache"
    result = prepare(small_dataset, cache, workers=1, progress=False)
    reasons = {f["path"].rsplit("/", 1)[1]: f["reason"] for f in result["failed"]}
    assert result["images"] == 8
    assert result["faces"] == 4
    assert set(reasons) == {"empty.jpg", "text.jpg", "cut.jpg", "blank.png"}
    assert reasons["blank.png"] == "no face detected" and "truncated" in reasons["cut.jpg"]
    c = load_cache(cache)
    assert len(c) == result["faces"] and c.faces.dtype == np.uint8 and c.faces.shape[1:] == (112, 112, 3)
    assert set(c.identity) == {"Abdullah_Gul", "Alejandro_Toledo"}
    # eyes sit on the template in the cached keypoints
    np.testing.assert_allclose(c.keypoints[:, 0], np.tile([38.29, 51.70], (len(c), 1)), atol=4)
    batch = next(iter(as_dataset(c).batch(8)))
    assert batch["face"].shape[0] == len(c) and batch["mesh"].shape[1:] == (478, 2)


def test_prepare_resumes(small_dataset, tmp_path):
    cache = tmp_path / "cache"
    first = prepare(small_dataset, cache, workers=1, progress=False, limit=4)
    assert first["images"] == 4
    shards = sorted(cache.glob("part-*.h5"))
    (cache / "part-99999.h5.tmp").write_bytes(b"half-written shard from a killed run")
    full = prepare(small_dataset, cache, workers=1, progress=False)
    assert full["images"] == 8 and full["faces"] + len(full["failed"]) == 8
    assert len(sorted(cache.glob("part-*.h5"))) == len(shards) + 1 and not list(cache.glob("*.tmp"))


def test_cli_json(small_dataset, tmp_path):
    from facerec.cli.data import main

    out = CliRunner().invoke(main, ["prepare", str(small_dataset), "--out", str(tmp_path / "c"), "--json", "--workers", "1"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert set(result) == {"images", "faces", "failed"} and result["images"] == 8
    assert all(set(f) == {"path", "reason"} for f in result["failed"])
    missing = CliRunner().invoke(main, ["prepare", str(tmp_path / "nowhere"), "--out", str(tmp_path / "c2")])
    assert missing.exit_code == 1 and "dataset folder not found" in missing.output
