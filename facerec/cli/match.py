"""`facerec-match PHOTO...`: who is in each photo, with the similarity score and the threshold."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from facerec.cli._common import clean_errors, gallery_option, model_option

PROG = "facerec-match"


def _out_path(out: str, i: int, n: int) -> Path:
    p = Path(out)
    return p if n == 1 else p.with_name(f"{p.stem}-{i + 1}{p.suffix or '.png'}")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("photos", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout (an object, or a list for several photos).")
@click.option("--out", default=None, type=click.Path(), help="Write the annotated image here (-N added for several photos).")
@click.option("--show", is_flag=True, help="Open the annotated image in a window, where a display exists.")
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1), help="Matches listed per face.")
@click.option("--threshold", type=float, default=None, help="Override the model's calibrated threshold.")
@click.option("--aggregate", type=click.Choice(["max", "top2"]), default="max", show_default=True,
              help="Identity score: best template, or mean of the best two.")
@model_option
@gallery_option
@clean_errors(PROG)
def main(photos, as_json, out, show, top_k, threshold, aggregate, model, gallery):
    """Identify the faces in each PHOTO against the gallery."""
    from facerec.images import BadInput, load_image
    from facerec.match import table
    from facerec.recognizer import MIN_FACE_PX, Recognizer

    rec = Recognizer(model=model, gallery=gallery, threshold=threshold, aggregate=aggregate)
    g = rec.gallery()  # bad model / gallery: one error before any photo
    if not rec.calibrated:
        click.echo(f"{PROG}: warning: uncalibrated threshold: the model card has none, so {rec.threshold} is used "
                   "(run `facerec-eval calibrate`, or pass --threshold)", err=True)
    if show and not os.environ.get("DISPLAY"):
        click.echo(f"{PROG}: no display available; --show ignored", err=True)
        show = False
    results, failed = [], False
    for i, photo in enumerate(photos):
        try:
            image = load_image(photo)
        except BadInput as e:
            click.echo(f"{PROG}: error: {e}", err=True)
            results.append({"image": photo, "error": e.reason, "faces": []})
            failed = True
            continue
        r = rec.identify(image, top_k)
        r["image"] = photo
        results.append(r)
        if r.get("skipped_small_faces"):
            click.echo(f"{PROG}: {photo}: {r['skipped_small_faces']} face(s) under {MIN_FACE_PX} px skipped", err=True)
        if not r["faces"] and not r.get("skipped_small_faces"):
            click.echo(f"{PROG}: {photo}: no face found", err=True)
        if len(r["faces"]) > 1:
            click.echo(f"{PROG}: {photo}: {len(r['faces'])} faces; each is matched, largest first", err=True)
        if out or show:
            _picture(image, r, g, _out_path(out, i, len(photos)) if out else None, show)
        if not as_json:
            click.echo(table(r))
    if as_json:
        click.echo(json.dumps(results[0] if len(results) == 1 else results, ensure_ascii=False))
    if failed:
        sys.exit(1)


def _picture(image, result, gallery, path, show) -> None:
    import cv2

    from facerec.match import annotate

    pic = annotate(image, result, gallery)
    if path:
        if not cv2.imwrite(str(path), cv2.cvtColor(pic, cv2.COLOR_RGB2BGR)):
            raise ValueError(f"{path}: cannot write the annotated image")
        click.echo(f"{PROG}: annotated image: {path}", err=True)
    if show:
        try:
            cv2.imshow("facerec-match", cv2.cvtColor(pic, cv2.COLOR_RGB2BGR))
            cv2.waitKey(0)
            cv2.destroyAllWindows()
        except cv2.error as e:  # an OpenCV build without a GUI backend, or a display that refuses windows
            click.echo(f"{PROG}: cannot open a window ({str(e).strip().splitlines()[-1][:80]}); --show ignored", err=True)


if __name__ == "__main__":
    main()
