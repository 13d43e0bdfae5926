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
    """The failures that carry a one-line reason. BadModel only matters once facerec.model (and so
    TensorFlow) is imported, so commands that need no model (list, remove) never import it."""
    from facerec.gallery import GalleryError
    from facerec.images import BadInput

    model = sys.modules.get("facerec.model")
    return (BadInput, GalleryError, ValueError) + ((model.BadModel,) if model else ())
