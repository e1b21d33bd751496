from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceattr.compare import compare_main, compare_paths
from faceattr.compare.legacy import load_legacy
from faceattr.compare.result import ComparisonResult

LEGACY = Path(__file__).parents[2] / "fixtures" / "legacy"
E61 = LEGACY / "exp6_1_n500_results.json"
E64 = LEGACY / "exp6_4_n500_results.json"


def _compare(a: str | Path, b: str | Path) -> ComparisonResult:
    return compare_paths(LEGACY / a, LEGACY / b, margin=0.05, alpha=0.05)


def _kinds(result: ComparisonResult, subject: str) -> set[str]:
    return {f.kind for f in result.findings if f.subject == subject}


def test_both_layouts_are_read_as_fractions_with_estimands_and_interval_methods() -> None:
    a = {(e.figure.model, e.figure.method): e.figure for e in load_legacy(E61, "A").entries}
    b = {(e.figure.model, e.figure.method): e.figure for e in load_legacy(E64, "B").entries}
    grad_a, grad_b = a[("FaceNet", "Grad-CAM")], b[("FaceNet", "Grad-CAM")]
    assert grad_a.estimate == pytest.approx(0.10477125)
    assert (grad_a.low, grad_a.high) == pytest.approx((0.0548696, 0.1908902), abs=1e-6)
    assert grad_a.estimand == "mean_per_pair_comparison_fraction"
    assert grad_a.interval_method == "wilson-pseudo-count"
    assert not grad_a.interval_matches_estimand
    assert grad_b.estimand == "share_falsified_valid"
    assert grad_b.interval_method == "wilson"
    assert grad_b.interval_matches_estimand
    assert (grad_b.estimate, grad_b.high) == pytest.approx((0.0, 0.0458181), abs=1e-6)
    assert grad_b.degenerate
    assert not grad_b.has_pair_ids


def test_the_two_dissertation_files_report_the_disagreement_estimands_and_no_pairing() -> None:
    result = _compare(E61.name, E64.name)
    assert result.exit_code == 2
    (grad,) = [f for f in result.figures if (f.model, f.method) == ("FaceNet", "Grad-CAM")]
    assert grad.disagreement
    assert grad.same_estimand is False
    assert not grad.paired_possible
    assert grad.a is not None
    assert grad.b is not None
    assert grad.b.degenerate
    reasons = " ".join(result.exit_reasons)
    assert "no pair ids" in reasons
    assert "different estimands for FaceNet/Grad-CAM" in reasons
    assert "disagreement on FaceNet/Grad-CAM: A 0.1048 [0.0549, 0.1909] vs B 0.0000 " \
           "[0.0000, 0.0458]" in reasons
    assert "degenerate: B FaceNet/Grad-CAM has std 0" in reasons
    assert "degenerate" in _kinds(result, "B FaceNet/Grad-CAM")
    assert "nan_p_value" in _kinds(result, "B statistical_tests.Grad-CAM")
    assert "bare_nan" in _kinds(result, "B file")


def test_text_and_json_outputs_say_it_all() -> None:
    code, text = compare_main(E61, E64, margin=0.05, alpha=0.05, format="text")
    assert code == 2
    assert "DISAGREEMENT" in text
    assert "mean of per-pair comparison fractions" in text
    assert "share of falsified pairs" in text
    assert "wilson-pseudo-count (MISMATCHED to the estimand)" in text
    assert "t on the 80 raw per-pair values: [0.0405, 0.1691]" in text
    assert "DEGENERATE" in text
    code_j, raw = compare_main(E61, E64, margin=0.05, alpha=0.05, format="json")
    doc = json.loads(raw)
    assert code_j == 2
    assert doc["exit_code"] == 2
    assert ": NaN" not in raw
    (grad,) = [f for f in doc["figures"] if f["method"] == "Grad-CAM" and f["model"] == "FaceNet"]
    assert grad["a"]["estimand"] == "mean_per_pair_comparison_fraction"
    assert grad["b"]["estimand"] == "share_falsified_valid"
    assert grad["disagreement"] is True


def test_truncated_raw_list_is_a_fault() -> None:
    result = _compare("exp6_1_truncated_list.json", E64.name)
    assert "truncated_list" in _kinds(result, "A FaceNet/Grad-CAM")


def test_percent_above_100_is_a_fault_and_the_figure_is_unusable() -> None:
    result = _compare("exp6_1_percent_above_100.json", E64.name)
    assert "percent_out_of_range" in _kinds(result, "A FaceNet/Grad-CAM")
    (grad,) = [f for f in result.figures if (f.model, f.method) == ("FaceNet", "Grad-CAM")]
    assert grad.a is not None
    assert grad.a.estimate is None
    assert not grad.disagreement


def test_method_in_one_file_only_is_reported() -> None:
    result = _compare(E64.name, "exp6_4_extra_method.json")
    assert "only_in_b" in _kinds(result, "FaceNet/Integrated Gradients")
    (grad,) = [f for f in result.figures if (f.model, f.method) == ("FaceNet", "Grad-CAM")]
    assert grad.same_estimand is True
    assert grad.unpaired is not None  # same estimand, whole counts: descriptive only
    assert result.exit_code == 2


def test_n_disagreeing_with_the_raw_list_is_a_fault() -> None:
    result = _compare("exp6_1_n_disagrees.json", E64.name)
    kinds = _kinds(result, "A FaceNet/Grad-CAM")
    assert {"n_mismatch", "interval_unexplained"} <= kinds
    assert "truncated_list" not in kinds


def test_n_disagreeing_with_the_interval_is_a_fault() -> None:
    result = _compare("exp6_4_n_disagrees.json", E61.name)
    assert "interval_unexplained" in _kinds(result, "A MobileNetV2/Grad-CAM")


def test_the_unmodified_files_have_none_of_the_planted_faults() -> None:
    kinds = {f.kind for f in _compare(E61.name, E64.name).findings}
    assert not kinds & {"truncated_list", "percent_out_of_range", "n_mismatch",
                        "interval_unexplained"}


def test_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"nope\.json: file not found$"):
        compare_paths(tmp_path / "nope.json", E64, margin=0.05, alpha=0.05)


def test_corrupt_json_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"methods": {', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.json: not valid JSON \(.* at line 1"):
        compare_paths(bad, E64, margin=0.05, alpha=0.05)


def test_unknown_layout_is_a_one_line_error(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"results": {}}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"unknown layout: no 'methods'"):
        compare_paths(E61, other, margin=0.05, alpha=0.05)


def test_an_entry_with_a_renamed_key_is_refused_not_defaulted(tmp_path: Path) -> None:
    doc = json.loads(E61.read_text(encoding="utf-8"))
    entry = doc["methods"]["Grad-CAM"]
    entry["falsification_rate"] = entry.pop("falsification_rate_mean")
    renamed = tmp_path / "renamed.json"
    renamed.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValueError, match=r"methods\.Grad-CAM: keys mismatch: missing "
                                         r"\['falsification_rate_mean'\]"):
        compare_paths(renamed, E64, margin=0.05, alpha=0.05)


def test_a_bad_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="margin must satisfy 0 < margin < 1"):
        compare_paths(E61, E64, margin=5.0, alpha=0.05)
