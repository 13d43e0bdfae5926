"""`facerec-train --cache CACHE ... --out DIR`: train the mask-robust embedding (`python -m facerec.cli.train` too).

Every TrainConfig field is an option, named after it; its help is one line of HELP below, so a new
field needs only that line (tests/test_train_cli.py fails for a field without one).
"""

from __future__ import annotations

import dataclasses
import sys
import typing

import click

from facerec.cli._common import clean_errors, quiet_option
from facerec.nets.model import BACKBONES
from facerec.training.config import TrainConfig
from facerec.training.train import train

PROG = "facerec-train"

HELP: dict[str, str] = {
    "caches": "Prepared cache folder (`facerec-data prepare`); CACHE:PEOPLE_FILE keeps only the people listed "
              "(LFW peopleDevTrain.txt). Repeatable: the caches are merged, names matched across them.",
    "out": "Output folder: saved_model/, model_card.json, history.json, logs/.",
    "exclude_pairs": "Leave out everyone named in this LFW pairs file (one you will evaluate on). Repeatable.",
    "backbone": "Network: sface starts from OpenCV Zoo SFace (needs `facerec-data fetch-sface`, or --init), "
                "efficientnet-lite0 from ImageNet weights, efficientnet-b0 from scratch, tiny is for tests.",
    "input_size": "Side of the aligned face crops the network sees, in pixels.",
    "embedding_dim": "Length of the L2-normalised embedding.",
    "identities_per_batch": "P: people per batch.",
    "images_per_identity": "K: faces per person in a batch (masked and unmasked mixed).",
    "epochs": "Epochs; the best one on validation is exported.",
    "steps_per_epoch": "Batches per epoch.",
    "learning_rate": "Peak learning rate (AdamW: warm-up, then cosine decay).",
    "margin": "Triplet semi-hard loss margin (Euclidean distance of L2-normalised embeddings).",
    "triplet_weight": "Weight of the triplet semi-hard loss (lower it to keep a pretrained geometry).",
    "mask_prob": "Probability that a training face wears a synthetic mask.",
    "misalign_prob": "Probability that a masked face is framed as MediaPipe aligns masked photos (a measured alignment error).",
    "photo_masks": "A mask_overlays/ folder (MaskTheFace's photographic masks, in the data): masked training faces "
                   "may wear one of those, fitted to the mesh, instead of a drawn mask.",
    "photo_mask_prob": "With --photo-masks: the fraction of masked faces (those with a mesh) wearing a photographic mask.",
    "tight_prob": "Probability that a face is framed as if its photo were cropped close around it (RMFRD-like).",
    "teacher": "Distil from this teacher's embedding of each unmasked photo: sface, dlib (needs the peer extra), "
               "or several, comma-separated (the first is the cosine target).",
    "teacher_weight": "λ: weight of the cosine distillation toward the first teacher.",
    "relational_weight": "Weight of the distillation of the batch's pairwise similarities toward every teacher.",
    "freeze_fraction": "Fraction of the backbone's layers, from the input, kept frozen.",
    "cached_views": "With frozen layers: run them once over this many fixed augmented views per face (the first "
                    "unmasked) and train the rest on their cached outputs, several times faster; 0 trains live.",
    "val_identities": "Fraction of the training people held out to validate each epoch (never evaluation sets).",
    "val_pairs": "Validation genuine pairs (and as many impostor pairs).",
    "strategy": "tf.distribute strategy (several GPUs or machines).",
    "max_images_per_identity": "Photos kept per person at most, so a few over-photographed people do not dominate.",
    "seed": "Random seed: validation split, batches, masks, framing.",
    "init": "Start from this export folder's weights (fine-tuning, with a fresh schedule).",
    "real_masks": "A prepared cache of real masked and unmasked photos (RMFRD): rank-1 on the selection half of its "
                  "people joins best-epoch selection; the other half is never looked at. Never trained on.",
}
FLAGS = {"caches": "--cache"}  # options not named after their field
METAVARS = {"caches": "CACHE[:PEOPLE_FILE]", "out": "DIR", "exclude_pairs": "PAIRS_FILE", "init": "EXPORT_DIR",
            "real_masks": "CACHE", "photo_masks": "DIR"}
CHOICES = {"backbone": BACKBONES, "strategy": ("default", "mirrored", "multiworker")}


def _config_options(command):
    """One option per TrainConfig field, its type and default taken from the field."""
    hints = typing.get_type_hints(TrainConfig)
    for f in reversed(dataclasses.fields(TrainConfig)):
        kind, multiple = hints[f.name], False
        if typing.get_origin(kind) is list:
            kind, multiple = typing.get_args(kind)[0], True
        elif type(None) in typing.get_args(kind):  # X | None
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            default = {"default": value, "show_default": True if value not in (None, []) else "none"}
        else:  # no `default=` at all: click would take None for a given value
            default = {"required": True}
        flag = FLAGS.get(f.name, "--" + f.name.replace("_", "-"))
        command = click.option(
            f"{flag}/--no-{flag[2:]}" if kind is bool else flag, f.name, multiple=multiple, **default,
            type=click.Choice(CHOICES[f.name]) if f.name in CHOICES else None if kind is bool else kind,
            metavar=METAVARS.get(f.name), help=HELP.get(f.name, ""))(command)
    return command


def _flag_defaults_shown(command: click.Command) -> click.Command:
    """A flag's default too ("off"): every option of facerec-train says what happens without it."""
    for p in command.params:
        if isinstance(p, click.Option) and p.is_flag and p.show_default is None:
            p.show_default = "off"
    return command


@_flag_defaults_shown
@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@_config_options
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out (its OUT/backup/).")
@quiet_option
@clean_errors(PROG)
def main(resume: bool, quiet: bool, **fields) -> None:
    """Train the mask-robust face embedding on prepared caches; export the best epoch to --out.

    Batches of P people × K faces mix synthetic-masked and unmasked faces of each person, so the triplet
    loss pulls a person's masked and bare faces together. Prints the export folder.
    """
    cfg = TrainConfig(**{k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()})
    # Keras: a progress bar on a terminal, one line per epoch in a log, nothing with --quiet.
    click.echo(train(cfg, resume=resume, progress=0 if quiet else 1 if sys.stderr.isatty() else 2))


if __name__ == "__main__":
    main(prog_name=PROG)
