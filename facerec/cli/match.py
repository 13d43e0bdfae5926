"""`facerec-match PHOTO...`: who is in each photo, with the similarity score and the threshold.

`--video FILE` / `--camera INDEX`: who was seen when, as tracks of faces followed across frames."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from facerec.cli._common import (Notes, clean_errors, gallery_option, model_option, output_problem, quiet_option,
                                 unreadable, usage_error, verbose_option)

PROG = "facerec-match"


def _out_paths(out: str, photos: tuple[str, ...]) -> list[Path]:
    """Where each photo's annotated image goes: --out itself for one photo; for several, OUT-<photo
    name>.EXT beside it, or <photo name>.png inside --out when it is a folder (-2, -3 for repeats)."""
    p = Path(out)
    if len(photos) == 1 and not p.is_dir():
        return [p]
    used: dict[str, int] = {}
    paths = []
    for photo in photos:
        stem = Path(photo).stem or "photo"
        name = stem if p.is_dir() else f"{p.stem}-{stem}"
        used[name] = used.get(name, 0) + 1
        name += f"-{used[name]}" if used[name] > 1 else ""
        paths.append(p / f"{name}.png" if p.is_dir() else p.with_name(name + p.suffix))
    return paths


def _check_out(out: str, video: bool) -> None:
    """A wrong --out is one line before any work (exit 2): never a traceback after the work is done."""
    import os

    from facerec.images import IMAGE_SUFFIXES

    if video:
        from facerec.video import CODECS

        problem = output_problem(out, CODECS)
    elif Path(out).is_dir():
        problem = None if os.access(out, os.W_OK | os.X_OK) else f"{out}: folder not writable"
    else:
        problem = output_problem(out, IMAGE_SUFFIXES)
    if problem:
        usage_error(PROG, f"--out {problem}")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("photos", nargs=-1, type=click.Path())
@click.option("--video", type=click.Path(), default=None, metavar="FILE",
              help="Identify and track the faces of a video file instead.")
@click.option("--camera", type=click.IntRange(0), default=None, metavar="INDEX",
              help="Identify and track the faces seen by camera INDEX (0: the first) until Ctrl-C (or q in --show).")
@click.option("--every", type=click.IntRange(1), default=None, metavar="N",
              help="With --video/--camera: identify every Nth frame (default 1: all).")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout (an object, or a list for several photos).")
@click.option("--out", default=None, type=click.Path(),
              help="Write the annotated image here (.png, .jpg...; several photos: OUT-<photo>.EXT each, or "
                   "<photo>.png in OUT when it is a folder); a video: .mp4 or .avi.")
@click.option("--show", is_flag=True, help="Open the annotated image in a window, where a display exists.")
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1), help="Matches listed per face.")
@click.option("--threshold", type=float, default=None,
              help="Accept matches from this score (default: the gallery's own threshold, else the model card's).")
@click.option("--aggregate", type=click.Choice(["centroid", "max", "top2"]), default="centroid", show_default=True,
              help="Identity score: the nearer of the means of its photo and of its mask templates, its best "
                   "template, or the mean of its best two.")
@click.option("--index", type=click.Choice(["exact", "ann"]), default="exact", show_default=True,
              help="Scan every template, or ask an approximate IVF index (for millions of templates; built on "
                   "first use and whenever the gallery changed, cached beside it as GALLERY.faiss).")
@verbose_option
@quiet_option
@model_option
@gallery_option
@clean_errors(PROG)
def main(photos, video, camera, every, as_json, out, show, top_k, threshold, aggregate, index, verbose, quiet, model,
         gallery):
    """Identify the faces in each PHOTO against the gallery.

    An unreadable photo is one error line; the others are still matched, and the exit status is 1.
    """
    if out:
        _check_out(out, video is not None or camera is not None)
    if video is not None or camera is not None:
        if photos or (video is not None and camera is not None):
            raise click.UsageError("give PHOTO..., --video FILE or --camera INDEX: one of them")
        _video(video, camera, every or 1, as_json, out, show, top_k, threshold, aggregate, index, model, gallery)
        return
    if not photos:
        raise click.UsageError("give PHOTO..., --video FILE or --camera INDEX")
    if every is not None:
        raise click.UsageError("--every is for --video or --camera")
    bad = unreadable(photos)  # before anything heavy loads: a wrong path is refused at once
    for e in bad.values():
        click.echo(f"{PROG}: error: {e}", err=True)
    from facerec.images import BadInput, load_image
    from facerec.match import table

    rec, g = _recognizer(model, gallery, threshold, aggregate, index) if len(bad) < len(set(photos)) else (None, None)
    if show and not os.environ.get("DISPLAY"):
        click.echo(f"{PROG}: no display available; --show ignored", err=True)
        show = False
    results, notes, write_errors = [], Notes(PROG, verbose, quiet), []
    out_paths = _out_paths(out, photos) if out else [None] * len(photos)
    for photo, out_path in zip(photos, out_paths):
        error = bad.get(photo)
        if error is None:
            try:
                image = load_image(photo)  # corrupt pixel data shows only when decoding
            except BadInput as e:
                click.echo(f"{PROG}: error: {e}", err=True)
                error = e
        if error is not None:
            results.append({"image": photo, "error": error.reason, "faces": []})
            continue
        r = rec.identify(image, top_k)
        r["image"] = photo
        results.append(r)
        _note(notes, r)
        if not as_json:
            click.echo(table(r))  # the identification first: a failed write below never loses it
        if out or show:
            problem = _picture(image, r, g, out_path, show)
            if problem:
                write_errors.append(problem)
    notes.echo()
    if as_json:
        click.echo(json.dumps(results[0] if len(results) == 1 else results, ensure_ascii=False))
    for problem in write_errors:
        click.echo(f"{PROG}: error: {problem}", err=True)
    if write_errors or any("error" in r for r in results):
        sys.exit(1)


def _recognizer(model, gallery, threshold, aggregate, index):
    """The recognizer and its gallery: a bad model or gallery is one error before any photo is matched."""
    from facerec.recognizer import Recognizer

    rec = Recognizer(model=model, gallery=gallery, threshold=threshold, aggregate=aggregate, index=index)
    g = rec.gallery()
    if not rec.calibrated:
        click.echo(f"{PROG}: warning: uncalibrated threshold: neither the gallery nor the model card has one, so "
                   f"{rec.threshold} is used (run `facerec-gallery calibrate`, or pass --threshold)", err=True)
    elif rec.threshold_source == "gallery" and g.calibration.get("people") != len(g.people()):
        click.echo(f"{PROG}: warning: the gallery's threshold was calibrated with {g.calibration.get('people')} "
                   f"people and it now has {len(g.people())}: re-run `facerec-gallery calibrate`", err=True)
    return rec, g


def _note(notes: Notes, result: dict) -> None:
    """What is worth knowing about a photo's faces beyond its result line."""
    from facerec.recognizer import MIN_FACE_PX

    photo, small, n = result["image"], result.get("skipped_small_faces"), len(result["faces"])
    if small:
        notes.add(f"photos had faces under {MIN_FACE_PX} px, skipped",
                  f"{photo}: {small} face(s) under {MIN_FACE_PX} px skipped")
    elif not n:
        least = result.get("smallest_findable_face_px", 0)
        hint = f" (faces narrower than ~{least} px cannot be found in a photo this size)" if least > MIN_FACE_PX else ""
        notes.add("photos had no face", f"{photo}: no face found{hint}")
    if n > 1:
        notes.add("photos had several faces; each was matched, main face first",
                  f"{photo}: {n} faces; each is matched, main face first")


