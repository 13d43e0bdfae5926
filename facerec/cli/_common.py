"""What every facerec CLI shares: model/gallery options and one-line errors instead of tracebacks."""

from __future__ import annotations

import functools
import sys

import click

model_option = click.option("--model", envvar="FACEREC_MODEL", type=click.Path(), default=None,
                            help="Model folder (default: $FACEREC_MODEL, else the shipped artifacts/model).")
gallery_option = click.option("--gallery", envvar="FACEREC_GALLERY", type=click.Path(), default=None,
                              help="Gallery file (default: $FACEREC_GALLERY, else ~/.facerec/gallery.h5).")


def clean_errors(prog: str):
    """Turn facerec's known failures into `prog: error: <path>: <reason>` and exit status 1."""

    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            from facerec.gallery import GalleryError
            from facerec.images import BadInput
            from facerec.model import BadModel

            try:
                return fn(*args, **kwargs)
            except (BadInput, BadModel, GalleryError, ValueError) as e:
                click.echo(f"{prog}: error: {e}", err=True)
                sys.exit(1)

        return run

    return wrap
