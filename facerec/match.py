"""Presenting matches: the plain table and the annotated image (query beside the best gallery face)."""

from __future__ import annotations

import os
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from facerec.search.gallery import Gallery

_GREEN, _RED, _GREY, _WHITE = (40, 150, 60), (200, 40, 40), (70, 70, 70), (255, 255, 255)


def display_name(identity: str) -> str:
    """A stored name as people read it, in the text and the picture alike: the folder name as given, its
    underscores shown as spaces (`Nikki_Reed` → `Nikki Reed`). JSON keeps the stored identity."""
    return identity.replace("_", " ")


def table(result: dict) -> str:
    """One line per face: identity (or unknown), score vs threshold, then the other candidates."""
    head = f"{result['image']}:"
    if "error" in result:
        return f"{head} error: {result['error']}"
    if not result["faces"]:
        small = result.get("skipped_small_faces")
        return head + (f" no face large enough ({small} too small)" if small else " no face found")
    lines = [head]
    for i, f in enumerate(result["faces"]):
        known = f["identity"] is not None
        # Unknown: the closest identity is worth seeing too, so every match is listed (--top-k of them).
        others = f["matches"][1:] if known else f["matches"]
        listed = ", ".join(f"{display_name(m['identity'])} {m['score']:.3f}" for m in others)
        who = display_name(f["identity"]) if known else "unknown"
        mask = "" if f.get("mask_score") is None else \
            f"  {'masked ' if f['masked'] else 'no mask'} {f['mask_score']:.2f}"
        lines.append(f"  face {i + 1}{mask}  {who:<24s}  score {f['score']:.3f}  "
                     f"(threshold {f.get('threshold', result['threshold']):.3f})"
                     + (f"  {'runner-ups' if known else 'closest'}: {listed}" if listed else ""))
    return "\n".join(lines)


@lru_cache(maxsize=16)
def label_font(size: int) -> ImageFont.ImageFont:
    """DejaVu Sans (shipped with matplotlib: accents, Greek, Cyrillic), else PIL's default font."""
    import matplotlib

    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")
    try:
        return ImageFont.truetype(path, size)
    except OSError:
        return ImageFont.load_default(size)


def _label(draw: ImageDraw.ImageDraw, text: str, xy: tuple[int, int], colour, size: int, max_width: int,
           below: bool = False) -> None:
    """`text` on a filled box whose bottom-left (top-left if `below`) is `xy`, shrunk to fit `max_width`."""
    while True:
        font = label_font(size)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        if right - left + 8 <= max_width or size <= 9:
            break
        size -= 1
    w, h = right - left + 8, bottom - top + 6
    x, y = xy[0], xy[1] if below else xy[1] - h
    x = max(0, min(x, max_width - w))
    y = max(0, y)
    draw.rectangle((x, y, x + w, y + h), fill=colour)
    draw.text((x + 4 - left, y + 3 - top), text, font=font, fill=_WHITE)


def annotate(image: np.ndarray, result: dict, gallery: Gallery | None = None, height: int = 480,
             panel: bool = True) -> np.ndarray:
    """RGB picture: the query with each face boxed and labelled, and beside it the enrolled face of the
    main face's best match, with name, cosine score and threshold. `panel=False` leaves that out, so
    the picture's size does not depend on the faces (video frames)."""
    scale = height / image.shape[0]
    query = Image.fromarray(cv2.resize(image, (max(1, round(image.shape[1] * scale)), height),
                                       interpolation=cv2.INTER_AREA))
    draw = ImageDraw.Draw(query)
    text = max(14, height // 28)
    for f in result["faces"]:
        x, y, w, h = (v * scale for v in f["box"])
        # A face at the photo's edge has a detected box past it: clipped, the box stays closed.
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, query.width - 1), min(y + h, height - 1)
        known = f["identity"] is not None
        colour = _GREEN if known else _RED
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=max(2, height // 200))
        _label(draw, f"{display_name(f['identity']) if known else 'unknown'}  {f['score']:.3f}", (int(x0), int(y0) - 2),
               colour, text, query.width)
    if not result["faces"]:
        _label(draw, "no face found", (4, height - 4), _GREY, text, query.width)
    if not result["faces"] or not panel:
        return np.asarray(query)
    side = height * 3 // 4
    panel = Image.new("RGB", (side, height), (245, 245, 245))
    best = result["faces"][0]
    name = best["identity"] or (best["matches"][0]["identity"] if best["matches"] else None)
    jpg = gallery.thumbnail(name) if gallery is not None and name else None
    top = (height - side) // 2
    if jpg:
        face = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
        if face is not None:
            face = cv2.resize(cv2.cvtColor(face, cv2.COLOR_BGR2RGB), (side, side), interpolation=cv2.INTER_CUBIC)
            panel.paste(Image.fromarray(face), (0, top))
    pd = ImageDraw.Draw(panel)
    if not jpg:
        _label(pd, "no gallery photo stored" if name else "empty gallery", (4, height // 2), _GREY, text, side)
    if name:
        shown = display_name(name)
        caption = f"gallery: {shown}" if best["identity"] else f"closest: {shown} (below threshold)"
        _label(pd, caption, (0, top - 2), _GREEN if best["identity"] else _RED, text, side)
    threshold = best.get("threshold", result["threshold"])  # the face's own: masked faces have theirs
    _label(pd, f"cosine {best['score']:.3f}  threshold {threshold:.3f}", (0, top + side + 2), _GREY,
           text, side, below=True)
    gap = np.full((height, 6, 3), 255, np.uint8)
    return np.hstack([np.asarray(query), gap, np.asarray(panel)])