def _video(video, camera, every, as_json, out, show, top_k, threshold, aggregate, index, model, gallery) -> None:
    """Tracks of who was seen when in a video file or a camera's frames, and the annotated video."""
    if video is not None and not Path(video).is_file():  # before OpenCV and MediaPipe load: at once
        from facerec.images import BadInput

        raise BadInput(video, "is a directory, not a video" if Path(video).is_dir() else "no such file")
    import cv2

    from facerec.video import open_camera, open_video, recognise

    if show and not os.environ.get("DISPLAY"):
        click.echo(f"{PROG}: no display available; --show ignored", err=True)
        show = False
    cap, fps = open_video(video) if video is not None else (open_camera(camera), 0.0)  # before the model: fast
    rec, _ = _recognizer(model, gallery, threshold, aggregate, index)

    def window(pic) -> bool:
        try:
            cv2.imshow(PROG, cv2.cvtColor(pic, cv2.COLOR_RGB2BGR))
            return cv2.waitKey(1) & 0xFF != ord("q")
        except cv2.error as e:  # an OpenCV build without a GUI backend
            click.echo(f"{PROG}: cannot open a window ({str(e).strip().splitlines()[-1][:80]})", err=True)
            return False

    source = video if video is not None else f"camera {camera}"
    r = {"video": source, **recognise(rec, cap, fps, every, top_k, out, window if show else None)}
    write_error = r.pop("write_error", None)
    if out and not write_error:
        click.echo(f"{PROG}: annotated video: {out}", err=True)
    if as_json:
        click.echo(json.dumps(r, ensure_ascii=False))
    else:
        _tracks_table(r, source, every)
    if write_error:
        click.echo(f"{PROG}: error: {write_error}", err=True)
        sys.exit(1)


def _tracks_table(r: dict, source: str, every: int) -> None:
    from facerec.match import display_name

    processed = len(range(0, r["frames"], every))
    click.echo(f"{source}: {r['frames']} frames, {processed} identified, {len(r['tracks'])} track(s) of faces")
    for t in r["tracks"]:
        who = display_name(t["identity"]) if t["identity"] else "unknown"
        closest = f"  closest: {display_name(t['best_match'])}" if not t["identity"] and t["best_match"] else ""
        score = "no gallery match" if t["score"] is None else f"score {t['score']:.3f}"
        click.echo(f"  track {t['track']}  {who:<24s}  {score}  (threshold {r['threshold']:.3f})  "
                   f"{t['first']:.2f}-{t['last']:.2f} s, {t['frames']} frame(s){closest}")


def _picture(image, result, gallery, path, show) -> str | None:
    """Write and/or show the annotated image; the reason when it could not be written."""
    import cv2

    from facerec.match import annotate

    pic = annotate(image, result, gallery)
    if path:
        try:
            written = cv2.imwrite(str(path), cv2.cvtColor(pic, cv2.COLOR_RGB2BGR))
        except cv2.error:
            written = False
        if not written:
            return f"{path}: cannot write the annotated image there"
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
