"""`facerec-verify A B`: are the main faces of two photos the same person? (1:1, no gallery needed)"""

from __future__ import annotations

import json
import sys

import click

from facerec.cli._common import clean_errors, model_option, unreadable

PROG = "facerec-verify"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option("--json", "as_json", is_flag=True,
              help='{"same", "score", "threshold", "threshold_source", "threshold_far", "faces"} on stdout.')
@click.option("--threshold", type=float, default=None,
              help="Same person from this cosine score (default: the model card's 1:1 threshold).")
@model_option
@clean_errors(PROG)
def main(a, b, as_json, threshold, model):
    """Compare the main face of photo A with the main face of photo B.

    Exit status 0 whether or not they are the same person; 1 when a photo is unreadable or shows no
    face (no decision). The 1:1 threshold was calibrated at a stated per-pair false accept rate.
    """
    bad = unreadable([a, b])  # before the model loads
    for e in bad.values():
        click.echo(f"{PROG}: error: {e}", err=True)
    if bad:
        sys.exit(1)
    from facerec.recognizer import Recognizer

    rec = Recognizer(model=model)
    r = rec.verify(a, b, threshold)
    if r["threshold_source"] == "fallback":
        click.echo(f"{PROG}: warning: uncalibrated threshold: the model card has no 1:1 threshold, so "
                   f"{r['threshold']} is used (run `facerec-eval calibrate`, or pass --threshold)", err=True)
    for side in r["faces"]:
        if side["faces_found"] > 1:
            click.echo(f"{PROG}: note: {side['image']}: {side['faces_found']} faces; compared the main face", err=True)
    if as_json:
        click.echo(json.dumps(r, ensure_ascii=False))
    elif r["same"] is not None:
        verdict = "same person" if r["same"] else "different people"
        at = f", 1:1 at FAR {r['threshold_far']:g} per pair" if r["threshold_far"] else ""
        sign = ">=" if r["same"] else "<"
        click.echo(f"{verdict}: score {r['score']:.3f} {sign} threshold {r['threshold']:.3f} ({r['threshold_source']}{at})")
    if r["same"] is None:
        click.echo(f"{PROG}: error: {r['reason']}: cannot compare", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
