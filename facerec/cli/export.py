"""`facerec-export MODEL --tflite OUT.tflite`: a model export as one TensorFlow Lite file (phones, small boxes)."""

from __future__ import annotations

import json

import click

from facerec.cli._common import clean_errors

PROG = "facerec-export"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model", type=click.Path())
@click.option("--tflite", "out", required=True, type=click.Path(dir_okay=False),
              help="Write the TFLite model here (must end in .tflite; replaced if it exists).")
@click.option("--float16", is_flag=True,
              help="Store weights as float16: half the size, embeddings within 0.999 cosine.")
@click.option("--json", "as_json", is_flag=True, help="Print the card written into the file as JSON.")
@clean_errors(PROG)
def main(model, out, float16, as_json):
    """Convert the model export folder MODEL to a .tflite file that carries its model card.

    The file keeps MODEL's fingerprint, so galleries made with either work with both; use it with
    `--model OUT.tflite` in facerec-match and facerec-gallery.
    """
    from pathlib import Path

    from facerec.tflite import convert

    card = convert(model, out, float16=float16)
    if as_json:
        click.echo(json.dumps({"path": out, "bytes": Path(out).stat().st_size, **card}, ensure_ascii=False))
        return
    t = card["tflite"]
    click.echo(f"{out}: {Path(out).stat().st_size / 1e6:.1f} MB, {'float16' if float16 else 'float32'} weights, "
               f"fingerprint {card['fingerprint'][:12]}, threshold {card.get('threshold')}, "
               f"min cosine to the SavedModel {t['check_min_cosine']:.6f} on {t['check_faces']} check inputs, "
               f"converted in {t['convert_seconds']} s")


if __name__ == "__main__":
    main()
