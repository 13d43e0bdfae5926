"""facerec-eval: pairs protocol, failure accounting, identification figures, photo masks, end to end."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from facerec.cli.eval import main
from facerec.evaluation.embedders import EmbedderSpec, scores
from facerec.evaluation.evaluate import (
    EvalError,
    identification_metrics,
    mask_photo,
    pair_seed,
    read_manifest,
    read_pairs,
    verification_metrics,
)
from facerec.images import BadInput

LFW_DEVTEST = ["Abdullah_Gul\t13\t14", "Zico\t1\t2", "Adrian_Nastase\t1\t2",
               "Abdel_Madi_Shabneh\t1\tDean_Barker\t1", "Adriana_Lima\t1\tTerrence_Trammell\t1",
               "Adrian_Murrell\t1\tTommy_Franks\t15"]


def write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------- pairs files


def test_view2_folds_are_consecutive_blocks(tmp_path):
    f = write(tmp_path / "pairs.txt", ["2\t1", "A\t1\t2", "A\t1\tB\t1", "C\t3\t4", "C\t1\tD\t2"])
    pairs = read_pairs(f, "/img")
    assert [p.fold for p in pairs] == [0, 0, 1, 1]
    assert [p.same for p in pairs] == [True, False, True, False]
    assert pairs[1].first == "/img/A/A_0001.jpg" and pairs[1].second == "/img/B/B_0001.jpg"


def test_pairs_without_folds_are_interleaved(tmp_path):
    f = write(tmp_path / "pairsDevTest.txt", ["11"] + ["A\t1\t2"] * 11 + ["A\t1\tB\t2"] * 11)
    folds = [p.fold for p in read_pairs(f, "/img")]
    assert folds == [i % 10 for i in range(22)]


@pytest.mark.parametrize("lines, where", [
    (["2\t1", "A\t1\t2", "A\t1\tB"], ":3"),  # malformed line, with its number
    (["2\t1", "A\t1\t2", "A\t1\tB\t1"], "header promises"),  # fold structure broken
    (["pairs"], "first line"),
])
def test_bad_pairs_files_say_why(tmp_path, lines, where):
    with pytest.raises(BadInput, match=where):
        read_pairs(write(tmp_path / "p.txt", lines), "/img")
    with pytest.raises(BadInput, match="no such file"):
        read_pairs(tmp_path / "missing.txt", "/img")


# ---------------------------------------------------------------- figures by hand


def test_failed_genuine_pair_is_wrong_at_every_threshold():
    # genuine 0.9 0.8 0.7 0.6, impostor 0.1 0.2 0.3 0.4, two interleaved folds; the 0.6 genuine pair failed.
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.3, 0.4])
    same = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    folds = np.arange(8) % 2
    ok = np.array([1, 1, 1, 0, 1, 1, 1, 1], bool)
    m = verification_metrics(s, same, folds, ok)
    # fold 1 holds the failed pair: 3 of 4 right; fold 0: 4 of 4.
    assert m["accuracy_folds"] == [1.0, 0.75]
    assert m["accuracy_mean"] == pytest.approx(0.875) and m["accuracy_std"] == pytest.approx(0.125)
    # The failed genuine pair ranks below every impostor: 3 of 4 genuine beat all 4 impostors.
    assert m["auc"] == pytest.approx(0.75)
    assert m["tar_at_far"] == {"0.01": pytest.approx(0.75), "0.001": pytest.approx(0.75)}
    assert m["eer"] == pytest.approx(0.25)
    assert m["pairs_failed"] == 1
    assert m["scored"]["pairs"] == 7 and m["scored"]["auc"] == 1.0 and m["scored"]["accuracy_mean"] == 1.0
    assert m["scored"]["threshold_at_far"]["0.001"] == pytest.approx(0.7)


def test_failed_impostor_pair_is_a_false_accept_at_every_threshold():
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.3, 0.4])
    same = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    ok = np.array([1, 1, 1, 1, 1, 1, 1, 0], bool)
    m = verification_metrics(s, same, np.arange(8) % 2, ok)
    assert m["tar_at_far"]["0.01"] == 0.0  # FAR can never drop below 1/4
    assert m["auc"] == pytest.approx(0.75)
    assert m["accuracy_mean"] == pytest.approx(0.875)


def test_scores_per_metric():
    a, b = np.array([[1.0, 0.0]]), np.array([[0.6, 0.8]])
    assert scores(a, b, "cosine")[0] == pytest.approx(0.6)
    assert scores(a, b, "euclidean")[0] == pytest.approx(-np.sqrt(0.16 + 0.64))


def unit(*v):
    v = np.array(v, np.float64)
    return v / np.linalg.norm(v)


def test_identification_by_hand():
    gallery = np.stack([unit(1, 0), unit(0, 1), unit(1, 1)])
    gallery_ids = ["A", "B", "C"]
    probes = np.stack([unit(0.9, 0.1), unit(0.6, 0.8), unit(1, 0), unit(1, 0)])
    probe_ids = ["A", "B", "A", "D"]  # third failed to embed; D was never enrolled
    ok = np.array([True, True, False, True])
    m = identification_metrics(probes, probe_ids, ok, gallery, gallery_ids, {"A", "B", "C"}, "cosine", 0.95)
    # A-probe: top A (0.994) -> rank 1. B-probe: C 0.990 > B 0.8 > A 0.6 -> rank 2. Failed A-probe: a miss.
    assert m["probes"] == 4 and m["probes_enrolled"] == 3 and m["probes_failed"] == 1 and m["gallery_size"] == 3
    assert m["rank1"] == pytest.approx(1 / 3) and m["rank5"] == pytest.approx(2 / 3)
    o = m["open_set"]
    assert o["correct_accept_rate"] == pytest.approx(1 / 3)  # A-probe at 0.994
    assert o["wrong_accept_rate"] == pytest.approx(1 / 3)  # B-probe accepted as C
    # Without its own identity: A-probe's best other is C (0.78, rejected), B-probe's is C (0.99, accepted);
    # the D-probe matches A at 1.0; the failed probe is never accepted.
    assert o["false_accepts"] == 2 and o["false_accept_rate"] == pytest.approx(2 / 4)
    assert o["never_enrolled_probes"] == 1
    assert identification_metrics(probes, probe_ids, ok, gallery, gallery_ids, {"A", "B", "C"}, "cosine")["open_set"] is None


def test_identification_uses_nearest_photo_of_each_identity():
    gallery = np.stack([unit(0, 1), unit(1, 0), unit(1, 1)])
    m = identification_metrics(np.stack([unit(1, 0.05)]), ["A"], np.array([True]), gallery, ["A", "A", "B"], {"A", "B"},
                               "euclidean")
    assert m["rank1"] == 1.0 and m["gallery_size"] == 2


def test_identification_by_centroid_scores_the_mean_of_each_kind():
    """A's two photos lie either side of the probe (their mean is the probe), B's one photo is nearer
    than either of A's: max picks B, centroid picks A; a mask template forms a mean of its own."""
    gallery = np.stack([unit(1, 1, 0), unit(1, -1, 0), unit(1, 0, 0.3), unit(0, 0, 1)])
    probe = np.stack([unit(1, 0, 0)])
    ids, kinds = ["A", "A", "B", "B"], ["photo", "photo", "photo", "synthetic-mask:n95"]
    args = (probe, ["A"], np.array([True]), gallery, ids, {"A", "B"}, "cosine")
    assert identification_metrics(*args, aggregate="max", gallery_kinds=kinds)["rank1"] == 0.0
    m = identification_metrics(*args, aggregate="centroid", gallery_kinds=kinds)
    assert m["rank1"] == 1.0 and m["gallery_size"] == 2 and m["aggregate"] == "centroid"
    # Had B's mask template been a photo, B's one mean (of its two rows) would lie farther still.
    assert identification_metrics(*args, aggregate="centroid")["rank1"] == 1.0
    with pytest.raises(EvalError, match="cosine"):
        identification_metrics(probe, ["A"], np.array([True]), gallery, ids, {"A", "B"}, "euclidean", aggregate="centroid")


