from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from faceattr.experiments.golden import (
    GOLDEN_DIR,
    compare_golden,
    golden_failures,
    main,
    run_snapshot,
)
from faceattr.io import read_json, write_json
from faceattr.stats.tolerance import RecordTolerance

PROTOCOL = GOLDEN_DIR / "synthetic_small.toml"
EXPECTED = read_json(GOLDEN_DIR / "synthetic_small.json")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A fresh snapshot of the synthetic golden protocol (it carries per-record tolerances)."""
    return run_snapshot(PROTOCOL, tmp_path_factory.mktemp("fresh"), name="synthetic_small")


def _tolerance(row: dict[str, Any]) -> RecordTolerance:
    return RecordTolerance.from_json(row["float_tolerance"])


def _run_modified(tmp_path: Path, old: str, new: str) -> dict[str, Any]:
    text = PROTOCOL.read_text(encoding="utf-8")
    assert text.count(old) == 1  # the edit really happens
    path = tmp_path / "modified.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return run_snapshot(path, tmp_path / "run", name="synthetic_small")


@pytest.mark.parametrize("name", ["synthetic_small", "demo_small"])
def test_the_golden_baseline_holds(tmp_path: Path, name: str) -> None:
    # demo_small: dlib's ResNet on the real demo photos (fetched and sha256-checked)
    fresh = run_snapshot(GOLDEN_DIR / f"{name}.toml", tmp_path, name=name)
    assert compare_golden(read_json(GOLDEN_DIR / f"{name}.json"), fresh) == ()


@pytest.mark.parametrize(("old", "new"), [
    ("q_frac = 0.10", "q_frac = 0.15"),
    ('fill = "mean"', 'fill = "zero"'),
], ids=["quantile-q", "fill-strategy"])
def test_a_silent_change_of_the_science_fails_the_golden_check(tmp_path: Path, old: str,
                                                              new: str) -> None:
    modified = _run_modified(tmp_path, old, new)
    diffs = compare_golden(EXPECTED, modified)
    kinds = {d.kind for d in diffs}
    assert "metric" in kinds
    assert not kinds & {"missing", "extra", "format"}  # same records: the numbers moved
    # the science moves margins by far more than the float tolerance, not just past it
    ratios = [abs(row["margin_rad"] - EXPECTED["records"][key]["margin_rad"]) /
              float(_tolerance(row).margin_rad or 1.0)
              for key, row in modified["records"].items() if row["margin_rad"] is not None]
    assert max(ratios) > 100


def test_a_metric_within_its_tolerance_passes_and_beyond_it_fails(
        fresh: dict[str, Any]) -> None:
    key = next(k for k, v in fresh["records"].items() if v["margin_rad"] is not None)
    tol = _tolerance(fresh["records"][key]).margin_rad
    assert tol is not None
    assert 1e-6 < tol < 1e-4  # covers float32 last bits, far below a change of the science
    nudged = copy.deepcopy(fresh)
    nudged["records"][key]["margin_rad"] += 0.5 * tol
    assert compare_golden(fresh, nudged) == ()
    nudged["records"][key]["margin_rad"] += tol
    (diff,) = compare_golden(fresh, nudged)
    assert (diff.kind, diff.key, diff.field) == ("metric", key, "margin_rad")


def test_snapshots_without_tolerances_fall_back_to_the_rule_on_the_means() -> None:
    key = next(k for k, v in EXPECTED["records"].items() if v["margin_rad"] is not None)
    nudged = copy.deepcopy(EXPECTED)
    nudged["records"][key]["margin_rad"] += 1e-6  # the measured cross-CPU size
    assert compare_golden(EXPECTED, nudged) == ()
    nudged["records"][key]["margin_rad"] += 1e-3  # the size of a change of the science
    (diff,) = compare_golden(EXPECTED, nudged)
    assert (diff.kind, diff.field) == ("metric", "margin_rad")


def _flip_simple(row: dict[str, Any]) -> None:
    row["falsified_simple"] = not row["falsified_simple"]
    row["falsified"] = row["falsified_simple"]  # the golden protocol's primary rule is simple


def test_a_verdict_moved_on_a_boundary_record_is_informational(fresh: dict[str, Any]) -> None:
    key = next(k for k, v in fresh["records"].items() if v["status"] == "valid")
    expected, actual = copy.deepcopy(fresh), copy.deepcopy(fresh)
    for snap in (expected, actual):  # both machines say: within tolerance of margin = 0
        snap["records"][key]["float_tolerance"]["boundary_simple"] = True
    _flip_simple(actual["records"][key])
    diffs = compare_golden(expected, actual)
    assert sorted((d.kind, d.field) for d in diffs) == [("boundary", "falsified"),
                                                         ("boundary", "falsified_simple")]
    assert golden_failures(diffs) == ()
    assert "informational" in str(diffs[0])


def test_a_verdict_moved_away_from_the_boundary_fails(fresh: dict[str, Any]) -> None:
    key = next(k for k, v in fresh["records"].items() if v["status"] == "valid")
    expected, actual = copy.deepcopy(fresh), copy.deepcopy(fresh)
    # one side within tolerance of the boundary is not enough: both must be
    expected["records"][key]["float_tolerance"]["boundary_simple"] = True
    _flip_simple(actual["records"][key])
    diffs = compare_golden(expected, actual)
    assert {d.kind for d in golden_failures(diffs)} == {"verdict"}
    # a boundary theorem verdict does not cover a moved simple verdict
    actual["records"][key]["float_tolerance"]["boundary_simple"] = True
    expected["records"][key]["float_tolerance"]["boundary_simple"] = False
    for snap in (expected, actual):
        snap["records"][key]["float_tolerance"]["boundary_theorem"] = True
    assert {d.kind for d in golden_failures(compare_golden(expected, actual))} == {"verdict"}


def test_a_status_change_is_never_a_boundary_move(fresh: dict[str, Any]) -> None:
    key = next(k for k, v in fresh["records"].items() if v["status"] == "valid")
    expected, actual = copy.deepcopy(fresh), copy.deepcopy(fresh)
    for snap in (expected, actual):
        snap["records"][key]["float_tolerance"]["boundary_simple"] = True
    actual["records"][key]["status"] = "trivial"
    _flip_simple(actual["records"][key])
    kinds = {d.kind for d in compare_golden(expected, actual)}
    assert "boundary" not in kinds
    assert "verdict" in kinds


def test_a_flipped_verdict_or_a_lost_record_fails() -> None:
    key = next(iter(EXPECTED["records"]))
    changed = copy.deepcopy(EXPECTED)
    changed["records"][key]["falsified_theorem"] = not changed["records"][key][
        "falsified_theorem"]
    del changed["records"][next(reversed(EXPECTED["records"]))]
    kinds = sorted(d.kind for d in compare_golden(EXPECTED, changed))
    assert kinds == ["missing", "verdict"]


def test_the_update_then_check_commands_report_a_change_and_exit_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = PROTOCOL.read_text(encoding="utf-8")
    assert text.count("n_pairs = 16") == 1
    (tmp_path / "g.toml").write_text(text.replace("n_pairs = 16", "n_pairs = 4"),
                                     encoding="utf-8")
    assert main(["--dir", str(tmp_path), "--update"]) == 0
    written = read_json(tmp_path / "g.json")
    key = next(k for k, v in written["records"].items() if v["status"] == "valid")
    written["records"][key]["falsified"] = not written["records"][key]["falsified"]
    write_json(tmp_path / "g.json", written)
    assert main(["--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"verdict: {key} falsified" in out
    assert "g: CHANGED (1 difference(s))" in out
