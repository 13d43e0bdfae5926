"""Benchmarks for any photo embedder: LFW-style verification, masked identification, calibration.

Every embedder gets the same photos and runs its own detector, so a pipeline
that cannot find a (masked) face pays for it: a pair or probe that cannot be
scored counts as an error and is listed in `failed`, never dropped. Synthetic
masks are painted on the photo itself (`mask_photo`), seeded per pair, so every
embedder sees the same pixels.
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing as mp
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from facerec.evaluation.embedders import EmbedderSpec, PhotoEmbedder, scores as pair_scores, similarity_matrix
from facerec.images import BadInput, decode_image, load_image, read_bytes
from facerec.evaluation.metrics import (auc, best_threshold, eer, kfold_accuracy, open_set_threshold, roc, tar_at_far,
                             threshold_at_far)

FARS = (1e-2, 1e-3)
INTERLEAVED_FOLDS = 10
DISTRACTOR_SEED = 0
_CHUNK = 8  # photos per worker task: enough to batch a network, small enough to balance two workers


class EvalError(Exception):
    """A benchmark that cannot run at all (bad embedder, no usable data), with a one-line reason."""


def far_key(far: float) -> str:
    """JSON key of a false accept rate: 0.01 -> "0.01", 0.001 -> "0.001"."""
    return f"{far:g}"


# ---------------------------------------------------------------- synthetic masks on photos


def pair_seed(index: int) -> int:
    """The mask seed of pair `index`: fixed, and unrelated between neighbouring pairs."""
    return int.from_bytes(hashlib.sha256(f"facerec-eval mask {index}".encode()).digest()[:4], "little")


def mask_photo(image: np.ndarray, seed: int, style: str | None = None, detector=None) -> np.ndarray | None:
    """`image` with a synthetic mask on its main face (None when no face is found).

    The mask is drawn on the aligned crop with the face's mesh, at about the
    photo's own resolution, and only the pixels it changed are warped back
    into the photo, so the rest of the photo is untouched.
    """
    import cv2

    from facerec.faces.align import aligned_faces, template
    from facerec.faces.align import similarity_matrix as fit_similarity
    from facerec.faces.detect import detect_faces
    from facerec.faces.masks import apply_mask

    faces = detector.detect(image) if detector is not None else detect_faces(image)
    if not faces:
        return None
    face = faces[0]
    scale = float(np.hypot(*fit_similarity(face.keypoints, template(112))[0, :2]))  # crop px per photo px
    size = int(np.clip(round(112 / max(scale, 1e-6)), 112, 1024))
    aligned = aligned_faces(image, [face], size)[0]
    masked = apply_mask(aligned.crop, aligned.mesh, style, seed)
    changed = np.any(masked != aligned.crop, axis=2).astype(np.float32)
    inverse = cv2.invertAffineTransform(aligned.matrix)
    h, w = image.shape[:2]
    back = cv2.warpAffine(masked, inverse, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(changed, inverse, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = alpha[..., None]
    out = image.astype(np.float32) * (1 - alpha) + back.astype(np.float32) * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- embedding many photos


@dataclass(frozen=True)
class Job:
    """One photo to embed; `seed` set = with the synthetic mask of that seed; `templates`: the
    templates enrolment stores for it (the embedder's `embed_templates`), not one vector."""

    path: str
    seed: int | None = None
    templates: bool = False


@dataclass
class Outcome:
    vector: np.ndarray | None  # [D], or [T, D] for a templates job
    reason: str | None = None  # why there is no vector
    kinds: list[str] | None = None  # a templates job's template kinds


_worker: PhotoEmbedder | None = None
_worker_error: str | None = None
_built: dict[EmbedderSpec, PhotoEmbedder] = {}


def _init_worker(spec: EmbedderSpec) -> None:
    # An exception here would make the pool respawn workers forever: keep it for the first task.
    global _worker, _worker_error
    try:
        from facerec.evaluation.embedders import single_threaded

        single_threaded()
        _worker = spec.build()
    except Exception as e:  # reported by _embed_chunk as one line
        _worker_error = f"cannot build the {spec.name} embedder: {_first_line(e)}"


def _embed_chunk(jobs: Sequence[Job]) -> list[Outcome]:
    if _worker_error:
        raise EvalError(_worker_error)
    return embed_jobs_with(_worker, jobs)


def embed_jobs_with(embedder: PhotoEmbedder, jobs: Sequence[Job]) -> list[Outcome]:
    """Load (and mask) each job's photo and embed it with `embedder`; failures become reasons."""
    out: list[Outcome | None] = [None] * len(jobs)
    images, where, hashes = [], [], {}
    for i, job in enumerate(jobs):
        try:
            data = read_bytes(job.path)
            image = decode_image(data, job.path)
        except BadInput as e:
            out[i] = Outcome(None, e.reason)
            continue
        if job.templates:  # the content hash seeds its mask templates, as enrolment's
            from facerec.recognizer import content_hash

            hashes[i] = content_hash(data)
        if job.seed is not None:
            image = mask_photo(image, job.seed, detector=getattr(embedder, "detector", None))
            if image is None:
                out[i] = Outcome(None, "no face found to put a mask on")
                continue
        images.append(image)
        where.append(i)
    plain = [k for k, i in enumerate(where) if not jobs[i].templates]
    for k, v in zip(plain, embedder.embed_photos([images[k] for k in plain])):
        masked = " (masked)" if jobs[where[k]].seed is not None else ""
        out[where[k]] = Outcome(v) if v is not None else Outcome(None, embedder.no_face + masked)
    enrol = [k for k, i in enumerate(where) if jobs[i].templates]
    for k, t in zip(enrol, templates_of(embedder, [images[k] for k in enrol], [hashes[where[k]] for k in enrol])):
        out[where[k]] = Outcome(t[0], kinds=t[1]) if t is not None else Outcome(None, embedder.no_face)
    return out  # type: ignore[return-value]


def templates_of(embedder: PhotoEmbedder, images: Sequence[np.ndarray], hashes: Sequence[str]) -> list:
    """(vectors [T, D], kinds) per photo as enrolment stores it, or None without a face: the
    embedder's own `embed_templates` (our pipeline adds synthetic-mask templates, as enrolment does),
    else its one photo vector."""
    if hasattr(embedder, "embed_templates"):
        return embedder.embed_templates(images, hashes)
    return [None if v is None else (np.asarray(v)[None], ["photo"]) for v in embedder.embed_photos(images)]


def embed_jobs(spec: EmbedderSpec, jobs: Iterable[Job], workers: int = 2, progress: bool = False) -> dict[Job, Outcome]:
    """Embed every distinct job once; with workers > 1 in spawned processes that each build the embedder."""
    from tqdm import tqdm

    todo = list(dict.fromkeys(jobs))
    chunks = [todo[i:i + _CHUNK] for i in range(0, len(todo), _CHUNK)]
    bar = tqdm(total=len(todo), unit="img", disable=not progress, dynamic_ncols=True, desc=spec.name)
    results: dict[Job, Outcome] = {}
    pool = None
    try:
        if workers <= 1 or len(chunks) <= 1:
            embedder = build(spec)
            outcomes = (embed_jobs_with(embedder, c) for c in chunks)
        else:
            pool = mp.get_context("spawn").Pool(min(workers, len(chunks)), initializer=_init_worker, initargs=(spec,))
            outcomes = pool.imap(_embed_chunk, chunks)
        for chunk, outs in zip(chunks, outcomes):
            results.update(zip(chunk, outs))
            bar.update(len(chunk))
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    return results


def build(spec: EmbedderSpec) -> PhotoEmbedder:
    """`spec.build()`, once per process."""
    if spec not in _built:
        _built[spec] = spec.build()
    return _built[spec]


# ---------------------------------------------------------------- verification


@dataclass(frozen=True)
class Pair:
    first: str
    second: str
    same: bool
    fold: int


def read_pairs(path: str | os.PathLike, images: str | os.PathLike) -> list[Pair]:
    """An LFW pairs file: "FOLDS N" (View 2: each fold N same then N different pairs) or "N" (no folds:
    pairs are dealt into 10 interleaved folds). Image paths are IMAGES/<name>/<name>_<NNNN>.jpg.
    """
    path, images = Path(path), Path(images)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise BadInput(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(path, f"cannot read pairs file ({_first_line(e)})") from None
    header = lines[0].split() if lines else []
    if not header or len(header) > 2 or not all(h.isdigit() for h in header):
        raise BadInput(path, "first line must be 'FOLDS PAIRS_PER_CLASS' or 'PAIRS_PER_CLASS'")

    def photo(name: str, number: str) -> str:
        return str(images / name / f"{name}_{int(number):04d}.jpg")

    pairs = []
    for lineno, line in enumerate(lines[1:], start=2):
        f = line.split()
        if not f:
            continue
        if len(f) == 3 and f[1].isdigit() and f[2].isdigit():
            first, second, same = photo(f[0], f[1]), photo(f[0], f[2]), True
        elif len(f) == 4 and f[1].isdigit() and f[3].isdigit():
            first, second, same = photo(f[0], f[1]), photo(f[2], f[3]), False
        else:
            raise BadInput(f"{path}:{lineno}", "expected 'NAME N M' (same person) or 'NAME N NAME M' (different)")
        pairs.append((first, second, same))
    if len(header) == 2:
        folds, per_class = int(header[0]), int(header[1])
        if folds < 2 or len(pairs) != 2 * folds * per_class:
            raise BadInput(path, f"header promises {folds} folds of 2x{per_class} pairs but the file has {len(pairs)}")
        fold_of = [i // (2 * per_class) for i in range(len(pairs))]
    else:
        fold_of = [i % INTERLEAVED_FOLDS for i in range(len(pairs))]
    if not pairs:
        raise BadInput(path, "no pairs in the file")
    return [Pair(a, b, s, k) for (a, b, s), k in zip(pairs, fold_of)]


def verification_metrics(scores: np.ndarray, same: np.ndarray, folds: np.ndarray, ok: np.ndarray,
                         fars: Sequence[float] = FARS) -> dict:
    """Accuracy (k-fold), AUC, EER and TAR at each FAR, with pairs where `ok` is False wrong at every threshold.

    The "scored" block repeats the figures over the scored pairs only (the embedder's discrimination
    without its failures to find a face) and gives the threshold at each FAR there.
    """
    scores = np.asarray(scores, np.float64)
    same, folds, ok = np.asarray(same, bool), np.asarray(folds), np.asarray(ok, bool)
    accs = []
    for k in np.unique(folds):
        test = folds == k
        train = ~test & ok
        scored = test & ok
        correct = 0
        if train.any() and scored.any():
            t, _ = best_threshold(scores[train], same[train])
            correct = int(np.sum((scores[scored] >= t) == same[scored]))
        accs.append(correct / int(test.sum()))
    worst = failures_as_errors(scores, same, ok)
    result = {
        "accuracy_mean": float(np.mean(accs)),
        "accuracy_std": float(np.std(accs)),
        "accuracy_folds": [float(a) for a in accs],
        **_roc_figures(worst, same, fars),
        "pairs_failed": int((~ok).sum()),
    }
    if ok.any() and same[ok].any() and (~same[ok]).any():
        s, y = scores[ok], same[ok]
        mean, std, _ = kfold_accuracy(s, y, folds[ok])
        result["scored"] = {
            "pairs": int(ok.sum()),
            "accuracy_mean": mean,
            "accuracy_std": std,
            **_roc_figures(s, y, fars),
            # None where no threshold reaches the FAR (the best-scoring pair is an impostor).
            "threshold_at_far": {far_key(f): _finite(threshold_at_far(s, y, f)) for f in fars},
        }
    return result


def failures_as_errors(scores: np.ndarray, same: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Scores with each failed pair put beyond every real score on its wrong side (below for a genuine
    pair, above for an impostor), so it is an error at every threshold."""
    real = scores[ok]
    lo, hi = (real.min() - 1, real.max() + 1) if len(real) else (-1.0, 1.0)
    return np.where(ok, scores, np.where(same, lo, hi))


def _roc_figures(scores: np.ndarray, same: np.ndarray, fars: Sequence[float]) -> dict:
    return {
        "auc": auc(scores, same),
        "eer": eer(scores, same),
        "tar_at_far": {far_key(f): tar_at_far(scores, same, f) for f in fars},
    }


@dataclass
class Verification:
    summary: dict
    scores: np.ndarray = field(repr=False)  # NaN where the pair failed
    same: np.ndarray = field(repr=False)


def verify(pairs_file: str | os.PathLike, images: str | os.PathLike, spec: EmbedderSpec, masked: bool = False,
           workers: int = 2, progress: bool = False) -> Verification:
    """Score every pair (masked: the second photo wears a synthetic mask) and compute the figures."""
    pairs = read_pairs(pairs_file, images)
    firsts = [Job(p.first) for p in pairs]
    seconds = [Job(p.second, pair_seed(i) if masked else None) for i, p in enumerate(pairs)]
    out = embed_jobs(spec, firsts + seconds, workers, progress)
    scores = np.full(len(pairs), np.nan)
    failed: dict[tuple[str, str], None] = {}
    for i, (a, b) in enumerate(zip(firsts, seconds)):
        oa, ob = out[a], out[b]
        for job, o in ((a, oa), (b, ob)):
            if o.vector is None:
                failed[(job.path, o.reason)] = None
        if oa.vector is not None and ob.vector is not None:
            scores[i] = float(pair_scores(oa.vector, ob.vector, spec.metric))
    same = np.array([p.same for p in pairs])
    ok = ~np.isnan(scores)
    summary = {
        "embedder": spec.label,
        "metric": spec.metric,
        "pairs_file": str(pairs_file),
        "masked": masked,
        "pairs": len(pairs),
        "folds": len({p.fold for p in pairs}),
        **verification_metrics(np.nan_to_num(scores), same, np.array([p.fold for p in pairs]), ok),
        "failed": [{"path": p, "reason": r} for p, r in failed],
    }
    return Verification(summary, scores, same)


def plot_roc(result: Verification, path: str | os.PathLike) -> None:
    """ROC curve (log FAR axis) as a PNG; failed pairs count as errors, the scored-only curve is dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result.summary
    ok = ~np.isnan(result.scores)
    worst = failures_as_errors(result.scores, result.same, ok)
    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    curves = [(worst, result.same, f"all {s['pairs']} pairs (AUC {s['auc']:.4f})", "-")]
    if not ok.all() and "scored" in s:
        curves.append((result.scores[ok], result.same[ok], f"{ok.sum()} scored pairs only", "--"))
    floor = 1.0 / max(int((~result.same).sum()), 1)
    for sc, y, label, style in curves:
        far, tar, _ = roc(sc, y)
        ax.step(np.maximum(far, floor / 2), tar, where="post", linestyle=style, label=label)
    for f in FARS:
        ax.axvline(f, color="grey", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_xlim(floor / 2, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    title = f"{s['embedder']} on {Path(s['pairs_file']).name}" + (" (masked probes)" if s["masked"] else "")
    ax.set_title(title + f"\naccuracy {s['accuracy_mean']:.4f} ± {s['accuracy_std']:.4f}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ---------------------------------------------------------------- calibration


def calibrate(pairs_file: str | os.PathLike, images: str | os.PathLike, spec: EmbedderSpec, far: float = 1e-3,
              masked: bool = False, workers: int = 2, progress: bool = False) -> dict:
    """The lowest threshold whose false accept rate on the scored pairs is at most `far`.

    Failed pairs cannot inform a threshold, so it is picked on the scored ones (they are reported).
    For a "model" embedder it is written into its model card as the 1:1 `verify_threshold` (what
    facerec-verify uses); the gallery threshold ("threshold") is calibrate_open_set's.
    """
    if not 0 < far < 1:
        raise EvalError(f"--far must be between 0 and 1, not {far}")
    v = verify(pairs_file, images, spec, masked, workers, progress)
    ok = ~np.isnan(v.scores)
    s, y = v.scores[ok], v.same[ok]
    if not y.any() or y.all():
        raise EvalError(f"{pairs_file}: need scored genuine and impostor pairs to calibrate")
    threshold = threshold_at_far(s, y, far)
    if not np.isfinite(threshold):
        raise EvalError(f"{pairs_file}: no threshold reaches FAR {far:g} (the best-scoring pair is an impostor)")
    impostors = int((~y).sum())
    result = {
        "embedder": spec.label,
        "threshold": threshold,
        "threshold_far": far,
        "threshold_pairs": {"file": str(Path(pairs_file).resolve()), "pairs": len(v.scores), "scored": int(ok.sum()),
                            "impostors": impostors, "masked": masked},
        "far_resolvable": impostors * far >= 1,
        "tar": float(np.mean(s[y] >= threshold)),
        "far": float(np.mean(s[~y] >= threshold)),
        "failed": v.summary["failed"],
    }
    if spec.name == "model":  # the 1:1 threshold (facerec-verify); the open-set one is calibrate-gallery's
        verify_card = {"threshold": threshold, "far": far, "pairs": result["threshold_pairs"],
                       "tar_there": result["tar"], "far_there": result["far"]}
        result["card"] = str(write_threshold(spec.model_path, {"verify_threshold": verify_card}))
    return result


def write_threshold(model_path: str | os.PathLike | None, calibration: dict) -> Path:
    """Put the threshold and how it was chosen into the export's model card, atomically."""
    from facerec.runtime.base import CARD_FILE, default_model_path

    root = Path(model_path or default_model_path())
    root = root.parent if root.name == "saved_model" else root
    card_path = root / CARD_FILE
    card = json.loads(card_path.read_text())
    if "threshold" in calibration:
        for stale in ("threshold_pairs", "threshold_open_set", "threshold_source", "threshold_masked",
                      "threshold_masked_open_set"):
            card.pop(stale, None)
    card.update({k: calibration[k] for k in ("threshold", "threshold_far", "threshold_pairs", "threshold_open_set",
                                             "threshold_masked", "threshold_masked_open_set", "verify_threshold")
                 if k in calibration})
    tmp = card_path.with_suffix(".json.tmp")
    with open(tmp, "w") as fh:
        fh.write(json.dumps(card, indent=2) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, card_path)
    return card_path


def calibrate_open_set(people_file: str | os.PathLike, images: str | os.PathLike, model_path: str | os.PathLike | None = None,
                       gallery_people: int = 1000, far: float = 1e-2, seed: int = 0, progress: bool = False) -> dict:
    """The threshold at which at most `far` of strangers are accepted as someone in a gallery.

    A per-pair FAR understates what a gallery sees: a stranger is compared with every template,
    so this simulates the product itself. `gallery_people` people of `people_file` (LFW layout
    under `images`) are enrolled from their first photo with `Recognizer` (mask templates
    included); every other person's first photo is a stranger probe, and the threshold is the
    lowest that accepts at most `far` of them. Gallery people with a second photo measure the
    correct-accept rate there. For a gallery N times larger, expect roughly N times the FAR.
    The same strangers' photos wearing a synthetic mask (`mask_photo`, seeded per stranger) give
    `threshold_masked`, at the same FAR: the one faces called masked are compared with.
    """
    import tempfile

    from tqdm import tqdm

    from facerec.training.data import read_people
    from facerec.recognizer import Recognizer

    if not 0 < far < 1:
        raise EvalError(f"--far must be between 0 and 1, not {far}")
    root = Path(images)
    photos = {n: sorted((root / n).glob("*.jpg")) for n in read_people(people_file)}
    names = [n for n in photos if photos[n]]
    if len(names) <= gallery_people:
        raise EvalError(f"{people_file}: {len(names)} people with photos, need more than --gallery-people {gallery_people}")
    order = np.random.default_rng(seed).permutation(len(names))
    members = [names[i] for i in order[:gallery_people]]
    strangers = [names[i] for i in order[gallery_people:]]
    with tempfile.TemporaryDirectory() as tmp:
        rec = Recognizer(model_path, Path(tmp) / "calibration.h5", threshold=1.0)
        bar = tqdm(total=len(members), desc="enrol", disable=not progress)
        rec.enroll_many({n: [photos[n][0]] for n in members}, new_gallery=True, progress=lambda: bar.update())
        bar.close()
        gallery = rec.gallery()
        enrolled, templates = set(gallery.people()), len(gallery)
        genuine = [(n, photos[n][1]) for n in members if n in enrolled and len(photos[n]) > 1]

        def top(path) -> tuple[str | None, float] | None:
            try:
                faces = rec.identify(path, top_k=1)["faces"]
            except BadInput:
                return None
            return (faces[0]["matches"][0]["identity"], faces[0]["score"]) if faces else None

        def top_masked(i: int, path) -> float | None:
            try:
                masked = mask_photo(load_image(path), pair_seed(i), detector=rec.detector)
            except BadInput:
                return None
            found = top(masked) if masked is not None else None
            return None if found is None else found[1]

        probes = [(None, photos[n][0]) for n in strangers] + genuine
        found = [top(p) for _, p in tqdm(probes, desc="probe", disable=not progress)]
        m_scores = np.array([s for s in (top_masked(i, photos[n][0]) for i, n in
                                         enumerate(tqdm(strangers, desc="probe masked", disable=not progress)))
                             if s is not None])
    s_scores = np.array([f[1] for f in found[:len(strangers)] if f is not None])
    if not len(s_scores) or not len(m_scores):
        raise EvalError(f"{people_file}: no face found in any stranger's photo; nothing to calibrate on")
    g_found = [(n, f) for (n, _), f in zip(genuine, found[len(strangers):])]
    threshold, masked_threshold = open_set_threshold(s_scores, far), open_set_threshold(m_scores, far)
    accepted = int(np.sum(s_scores >= threshold))
    correct = sum(f is not None and f[0] == n and f[1] >= threshold for n, f in g_found)
    rank1 = sum(f is not None and f[0] == n for n, f in g_found)
    result = {
        "embedder": f"model:{rec.model_path}",
        "threshold": threshold,
        "threshold_far": far,
        "threshold_open_set": {
            "people_file": str(Path(people_file).resolve()), "seed": seed,
            "gallery_people": len(enrolled), "gallery_templates": templates,
            "strangers": len(strangers), "strangers_scored": int(len(s_scores)),
            "false_accepts": accepted, "far": accepted / max(len(s_scores), 1),
            "genuine_probes": len(g_found), "correct_accept_rate": correct / max(len(g_found), 1),
            "rank1": rank1 / max(len(g_found), 1),
        },
        "threshold_masked": masked_threshold,
        "threshold_masked_open_set": {
            "strangers_scored": int(len(m_scores)), "false_accepts": int(np.sum(m_scores >= masked_threshold)),
            "far": float(np.mean(m_scores >= masked_threshold)),
            "unmasked_threshold_far": float(np.mean(m_scores >= threshold)),
            "masks": "synthetic, facerec.evaluation.evaluate.mask_photo(photo, pair_seed(stranger index))",
        },
    }
    result["card"] = str(write_threshold(model_path, result))
    return result


# ---------------------------------------------------------------- identification


@dataclass(frozen=True)
class Photo:
    path: str
    identity: str


def read_manifest(manifest: str | os.PathLike, images: str | os.PathLike | None = None) -> tuple[list[Photo], list[Photo]]:
    """(unmasked enrolment photos, masked probe photos) of an RMFRD-style manifest.

    Columns path,identity,masked[,cross_identity_duplicate]; paths are relative to `images`
    (default: the manifest's folder). Rows marked cross_identity_duplicate=1 are skipped.
    """
    manifest = Path(manifest)
    root = Path(images) if images else manifest.parent
    try:
        with open(manifest, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise BadInput(manifest, "no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise BadInput(manifest, f"cannot read manifest ({_first_line(e)})") from None
    if not rows or not {"path", "identity", "masked"} <= set(rows[0]):
        raise BadInput(manifest, "expected a CSV with columns path,identity,masked")
    enrol, probes = [], []
    for r in rows:
        if (r.get("cross_identity_duplicate") or "0").strip() == "1":
            continue
        photo = Photo(str(root / r["path"]), r["identity"])
        flag = (r["masked"] or "").strip()
        if flag == "0":
            enrol.append(photo)
        elif flag == "1":
            probes.append(photo)
    if not enrol or not probes:
        raise BadInput(manifest, "needs unmasked (masked=0) and masked (masked=1) rows")
    return enrol, probes


def pick_distractors(folder: str | os.PathLike, count: int | None, seed: int = DISTRACTOR_SEED) -> list[Photo]:
    """One photo (the first) of each of `count` identities drawn at random (fixed seed) from a folder-per-identity set."""
    from facerec.training.data import discover

    first: dict[str, str] = {}
    for item in discover(folder):
        first.setdefault(item.identity, item.path)
    names = sorted(first)
    if count is not None and count < len(names):
        names = sorted(np.random.default_rng(seed).choice(names, count, replace=False))
    return [Photo(first[n], "distractor:" + n) for n in names]


def identification_metrics(probe_vecs: np.ndarray, probe_ids: Sequence[str], probe_ok: np.ndarray,
                           gallery_vecs: np.ndarray, gallery_ids: Sequence[str], enrolled: set[str], metric: str,
                           threshold: float | None = None, aggregate: str = "max",
                           gallery_kinds: Sequence[str] | None = None) -> dict:
    """Rank-k identification against per-identity scores, and open-set figures at `threshold`.

    An identity scores as `Gallery.search` scores it: its nearest template (`max`) or its nearer
    centroid (`centroid`: cosine only; `gallery_kinds` tell photo from synthetic-mask templates,
    all "photo" when None).

    Probes of `enrolled` identities are the closed-set probes: one that failed (`probe_ok` False) or
    whose identity has no gallery photo is a miss. Open set: a correct accept is a top-1 hit scoring
    at least `threshold`; a false accept is a probe accepted for someone who is not them when its own
    identity is absent from the gallery: for closed-set probes the gallery minus their own identity,
    for probes of never-enrolled identities the whole gallery. Failed probes are never accepted.
    """
    probe_ids = np.asarray(probe_ids)
    probe_ok = np.asarray(probe_ok, bool)
    if aggregate == "centroid":
        if metric != "cosine":
            raise EvalError(f"centroid scoring needs cosine embeddings, not {metric}")
        from facerec.search.gallery import centroids

        kinds = ["photo"] * len(gallery_ids) if gallery_kinds is None else gallery_kinds
        gallery_vecs, gallery_ids = centroids(gallery_vecs, gallery_ids, kinds) if len(gallery_ids) else (gallery_vecs, gallery_ids)
    elif aggregate != "max":
        raise EvalError(f"unknown aggregate {aggregate!r} (choose max or centroid)")
    names, col = np.unique(np.asarray(gallery_ids), return_inverse=True)
    closed = np.array([p in enrolled for p in probe_ids], bool)
    n_closed = int(closed.sum())
    ranks = np.full(len(probe_ids), np.inf)
    top_score = np.full(len(probe_ids), -np.inf)
    top_name = np.full(len(probe_ids), "", dtype=object)
    other_best = np.full(len(probe_ids), -np.inf)  # best score of an identity that is not the probe's own
    if probe_ok.any() and len(names):
        sims = similarity_matrix(np.asarray(probe_vecs)[probe_ok], np.asarray(gallery_vecs), metric)
        best = np.full((len(sims), len(names)), -np.inf)
        np.maximum.at(best, (slice(None), col), sims)  # per identity: its nearest enrolled photo
        idx = np.where(probe_ok)[0]
        top = best.argmax(1)
        top_score[idx] = best.max(1)
        top_name[idx] = names[top]
        own = np.searchsorted(names, probe_ids[idx])
        has_own = (own < len(names)) & (names[np.minimum(own, len(names) - 1)] == probe_ids[idx])
        own_score = np.where(has_own, best[np.arange(len(idx)), np.minimum(own, len(names) - 1)], np.nan)
        ranks[idx] = np.where(has_own, 1 + np.sum(best > own_score[:, None], axis=1), np.inf)
        others = best.copy()
        others[np.arange(len(idx))[has_own], own[has_own]] = -np.inf
        other_best[idx] = others.max(1)
    result = {
        "probes": len(probe_ids),
        "probes_enrolled": n_closed,
        "probes_failed": int((~probe_ok).sum()),
        "gallery_size": len(names),
        "rank1": float(np.sum(ranks[closed] <= 1) / max(n_closed, 1)),
        "rank5": float(np.sum(ranks[closed] <= 5) / max(n_closed, 1)),
        "threshold": threshold,
        "aggregate": aggregate,
        "open_set": None,
    }
    if threshold is not None:
        accepted = probe_ok & (top_score >= threshold)
        hit = accepted & (top_name == probe_ids)
        unknown = ~closed
        false_accept = np.where(closed, probe_ok & (other_best >= threshold), accepted)
        result["open_set"] = {
            "correct_accept_rate": float(np.sum(hit & closed) / max(n_closed, 1)),
            "wrong_accept_rate": float(np.sum(accepted & ~hit & closed) / max(n_closed, 1)),
            "false_accept_rate": float(np.sum(false_accept) / max(len(probe_ids), 1)),
            "false_accepts": int(false_accept.sum()),
            "unknown_probes": len(probe_ids),
            "never_enrolled_probes": int(unknown.sum()),
        }
    return result


def halves(identities: Iterable[str]) -> dict[str, set[str]]:
    """RMFRD's fixed identity split (../shared/data/README.md): sorted identities at even positions
    choose settings ("selection"), those at odd positions only report figures ("report")."""
    names = sorted(set(identities))
    return {"selection": set(names[0::2]), "report": set(names[1::2])}


def identify(manifest: str | os.PathLike, spec: EmbedderSpec, images: str | os.PathLike | None = None,
             distractors: str | os.PathLike | None = None, distractor_count: int | None = None,
             threshold: float | None = None, workers: int = 2, progress: bool = False,
             aggregate: str | None = None) -> dict:
    """Enrol every identity from its unmasked photos (plus distractor identities), probe with masked photos.

    Enrolment stores what `facerec-gallery enroll` stores (for our model: each photo and its
    synthetic-mask templates) and identities score as `facerec-match` scores them (`aggregate`,
    default: centroid for cosine embedders, max for dlib's Euclidean distance).
    Figures for the whole manifest, and under "halves" for each half of its identity split (`halves`),
    enrolling only that half's people (plus the distractors), from the same embeddings."""
    aggregate = aggregate or ("centroid" if spec.metric == "cosine" else "max")
    enrol, probes = read_manifest(manifest, images)
    extra = pick_distractors(distractors, distractor_count) if distractors else []
    roles = [("enrol", enrol, True), ("distractor", extra, True), ("probe", probes, False)]
    jobs = {p.path: Job(p.path, templates=t) for _, photos, t in roles for p in photos}
    out = {job.path: o for job, o in embed_jobs(spec, jobs.values(), workers, progress).items()}
    failed = []
    for role, photos, _ in roles:
        failed += [{"path": p.path, "reason": out[p.path].reason, "role": role}
                   for p in photos if out[p.path].vector is None]
    gallery = [p for p in enrol + extra if out[p.path].vector is not None]
    if not gallery:
        raise EvalError("no gallery photo could be embedded")
    gallery_vecs = np.concatenate([out[p.path].vector for p in gallery])
    gallery_ids = np.concatenate([[p.identity] * len(out[p.path].kinds) for p in gallery])
    gallery_kinds = [k for p in gallery for k in out[p.path].kinds]
    dim = gallery_vecs.shape[1]
    probe_vecs = np.stack([out[p.path].vector if out[p.path].vector is not None else np.zeros(dim, np.float32)
                           for p in probes])
    threshold = spec.threshold(masked=True) if threshold is None else threshold  # every probe is masked
    probe_ids = np.array([p.identity for p in probes])
    probe_ok = np.array([out[p.path].vector is not None for p in probes])
    enrolled = {p.identity for p in enrol}
    figures = identification_metrics(probe_vecs, probe_ids, probe_ok, gallery_vecs, gallery_ids, enrolled,
                                     spec.metric, threshold, aggregate, gallery_kinds)
    figures["halves"] = {}
    kinds = np.array(gallery_kinds, object)
    for half, people in halves(p.identity for p in enrol + probes).items():
        keep_p = np.isin(probe_ids, list(people))
        keep_g = np.isin(gallery_ids, list(people) + [p.identity for p in extra])
        part = identification_metrics(probe_vecs[keep_p], probe_ids[keep_p], probe_ok[keep_p], gallery_vecs[keep_g],
                                      gallery_ids[keep_g], enrolled & people, spec.metric, threshold, aggregate,
                                      list(kinds[keep_g]))
        figures["halves"][half] = {k: part[k] for k in ("probes", "probes_enrolled", "gallery_size", "rank1", "rank5")}
    return {
        "embedder": spec.label,
        "metric": spec.metric,
        "manifest": str(manifest),
        "distractors": len(extra),
        "enrolment_photos": len(enrol),
        "enrolment_failed": sum(f["role"] == "enrol" for f in failed),
        "templates": len(gallery_kinds),
        **figures,
        "failed": failed,
    }


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
