"""facerec-serve: the real server on a free local port, spoken to over HTTP."""

import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

TOKEN = "s3cret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    from facerec.runtime import load_embedder

    load_embedder(tiny_model)  # its OpenVINO file into this run's cache now, so the server needs no TensorFlow
    gallery = tmp_path_factory.mktemp("serve") / "g.h5"
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "facerec.cli.serve", "--gallery", str(gallery), "--model",
                             str(tiny_model), "--port", str(port), "--token", TOKEN, "--max-upload-mb", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=60)
    deadline = time.monotonic() + 120
    while True:
        try:
            if client.get("/health").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"server did not start: {proc.communicate()[1][-2000:]}")
        time.sleep(0.2)
    yield client, proc, gallery
    client.close()
    proc.terminate()
    proc.wait(timeout=30)


def jpg(path):
    return ("image", (path.name, path.read_bytes(), "image/jpeg"))


def test_enroll_identify_people_and_delete(server, celeb_dir, lfw_photo):
    client, _, gallery = server
    gul = sorted((celeb_dir / "Abdullah_Gul").glob("*.jpg"))
    r = client.post("/enroll", data={"name": "Abdullah_Gul"}, files=[jpg(p) for p in gul])
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["name"] == "Abdullah_Gul" and report["photos"] == 2 and report["templates"] == 8  # + 3 masked each
    people = client.get("/people").json()["people"]
    assert people == {"Abdullah_Gul": {"templates": 8, "photos": 2}}
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["people"] == 1 and health["runtime"] == "openvino"

    # The same object as one photo of `facerec-match --json`, with the same gallery and model.
    got = client.post("/identify", files=[jpg(gul[0])]).json()
    from click.testing import CliRunner

    from facerec.cli.match import main as match_cli

    want = json.loads(CliRunner().invoke(match_cli, [str(gul[0]), "--json", "--gallery", str(gallery), "--model",
                                                     _model(server)]).stdout)
    assert got["faces"] and got["image"] == gul[0].name
    assert [f["matches"] for f in got["faces"]] == [f["matches"] for f in want["faces"]]
    assert {k for k in got} == {k for k in want}

    assert client.delete("/people/Abdullah_Gul").json() == {"removed": "Abdullah_Gul", "templates": 8}
    r = client.delete("/people/Abdullah_Gul")
    assert r.status_code == 404 and "not in the gallery" in r.json()["error"]
    assert client.get("/people").json() == {"people": {}}


def _model(server):
    return server[1].args[server[1].args.index("--model") + 1]


def test_bad_requests_are_400_401_413(server, lfw_photo, tmp_path):
    client, _, _ = server
    r = client.post("/identify", files=[("image", ("x.jpg", b"not an image", "image/jpeg"))])
    assert r.status_code == 400 and "x.jpg" in r.json()["error"]
    r = client.post("/identify", data={"nothing": "here"})
    assert r.status_code == 400 and "image" in r.json()["error"]
    r = client.post("/enroll", data={"name": "../evil"}, files=[jpg(lfw_photo)])
    assert r.status_code == 400 and r.json()["error"]
    r = client.post("/enroll", data={"name": "A"}, files=[jpg(lfw_photo),
                                                          ("image", ("y.png", b"\x89PNG junk", "image/png"))])
    assert r.status_code == 400 and "y.png" in r.json()["error"]
    assert "A" not in client.get("/people").json()["people"]  # a bad upload enrols nothing
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = httpx.get(str(client.base_url).rstrip("/") + "/people", headers=headers)
        assert r.status_code == 401 and r.json()["error"]
    big = b"\xff\xd8" + os.urandom(1024 * 1024 + 10)
    r = client.post("/identify", files=[("image", ("big.jpg", big, "image/jpeg"))])
    assert r.status_code == 413 and "upload over" in r.json()["error"]

    def chunks():  # no Content-Length: counted while it arrives
        yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
        for _ in range(40):
            yield b"x" * 65536

    r = client.post("/identify", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413


def test_concurrent_identify_and_enroll(server, celeb_dir, lfw_photo):
    client, proc, _ = server
    toledo = sorted((celeb_dir / "Alejandro_Toledo").glob("*.jpg"))

    def identify(_):
        return client.post("/identify", files=[jpg(lfw_photo)]).status_code

    def enroll(i):
        return client.post("/enroll", data={"name": f"Toledo_{i}"}, files=[jpg(toledo[i % 2])]).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: identify(i) if i % 2 else enroll(i), range(12)))
    assert codes == [200] * 12
    people = client.get("/people").json()["people"]
    assert {f"Toledo_{i}" for i in range(0, 12, 2)} <= set(people)
    assert all(people[f"Toledo_{i}"]["templates"] == 4 for i in range(0, 12, 2))
    assert proc.poll() is None


def test_bad_model_or_options_fail_before_serving(tmp_path):
    r = subprocess.run([sys.executable, "-m", "facerec.cli.serve", "--gallery", str(tmp_path / "g.h5"), "--model",
                        str(tmp_path / "nope"), "--port", str(_free_port())], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1 and "no such directory" in r.stderr and len(r.stderr.strip().splitlines()) == 1
