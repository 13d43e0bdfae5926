import json

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
    assert run(gallery_cli, ["enroll", "--name", "Aaron Eckhart", str(lfw_photo), "--mask-templates", "0"]).exit_code == 0
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
    assert set(face) == {"box", "masked", "identity", "score", "matches"} and len(face["box"]) == 4
    assert face["masked"] is None and 1 <= len(face["matches"]) <= 5
    scores = [m["score"] for m in face["matches"]]
    assert scores == sorted(scores, reverse=True) and face["score"] == scores[0]
    assert (face["identity"] is None) == (face["score"] < res[0]["threshold"])
    assert res[1]["faces"] == [] and "error" not in res[1]
    assert res[2]["faces"] == [] and res[2]["error"] == "no such file"
    assert (tmp_path / "a-1.png").exists()
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
