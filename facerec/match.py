"""Presenting matches: the plain table and the annotated image (query beside the best gallery face)."""

from __future__ import annotations

import cv2
import numpy as np

from facerec.gallery import Gallery

_GREEN, _RED, _WHITE = (40, 170, 60), (200, 40, 40), (255, 255, 255)


def table(result: dict) -> str:
    """One line per face: identity (or unknown), score vs threshold, runner-ups."""
    lines = [f"{result['image']}:"]
    if "error" in result:
        return lines[0] + f" error: {result['error']}"
    if not result["faces"]:
        return lines[0] + " no face found"
    for i, f in enumerate(result["faces"]):
        who = f["identity"] if f["identity"] is not None else "unknown"
        runners = ", ".join(f"{m['identity']} {m['score']:.3f}" for m in f["matches"][1:4])
        lines.append(f"  face {i + 1} {who:<28s} score {f['score']:.3f} (threshold {result['threshold']:.3f})"
                     + (f"  runner-ups: {runners}" if runners else ""))
    return "\n".join(lines)


def _label(img: np.ndarray, text: str, org: tuple[int, int], colour, scale: float) -> None:
    th = max(1, int(round(scale * 2)))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, th)
    x, y = org
    cv2.rectangle(img, (x, y - h - base - 4), (x + w + 6, y + 2), colour, -1)
    cv2.putText(img, text, (x + 3, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, _WHITE, th, cv2.LINE_AA)


def annotate(image: np.ndarray, result: dict, gallery: Gallery | None = None, height: int = 480) -> np.ndarray:
    """RGB picture: the query with each face boxed and labelled, and beside it the best match's enrolled face."""
    scale = height / image.shape[0]
    query = cv2.resize(image, (max(1, int(image.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)
    font = max(0.5, height / 700)
    for f in result["faces"]:
        x, y, w, h = (int(round(v * scale)) for v in f["box"])
        known = f["identity"] is not None
        colour = _GREEN if known else _RED
        cv2.rectangle(query, (x, y), (x + w, y + h), colour, max(2, height // 200))
        text = f"{f['identity'] if known else 'unknown'}  {f['score']:.2f}"
        _label(query, text, (max(0, x), max(20, y - 4)), colour, font)
    panels = [query]
    if result["faces"] and gallery is not None:
        best = result["faces"][0]
        name = best["identity"] or (best["matches"][0]["identity"] if best["matches"] else None)
        jpg = gallery.thumbnail(name) if name else None
        if jpg:
            face = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            side = height * 2 // 3
            panel = np.full((height, side, 3), 245, np.uint8)
            top = (height - side) // 2
            panel[top:top + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
            caption = ("gallery: " + name) if best["identity"] else f"closest: {name} (below threshold)"
            _label(panel, caption, (4, top - 6), _GREEN if best["identity"] else _RED, font * 0.8)
            _label(panel, f"cosine {best['score']:.3f} / thr {result['threshold']:.3f}", (4, height - 8), (60, 60, 60), font * 0.8)
            panels.append(panel)
    return np.hstack(panels)