def test_manifest_skips_duplicates_and_resolves_paths(tmp_path):
    f = write(tmp_path / "manifest.csv", ["path,identity,masked,cross_identity_duplicate", "images/a/1.jpg,a,0,0",
                                          "images/a/2.jpg,a,1,0", "images/b/3.jpg,b,1,1", "images/b/4.jpg,b,0,0"])
    enrol, probes = read_manifest(f)
    assert [p.identity for p in enrol] == ["a", "b"] and [p.path for p in probes] == [str(tmp_path / "images/a/2.jpg")]
    with pytest.raises(BadInput, match="columns"):
        read_manifest(write(tmp_path / "bad.csv", ["file,who", "x,y"]))


# ---------------------------------------------------------------- masks on photos


def test_mask_photo_changes_only_the_lower_face_and_is_fixed(lfw_photo, detector):
    from facerec.images import load_image

    image = load_image(lfw_photo)
    a = mask_photo(image, pair_seed(3), detector=detector)
    assert np.array_equal(a, mask_photo(image, pair_seed(3), detector=detector))
    assert not np.array_equal(a, mask_photo(image, pair_seed(4), detector=detector))
    changed = np.any(a != image, axis=2)
    assert 0.02 < changed.mean() < 0.3
    eyes = detector.detect(image)[0].keypoints[:2]
    assert not changed[: int(eyes[:, 1].max()) + 5].any()  # nothing at or above the eyes
    assert changed[int(detector.detect(image)[0].keypoints[2, 1]) + 3:].any()  # below the nose tip
    assert mask_photo(np.full((120, 120, 3), 128, np.uint8), 1, detector=detector) is None


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import keras

    from facerec.nets.model import build_model, export_model

    keras.utils.set_random_seed(0)
    return export_model(build_model("tiny", input_size=112, embedding_dim=16), tmp_path_factory.mktemp("m") / "model",
                        {"backbone": "tiny"})


