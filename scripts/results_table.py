"""The results table (markdown) from one evaluation folder: our model beside its peers.

    bash scripts/eval_model.sh MODEL OUT && bash scripts/eval_peers.sh OUT
    .venv/bin/python scripts/results_table.py OUT [--label "facerec (shipped)"] [--card MODEL]

Other models evaluated into the same folder with a file prefix (`lite0-devtest.json`, ...) join as
columns: `--peers "lite0:EfficientNet-Lite0;sface;dlib"` (PREFIX or PREFIX:LABEL, `;`-separated).

`--card MODEL` also records our model's figures (and the peers') in MODEL/model_card.json.

Rows: LFW pairsDevTest (10 interleaved folds, threshold cross-validated), the same with a synthetic
mask on the second photo, RMFRD real masked probes vs unmasked enrolment (rank-1 over all people, then
on the selection and report halves of its identity split), and with 1,000 LFW distractors.
"""

import argparse
import json
from pathlib import Path


def load(folder: Path, prefix: str, name: str) -> dict | None:
    path = folder / f"{prefix}{name}.json"
    return json.loads(path.read_text()) if path.is_file() and path.stat().st_size else None


def cells(folder: Path, prefix: str) -> list[str]:
    dev, masked = load(folder, prefix, "devtest"), load(folder, prefix, "devtest_masked")
    rm, rm1000 = load(folder, prefix, "rmfrd"), load(folder, prefix, "rmfrd_lfw1000")

    def verify(r):
        if r is None:
            return "—"
        n = r["pairs_failed"]
        failed = f"; {n} pair{'s' if n > 1 else ''} without a face" if n else ""
        return f"{100 * r['accuracy_mean']:.1f} ± {100 * r['accuracy_std']:.1f} %, AUC {r['auc']:.3f}{failed}"

    def rank(r, half=None):
        if r is None:
            return "—"
        h = r["halves"][half] if half else r
        return f"{100 * h['rank1']:.1f} % (rank-5 {100 * h['rank5']:.1f} %)"

    return [verify(dev), verify(masked), rank(rm), rank(rm, "selection"), rank(rm, "report"), rank(rm1000)]


def figures(folder: Path, prefix: str) -> dict:
    """The headline numbers of one embedder, for a model card."""
    out = {}
    for name in ("devtest", "devtest_masked"):
        r = load(folder, prefix, name)
        if r:
            out[f"pairsDevTest{'_masked' if 'masked' in name else ''}"] = {
                "accuracy": r["accuracy_mean"], "std": r["accuracy_std"], "auc": r["auc"], "pairs_failed": r["pairs_failed"]}
    for name in ("rmfrd", "rmfrd_lfw1000"):
        r = load(folder, prefix, name)
        if r:
            out[name] = {"rank1": r["rank1"], "rank5": r["rank5"],
                         **{f"rank1_{h}_half": v["rank1"] for h, v in r["halves"].items()}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--label", default="facerec (shipped)")
    ap.add_argument("--peers", default="sface;dlib", help="PREFIX or PREFIX:LABEL, ';'-separated")
    ap.add_argument("--card", type=Path, default=None, help="model export whose card gets the figures")
    a = ap.parse_args()
    peers = [p.partition(":") for p in a.peers.split(";")]
    columns = [(a.label, "")] + [(label or prefix, f"{prefix}-") for prefix, _, label in peers]
    rows = ["LFW `pairsDevTest`, 10-fold accuracy", "same, synthetic mask on the 2nd photo",
            "RMFRD real masks, rank-1 (all 243 people)", "RMFRD rank-1, selection half", "RMFRD rank-1, report half",
            "RMFRD + 1,000 LFW distractors, rank-1"]
    table = [cells(a.folder, prefix) for _, prefix in columns]
    print("| benchmark | " + " | ".join(label for label, _ in columns) + " |")
    print("| --- |" + " --- |" * len(columns))
    for i, row in enumerate(rows):
        print(f"| {row} | " + " | ".join(col[i] for col in table) + " |")
    if a.card:
        card_path = a.card / "model_card.json"
        card = json.loads(card_path.read_text())
        card["evaluation"] = {
            "protocol": "facerec-eval via scripts/eval_model.sh and scripts/eval_peers.sh (docs/evaluation.md): LFW "
                        "pairsDevTest 10 interleaved folds, threshold cross-validated; synthetic mask on the 2nd photo; "
                        "RMFRD masked probes vs unmasked enrolment, halves = sorted identities at even (selection) / "
                        "odd (report) positions; 1,000 LFW distractors",
            "this_model": figures(a.folder, ""),
            "peers": {prefix: figures(a.folder, f"{prefix}-") for prefix, _, _ in peers},
        }
        card_path.write_text(json.dumps(card, indent=2) + "\n")
    cal = load(a.folder, "", "calibrate_gallery")
    if cal:
        o = cal["threshold_open_set"]
        print(f"\nThreshold {cal['threshold']:.4f}: {o['false_accepts']} of {o['strangers']} strangers accepted "
              f"({100 * o['far']:.2f} %) against a {o['gallery_people']}-person gallery.")


if __name__ == "__main__":
    main()
