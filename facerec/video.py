"""Faces in video: recognise every Nth frame, follow each face from frame to frame, name each track.

One frame's match can flicker (a blink, a turned head, motion blur); a person stays put. So faces are
linked across processed frames into tracks by box overlap (IoU) and by their embeddings: a face whose
embedding is not the same person as its track's (a cut to someone else in the same spot) starts a new
track. A track's identity is a vote over its frames: each frame whose best match is accepted (score
at least the threshold) votes for it with weight = its score; the track is named after the winner
when at least half of its frames voted for it, else it is unknown (its closest match still given).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facerec._stderr import native_stderr_silenced
from facerec.images import BadInput

# Least box overlap that links a face to a track seen in the previous processed frames.
MIN_IOU = 0.3
# A track not seen for this many processed frames is closed; a face there later starts a new one.
MAX_GAP = 2
# Output container -> codec this OpenCV build both writes and reads back (checked: mp4v, MJPG).
CODECS = {".mp4": "mp4v", ".avi": "MJPG"}
# Annotated frames taller than this are scaled down (labels stay readable, files stay small).
MAX_OUT_HEIGHT = 720


@dataclass
class Track:
    id: int
    box: list[float]  # the last box, x y w h
    first_frame: int
    first: float  # seconds
    last_frame: int = 0
    last: float = 0.0
    frames: int = 0  # processed frames it was seen in
    gap: int = 0  # processed frames since it was last seen
    votes: dict[str, float] = field(default_factory=dict)  # accepted best match -> summed score
    scores: dict[str, list[float]] = field(default_factory=dict)  # accepted best match -> its scores
    closest: dict[str, list[float]] = field(default_factory=dict)  # any best match -> its scores
    embedding_sum: np.ndarray | None = None  # of its faces' embeddings: the track's "who"

    def add(self, face: dict, frame: int, t: float, threshold: float, embedding: np.ndarray | None = None) -> None:
        self.box, self.last_frame, self.last, self.gap = face["box"], frame, t, 0
        self.frames += 1
        if embedding is not None:
            self.embedding_sum = embedding if self.embedding_sum is None else self.embedding_sum + embedding
        best = face["matches"][0] if face["matches"] else None
        if best is None:
            return
        self.closest.setdefault(best["identity"], []).append(best["score"])
        if best["score"] >= threshold:  # only accepted matches vote
            self.votes[best["identity"]] = self.votes.get(best["identity"], 0.0) + best["score"]
            self.scores.setdefault(best["identity"], []).append(best["score"])

    def similarity(self, embedding: np.ndarray) -> float:
        """Cosine of `embedding` with the mean of the track's embeddings."""
        mean = self.embedding_sum
        return float(embedding @ mean / max(np.linalg.norm(mean) * np.linalg.norm(embedding), 1e-12))

    def decision(self) -> tuple[str | None, str | None, float | None]:
        """(identity or None if unknown, best match, its mean score) from the votes so far."""
        if self.scores:
            name = max(self.scores, key=lambda n: (self.votes[n], len(self.scores[n])))
            if 2 * len(self.scores[name]) >= sum(map(len, self.closest.values())):
                return name, name, round(float(np.mean(self.scores[name])), 4)
        if not self.closest:
            return None, None, None
        name = max(self.closest, key=lambda n: (len(self.closest[n]), sum(self.closest[n])))
        return None, name, round(float(np.mean(self.closest[name])), 4)

    def summary(self) -> dict:
        identity, best, score = self.decision()
        return {"track": self.id, "identity": identity, "best_match": best, "score": score,
                "first": round(self.first, 3), "last": round(self.last, 3), "first_frame": self.first_frame,
                "last_frame": self.last_frame, "frames": self.frames,
                "votes": {n: len(s) for n, s in sorted(self.scores.items(), key=lambda kv: -len(kv[1]))}}


class Tracker:
    """Links each processed frame's faces to open tracks, greedily by largest IoU, never a face to a
    track whose embedding is not the same person's (cosine under `min_cosine`)."""

    def __init__(self, threshold: float, min_cosine: float, min_iou: float = MIN_IOU, max_gap: int = MAX_GAP):
        self.threshold, self.min_cosine, self.min_iou, self.max_gap = threshold, min_cosine, min_iou, max_gap
        self.tracks: list[Track] = []

    def update(self, faces: list[dict], frame: int, t: float, embeddings: np.ndarray | None = None) -> list[Track]:
        """The track of each face (in order); unmatched faces start tracks, unseen tracks age.
        `embeddings` (one per face) keep a cut to another person in the same spot out of the track."""
        from facerec.faces.detect import iou  # MediaPipe loads with facerec.faces.detect: only once frames come

        open_ = [tr for tr in self.tracks if tr.gap <= self.max_gap]

        def same_person(i: int, tr: Track) -> bool:
            return embeddings is None or tr.embedding_sum is None or tr.similarity(embeddings[i]) >= self.min_cosine

        pairs = sorted(((iou(f["box"], tr.box), i, j) for i, f in enumerate(faces) for j, tr in enumerate(open_)
                        if same_person(i, tr)), reverse=True)
        assigned: dict[int, Track] = {}
        taken: set[int] = set()
        for overlap, i, j in pairs:
            if overlap < self.min_iou:
                break
            if i not in assigned and j not in taken:
                assigned[i] = open_[j]
                taken.add(j)
        for j, tr in enumerate(open_):
            if j not in taken:
                tr.gap += 1
        out = []
        for i, f in enumerate(faces):
            tr = assigned.get(i)
            if tr is None:
                tr = Track(len(self.tracks) + 1, f["box"], frame, t)
                self.tracks.append(tr)
            tr.add(f, frame, t, f.get("threshold", self.threshold), None if embeddings is None else embeddings[i])
            out.append(tr)
        return out


