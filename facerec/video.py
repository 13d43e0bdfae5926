"""Faces in video: recognise every Nth frame, follow each face from frame to frame, name each track.

One frame's match can flicker (a blink, a turned head, motion blur); a person stays put. So faces are
linked across processed frames by box overlap (IoU) into tracks, and a track's identity is a vote over
its frames, each frame voting for its best match with weight = its cosine score; the track is named
when the mean score of the winning name's frames reaches the threshold, else it is unknown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facerec._stderr import native_stderr_silenced
from facerec.detect import iou
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
    votes: dict[str, float] = field(default_factory=dict)  # best-match name -> summed score
    scores: dict[str, list[float]] = field(default_factory=dict)  # best-match name -> its scores

    def add(self, face: dict, frame: int, t: float) -> None:
        self.box, self.last_frame, self.last, self.gap = face["box"], frame, t, 0
        self.frames += 1
        best = face["matches"][0] if face["matches"] else None
        if best is not None:
            self.votes[best["identity"]] = self.votes.get(best["identity"], 0.0) + max(best["score"], 0.0)
            self.scores.setdefault(best["identity"], []).append(best["score"])

    def decision(self, threshold: float) -> tuple[str | None, str | None, float | None]:
        """(identity or None if unknown, best match, its mean score) from the votes so far."""
        if not self.scores:
            return None, None, None
        name = max(self.scores, key=lambda n: (self.votes[n], len(self.scores[n])))
        score = round(float(np.mean(self.scores[name])), 4)
        return (name if score >= threshold else None), name, score

    def summary(self, threshold: float) -> dict:
        identity, best, score = self.decision(threshold)
        return {"track": self.id, "identity": identity, "best_match": best, "score": score,
                "first": round(self.first, 3), "last": round(self.last, 3), "first_frame": self.first_frame,
                "last_frame": self.last_frame, "frames": self.frames,
                "votes": {n: len(s) for n, s in sorted(self.scores.items(), key=lambda kv: -len(kv[1]))}}


class Tracker:
    """Links each processed frame's faces to open tracks, greedily by largest IoU."""

    def __init__(self, min_iou: float = MIN_IOU, max_gap: int = MAX_GAP):
        self.min_iou, self.max_gap = min_iou, max_gap
        self.tracks: list[Track] = []

    def update(self, faces: list[dict], frame: int, t: float) -> list[Track]:
        """The track of each face (in order); unmatched faces start tracks, unseen tracks age."""
        open_ = [tr for tr in self.tracks if tr.gap <= self.max_gap]
        pairs = sorted(((iou(f["box"], tr.box), i, j) for i, f in enumerate(faces) for j, tr in enumerate(open_)),
                       reverse=True)
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
            tr.add(f, frame, t)
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
    `facerec-match --video --json` object.
    """
    from facerec.match import annotate

    threshold, tracker, detections = rec.threshold, Tracker(), []
    rec.gallery()  # a missing or other-model gallery: one error before the first frame
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
                result = rec.identify(frame, top_k)
                tracks = tracker.update(result["faces"], index, t)
                faces = [{"track": tr.id, "box": f["box"], "identity": f["identity"], "score": f["score"]}
                         for f, tr in zip(result["faces"], tracks)]
                if faces:
                    detections.append({"frame": index, "time": round(t, 3), "faces": faces})
                shown = {"faces": [_labelled(f, tr, threshold) for f, tr in zip(result["faces"], tracks)],
                         "threshold": threshold}
            if draw:
                height = min(frame.shape[0], MAX_OUT_HEIGHT)
                pic = annotate(frame, shown, height=height, panel=False)
                if out is not None:
                    if writer is None:
                        writer = open_writer(out, fps or 10.0, (pic.shape[1], pic.shape[0]))
                    writer.write(cv2.cvtColor(pic, cv2.COLOR_RGB2BGR))
                if on_frame is not None and not on_frame(pic):
                    break
            index += 1
    except KeyboardInterrupt:  # a camera runs until stopped: what was seen so far is still reported
        pass
    finally:
        if writer is not None:
            writer.release()
        cap.release()
    return {"threshold": threshold, "fps": round(fps, 3) or None, "frames": index, "every": every,
            "tracks": [tr.summary(threshold) for tr in tracker.tracks], "detections": detections}


def _labelled(face: dict, track: Track, threshold: float) -> dict:
    """The face as `annotate` draws it, but named by its track's votes so far (steadier than one frame)."""
    identity, _, score = track.decision(threshold)
    return {**face, "identity": identity, "score": face["score"] if score is None else score}
