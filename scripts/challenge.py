"""The whole challenge, as a user runs it, through the command-line tools.

1. build a gallery of celebrities: five_celebrity/train + the first photo of N LFW celebrities (the
   model's training people, so strangers and calibration people stay out of it);
2. enrol a new person (an RMFRD person, never seen in training) from ONE unmasked photo — no retraining;
3. identify that person's real masked photo: identity, cosine score, threshold, annotated image.

    python scripts/challenge.py [--data DIR] [--out out/challenge] [--lfw-people 1000]

`--all-rmfrd` runs the acceptance variant: every RMFRD person enrolled from one unmasked photo,
every masked RMFRD photo matched, rank-1 reported; the false-accept rate of 300 faces of LFW
pairsDevTest people (in neither the gallery, training nor threshold calibration); and the user's own
scenario: a gallery of five_celebrity/train alone, its 25 val photos matched at the shipped threshold.
Without RMFRD (e.g. only LFW was downloaded) the new person is an LFW person left out of the
gallery, probed with a synthetic mask on another of their photos.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from facerec.training.data import data_root, read_pairs_people, read_people


def sh(*args: str, capture: bool = False) -> str:
    """Run a facerec CLI in this interpreter's environment, as a user would from the shell."""
    mod = {"facerec-gallery": "facerec.cli.gallery", "facerec-match": "facerec.cli.match"}[args[0]]
    cmd = [sys.executable, "-m", mod, *args[1:]]
    print("$ " + " ".join([args[0], *args[1:]][:8]) + (" ..." if len(args) > 8 else ""), file=sys.stderr, flush=True)
    r = subprocess.run(cmd, stdout=subprocess.PIPE if capture else None, text=True)
    if r.returncode not in (0, 1) or (r.returncode == 1 and not capture):
        raise SystemExit(f"challenge: `{args[0]}` failed (exit {r.returncode})")
    return r.stdout or ""


def link_tree(root: Path, people: dict[str, list[Path]]) -> Path:
    """A folder-per-person tree of symbolic links (no image is copied)."""
    for name, photos in people.items():
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for p in photos:
            link = d / p.name
            if not link.exists():
                link.symlink_to(p.resolve())
    return root


# five_celebrity's people are in LFW too: keep them out of the LFW part (one name per person).
FIVE_IN_LFW = {"Ben_Affleck", "Elton_John", "Jerry_Seinfeld", "Madonna", "Mindy_Kaling"}


def lfw_people(data: Path, n: int, among: set[str] | None = None) -> dict[str, list[Path]]:
    """The first photo of the first n LFW people by name (optionally only `among` them)."""
    root = data / "lfw" / "lfw-deepfunneled"
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in FIVE_IN_LFW
                   and (among is None or p.name in among))
    return {nm: [sorted((root / nm).glob("*.jpg"))[0]] for nm in names[:n]}


def celebrity_names(data: Path) -> set[str] | None:
    """The LFW celebrities of the gallery: the training people (peopleDevTrain, ≥ 2 photos) when the
    protocol files are there — the model knows them — so that strangers (pairsDevTest people) and the
    threshold's calibration people (artifacts/calibration_people.txt) are never in the gallery."""
    people = data / "lfw" / "peopleDevTrain.txt"
    if not people.is_file():
        return None
    root = data / "lfw" / "lfw-deepfunneled"
    return {n for n in read_people(people) if len(list((root / n).glob("*.jpg"))) >= 2}


