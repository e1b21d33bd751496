from __future__ import annotations

import copy
from pathlib import Path

import pytest

from faceattr.compare.golden import GOLDEN_DIR, compare_golden, main, run_snapshot
from faceattr.io import read_json, write_json

PROTOCOL = GOLDEN_DIR / "synthetic_small.toml"
EXPECTED = read_json(GOLDEN_DIR / "synthetic_small.json")


def _run_modified(tmp_path: Path, old: str, new: str) -> dict[str, object]:
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
    diffs = compare_golden(EXPECTED, _run_modified(tmp_path, old, new))
    kinds = {d.kind for d in diffs}
    assert "metric" in kinds
    assert not kinds & {"missing", "extra", "format"}  # same records: the numbers moved


def test_a_metric_within_tolerance_passes_and_beyond_it_fails() -> None:
    key = next(k for k, v in EXPECTED["records"].items() if v["margin_rad"] is not None)
    nudged = copy.deepcopy(EXPECTED)
    nudged["records"][key]["margin_rad"] += 5e-7
    assert compare_golden(EXPECTED, nudged) == ()
    nudged["records"][key]["margin_rad"] += 1e-5
    (diff,) = compare_golden(EXPECTED, nudged)
    assert (diff.kind, diff.key, diff.field) == ("metric", key, "margin_rad")


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