def run_cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def rate(x):
    return isinstance(x, float) and 0.0 <= x <= 1.0


def test_verify_calibrate_identify_end_to_end(data_dir, tiny_model, tmp_path):
    lfw = data_dir / "lfw" / "lfw-deepfunneled"
    pairs = write(tmp_path / "pairs.txt", ["3"] + LFW_DEVTEST + ["Nobody_Here\t1\t2"])
    r = run_cli("verify", "--pairs", pairs, "--images", lfw, "--model", tiny_model, "--workers", 1, "--json",
                "--plot", tmp_path / "roc.png")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["pairs"] == 7 and s["pairs_failed"] == 1 and s["folds"] == 7
    assert {"path": str(lfw / "Nobody_Here" / "Nobody_Here_0001.jpg"), "reason": "no such file"} in s["failed"]
    assert all(rate(s[k]) for k in ("accuracy_mean", "accuracy_std", "auc", "eer"))
    assert set(s["tar_at_far"]) == {"0.01", "0.001"} and all(rate(v) for v in s["tar_at_far"].values())
    assert (tmp_path / "roc.png").read_bytes()[:4] == b"\x89PNG"

    r = run_cli("verify", "--pairs", pairs, "--images", lfw, "--model", tiny_model, "--workers", 1, "--masked")
    assert r.exit_code == 0, r.output
    assert "second photo masked" in r.stdout and "accuracy" in r.stdout

    import shutil

    model = shutil.copytree(tiny_model, tmp_path / "model")  # the session's tiny model keeps its card
    r = run_cli("calibrate", "--pairs", pairs, "--images", lfw, "--model", model, "--workers", 1, "--far", 0.01,
                "--json")
    assert r.exit_code == 0, r.output
    c = json.loads(r.stdout)
    card = json.loads((model / "model_card.json").read_text())
    v = card["verify_threshold"]  # the 1:1 threshold (facerec-verify) ...
    assert v["threshold"] == c["threshold"] and v["far"] == 0.01
    assert v["pairs"]["pairs"] == 7 and v["pairs"]["scored"] == 6
    assert "threshold" not in card  # ... not the open-set one (calibrate-gallery's)
    assert card["backbone"] == "tiny" and "fingerprint" in card  # the rest of the card is kept

    rmfrd = data_dir / "rmfrd"
    rows = [line for line in (rmfrd / "manifest.csv").read_text().splitlines()
            if line.startswith(("images/aidai/", "images/caiyilin/"))][:12]
    manifest = write(tmp_path / "manifest.csv", ["path,identity,masked,cross_identity_duplicate", *rows,
                                                 "images/aidai/missing.jpg,aidai,1,0"])
    r = run_cli("identify", "--manifest", manifest, "--images", rmfrd, "--model", tiny_model, "--workers", 1,
                "--distractors", lfw, "--distractor-count", 2, "--threshold", c["threshold"], "--json")
    assert r.exit_code == 0, r.output
    i = json.loads(r.stdout)
    assert i["distractors"] == 2 and i["gallery_size"] == 4 and i["threshold"] == c["threshold"]
    enrolled = i["enrolment_photos"] - i["enrolment_failed"] + i["distractors"]  # each with 3 mask templates
    assert i["aggregate"] == "centroid" and i["templates"] == 4 * enrolled
    assert rate(i["rank1"]) and rate(i["rank5"]) and i["rank1"] <= i["rank5"]
    assert i["probes"] == sum(",1," in row for row in rows) + 1
    assert {"path": str(rmfrd / "images/aidai/missing.jpg"), "reason": "no such file", "role": "probe"} in i["failed"]
    assert rate(i["open_set"]["correct_accept_rate"]) and rate(i["open_set"]["false_accept_rate"])


def test_cli_errors_are_one_line(tmp_path, tiny_model):
    r = run_cli("verify", "--pairs", tmp_path / "nope.txt", "--images", tmp_path, "--model", tiny_model)
    assert r.exit_code == 1 and r.stderr.strip() == f"facerec-eval: error: {tmp_path / 'nope.txt'}: no such file"
    pairs = write(tmp_path / "pairs.txt", ["1", "A\t1\t2", "A\t1\tB\t1"])
    r = run_cli("verify", "--pairs", pairs, "--images", tmp_path, "--model", tmp_path / "no-model", "--workers", 1)
    assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1 and "no such directory" in r.stderr
    r = run_cli("identify", "--manifest", tmp_path / "m.csv", "--embedder", "dlib", "--model", tiny_model)
    assert r.exit_code == 2  # usage: --model with another embedder