def rmfrd_people(data: Path) -> dict[str, dict[str, list[Path]]]:
    people: dict[str, dict[str, list[Path]]] = defaultdict(lambda: {"masked": [], "unmasked": []})
    with open(data / "rmfrd" / "manifest.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["cross_identity_duplicate"] != "1":
                people[r["identity"]]["masked" if r["masked"] == "1" else "unmasked"].append(data / "rmfrd" / r["path"])
    return {k: v for k, v in sorted(people.items()) if v["masked"] and v["unmasked"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="data root (default: $FACEREC_DATA, else ../shared/data)")
    ap.add_argument("--out", default="out/challenge")
    ap.add_argument("--lfw-people", type=int, default=1000)
    ap.add_argument("--person", default=None, help="RMFRD identity to enrol (default: the first with both kinds)")
    ap.add_argument("--all-rmfrd", action="store_true", help="acceptance run over every RMFRD person")
    a = ap.parse_args()
    data = data_root(a.data)
    if data is None:
        raise SystemExit("challenge: no data found: pass --data, set FACEREC_DATA, or run scripts/fetch_lfw.sh DIR")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    gallery = out / "gallery.h5"
    os.environ["FACEREC_GALLERY"] = str(gallery)

    celebs: dict[str, list[Path]] = {}
    five = data / "five_celebrity" / "train"
    if five.is_dir():
        celebs.update({d.name: sorted(d.glob("*.jpg")) for d in sorted(five.iterdir())})
    celebs.update(lfw_people(data, a.lfw_people, celebrity_names(data)))
    sh("facerec-gallery", "build", str(link_tree(out / "celebrities", celebs)), "--force")

    if a.all_rmfrd:
        return acceptance(data, out, len(celebs))

    if (data / "rmfrd").is_dir():
        people = rmfrd_people(data)
        name = a.person or next(iter(people))
        enrol_photo, probe = people[name]["unmasked"][0], people[name]["masked"][0]
    else:  # LFW only: a person outside the gallery, probed with a synthetic mask
        from facerec.evaluation.evaluate import mask_photo
        from facerec.images import load_image
        from PIL import Image

        root = data / "lfw" / "lfw-deepfunneled"
        name = next(n for n in sorted(p.name for p in root.iterdir())
                    if n not in celebs and len(list((root / n).glob("*.jpg"))) >= 2)
        enrol_photo, second = sorted((root / name).glob("*.jpg"))[:2]
        probe = out / f"{name}_masked.jpg"
        Image.fromarray(mask_photo(load_image(second), seed=0)).save(probe)
    print(f"\nNew person: {name} — enrolled from one unmasked photo, then matched wearing a mask.", file=sys.stderr)
    sh("facerec-gallery", "enroll", "--name", name, str(enrol_photo))
    picture = out / "match.png"
    sh("facerec-match", str(probe), "--out", str(picture))
    print(f"\nannotated match image: {picture.resolve()}")


def acceptance(data: Path, out: Path, n_celebs: int) -> None:
    people = rmfrd_people(data)
    enrol = {name: [kinds["unmasked"][0]] for name, kinds in people.items()}
    sh("facerec-gallery", "enroll", "--dir", str(link_tree(out / "rmfrd_enrol", enrol)))
    probes = [(name, p) for name, kinds in people.items() for p in kinds["masked"]]
    results = json.loads(sh("facerec-match", *[str(p) for _, p in probes], "--json", capture=True))
    rank1 = accepted = wrong_accept = no_face = 0
    for (name, _), r in zip(probes, results):
        if not r["faces"]:
            no_face += 1
            continue
        f = r["faces"][0]
        rank1 += f["matches"][0]["identity"] == name
        accepted += f["identity"] == name
        wrong_accept += f["identity"] not in (None, name)
    n = len(probes)
    print(f"RMFRD masked probes: {n} ({len(people)} people enrolled from one unmasked photo each, gallery of "
          f"{len(people) + n_celebs} people); rank-1 {rank1 / n:.2%} ({rank1}/{n}); accepted as the right person at "
          f"the threshold {accepted / n:.2%}; accepted as someone else {wrong_accept / n:.2%}; no face {no_face}")
    # Unknown people: LFW pairsDevTest people — in neither the gallery, training nor calibration.
    strangers = lfw_people(data, 300, read_pairs_people(data / "lfw" / "pairsDevTest.txt"))
    photos = [str(v[0]) for v in strangers.values()]
    results = json.loads(sh("facerec-match", *photos, "--json", capture=True))
    faces = [r["faces"][0] for r in results if r["faces"]]
    fa = sum(f["identity"] is not None for f in faces)
    print(f"Unknown people: {len(faces)} faces of LFW people not in the gallery; false accepts at the default "
          f"threshold {results[0]['threshold']:.3f}: {fa} ({fa / len(faces):.2%})")
    five = data / "five_celebrity"
    if five.is_dir():
        g = str(out / "five_celebrity.h5")
        sh("facerec-gallery", "build", str(five / "train"), "--gallery", g, "--force")
        val = [(d.name, p) for d in sorted((five / "val").iterdir()) for p in sorted(d.glob("*.jpg"))]
        results = json.loads(sh("facerec-match", *[str(p) for _, p in val], "--gallery", g, "--json", capture=True))
        right = sum(bool(r["faces"]) and r["faces"][0]["identity"] == name for (name, _), r in zip(val, results))
        top = sum(bool(r["faces"]) and r["faces"][0]["matches"][0]["identity"] == name for (name, _), r in zip(val, results))
        print(f"five_celebrity: gallery of train ({len(list((five / 'train').iterdir()))} people); {right} of {len(val)} "
              f"val photos accepted as the right person at the threshold ({top} right at rank 1)")


if __name__ == "__main__":
    main()
