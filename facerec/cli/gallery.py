"""`facerec-gallery`: build, enrol into, list and prune the gallery of known people."""

from __future__ import annotations

import json
import sys
from collections import defaultdict

import click

from facerec.cli._common import clean_errors, gallery_option, model_option

PROG = "facerec-gallery"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Manage the gallery of enrolled people (an HDF5 file of face embeddings)."""


def _recognizer(model, gallery, mask_templates=3):
    from facerec.recognizer import Recognizer

    return Recognizer(model=model, gallery=gallery, mask_templates=mask_templates)


def _report(reports, as_json: bool) -> None:
    problems = [p for r in reports for p in r.problems]
    if as_json:
        click.echo(json.dumps({"people": [{"name": r.name, "photos": r.photos, "templates": r.templates} for r in reports],
                               "failed": problems}))
    else:
        for r in reports:
            if len(reports) <= 20:
                click.echo(f"{r.name}: {r.photos} photo(s), {r.templates} template(s) added")
        if len(reports) > 20:
            click.echo(f"{len(reports)} people, {sum(r.photos for r in reports)} photos, "
                       f"{sum(r.templates for r in reports)} templates added")
    for r in reports:
        for n in r.notes:
            click.echo(f"{PROG}: note: {n}", err=True)
    for p in problems:
        click.echo(f"{PROG}: skipped {p['path']}: {p['reason']}", err=True)


def _enroll_folder(rec, folder: str, new: bool, as_json: bool) -> None:
    from tqdm import tqdm

    from facerec.data import discover

    people: dict[str, list[str]] = defaultdict(list)
    for item in discover(folder):
        people[item.identity].append(item.path)
    if not people:
        raise ValueError(f"{folder}: no images found (expected one folder per person)")
    bar = tqdm(total=sum(map(len, people.values())), unit="photo", file=sys.stderr, disable=as_json)
    try:
        reports = rec.enroll_many(dict(people), new_gallery=new, progress=lambda: bar.update(1))
    finally:
        bar.close()
    _report(reports, as_json)
    if all(r.photos == 0 for r in reports):
        sys.exit(1)


@main.command()
@click.argument("data_dir", type=click.Path())
@click.option("--force", is_flag=True, help="Replace an existing gallery file.")
@click.option("--mask-templates", default=3, show_default=True, help="Synthetic-masked templates per photo.")
@click.option("--json", "as_json", is_flag=True)
@model_option
@gallery_option
@clean_errors(PROG)
def build(data_dir, force, mask_templates, as_json, model, gallery):
    """Create a gallery from DATA_DIR: one folder per person, named after the person."""
    rec = _recognizer(model, gallery, mask_templates)
    if rec.gallery_path.exists() and not force:
        raise ValueError(f"{rec.gallery_path}: gallery exists; pass --force to replace it, or use `enroll` to add")
    _enroll_folder(rec, data_dir, new=True, as_json=as_json)
    click.echo(f"gallery: {rec.gallery_path}", err=True)


@main.command()
@click.option("--name", default=None, help="The person's name (all PHOTOS are of this person).")
@click.option("--dir", "folder", default=None, type=click.Path(), help="Enrol a folder of people instead (one folder each).")
@click.argument("photos", nargs=-1, type=click.Path())
@click.option("--mask-templates", default=3, show_default=True, help="Synthetic-masked templates per photo.")
@click.option("--json", "as_json", is_flag=True)
@model_option
@gallery_option
@clean_errors(PROG)
def enroll(name, folder, photos, mask_templates, as_json, model, gallery):
    """Add a person from one or more PHOTOS, without retraining (creates the gallery if needed)."""
    rec = _recognizer(model, gallery, mask_templates)
    if folder:
        if name or photos:
            raise click.UsageError("use either --dir or --name with photos")
        return _enroll_folder(rec, folder, new=False, as_json=as_json)
    if name is None or not photos:
        raise click.UsageError("give --name NAME and at least one photo (or --dir FOLDER)")
    report = rec.enroll(name, list(photos))
    _report([report], as_json)
    if report.photos == 0:
        sys.exit(1)


@main.command("list")
@click.option("--json", "as_json", is_flag=True)
@gallery_option
@clean_errors(PROG)
def list_(as_json, gallery):
    """The people in the gallery, with their photo and template counts."""
    from facerec.gallery import Gallery, default_gallery_path

    g = Gallery.load(gallery or default_gallery_path())
    people = g.people()
    if as_json:
        click.echo(json.dumps([{"name": n, **c} for n, c in people.items()], ensure_ascii=False))
        return
    for n, c in people.items():
        click.echo(f"{n}\t{c['photos']} photo(s)\t{c['templates']} template(s)")
    click.echo(f"{len(people)} people, {len(g)} templates", err=True)


@main.command()
@click.argument("name")
@model_option
@gallery_option
@clean_errors(PROG)
def remove(name, model, gallery):
    """Delete every template of NAME."""
    n = _recognizer(model, gallery).remove(name)
    if n == 0:
        raise ValueError(f"{name!r} is not in the gallery")
    click.echo(f"removed {name}: {n} template(s)")


if __name__ == "__main__":
    main()
