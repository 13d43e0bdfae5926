"""scripts/challenge.py's declared newcomers and how it scores a query (no model run)."""

import csv
import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("challenge", Path(__file__).parent.parent / "scripts" / "challenge.py")
challenge = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(challenge)


def test_newcomers_are_the_first_ten_of_the_report_half_by_name(data_dir):
    if not (data_dir / "rmfrd" / "manifest.csv").is_file():
        pytest.skip("RMFRD not found")
    rows = [r for r in csv.DictReader(open(data_dir / "rmfrd" / "manifest.csv")) if r["cross_identity_duplicate"] != "1"]
    names = sorted({r["identity"] for r in rows})
    report = names[1::2]
    both = [n for n in report if {r["masked"] for r in rows if r["identity"] == n} == {"0", "1"}]
    newcomers = challenge.rmfrd_newcomers(data_dir, 10)
    assert list(newcomers) == both[:10]
    for name, (enrol, masked) in newcomers.items():
        mine = sorted((r for r in rows if r["identity"] == name), key=lambda r: r["path"])
        assert enrol == data_dir / "rmfrd" / next(r["path"] for r in mine if r["masked"] == "0")
        assert masked == [data_dir / "rmfrd" / r["path"] for r in mine if r["masked"] == "1"]


def test_verdict_tells_failures_apart():
    def result(identity, ranked):
        return {"faces": [{"identity": identity, "matches": [{"identity": n, "score": 0.5} for n in ranked]}]}

    assert challenge.verdict("ada", result("ada", ["ada", "bo"]))[0] == "accepted"
    assert challenge.verdict("ada", result(None, ["ada", "bo"]))[0] == "rank1"
    assert challenge.verdict("ada", result("bo", ["bo", "ada"])) == ("wrong", "ada: WRONG, accepted as bo")
    assert challenge.verdict("ada", result(None, ["bo", "ada"])) == ("unknown", "ada: unknown (right person at rank 2)")
    assert challenge.verdict("ada", {"faces": []})[0] == "noface"
