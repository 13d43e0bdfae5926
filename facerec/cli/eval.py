"""`facerec-eval`: verification, masked identification and threshold calibration for any embedder."""

from __future__ import annotations

import json
import sys

import click

from facerec.cli._common import show_progress
from facerec.evaluation.embedders import NAMES, EmbedderSpec

_EMBEDDER_HELP = ("model: our SavedModel (--model); sface: OpenCV Zoo's SFace via cv2.FaceRecognizerSF "
                  "(weights: facerec-data fetch-sface); dlib: the face_recognition peer with its HOG detector; "
                  "dlib-mediapipe: dlib's descriptor on our detector's box; imagenet: the pooled-ImageNet floor.")


def _embedder_options(f):
    f = click.option("--workers", type=click.IntRange(1), default=2, show_default=True,
                     help="Processes that detect and embed (each builds its own embedder).")(f)
    f = click.option("--embedder", type=click.Choice(NAMES), default=None, help=_EMBEDDER_HELP)(f)
    f = click.option("--model", "model_path", type=click.Path(), default=None,
                     help="Model export folder (its default runtime), its saved_model/ (TensorFlow), or an OpenVINO "
                          ".xml or .tflite file (default: $FACEREC_MODEL, else artifacts/model).")(f)
    return f


def _spec(model_path: str | None, embedder: str | None) -> EmbedderSpec:
    name = embedder or "model"
    if model_path and name != "model":
        raise click.UsageError(f"--model is for the model embedder, not --embedder {name}")
    return EmbedderSpec(name, model_path)


