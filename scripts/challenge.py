"""The whole challenge, as a user runs it, through the command-line tools.

1. build a gallery of celebrities: five_celebrity/train + the first photo of N LFW celebrities (the
   model's training people, so strangers and calibration people stay out of it);
2. enrol newcomers, each from ONE unmasked photo, without retraining: a declared set, never chosen by
   how the model does on them — the first 10 people by sorted name of RMFRD's report half (sorted
   identities at odd positions, facerec.evaluation.evaluate.halves), each from their first unmasked
   photo by path;
3. identify every one of their real masked photos: print how many were right at rank 1, how many were
   accepted (the right person at or above the threshold) and how many accepted as someone else, and
   write one contact sheet of every query beside its match (name, score, threshold; failures marked).

    python scripts/challenge.py [--data DIR] [--out out/challenge] [--lfw-people 1000] [--newcomers 10]

`--all-rmfrd` runs the acceptance variant: every RMFRD person enrolled from one unmasked photo,
every masked RMFRD photo matched, rank-1 reported; the false-accept rate of 300 faces of LFW
pairsDevTest people (in neither the gallery, training nor threshold calibration); and the user's own
scenario: a gallery of five_celebrity/train alone, its 25 val photos matched at the shipped threshold.
Without RMFRD (e.g. only LFW was downloaded) the newcomers are the first LFW people by name left out
of the gallery with two photos or more, each probed with a synthetic mask on their second photo.
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

from facerec.evaluation.evaluate import halves, read_manifest
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
    """RMFRD's people with both kinds of photo, sorted by name, each kind sorted by path (rows marked
    cross_identity_duplicate skipped, as facerec-eval does)."""
    enrol, probes = read_manifest(data / "rmfrd" / "manifest.csv")
    people: dict[str, dict[str, list[Path]]] = defaultdict(lambda: {"masked": [], "unmasked": []})
    for kind, photos in (("unmasked", enrol), ("masked", probes)):
        for p in photos:
            people[p.identity][kind].append(Path(p.path))
    return {k: {kind: sorted(v) for kind, v in kinds.items()} for k, kinds in sorted(people.items())
            if kinds["masked"] and kinds["unmasked"]}


def rmfrd_newcomers(data: Path, n: int) -> dict[str, tuple[Path, list[Path]]]:
    """The declared set: the first n report-half people by sorted name (the half of every RMFRD identity,
    as facerec-eval splits them), each with (first unmasked photo, every masked photo)."""
    enrol, probes = read_manifest(data / "rmfrd" / "manifest.csv")
    report = halves(p.identity for p in enrol + probes)["report"]
    people = rmfrd_people(data)
    return {name: (people[name]["unmasked"][0], people[name]["masked"]) for name in sorted(report & people.keys())[:n]}


def lfw_newcomers(data: Path, out: Path, celebs: dict[str, list[Path]], n: int) -> dict[str, tuple[Path, list[Path]]]:
    """Without RMFRD: the first n LFW people by name outside the gallery with two photos or more, each
    enrolled from the first and probed with a synthetic mask drawn on the second."""
    from PIL import Image

    from facerec.evaluation.evaluate import mask_photo
    from facerec.images import load_image

    root = data / "lfw" / "lfw-deepfunneled"
    people = {}
    for name in sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in celebs):
        photos = sorted((root / name).glob("*.jpg"))
        if len(photos) >= 2:
            probe = out / "masked" / f"{name}_masked.jpg"
            probe.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask_photo(load_image(photos[1]), seed=0)).save(probe)
            people[name] = (photos[0], [probe])
        if len(people) == n:
            break
    return people


def right_at_rank1(name: str, result: dict) -> bool:
    return bool(result.get("faces")) and bool(result["faces"][0]["matches"]) and \
        result["faces"][0]["matches"][0]["identity"] == name


def verdict(name: str, result: dict) -> tuple[str, str]:
    """(outcome, one-line caption) of one query of `name`: accepted, rank1 (right but below the threshold),
    wrong (someone else accepted), unknown (nobody accepted, someone else closest) or noface."""
    if not result.get("faces"):
        return "noface", f"{name}: no face found"
    face = result["faces"][0]
    ranked = [m["identity"] for m in face["matches"]]
    if face["identity"] == name:
        return "accepted", f"{name}: accepted"
    if face["identity"] is not None:
        return "wrong", f"{name}: WRONG, accepted as {face['identity']}"
    if right_at_rank1(name, result):
        return "rank1", f"{name}: right at rank 1, below threshold"
    where = f"right person at rank {ranked.index(name) + 1}" if name in ranked else f"not in top {len(ranked)}"
    return "unknown", f"{name}: unknown ({where})"


_VERDICT_COLOURS = {"accepted": (40, 150, 60), "rank1": (210, 120, 0), "wrong": (200, 40, 40),
                    "unknown": (200, 40, 40), "noface": (110, 110, 110)}


def contact_sheet(queries: list[tuple[str, Path, dict]], gallery: Path, path: Path, cols: int = 4,
                  height: int = 240) -> None:
    """One PNG: every query as facerec-match draws it (the query, its best gallery face, cosine score and
    threshold), under a caption with the true name and the outcome, coloured (green accepted, orange right
    at rank 1 but below the threshold, red wrong or unknown, grey no face)."""
    import numpy as np
    from PIL import Image, ImageDraw

    from facerec.images import load_image
    from facerec.match import annotate, label_font
    from facerec.search.gallery import Gallery

    g = Gallery.load(gallery)
    tiles = []
    for name, photo, result in queries:
        outcome, caption = verdict(name, result)
        picture = annotate(load_image(photo), result, g, height=height)
        tile = Image.new("RGB", (picture.shape[1], height + 26), _VERDICT_COLOURS[outcome])
        tile.paste(Image.fromarray(picture), (0, 26))
        ImageDraw.Draw(tile).text((6, 4), caption, font=label_font(15), fill=(255, 255, 255))
        tiles.append(tile)
    width = max(t.width for t in tiles) + 8
    rows = -(-len(tiles) // cols)
    sheet = Image.new("RGB", (width * cols, rows * (height + 34)), (255, 255, 255))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % cols) * width, (i // cols) * (height + 34)))
    sheet.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="data root (default: $FACEREC_DATA, else ../shared/data)")
    ap.add_argument("--out", default="out/challenge")
    ap.add_argument("--lfw-people", type=int, default=1000)
    ap.add_argument("--newcomers", type=int, default=10, help="how many of the declared newcomers to enrol")
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
        newcomers, declared = rmfrd_newcomers(data, a.newcomers), f"the first {a.newcomers} of RMFRD's report half"
    else:
        newcomers, declared = lfw_newcomers(data, out, celebs, a.newcomers), f"the first {a.newcomers} LFW people outside the gallery"
    print(f"\nNewcomers ({declared}, by name): {', '.join(newcomers)} — each enrolled from one unmasked "
          "photo, then matched wearing a mask.", file=sys.stderr)
    sh("facerec-gallery", "enroll", "--dir", str(link_tree(out / "newcomers", {k: [v[0]] for k, v in newcomers.items()})))
    probes = [(name, p) for name, (_, masked) in newcomers.items() for p in masked]
    results = json.loads(sh("facerec-match", *[str(p) for _, p in probes], "--json", capture=True))
    results = results if isinstance(results, list) else [results]
    queries = [(name, p, r) for (name, p), r in zip(probes, results)]
    outcomes = [verdict(name, r)[0] for name, _, r in queries]
    n = len(queries)
    rank1 = sum(right_at_rank1(name, r) for name, _, r in queries)
    accepted, wrong = outcomes.count("accepted"), outcomes.count("wrong")
    print(f"\n{len(newcomers)} newcomers, {n} masked photos matched in a gallery of {len(celebs) + len(newcomers)} "
          f"people at the threshold {results[0]['threshold']:.3f} ({results[0].get('threshold_masked', results[0]['threshold']):.3f} "
          f"for faces called masked):")
    print(f"  right at rank 1: {rank1} of {n}; accepted as the right person: {accepted} of {n}; accepted as "
          f"someone else: {wrong} of {n}; no face: {outcomes.count('noface')}")
    for name in newcomers:
        mine = [(o, r) for (who, _, r), o in zip(queries, outcomes) if who == name]
        print(f"  {name}: {sum(o == 'accepted' for o, _ in mine)} of {len(mine)} accepted, "
              f"{sum(right_at_rank1(name, r) for _, r in mine)} right at rank 1")
    sheet = out / "contact_sheet.png"
    contact_sheet(queries, gallery, sheet)
    print(f"\ncontact sheet (every query beside its match): {sheet.resolve()}")


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
