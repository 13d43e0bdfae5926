import os
import random
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import facerec.search.gallery as G
import facerec.search.index as ann
import facerec.search.scan as scan
from facerec.search.gallery import Gallery, GalleryError, editing, validate_name


def _unit(rng, n, d=8):
    e = rng.normal(size=(n, d)).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def _gallery(rng, people=40, d=8):
    g = Gallery("fp", d)
    for p in range(people):
        n, m = int(rng.integers(1, 6)), int(rng.integers(0, 3))  # photos, synthetic-mask templates
        kinds = ["photo"] * n + ["synthetic-mask:n95"] * m
        g.add(f"p{p}", _unit(rng, n + m, d), kinds, [f"src{p}"] * (n + m), [b"jpg"] * (n + m))
    return g


def _brute(g, q, agg):
    e = g.embeddings.astype(np.float32)
    s = q @ e.T
    out = []
    for qi, row in zip(q, s):
        per, rows = {}, {}
        for j, (name, v) in enumerate(zip(g.identities, row)):
            per.setdefault(name, []).append(v)
            rows.setdefault((name, g.template_kind[j] == "photo"), []).append(j)
        if agg == "centroid":  # the nearer of the mean of its photo rows and that of its other rows
            score = {}
            for (name, _), js in rows.items():
                c = e[js].sum(0) / np.linalg.norm(e[js].sum(0))
                score[name] = max(score.get(name, -2.0), float(c @ qi))
        else:
            score = {n: (max(v) if agg == "max" else np.mean(sorted(v)[-2:])) for n, v in per.items()}
        out.append(sorted(score.items(), key=lambda x: -x[1]))
    return out


@pytest.mark.parametrize("agg", ["centroid", "max", "top2"])
@pytest.mark.parametrize("index", ["exact", "ann"])
def test_search_matches_brute_force(monkeypatch, agg, index):
    rng = np.random.default_rng(0)
    g = _gallery(rng)
    if index == "exact":
        monkeypatch.setattr(G, "_SLACK", 1)  # too few templates retrieved at first: exact search must retrieve more
    else:
        monkeypatch.setattr(ann, "PROBE_FRACTION", 1)  # every cell probed: the ANN path scores like the exact one
    monkeypatch.setattr(scan, "_BLOCK", 7)  # many blocks per core
    monkeypatch.setattr(scan, "_HEAP_BYTES", 2000)  # and several batches of queries
    q = _unit(rng, 5)
    got = g.search(q, k=5, aggregate=agg, index=index)
    for res, exp in zip(got, _brute(g, q, agg)):
        assert [n for n, _ in res] == [n for n, _ in exp[:5]]
        np.testing.assert_allclose([s for _, s in res], [s for _, s in exp[:5]], atol=1e-5)
    if index == "exact":  # k beyond the gallery: every identity once
        assert [len(r) for r in g.search(q, k=100, index=index)] == [40] * 5


def test_template_scan_is_exact_top_k(monkeypatch):
    """faiss's scanner over our float16 rows, split over cores and blocks, gives numpy's top-k."""
    rng = np.random.default_rng(9)
    t = _unit(rng, 1000, 16).astype(np.float16)
    q = _unit(rng, 3, 16)
    monkeypatch.setattr(scan, "_BLOCK", 100)
    scores, rows = scan.top_templates(t, q, 10)
    sims = q @ t.astype(np.float32).T
    np.testing.assert_array_equal(rows, np.argsort(-sims, axis=1)[:, :10])
    np.testing.assert_allclose(scores, np.take_along_axis(sims, rows, 1), atol=1e-6)
    assert scan.top_templates(t, q, 5000)[1].shape == (3, 1000)  # k beyond the rows: all of them


