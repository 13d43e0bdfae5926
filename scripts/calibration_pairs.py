"""Write an LFW-format pairs file for threshold calibration, disjoint from training AND evaluation.

People: LFW people in neither peopleDevTrain.txt (training) nor pairsDevTest.txt (evaluation), and
not in Glint24 (training). Genuine pairs: every pair of photos of each such person with ≥ 2 photos
(at most 10 per person); impostor pairs: random photos of two different such people (--impostors).
Format: first line = number of genuine pairs, then genuine lines `NAME N M`, then impostor lines
`NAME N NAME M` (read by `facerec-eval calibrate/verify`, which deal them into 10 interleaved folds).

The people file (LFW people*.txt format, for `facerec-eval calibrate-gallery`) holds the same people
plus the peopleDevTrain people with a single photo: training drops them (no positive pair).

    python scripts/calibration_pairs.py --data ../shared/data --out artifacts/calibration_pairs.txt \
        --people-out artifacts/calibration_people.txt
"""

import argparse
import itertools
from pathlib import Path

import numpy as np

from facerec.training.data import data_root, read_pairs_people, read_people
from facerec.training.train import normalise_name


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--impostors", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--people-out", default=None, help="also write the calibration people here")
    a = ap.parse_args()
    data = data_root(a.data)
    lfw = data / "lfw"
    used = set(read_people(lfw / "peopleDevTrain.txt")) | read_pairs_people(lfw / "pairsDevTest.txt")
    glint = {normalise_name(p.name) for p in (data / "glint24" / "images").iterdir()}
    people = {}
    for d in sorted((lfw / "lfw-deepfunneled").iterdir()):
        if d.name not in used and normalise_name(d.name) not in glint:
            people[d.name] = len(list(d.glob("*.jpg")))
    rng = np.random.default_rng(a.seed)
    genuine = []
    for name, n in people.items():
        combos = list(itertools.combinations(range(1, n + 1), 2))
        for i in rng.permutation(len(combos))[:10]:
            genuine.append(f"{name}\t{combos[i][0]}\t{combos[i][1]}")
    names = list(people)
    impostors = set()
    while len(impostors) < a.impostors:
        p, q = rng.choice(len(names), 2, replace=False)
        impostors.add(f"{names[p]}\t{rng.integers(1, people[names[p]] + 1)}\t{names[q]}\t{rng.integers(1, people[names[q]] + 1)}")
    Path(a.out).write_text("\n".join([str(len(genuine)), *genuine, *sorted(impostors)]) + "\n")
    if a.people_out:
        trained = set(read_people(lfw / "peopleDevTrain.txt"))
        single = {d.name: 1 for d in sorted((lfw / "lfw-deepfunneled").iterdir())
                  if d.name in trained and len(list(d.glob("*.jpg"))) == 1
                  and normalise_name(d.name) not in glint}
        unseen = dict(sorted({**people, **single}.items()))
        Path(a.people_out).write_text("\n".join([str(len(unseen)), *(f"{n}\t{c}" for n, c in unseen.items())]) + "\n")
        print(f"{len(unseen)} people never trained on or evaluated -> {a.people_out}")
    print(f"{len(people)} people ({sum(n >= 2 for n in people.values())} with ≥ 2 photos): "
          f"{len(genuine)} genuine + {len(impostors)} impostor pairs -> {a.out}")


if __name__ == "__main__":
    main()
