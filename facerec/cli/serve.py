"""`facerec-serve --gallery G`: a long-running HTTP service over one gallery, the model loaded once (facerec.serve)."""

from __future__ import annotations

import click

from facerec.cli._common import clean_errors, gallery_option, model_option

PROG = "facerec-serve"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@gallery_option
@model_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; put TLS in front of it).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--token", envvar="FACEREC_TOKEN", default=None,
              help="Require `Authorization: Bearer TOKEN` on every request (default: $FACEREC_TOKEN; none).")
@click.option("--max-upload-mb", default=20.0, show_default=True, type=click.FloatRange(0, min_open=True),
              help="Largest request body; larger ones get 413.")
@click.option("--threshold", type=float, default=None, help="Override the model's calibrated threshold.")
@clean_errors(PROG)
def main(gallery, model, host, port, token, max_upload_mb, threshold):
    """Serve /health, /identify, /enroll, /people and /people/{name} (docs/deploy.md) until stopped."""
    if token is not None and not token.strip():
        raise click.UsageError("--token must not be empty")
    import uvicorn

    from facerec.recognizer import Recognizer
    from facerec.serve import create_app

    rec = Recognizer(model=model, gallery=gallery, threshold=threshold)
    if rec.gallery_path.exists():
        rec.gallery()  # a corrupt or other-model gallery is one error line now, not on every request
    else:
        rec.embedder  # noqa: B018  (the model loads before the first request, and a bad one fails here)
    rec.detector  # noqa: B018
    click.echo(f"{PROG}: {rec.gallery_path} with {rec.embedder.runtime} on http://{host}:{port}"
               f"{' (token required)' if token else ''}", err=True)
    uvicorn.run(create_app(rec, token, max_upload_mb), host=host, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