def test_rows_stay_grouped_by_identity():
    """Re-enrolling a name puts its templates beside its others, so search scores slices without copying."""
    rng = np.random.default_rng(4)
    g = _gallery(rng, 3)
    g.add("p0", _unit(rng, 2), ["photo", "synthetic-mask:n95"], ["new.jpg"] * 2, [b"t", b""])
    ids = list(g.identities)
    assert ids == sorted(ids, key=["p0", "p1", "p2"].index) and g.source[ids.count("p0") - 1] == "new.jpg"
    assert g._grouped()[0] is g.embeddings


def test_ungrouped_file_from_other_tools_is_searched_right(tmp_path):
    """A gallery written by plain h5py with one person's rows apart is still scored per person."""
    rng = np.random.default_rng(5)
    e = _unit(rng, 4)
    path = tmp_path / "hand.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update(schema_version=1, model_fingerprint="fp", embedding_dim=8, facerec_version="x")
        f["embeddings"] = e
        for key, values in (("identities", ["a", "b", "a", "c"]), ("template_kind", ["photo"] * 4), ("source", ["s"] * 4)):
            f.create_dataset(key, data=values, dtype=h5py.string_dtype())
        f.create_dataset("thumbnails", (4,), dtype=h5py.vlen_dtype(np.uint8))
    g = Gallery.load(path)
    res = dict(g.search(e[2], k=3, aggregate="max")[0])
    assert len(res) == 3 and res["a"] == pytest.approx(1.0, abs=1e-3)  # e[2] rounded to float16
    mean = (e[0] + e[2]) / np.linalg.norm(e[0] + e[2])
    assert dict(g.search(e[2], k=3)[0])["a"] == pytest.approx(float(mean @ e[2]), abs=1e-3)  # centroid of rows 0, 2


def test_empty_gallery_round_trip(tmp_path):
    g = _gallery(np.random.default_rng(6), 2)
    g.remove("p0"), g.remove("p1")
    g.save(tmp_path / "empty.h5")
    h = Gallery.load(tmp_path / "empty.h5")
    assert len(h) == 0 and h.search(_unit(np.random.default_rng(0), 2), 5) == [[], []]


def test_top2_does_not_reward_many_photos():
    # A person with 20 scattered templates vs one with a single good template.
    rng = np.random.default_rng(1)
    q = _unit(rng, 1)
    g = Gallery("fp", 8)
    many = _unit(rng, 20)
    g.add("many", many, ["photo"] * 20, ["s"] * 20, [b""] * 20)
    g.add("one", q * 0.9 + _unit(rng, 1) * 0.1, ["photo"], ["s"], [b""])
    best_max = dict(g.search(q, 2, "max")[0])
    best_top2 = dict(g.search(q, 2, "top2")[0])
    assert best_top2["many"] <= best_max["many"] and best_top2["one"] == pytest.approx(best_max["one"])


def test_round_trip_schema_and_permissions(tmp_path):
    rng = np.random.default_rng(2)
    g = _gallery(rng, 5)
    g.add("Zoë Ångström", _unit(rng, 1), ["synthetic-mask:n95"], ["x.jpg"], [b""])
    path = tmp_path / "g.h5"
    g.save(path)
    assert (os.stat(path).st_mode & 0o777) == 0o600
    with h5py.File(path, "r") as f:  # plain h5py reads it
        assert f.attrs["schema_version"] == 2 and f.attrs["embedding_dim"] == 8
        assert f["embeddings"].shape == (len(g), 8) and f["embeddings"].dtype == np.float16
        assert f["identities"].asstr()[-1] == "Zoë Ångström"
        assert f["template_kind"].asstr()[-1] == "synthetic-mask:n95"
    h = Gallery.load(path)
    np.testing.assert_array_equal(h.embeddings, g.embeddings)
    assert list(h.identities) == list(g.identities) and h.thumbnails == g.thumbnails
    assert h.remove("p0") > 0 and "p0" not in h.people()
    assert h.remove("Zoe\u0308 Ångström") == 1  # the same name typed decomposed (NFD) is found


