"""`facerec-gallery`: build, enrol into, list, calibrate and prune the gallery of known people."""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict

import click

from facerec.cli._common import (Notes, clean_errors, gallery_option, model_option, quiet_option, show_progress,
                                 unreadable, verbose_option)

PROG = "facerec-gallery"

mask_templates_option = click.option(
    "--mask-templates", default=3, show_default=True, type=click.IntRange(0),
    help="Synthetic-masked templates stored per photo, beside the photo's own.")
thumbnails_option = click.option(
    "--thumbnails/--no-thumbnails", default=True, show_default=True,
    help="Store a small JPEG of each enrolled face (~4 KB; shown by `facerec-match --out`).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Manage the gallery of enrolled people (an HDF5 file of face embeddings)."""


def _recognizer(model, gallery, mask_templates=3, thumbnails=True):
    from facerec.recognizer import Recognizer

    return Recognizer(model=model, gallery=gallery, mask_templates=mask_templates, thumbnails=thumbnails)


def _report(reports, as_json: bool, failure: str, notes: Notes) -> None:
    """Counts on stdout; notes and one line per unusable photo on stderr (`failure` = "error" or "skipped")."""
    problems = [p for r in reports for p in r.problems]
    if as_json:
        click.echo(json.dumps({"people": [{"name": r.name, "photos": r.photos, "templates": r.templates}
                                          for r in reports if r.photos],
                               "failed": problems}, ensure_ascii=False))
    elif len(reports) <= 20:
        for r in reports:
            if r.photos:
                click.echo(f"{r.name}: {r.photos} photo(s), {r.templates} template(s) added")
    else:
        click.echo(f"{sum(r.photos > 0 for r in reports)} people, {sum(r.photos for r in reports)} photos, "
                   f"{sum(r.templates for r in reports)} templates added")
    for r in reports:
        for n in r.notes:
            notes.add("photos had several faces; the main face was used", n)
        for n in r.already:
            notes.add("photos were already enrolled under that name (same content); skipped", n)
    notes.echo()
    for p in problems:
        click.echo(f"{PROG}: {failure}: {_one_line(p['path'])}: {p['reason']}", err=True)


def _one_line(text: str) -> str:
    """`text` with control characters escaped, so each failure stays on one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _enroll_folder(rec, folder: str, new: bool, as_json: bool, notes: Notes) -> None:
    """Enrol a folder-per-person tree; unusable photos are listed and skipped (exit 1 only if none worked)."""
    from tqdm import tqdm

    from facerec.training.data import discover

    people: dict[str, list[str]] = defaultdict(list)
    for item in discover(folder):
        people[item.identity].append(item.path)
    if not people:
        raise ValueError(f"{folder}: no photos found (expected one folder of photos per person)")
    bar = tqdm(total=sum(map(len, people.values())), unit="photo", file=sys.stderr,
               disable=not show_progress(as_json or notes.quiet))
    try:
        reports = rec.enroll_many(dict(people), new_gallery=new, progress=lambda: bar.update(1))
    finally:
        bar.close()
    _report(reports, as_json, "skipped", notes)
    if all(r.photos == 0 for r in reports):
        click.echo(f"{PROG}: error: {folder}: no photo could be enrolled; gallery unchanged", err=True)
        sys.exit(1)


@main.command()
@click.argument("data_dir", type=click.Path())
@click.option("--force", is_flag=True, help="Replace an existing gallery file.")
@mask_templates_option
@thumbnails_option
@click.option("--json", "as_json", is_flag=True, help='{"people": [...], "failed": [{"path", "reason"}]} on stdout.')
@verbose_option
@quiet_option
@model_option
@gallery_option
@clean_errors(PROG)
def build(data_dir, force, mask_templates, thumbnails, as_json, verbose, quiet, model, gallery):
    """Create a gallery from DATA_DIR: one folder per person, named after the person.

    Unusable photos are listed on stderr and skipped.
    """
    rec = _recognizer(model, gallery, mask_templates, thumbnails)
    if rec.gallery_path.exists() and not force:
        raise ValueError(f"{rec.gallery_path}: gallery exists; pass --force to replace it, or use `enroll` to add")
    _enroll_folder(rec, data_dir, new=True, as_json=as_json, notes=Notes(PROG, verbose, quiet))
    click.echo(f"gallery: {rec.gallery_path}", err=True)


@main.command()
@click.option("--name", default=None, help="The person's name (all PHOTOS are of this person).")
@click.option("--dir", "folder", default=None, type=click.Path(), help="Enrol a folder of people instead (one folder each).")
@click.argument("photos", nargs=-1, type=click.Path())
@mask_templates_option
@thumbnails_option
@click.option("--json", "as_json", is_flag=True, help='{"people": [...], "failed": [{"path", "reason"}]} on stdout.')
@verbose_option
@quiet_option
@model_option
@gallery_option
@clean_errors(PROG)
def enroll(name, folder, photos, mask_templates, thumbnails, as_json, verbose, quiet, model, gallery):
    """Add a person from one or more PHOTOS, without retraining (creates the gallery if needed).

    An existing name gets more templates. Each photo that cannot be used is one error line;
    the usable ones are enrolled and the exit status is 1 if any photo failed.
    """
    from facerec.search.gallery import validate_name
    from facerec.recognizer import EnrollReport

    rec, notes = _recognizer(model, gallery, mask_templates, thumbnails), Notes(PROG, verbose, quiet)
    if folder:
        if name or photos:
            raise click.UsageError("use either --dir or --name with photos")
        return _enroll_folder(rec, folder, new=False, as_json=as_json, notes=notes)
    if name is None or not photos:
        raise click.UsageError("give --name NAME and at least one photo (or --dir FOLDER)")
    bad = unreadable(photos)  # before the model loads: a wrong path is refused at once
    good = [p for p in photos if p not in bad]
    report = rec.enroll(name, good) if good else EnrollReport(validate_name(name))
    report.problems[:0] = [{"path": p, "reason": bad[p].reason} for p in photos if p in bad]
    _report([report], as_json, "error", notes)
    if report.problems:
        sys.exit(1)


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help='[{"name", "photos", "templates"}, ...] on stdout.')
@gallery_option
@clean_errors(PROG)
def list_(as_json, gallery):
    """The people in the gallery, with their photo and template counts."""
    from facerec.search.gallery import Gallery, default_gallery_path

    g = Gallery.load(gallery or default_gallery_path())
    people = g.people()
    if as_json:
        click.echo(json.dumps([{"name": n, **c} for n, c in people.items()], ensure_ascii=False))
        return
    for n, c in people.items():
        click.echo(f"{n}\t{c['photos']} photo(s)\t{c['templates']} template(s)")
    click.echo(f"{len(people)} people, {len(g)} templates", err=True)
    if g.calibration:
        click.echo(f"threshold {_calibration_line(g.calibration)}", err=True)


def _calibration_line(c: dict) -> str:
    return (f"{c['threshold']:.4f} (this gallery's own: FAR {c['far']:g} on {c['strangers']} stranger faces, "
            f"calibrated with {c['people']} people)")


@main.command()
@click.option("--strangers", required=True, type=click.Path(),
              help="Photos of people NOT in the gallery: one folder of photos, or a folder per person.")
@click.option("--far", type=float, default=0.01, show_default=True,
              help="Target fraction of strangers accepted as someone in the gallery.")
@click.option("--json", "as_json", is_flag=True, help="What was stored and measured, as JSON on stdout.")
@verbose_option
@quiet_option
@model_option
@gallery_option
@clean_errors(PROG)
def calibrate(strangers, far, as_json, verbose, quiet, model, gallery):
    """Store this gallery's own threshold: the lowest accepting at most --far of the strangers.

    facerec-match then uses it (unless --threshold is given) instead of the model card's, which was
    calibrated on a 1,000-person gallery; re-run it after enrolling or removing many people.
    """
    from pathlib import Path

    from tqdm import tqdm

    from facerec.images import is_image_path

    if not 0 < far < 1:
        raise click.UsageError(f"--far must be between 0 and 1, not {far}")
    root = Path(strangers)
    if not root.is_dir():
        raise ValueError(f"{strangers}: no such folder (expected photos of people not in the gallery)")
    photos = sorted(str(p) for p in root.rglob("*") if p.is_file() and is_image_path(p))
    if not photos:
        raise ValueError(f"{strangers}: no photos found")
    rec, notes = _recognizer(model, gallery), Notes(PROG, verbose, quiet)
    rec.gallery()  # a missing or other-model gallery: one error before any photo is read
    bar = tqdm(total=len(photos), unit="photo", file=sys.stderr, disable=not show_progress(as_json or quiet))
    try:
        r = rec.calibrate(photos, far, progress=lambda: bar.update(1))
    finally:
        bar.close()
    for n in r.pop("notes"):
        notes.add("photos were of people enrolled in the gallery; skipped", n)
    if as_json:
        click.echo(json.dumps(r, ensure_ascii=False))
    else:
        click.echo(f"threshold {_calibration_line(r)}")
        click.echo(f"strangers accepted there: {r['false_accepts']} of {r['strangers']} ({r['far_there']:.2%})")
        if r["model_threshold"] is not None:
            click.echo(f"(the model card's {r['model_threshold']:.4f} accepts {r['model_threshold_far_there']:.2%} of them)")
    notes.echo()
    if not r["far_resolvable"]:
        click.echo(f"{PROG}: warning: {r['strangers']} stranger faces cannot measure FAR {far:g} (need "
                   f"{math.ceil(1 / far)}): the threshold is just above the best-scoring stranger", err=True)
    for p in r["failed"]:
        click.echo(f"{PROG}: skipped: {_one_line(p['path'])}: {p['reason']}", err=True)
    click.echo(f"stored in {rec.gallery_path}", err=True)


@main.command()
@click.argument("name")
@gallery_option
@clean_errors(PROG)
def remove(name, gallery):
    """Delete every template of NAME (no model needed)."""
    from facerec.search.gallery import default_gallery_path, editing

    path = gallery or default_gallery_path()
    with editing(path, None, create=False) as g:
        n = g.remove(name)
        if n == 0:
            raise ValueError(f"{name!r} is not in the gallery {path}")
    click.echo(f"removed {name}: {n} template(s)")


if __name__ == "__main__":
    main()
