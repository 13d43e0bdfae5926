"""A small gallery's own threshold, end to end through the command-line tools (docs/gallery.md).

    python scripts/gallery_threshold.py [--data DIR] [--out out/gallery_threshold] [--people 40]

1. enrol the first --people RMFRD people of its report half (sorted identities at odd positions),
   each from ONE unmasked photo;
2. match their real masked photos at the model card's threshold;
3. `facerec-gallery calibrate` on the first photo of 300 LFW calibration people
   (artifacts/calibration_people.txt: in neither training nor evaluation) at FAR 0.01;
4. match the masked photos again (the JSON says "threshold_source": "gallery"), and 300 held-out
   strangers, LFW pairsDevTest people (in neither the gallery, training nor calibration).
Prints, at both thresholds, the masked photos accepted as the right person and the strangers accepted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from challenge import link_tree, lfw_people, rmfrd_people, sh

from facerec.training.data import data_root, read_pairs_people, read_people


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="data root (default: $FACEREC_DATA, else ../shared/data)")
    ap.add_argument("--out", default="out/gallery_threshold")
    ap.add_argument("--people", type=int, default=40)
    a = ap.parse_args()
    data, out = data_root(a.data), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    g = str(out / "gallery.h5")
    Path(g).unlink(missing_ok=True)
    people = rmfrd_people(data)
    chosen = dict(list(people.items())[1::2][:a.people])  # report half
    sh("facerec-gallery", "enroll", "--dir", str(link_tree(out / "enrol", {n: k["unmasked"][:1] for n, k in chosen.items()})),
       "--gallery", g, "--quiet")
    probes = [(n, p) for n, k in chosen.items() for p in k["masked"]]

    def accepted(label: str) -> dict:
        res = json.loads(sh("facerec-match", *[str(p) for _, p in probes], "--gallery", g, "--json", capture=True))
        right = sum(bool(r["faces"]) and r["faces"][0]["identity"] == n for (n, _), r in zip(probes, res))
        rank1 = sum(bool(r["faces"]) and r["faces"][0]["matches"][0]["identity"] == n for (n, _), r in zip(probes, res))
        print(f"{label}: threshold {res[0]['threshold']:.4f} ({res[0]['threshold_source']}): {right} of {len(probes)} "
              f"masked photos accepted as the right person ({right / max(rank1, 1):.0%} of the {rank1} right at rank 1)")
        return res[0]

    model = accepted("before calibrating")
    calibration = lfw_people(data, 300, set(read_people(Path(__file__).parents[1] / "artifacts" / "calibration_people.txt")))
    r = json.loads(sh("facerec-gallery", "calibrate", "--gallery", g, "--far", "0.01", "--json", "--quiet",
                      "--strangers", str(link_tree(out / "strangers", calibration)), capture=True))
    print(f"calibrated: threshold {r['threshold']:.4f} at FAR {r['far']:g} on {r['strangers']} stranger faces "
          f"({r['false_accepts']} accepted there; the card's {model['threshold']:.4f} accepts {r['model_threshold_far_there']:.2%})")
    gallery = accepted("after calibrating")
    held_out = lfw_people(data, 300, read_pairs_people(data / "lfw" / "pairsDevTest.txt"))
    res = json.loads(sh("facerec-match", *[str(v[0]) for v in held_out.values()], "--gallery", g, "--json", capture=True))
    scores = [x["faces"][0]["score"] for x in res if x["faces"]]
    for label, t in (("model", model["threshold"]), ("gallery", gallery["threshold"])):
        fa = sum(s >= t for s in scores)
        print(f"held-out strangers at the {label} threshold {t:.4f}: {fa} of {len(scores)} accepted ({fa / len(scores):.2%})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