def test_schema_1_float32_gallery_still_loads_and_is_rewritten_as_2(tmp_path):
    rng = np.random.default_rng(10)
    e = _unit(rng, 3)
    path = tmp_path / "old.h5"
    with h5py.File(path, "w") as f:  # as facerec 0.1 wrote it
        f.attrs.update(schema_version=1, model_fingerprint="fp", embedding_dim=8, facerec_version="0.1.0")
        f["embeddings"] = e
        for key, values in (("identities", ["a", "b", "b"]), ("template_kind", ["photo"] * 3), ("source", ["s"] * 3)):
            f.create_dataset(key, data=values, dtype=h5py.string_dtype())
        f.create_dataset("thumbnails", (3,), dtype=h5py.vlen_dtype(np.uint8))
    g = Gallery.load(path)
    assert g.embeddings.dtype == np.float16
    np.testing.assert_allclose(g.embeddings, e, atol=1e-3)
    assert g.search(e[1], k=1)[0][0][0] == "b"
    with editing(path, "fp", 8) as h:
        h.remove("a")
    with h5py.File(path, "r") as f:
        assert f.attrs["schema_version"] == 2 and f["embeddings"].dtype == np.float16
    with h5py.File(path, "a") as f:
        f.attrs["schema_version"] = 3
    with pytest.raises(GalleryError, match=r"schema_version 3, expected 1 or 2"):
        Gallery.load(path)


def test_stale_ann_index_is_rebuilt_never_used(tmp_path, monkeypatch):
    """The index cached beside the gallery serves only the templates it was built from."""
    rng = np.random.default_rng(11)
    path = tmp_path / "g.h5"
    with editing(path, "fp", 8) as g:
        for p in range(30):
            g.add(f"p{p}", _unit(rng, 2), ["photo"] * 2, ["s"] * 2, [b""] * 2)
    cache = tmp_path / "g.h5.faiss"
    q = Gallery.load(path).embeddings[:1].astype(np.float32)  # a template of p0
    assert len(Gallery.load(path).search(q, 1, index="ann")[0]) == 1  # centroids: an index file of their own
    assert (tmp_path / "g.h5.centroids.faiss").is_file() and not cache.exists()
    assert Gallery.load(path).search(q, 1, "max", index="ann")[0][0][0] == "p0"
    first = cache.read_bytes()
    real_build, builds = ann.AnnIndex.build.__func__, []

    def counted_build(cls, templates):
        builds.append(len(templates))
        return real_build(cls, templates)

    monkeypatch.setattr(ann.AnnIndex, "build", classmethod(counted_build))
    assert Gallery.load(path).search(q, 1, "max", index="ann")[0][0][0] == "p0" and builds == []  # fresh: read, not built
    with editing(path, "fp", 8) as g:  # p0 leaves: every row after it moves up by 2
        g.remove("p0")
    got = Gallery.load(path).search(q, 3, "max", index="ann")[0]
    assert builds == [58] and "p0" not in dict(got)
    assert got == Gallery.load(path).search(q, 3, "max")[0]  # the same as the exact search of the new gallery
    assert cache.read_bytes() != first  # the stale index was replaced
    cache.write_bytes(first)  # an old index put back by hand is refused too
    assert Gallery.load(path).search(q, 3, "max", index="ann")[0] == got and builds == [58, 58]
    cache.write_bytes(b"garbage")
    assert Gallery.load(path).search(q, 3, "max", index="ann")[0] == got and len(builds) == 3


def test_editing_lock_and_model_check(tmp_path):
    path = tmp_path / "g.h5"
    with editing(path, "fp", 8) as g:
        g.add("a", _unit(np.random.default_rng(7), 1), ["photo"], ["x"], [b""])
    assert (os.stat(str(path) + ".lock").st_mode & 0o777) == 0o600
    with pytest.raises(GalleryError, match="another model"):
        with editing(path, "other", 8):
            pass
    with editing(path, None, create=False) as g:  # removal needs no model
        assert g.remove("a") == 1
    assert len(Gallery.load(path)) == 0
    with pytest.raises(GalleryError, match="no gallery here"):
        with editing(tmp_path / "none.h5", None, create=False):
            pass
    with pytest.raises(ValueError):  # a failed edit writes nothing
        with editing(path, "fp", 8) as g:
            g.add("b", _unit(np.random.default_rng(8), 1), ["photo"], ["x"], [b""])
            raise ValueError("abandon")
    assert len(Gallery.load(path)) == 0


