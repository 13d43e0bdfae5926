"""`facerec-embed PHOTO...`: each face's box and L2-normalised embedding (the vector a gallery stores)."""

from __future__ import annotations

import json
import sys

import click

from facerec.cli._common import clean_errors, model_option, output_problem, unreadable, usage_error

PROG = "facerec-embed"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("photos", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True,
              help='[{"image", "faces": [{"box", "masked", "mask_score", "embedding"}]}] on stdout (an object for one photo).')
@click.option("--npy", default=None, type=click.Path(), metavar="OUT",
              help="Write every face's embedding to OUT.npy, float32 [faces, D], in the order the text lists them.")
@model_option
@clean_errors(PROG)
def main(photos, as_json, npy, model):
    """Embed every face of each PHOTO (main face first) with the model matching uses.

    Text output: one tab-separated line per face: photo, face number, box (x,y,w,h), then the
    embedding's values (or, with --npy, its row in OUT); --json adds `masked` and `mask_score` per face.
    An unreadable photo is one error line; the others are still embedded, and the exit status is 1.
    """
    if npy and (problem := output_problem(npy, (".npy",))):
        usage_error(PROG, f"--npy {problem}")
    bad = unreadable(photos)  # before the model loads
    for e in bad.values():
        click.echo(f"{PROG}: error: {e}", err=True)
    import numpy as np

    from facerec.images import BadInput

    results, rows = [], []
    rec = None
    for photo in photos:
        if photo in bad:
            results.append({"image": photo, "error": bad[photo].reason, "faces": []})
            continue
        if rec is None:
            from facerec.recognizer import Recognizer

            rec = Recognizer(model=model)
        try:
            faces = rec.embed(photo)
        except BadInput as e:
            click.echo(f"{PROG}: error: {e}", err=True)
            results.append({"image": photo, "error": e.reason, "faces": []})
            continue
        if not faces:
            click.echo(f"{PROG}: note: {photo}: no face found", err=True)
        results.append({"image": photo, "faces": [{**f, "embedding": [round(float(x), 6) for x in f["embedding"]]}
                                                  for f in faces]})
        for i, f in enumerate(faces):
            box = ",".join(f"{v:g}" for v in f["box"])
            values = f"row {len(rows)}" if npy else " ".join(f"{x:.6f}" for x in f["embedding"])
            rows.append(f["embedding"])
            if not as_json:
                click.echo(f"{photo}\t{i + 1}\t{box}\t{values}")
    if as_json:
        click.echo(json.dumps(results[0] if len(results) == 1 else results, ensure_ascii=False))
    if npy:
        dim = rec.embedder.dim if rec is not None else 0
        np.save(npy, np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32))
        click.echo(f"{PROG}: {len(rows)} embedding(s) written to {npy}", err=True)
    if any("error" in r for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
