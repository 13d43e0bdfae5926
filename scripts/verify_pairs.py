"""facerec-verify's decisions on an LFW pairs file, at the model card's 1:1 threshold.

    python scripts/verify_pairs.py [--data DIR] [--pairs lfw/pairsDevTest.txt]

Every pair goes through `Recognizer.verify` (what `facerec-verify A B` runs); a pair where a photo
shows no face counts as wrong, as in `facerec-eval verify`. Prints the accuracy at the card's
threshold beside the card's cross-validated 10-fold accuracy on pairsDevTest (its threshold picked
per fold on the other nine), which is the ceiling a single fixed threshold can reach.
"""

from __future__ import annotations

import argparse
import json

from facerec.training.data import data_root
from facerec.evaluation.evaluate import read_pairs
from facerec.recognizer import Recognizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="data root (default: $FACEREC_DATA, else ../shared/data)")
    ap.add_argument("--pairs", default="lfw/pairsDevTest.txt", help="pairs file, relative to the data root")
    a = ap.parse_args()
    data = data_root(a.data)
    pairs = read_pairs(data / a.pairs, data / "lfw" / "lfw-deepfunneled")
    rec = Recognizer()
    right = undecided = 0
    for p in pairs:
        r = rec.verify(p.first, p.second)
        undecided += r["same"] is None
        right += r["same"] is not None and r["same"] == p.same
    t, _, far = rec.pair_threshold()
    card = rec.embedder.card.get("evaluation", {}).get("this_model", {}).get("pairsDevTest", {})
    print(json.dumps({"pairs": len(pairs), "accuracy": right / len(pairs), "undecided": undecided, "threshold": t,
                      "threshold_far": far, "card_10fold_accuracy": card.get("accuracy")}))


if __name__ == "__main__":
    main()