def open_video(path: str) -> tuple[cv2.VideoCapture, float]:
    """A readable video file and its frame rate (0 when the file does not say); BadInput otherwise."""
    p = Path(path)
    if not p.exists():
        raise BadInput(path, "no such file")
    if p.is_dir():
        raise BadInput(path, "is a directory, not a video")
    with native_stderr_silenced():  # FFmpeg explains its failures on fd 2, several lines each
        cap = cv2.VideoCapture(str(p))
        ok = cap.isOpened() and cap.grab()
    if not ok:
        raise BadInput(path, "not a readable video (OpenCV/FFmpeg cannot decode it)")
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    fps = cap.get(cv2.CAP_PROP_FPS)
    return cap, fps if fps and fps > 0 else 0.0


def open_camera(index: int) -> cv2.VideoCapture:
    """Camera `index`, delivering frames; BadInput when there is none (or no permission)."""
    with native_stderr_silenced():  # V4L2 warns on fd 2 for every missing device
        cap = cv2.VideoCapture(index)
        ok = cap.isOpened() and cap.grab()
    if not ok:
        raise BadInput(f"camera {index}", "cannot be opened (no camera at that index, or no permission)")
    return cap


def open_writer(path: str, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """A video writer for .mp4 (mp4v) or .avi (MJPG); ValueError when the file cannot be made."""
    codec = CODECS.get(Path(path).suffix.lower())
    if codec is None:
        raise ValueError(f"{path}: the annotated video must end in {' or '.join(CODECS)}")
    with native_stderr_silenced():
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size)
    if not writer.isOpened():
        raise ValueError(f"{path}: cannot write a video there")
    return writer


def recognise(rec, cap: cv2.VideoCapture, fps: float, every: int = 1, top_k: int = 5, out: str | None = None,
              on_frame: Callable[[np.ndarray], bool] | None = None) -> dict:
    """Read `cap` to its end (or Ctrl-C), identify faces every `every`-th frame and track them.

    `out` writes every frame annotated with the faces of the latest processed frame, each labelled
    with its track's identity so far; `on_frame` gets each annotated RGB frame (a window) and stops
    the loop by returning False. `fps` 0 (a camera) times frames by the clock. Returns the
    `facerec-match --video --json` object, with "write_error" added when `out` could not be written
    (the tracks are complete all the same). A face stays in its track while its embedding is the
    same person's by the 1:1 threshold (`Recognizer.pair_threshold`).
    """
    from facerec.match import annotate

    rec.gallery()  # a missing or other-model gallery: one error before the first frame
    threshold, source = rec.threshold, rec.threshold_source
    tracker, detections, write_error = Tracker(threshold, rec.pair_threshold()[0]), [], None
    writer, shown, index, started = None, {"faces": [], "threshold": threshold}, 0, time.monotonic()
    draw = out is not None or on_frame is not None
    try:
        while True:
            if index % every and not draw:
                if not cap.grab():  # skipped and not drawn: no need to decode it
                    break
                index += 1
                continue
            ok, bgr = cap.read()
            if not ok:
                break
            t = index / fps if fps else time.monotonic() - started
            frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if index % every == 0:
                result, vecs = rec.identify_faces(frame, top_k)
                tracks = tracker.update(result["faces"], index, t, vecs)
                faces = [{"track": tr.id, "box": f["box"], "masked": f["masked"],
                          "mask_score": f["mask_score"], "identity": f["identity"],
                          "score": f["score"]}
                         for f, tr in zip(result["faces"], tracks)]
                if faces:
                    detections.append({"frame": index, "time": round(t, 3), "faces": faces})
                shown = {"faces": [_labelled(f, tr) for f, tr in zip(result["faces"], tracks)],
                         "threshold": threshold}
            if draw:
                height = min(frame.shape[0], MAX_OUT_HEIGHT)
                pic = annotate(frame, shown, height=height, panel=False)
                if out is not None and write_error is None:
                    try:
                        if writer is None:
                            writer = open_writer(out, fps or 10.0, (pic.shape[1], pic.shape[0]))
                        writer.write(cv2.cvtColor(pic, cv2.COLOR_RGB2BGR))
                    except (ValueError, cv2.error) as e:  # the tracks still come out
                        write_error = str(e) if isinstance(e, ValueError) else f"{out}: cannot write the video"
                if on_frame is not None and not on_frame(pic):
                    break
            index += 1
    except KeyboardInterrupt:  # a camera runs until stopped: what was seen so far is still reported
        pass
    finally:
        if writer is not None:
            writer.release()
        cap.release()
    out = {"threshold": threshold, "threshold_source": source, "fps": round(fps, 3) or None, "frames": index,
           "every": every, "tracks": [tr.summary() for tr in tracker.tracks], "detections": detections}
    return {**out, "write_error": write_error} if write_error else out


def _labelled(face: dict, track: Track) -> dict:
    """The face as `annotate` draws it, but named by its track's votes so far (steadier than one frame)."""
    identity, _, score = track.decision()
    return {**face, "identity": identity, "score": face["score"] if score is None else score}
