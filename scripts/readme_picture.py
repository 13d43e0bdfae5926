"""Make docs/match.png, the README's picture: a real match by the shipped model, on photos we may redistribute.

    .venv/bin/python scripts/readme_picture.py [--model DIR] [--out docs/match.png]

The photos are public-domain US-government photos of Barack Obama and Joe Biden (their official
portraits, and Obama at a podium) from the test images of the `face_recognition==1.3.0` source distribution, which is
fetched once with `pip download` into a cache outside the repository (~/.cache/facerec, or
$FACEREC_CACHE) and checked against its sha256; neither it nor its photos are committed.

A temporary gallery enrols Barack Obama from one photo (obama.jpg) and Joe Biden from his (biden.jpg);
a *different* photo of Obama (obama2.jpg, at a podium) gets a synthetic mask (the one
`facerec-eval verify --masked` paints, fixed seed) and is identified; the annotated picture
(facerec.match.annotate) is written palette-quantised to stay small. Deterministic: rerun it
after the model changes and commit the new picture.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

SDIST = "face_recognition-1.3.0.tar.gz"
SDIST_SHA256 = "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec"
PHOTOS_IN_SDIST = "face_recognition-1.3.0/tests/test_images/"
ENROL = {"Barack Obama": "obama.jpg", "Joe Biden": "biden.jpg"}
PROBE, PROBE_PERSON = "obama2.jpg", "Barack Obama"
MASK_STYLE, MASK_SEED = "surgical_blue", 0
HEIGHT = 480  # of the annotated picture
MAX_BYTES = 200_000
ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    return Path(os.environ.get("FACEREC_CACHE") or Path.home() / ".cache" / "facerec")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_photos(cache: Path) -> Path:
    """The sdist's test photos, extracted into `cache`; the sdist is downloaded once and checksummed."""
    sdist = cache / SDIST
    if not sdist.exists():
        cache.mkdir(parents=True, exist_ok=True)
        print(f"downloading {SDIST} into {cache} (pip download)")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        "face_recognition==1.3.0", "-d", str(cache)], check=True, stdout=subprocess.DEVNULL)
    digest = sha256(sdist)
    if digest != SDIST_SHA256:
        sys.exit(f"{sdist}: sha256 {digest}, expected {SDIST_SHA256}; delete it and rerun")
    print(f"photos from {sdist} (sha256 {digest[:12]}, verified)")
    folder = cache / PHOTOS_IN_SDIST
    wanted = [*ENROL.values(), PROBE]
    if not all((folder / n).is_file() for n in wanted):
        with tarfile.open(sdist) as tar:
            members = [tar.getmember(PHOTOS_IN_SDIST + n) for n in wanted]
            tar.extractall(cache, members=members, filter="data")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model folder (default: $FACEREC_MODEL, else the shipped model)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "match.png")
    args = ap.parse_args()
    out = args.out.resolve()

    photos = fetch_photos(cache_dir())

    from facerec.evaluation.evaluate import mask_photo
    from facerec.images import load_image
    from facerec.match import annotate, table
    from facerec.recognizer import Recognizer

    with tempfile.TemporaryDirectory() as tmp:
        rec = Recognizer(model=Path(args.model).resolve() if args.model else None, gallery=Path(tmp) / "gallery.h5")
        # Enrol with bare file names, so the sources stored do not depend on where the cache is.
        os.chdir(photos)
        for report in rec.enroll_many({name: [photo] for name, photo in ENROL.items()}, new_gallery=True):
            if report.problems or not report.photos:
                sys.exit(f"enrolment of {report.name} failed: {report.problems}")
            print(f"enrolled {report.name}: {ENROL[report.name]} ({report.templates} templates)")
        # The threshold comes from the gallery or the card: known once the gallery exists.
        print(f"model: {rec.model_path} (fingerprint {rec.embedder.fingerprint[:12]}, threshold {rec.threshold:.4f}, "
              f"masked faces {rec.masked_threshold:.4f})")
        image = load_image(PROBE)
        masked = mask_photo(image, MASK_SEED, MASK_STYLE, rec.detector)
        if masked is None:
            sys.exit(f"{PROBE}: no face found to mask")
        print(f"probe: {PROBE} (another photo of {PROBE_PERSON}) with a synthetic {MASK_STYLE} mask (seed {MASK_SEED})")
        result = rec.identify(masked)
        result["image"] = f"{PROBE} + synthetic mask"
        print(table(result))
        picture = annotate(masked, result, rec.gallery(), height=HEIGHT)

    out.parent.mkdir(parents=True, exist_ok=True)
    pic = Image.fromarray(picture)
    for colours in (256, 128, 64):  # median cut, no dithering: deterministic
        pic.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, optimize=True)
        if out.stat().st_size <= MAX_BYTES:
            break
    else:
        sys.exit(f"{out}: {out.stat().st_size} bytes, over {MAX_BYTES}")
    face = result["faces"][0] if result["faces"] else None
    said = "no face" if face is None else f"{face['identity'] or 'unknown'} (score {face['score']:.3f})"
    print(f"wrote {out} ({picture.shape[1]}x{picture.shape[0]}, {colours} colours, {out.stat().st_size:,} bytes): "
          f"{said}, threshold {face['threshold'] if face else result['threshold']:.3f}")


if __name__ == "__main__":
    main()
