"""`facerec-export MODEL --tflite OUT.tflite | --openvino OUT.xml`: a model export as one file for another runtime.

TFLite for phones and small boxes; OpenVINO for the default CPU runtime (float32, or int8 calibrated
on aligned faces of people the model was trained on)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from facerec.cli._common import clean_errors

PROG = "facerec-export"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model", type=click.Path())
@click.option("--tflite", default=None, type=click.Path(dir_okay=False),
              help="Write a TFLite model here (must end in .tflite; replaced if it exists).")
@click.option("--float16", is_flag=True,
              help="With --tflite: store weights as float16: half the size, embeddings within 0.999 cosine.")
@click.option("--openvino", default=None, type=click.Path(dir_okay=False),
              help="Write an OpenVINO model here (.xml, with its .bin beside it; replaced if they exist).")
@click.option("--int8", is_flag=True, help="With --openvino: quantise to int8 (needs --calibration and --images).")
@click.option("--calibration", default=None, type=click.Path(dir_okay=False), metavar="PEOPLE",
              help="LFW people file (name<TAB>count lines) of people the model was TRAINED on (never evaluation "
                   "people): the first photo of each calibrates int8.")
@click.option("--images", default=None, type=click.Path(file_okay=False), help="Folder of <name>/<name>_<NNNN>.jpg.")
@click.option("--faces", "n_faces", default=300, show_default=True, type=click.IntRange(1),
              help="Calibration faces used at most.")
@click.option("--json", "as_json", is_flag=True, help="Print the card written into the file as JSON.")
@clean_errors(PROG)
def main(model, tflite, float16, openvino, int8, calibration, images, n_faces, as_json):
    """Convert the model export folder MODEL to a file that carries its model card.

    The file keeps MODEL's fingerprint, so galleries made with either work with both; use it with
    `--model OUT` in facerec-match and facerec-gallery. An int8 OpenVINO file written as
    MODEL/openvino-int8.xml becomes MODEL's default runtime.
    """
    if (tflite is None) == (openvino is None):
        raise click.UsageError("give --tflite OUT.tflite or --openvino OUT.xml: one of them")
    if float16 and not tflite:
        raise click.UsageError("--float16 is for --tflite")
    if (int8 or calibration or images) and not openvino:
        raise click.UsageError("--int8, --calibration and --images are for --openvino")
    if int8 and not (calibration and images):
        raise click.UsageError("--int8 needs --calibration PEOPLE and --images DIR")
    if tflite:
        from facerec.runtime.tflite import convert

        card = convert(model, tflite, float16=float16)
        out, t = tflite, card["tflite"]
        summary = f"{'float16' if float16 else 'float32'} weights"
    else:
        from facerec.runtime.base import CARD_FILE, check_export, read_card
        from facerec.runtime.openvino import export

        root = check_export(model)  # a wrong MODEL is refused before faces are detected
        size = read_card(model, root / CARD_FILE).get("input_size", 112)
        faces, source = (_calibration_faces(calibration, images, n_faces, size) if int8 else (None, ""))
        card = export(model, openvino, "int8" if int8 else "float32", faces, source)
        out, t = openvino, card["openvino"]
        summary = f"{t['precision']}, calibrated on {source}" if int8 else "float32"
    size = sum(p.stat().st_size for p in (Path(out), Path(out).with_suffix(".bin")) if p.is_file())
    if as_json:
        click.echo(json.dumps({"path": out, "bytes": size, **card}, ensure_ascii=False))
        return
    click.echo(f"{out}: {size / 1e6:.1f} MB, {summary}, fingerprint {card['fingerprint'][:12]}, threshold "
               f"{card.get('threshold')}, min cosine to the SavedModel {t['check_min_cosine']:.6f} on {t['check_faces']} "
               f"check inputs, converted in {t['convert_seconds']} s")


def _calibration_faces(people_file: str, images: str, n: int, size: int):
    """Aligned main faces of the first photo of each listed person (at most n), and a line saying which."""
    import numpy as np

    from facerec.faces.align import aligned_faces
    from facerec.training.data import read_people
    from facerec.faces.detect import FaceDetector
    from facerec.images import BadInput, load_image

    names = read_people(people_file)
    if not names:
        raise ValueError(f"{people_file}: no people listed")
    detector, crops = FaceDetector(), []
    for name in names:
        photos = sorted((Path(images) / name).glob("*.jpg"))
        if not photos:
            continue
        try:
            image = load_image(photos[0])
        except BadInput:
            continue
        crops += [f.crop for f in aligned_faces(image, detector.detect(image)[:1], size)]
        if len(crops) == n:
            break
    if not crops:
        raise ValueError(f"{images}: no face found for the people of {people_file}")
    return np.stack(crops), f"{len(crops)} faces: first photo of the first people of {Path(people_file).name}"


if __name__ == "__main__":
    main()
