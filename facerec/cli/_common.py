"""What every facerec CLI shares: model/gallery options and one-line errors instead of tracebacks."""

from __future__ import annotations

import functools
import sys
from typing import Iterable

import click

from facerec.images import BadInput

model_option = click.option("--model", envvar="FACEREC_MODEL", type=click.Path(), default=None,
                            help="Model folder, or .tflite file from facerec-export (default: $FACEREC_MODEL, else the shipped "
                                 "artifacts/model).")
gallery_option = click.option("--gallery", envvar="FACEREC_GALLERY", type=click.Path(), default=None,
                              help="Gallery file (default: $FACEREC_GALLERY, else ~/.facerec/gallery.h5).")
quiet_option = click.option("--quiet", "-q", is_flag=True,
                            help="No progress bar and no notes: results, warnings and errors only.")
verbose_option = click.option("--verbose", "-v", is_flag=True,
                              help="List every per-photo note, not one summary line per kind.")


def show_progress(quiet: bool = False) -> bool:
    """Progress bars are for a person watching a terminal: in a log, their carriage returns are noise."""
    return not quiet and sys.stderr.isatty()


class Notes:
    """A command's per-photo notes (several faces, no face...), told as one line per kind at the end, so
    that a batch of a thousand photos does not bury its result; `verbose` lists each, `quiet` none."""

    def __init__(self, prog: str, verbose: bool = False, quiet: bool = False):
        self.prog, self.verbose, self.quiet = prog, verbose, quiet
        self._kinds: dict[str, list[str]] = {}

    def add(self, kind: str, note: str) -> None:
        """`note` names one photo; `kind` completes the count line: "photos had several faces; ..."."""
        self._kinds.setdefault(kind, []).append(note)

    def echo(self) -> None:
        if self.quiet:
            return
        for kind, notes in self._kinds.items():
            if self.verbose or len(notes) == 1:
                for note in notes:
                    click.echo(f"{self.prog}: note: {note}", err=True)
            else:
                click.echo(f"{self.prog}: note: {len(notes)} {kind} — --verbose lists them", err=True)


def unreadable(photos: Iterable[str]) -> dict[str, BadInput]:
    """The photos that cannot be images, found from their bytes without decoding them: checked before
    the model loads, so a bad path is refused in a fraction of a second."""
    from facerec.images import check_image

    bad = {}
    for photo in photos:
        try:
            check_image(photo)
        except BadInput as e:
            bad[photo] = e
    return bad


def clean_errors(prog: str):
    """Turn facerec's known failures into `prog: error: <path>: <reason>` and exit status 1."""

    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except OSError as e:  # e.g. a gallery folder we may not write to
                where = f"{e.filename}: " if e.filename else ""
                click.echo(f"{prog}: error: {where}{e.strerror or e}", err=True)
                sys.exit(1)
            except Exception as e:
                if not isinstance(e, _known_errors()):
                    raise
                click.echo(f"{prog}: error: {e}", err=True)
                sys.exit(1)

        return run

    return wrap


def _known_errors() -> tuple[type, ...]:
    """The failures that carry a one-line reason."""
    from facerec.search.gallery import GalleryError
    from facerec.runtime.base import BadModel

    return (BadInput, GalleryError, ValueError, BadModel)


def output_problem(path: str, suffixes: Iterable[str]) -> str | None:
    """Why `path` cannot take a result file ending in one of `suffixes`, or None: checked before any
    work, so that a wrong --out costs nothing and loses nothing."""
    import os
    from pathlib import Path

    p, suffixes = Path(path), tuple(suffixes)
    if p.is_dir():
        return f"{path}: is a folder (give a file name ending in {' or '.join(suffixes)})"
    if p.suffix.lower() not in suffixes:
        return f"{path}: unsupported extension {p.suffix or '(none)'!r} (use {' or '.join(suffixes)})"
    folder = p.resolve().parent
    if not folder.is_dir():
        return f"{path}: no such folder {folder}"
    if not os.access(folder, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        return f"{path}: not writable"
    return None


def usage_error(prog: str, message: str) -> None:
    """A wrong option, told in one line (exit status 2, as click's usage errors)."""
    click.echo(f"{prog}: error: {message}", err=True)
    sys.exit(2)