def _run(fn, *args, **kwargs):
    """Call fn; any input, model or peer problem becomes one line on stderr and exit status 1."""
    from facerec.evaluation.evaluate import EvalError
    from facerec.images import BadInput
    from facerec.runtime.peer import PeerUnavailable
    from facerec.runtime.base import BadModel

    errors: tuple[type[BaseException], ...] = (BadInput, EvalError, PeerUnavailable, BadModel)
    try:
        return fn(*args, **kwargs)
    except errors as e:
        click.echo(f"facerec-eval: error: {e}", err=True)
        sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Measure face embedders on LFW-style pairs and masked identification."""
    from facerec import _quiet  # noqa: F401  (before TensorFlow / MediaPipe)


@main.command()
@click.option("--pairs", "pairs_file", required=True, type=click.Path(), help="LFW pairs file (pairs.txt, pairsDevTest.txt).")
@click.option("--images", required=True, type=click.Path(), help="Folder of <name>/<name>_<NNNN>.jpg (lfw-deepfunneled).")
@_embedder_options
@click.option("--masked", is_flag=True, help="Put a synthetic mask (fixed seed per pair) on the second photo of every pair.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write the ROC curve to this PNG.")
def verify(pairs_file, images, model_path, embedder, workers, masked, as_json, plot) -> None:
    """10-fold verification accuracy, ROC AUC, EER and TAR at FAR 1e-2 / 1e-3."""
    from facerec.evaluation.evaluate import plot_roc, verify as run

    spec = _spec(model_path, embedder)
    result = _run(run, pairs_file, images, spec, masked=masked, workers=workers, progress=show_progress(as_json))
    if plot:
        plot_roc(result, plot)
    s = result.summary
    if as_json:
        click.echo(json.dumps(s))
        return
    scored = s.get("scored")
    rows = [
        ("embedder", f"{s['embedder']} ({s['metric']})"),
        ("pairs", f"{s['pairs']} in {s['folds']} folds" + (", second photo masked" if s["masked"] else "")),
        ("failed pairs", f"{s['pairs_failed']} (counted wrong), {len(s['failed'])} photos unusable"),
        ("accuracy", f"{s['accuracy_mean']:.4f} ± {s['accuracy_std']:.4f}"),
        ("ROC AUC", f"{s['auc']:.4f}"),
        ("EER", f"{s['eer']:.4f}"),
        *[(f"TAR @ FAR {k}", f"{v:.4f}") for k, v in s["tar_at_far"].items()],
    ]
    if scored and s["pairs_failed"]:
        rows.append(("scored pairs only", f"{scored['pairs']}: accuracy {scored['accuracy_mean']:.4f}, "
                     f"AUC {scored['auc']:.4f}, " + ", ".join(f"TAR@{k} {v:.4f}" for k, v in scored["tar_at_far"].items())))
    if scored:
        rows += [(f"threshold @ FAR {k}", "none reaches it" if v is None else f"{v:.4f}")
                 for k, v in scored["threshold_at_far"].items()]
    if plot:
        rows.append(("ROC plot", plot))
    _table(rows)
    _failures(s["failed"])


@main.command()
@click.option("--manifest", required=True, type=click.Path(),
              help="CSV path,identity,masked[,cross_identity_duplicate] (RMFRD).")
@click.option("--images", type=click.Path(), default=None,
              help="Folder the manifest's paths are relative to (default: its folder).")
@click.option("--distractors", type=click.Path(), default=None,
              help="Folder-per-identity set (e.g. lfw-deepfunneled): one photo per identity joins the gallery.")
@click.option("--distractor-count", type=click.IntRange(0), default=None,
              help="How many distractor identities (fixed random draw; default all).")
@click.option("--threshold", type=float, default=None,
              help="Open-set threshold (default: the model card's, for masked faces).")
@click.option("--aggregate", type=click.Choice(["centroid", "max"]), default=None,
              help="Identity score, as facerec-match's (default: centroid; max for dlib's distances).")
@_embedder_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def identify(manifest, images, distractors, distractor_count, threshold, aggregate, model_path, embedder, workers,
             as_json) -> None:
    """Enrol unmasked photos as facerec-gallery does, identify masked ones: rank-1, rank-5, open-set accepts."""
    from facerec.evaluation.evaluate import identify as run

    spec = _spec(model_path, embedder)
    r = _run(run, manifest, spec, images=images, distractors=distractors, distractor_count=distractor_count,
             threshold=threshold, workers=workers, progress=show_progress(as_json), aggregate=aggregate)
    if as_json:
        click.echo(json.dumps(r))
        return
    rows = [
        ("embedder", f"{r['embedder']} ({r['metric']})"),
        ("gallery", f"{r['gallery_size']} identities ({r['distractors']} distractors), {r['templates']} templates, "
                    f"{r['enrolment_failed']} of {r['enrolment_photos']} enrolment photos unusable; "
                    f"scored by {r['aggregate']}"),
        ("probes", f"{r['probes']} masked, {r['probes_enrolled']} of enrolled people, {r['probes_failed']} unusable (counted wrong)"),
        ("rank-1", f"{r['rank1']:.4f}"),
        ("rank-5", f"{r['rank5']:.4f}"),
    ]
    rows += [(f"{half} half", f"rank-1 {h['rank1']:.4f}, rank-5 {h['rank5']:.4f} ({h['probes_enrolled']} probes)")
             for half, h in r["halves"].items()]
    o = r["open_set"]
    if o is None:
        rows.append(("open set", "no threshold (calibrate the model or pass --threshold)"))
    else:
        rows += [
            ("threshold", f"{r['threshold']:.4f}"),
            ("correct accepts", f"{o['correct_accept_rate']:.4f}"),
            ("wrong-person accepts", f"{o['wrong_accept_rate']:.4f}"),
            ("false accepts (unenrolled)", f"{o['false_accept_rate']:.4f} ({o['false_accepts']} of {o['unknown_probes']})"),
        ]
    _table(rows)
    _failures(r["failed"])


@main.command()
@click.option("--pairs", "pairs_file", required=True, type=click.Path(), help="Calibration pairs file (LFW format).")
@click.option("--images", required=True, type=click.Path(), help="Folder of <name>/<name>_<NNNN>.jpg.")
@click.option("--far", type=float, default=1e-3, show_default=True, help="Target false accept rate.")
@click.option("--masked", is_flag=True, help="Calibrate on pairs whose second photo wears a synthetic mask.")
@_embedder_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def calibrate(pairs_file, images, far, masked, model_path, embedder, workers, as_json) -> None:
    """Pick the 1:1 threshold at a target per-pair FAR; for --model, write it into the card (facerec-verify reads it)."""
    from facerec.evaluation.evaluate import calibrate as run

    spec = _spec(model_path, embedder)
    r = _run(run, pairs_file, images, spec, far=far, masked=masked, workers=workers, progress=show_progress(as_json))
    if as_json:
        click.echo(json.dumps(r))
        return
    tp = r["threshold_pairs"]
    rows = [
        ("embedder", r["embedder"]),
        ("threshold", f"{r['threshold']:.6f}  (accept when score >= threshold)"),
        ("on pairs", f"{tp['scored']} scored of {tp['pairs']} ({tp['impostors']} impostor pairs)"),
        ("TAR / FAR there", f"{r['tar']:.4f} / {r['far']:.4f} (target FAR {far:g})"),
        ("written to", r.get("card", "nothing (only --model exports have a card)")),
    ]
    if not r["far_resolvable"]:
        rows.append(("note", f"{tp['impostors']} impostor pairs cannot resolve FAR {far:g}: this is the FAR 0 threshold"))
    _table(rows)
    _failures(r["failed"])


@main.command("calibrate-gallery")
@click.option("--people", "people_file", required=True, type=click.Path(),
              help="People file (LFW peopleDev*.txt format) of people in neither training nor evaluation.")
@click.option("--images", required=True, type=click.Path(), help="Folder of <name>/<photos>.jpg.")
@click.option("--gallery-people", type=click.IntRange(1), default=1000, show_default=True,
              help="People enrolled (one photo each); the rest are strangers.")
@click.option("--far", type=float, default=1e-2, show_default=True,
              help="Target fraction of strangers accepted as someone in the gallery.")
@click.option("--model", "model_path", type=click.Path(), default=None,
              help="Model export folder (default: $FACEREC_MODEL, else artifacts/model).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def calibrate_gallery(people_file, images, gallery_people, far, model_path, as_json) -> None:
    """Pick the open-set threshold on a simulated gallery; write it into the model card."""
    from facerec.evaluation.evaluate import calibrate_open_set

    r = _run(calibrate_open_set, people_file, images, model_path, gallery_people=gallery_people, far=far,
             progress=show_progress(as_json))
    if as_json:
        click.echo(json.dumps(r))
        return
    o, m = r["threshold_open_set"], r["threshold_masked_open_set"]
    _table([
        ("embedder", r["embedder"]),
        ("threshold", f"{r['threshold']:.4f}  (accept when score >= threshold)"),
        ("gallery", f"{o['gallery_people']} people, {o['gallery_templates']} templates"),
        ("strangers accepted", f"{o['far']:.4f} ({o['false_accepts']} of {o['strangers_scored']}; target {far:g})"),
        ("gallery people accepted", f"{o['correct_accept_rate']:.4f} (rank-1 {o['rank1']:.4f}, "
                                    f"{o['genuine_probes']} second photos)"),
        ("threshold for masked faces", f"{r['threshold_masked']:.4f}  ({m['false_accepts']} of {m['strangers_scored']} "
                                       f"masked strangers accepted; {m['unmasked_threshold_far']:.4f} at the other)"),
        ("written to", r["card"]),
    ])


def _table(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        click.echo(f"{k:<{width}}  {v}")


def _failures(failed: list[dict], show: int = 10) -> None:
    if not failed:
        return
    click.echo(f"unusable photos ({len(failed)}):")
    for f in failed[:show]:
        click.echo(f"  {f['path']}: {f['reason']}")
    if len(failed) > show:
        click.echo(f"  ... and {len(failed) - show} more (--json lists all)")


if __name__ == "__main__":
    main()