def test_spec_reads_threshold_from_the_card(tiny_model, tmp_path):
    assert EmbedderSpec("dlib").threshold() is None and EmbedderSpec("dlib").metric == "euclidean"
    card = json.loads((tiny_model / "model_card.json").read_text())
    assert EmbedderSpec("model", str(tiny_model / "saved_model")).threshold() == card.get("threshold")


def test_dlib_embedder_on_a_photo(lfw_photo):
    pytest.importorskip("dlib")
    from facerec.images import load_image

    e = EmbedderSpec("dlib").build()
    v, none = e.embed_photos([load_image(lfw_photo), np.full((120, 120, 3), 128, np.uint8)])
    assert v.shape == (128,) and np.linalg.norm(v) == pytest.approx(1, abs=1e-5) and none is None


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_similarity_matrix_matches_pairwise_scores(metric):
    from facerec.evaluation.embedders import similarity_matrix

    rng = np.random.default_rng(0)
    p, g = rng.normal(size=(5, 8)), rng.normal(size=(7, 8))
    expected = np.array([[scores(a, b, metric) for b in g] for a in p])
    np.testing.assert_allclose(similarity_matrix(p, g, metric), expected, rtol=1e-5, atol=1e-5)


def test_worker_processes_give_the_same_embeddings(data_dir, tmp_path):
    pytest.importorskip("dlib")
    from facerec.evaluation.evaluate import Job, embed_jobs

    photos = sorted((data_dir / "lfw" / "lfw-deepfunneled" / "Abdullah_Gul").glob("*.jpg"))[:9]
    jobs = [Job(str(p)) for p in photos] + [Job(str(tmp_path / "missing.jpg"))] * 2  # 10 distinct: two chunks
    one, two = embed_jobs(EmbedderSpec("dlib"), jobs, workers=1), embed_jobs(EmbedderSpec("dlib"), jobs, workers=2)
    assert len(one) == len(two) == 10 and two[Job(str(tmp_path / "missing.jpg"))].reason == "no such file"
    for job, o in one.items():
        assert (o.vector is None and two[job].vector is None) or np.allclose(o.vector, two[job].vector, atol=1e-6)


def test_unreachable_far_has_no_threshold():
    s, same = np.array([0.9, 0.5, 0.8, 0.1]), np.array([False, True, True, False])
    m = verification_metrics(s, same, np.arange(4) % 2, np.ones(4, bool))
    assert m["scored"]["threshold_at_far"] == {"0.01": None, "0.001": None}
    json.dumps(m, allow_nan=False)


def test_calibrate_gallery_picks_the_open_set_threshold(data_dir, tiny_model, tmp_path):
    import shutil

    model = shutil.copytree(tiny_model, tmp_path / "model")
    lfw = data_dir / "lfw" / "lfw-deepfunneled"
    people = ["Abdullah_Gul", "Adrian_Nastase", "Zico", "Aaron_Eckhart", "Adriana_Lima", "Dean_Barker", "Tommy_Franks"]
    people_file = write(tmp_path / "people.txt", ["7", *(f"{n}\t1" for n in people)])
    r = run_cli("calibrate-gallery", "--people", people_file, "--images", lfw, "--model", model,
                "--gallery-people", 3, "--far", 0.3, "--json")
    assert r.exit_code == 0, r.output
    c = json.loads(r.stdout)
    o = c["threshold_open_set"]
    assert o["gallery_people"] == 3 and o["gallery_templates"] == 3 * 4  # photo + 3 mask templates each
    assert o["strangers"] == 4 and o["strangers_scored"] == 4
    assert o["false_accepts"] <= 1 and o["far"] == o["false_accepts"] / 4  # floor(0.3 × 4) = 1 allowed
    card = json.loads((model / "model_card.json").read_text())
    assert card["threshold"] == c["threshold"] and card["threshold_far"] == 0.3
    assert card["threshold_open_set"] == o and "threshold_pairs" not in card
    m = c["threshold_masked_open_set"]  # the same strangers, masked: their own threshold at the same FAR
    assert card["threshold_masked"] == c["threshold_masked"] and m["strangers_scored"] == 4 and m["false_accepts"] <= 1
    r = run_cli("calibrate-gallery", "--people", people_file, "--images", lfw, "--model", model,
                "--gallery-people", 7)
    assert r.exit_code == 1 and "need more than --gallery-people 7" in r.stderr