def test_bad_gallery_files(tmp_path):
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(GalleryError, match="corrupt or not a gallery"):
        Gallery.load(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(GalleryError, match="not a facerec gallery"):
        Gallery.load(other)
    g = _gallery(np.random.default_rng(3), 3)
    good = tmp_path / "good.h5"
    g.save(good)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(GalleryError):
        Gallery.load(cut)
    with pytest.raises(GalleryError, match="another model"):
        Gallery.load(good).check_model("other-fingerprint", good)
    with pytest.raises(GalleryError, match="no gallery here"):
        Gallery.load(tmp_path / "missing.h5")


@pytest.mark.parametrize("bad", ["", "   ", "a/b", "..\\x", "tab\there", "nul\x00", "two\nlines", "evil\u202etxt.exe",
                                 "x" * 201])
def test_bad_names_refused(bad):
    with pytest.raises(ValueError):
        validate_name(bad)


def test_unicode_names_kept():
    assert validate_name("  José Ñúñez 山田太郎 ") == "José Ñúñez 山田太郎"
    assert validate_name("Zoe\u0308") == "Zoë"  # stored NFC
    assert validate_name("Mehr\u200cnaz") == "Mehr\u200cnaz"  # zero-width non-joiner: part of Persian names


WRITER = r"""
import sys, numpy as np
from facerec.search.gallery import editing
path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(abs(hash(tag)) % 2**32)
for i in range(n):
    e = rng.normal(size=(1, 8)).astype(np.float32)
    with editing(path, "fp", 8) as g:
        g.add(f"{tag}-{i}", e / np.linalg.norm(e), ["photo"], ["x"], [b""])
    print(i, flush=True)
"""


def test_kill_9_never_corrupts(tmp_path):
    """Kill an enrolling process at random moments; the gallery always opens with exactly the committed entries."""
    path = tmp_path / "g.h5"
    rng = random.Random(0)
    trials, committed_total, mid_write = 0, 0, 0
    deadline = time.time() + 90
    while trials < 50 and time.time() < deadline:
        before = len(Gallery.load(path)) if path.exists() else 0
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"t{trials}", "1000"], stdout=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.3, 1.2))
        os.kill(p.pid, signal.SIGKILL)
        printed = len(p.stdout.read().split())
        p.wait()
        mid_write += bool(list(tmp_path.glob(".g.h5.*.tmp")))  # killed while writing the next file
        g = Gallery.load(path) if path.exists() else Gallery("fp", 8)
        mine = [n for n in g.identities if n.startswith(f"t{trials}-")]
        # every reported commit is there; at most one more (committed, killed before it printed)
        assert printed <= len(mine) <= printed + 1
        assert mine == [f"t{trials}-{i}" for i in range(len(mine))]
        assert len(g) == before + len(mine) and len(set(g.identities)) == len(g)
        committed_total += len(mine)
        trials += 1
    assert trials >= 50, f"only {trials} kill trials ran in time"
    with editing(path, "fp", 8):  # the next write clears temp files of killed writers
        pass
    assert not list(tmp_path.glob(".g.h5.*.tmp"))
    print(f"kill -9 trials: {trials} ({mid_write} killed mid-write), entries committed and found: {committed_total}")


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "g.h5"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"w{k}", "20"], stdout=subprocess.DEVNULL)
             for k in range(8)]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    g = Gallery.load(path)
    expected = {f"w{k}-{i}" for k in range(8) for i in range(20)}
    assert len(g) == 160 and set(g.identities) == expected
    print(f"8 writers x 20 enrolments: expected 160 entries, found {len(g)} ({len(set(g.identities))} distinct)")
