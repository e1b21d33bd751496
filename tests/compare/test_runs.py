from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceattr.compare import compare_main, compare_paths
from faceattr.errors import EXIT_FAILED, EXIT_INCONCLUSIVE, InputError
from tests.compare.builders import PROTOCOL, rerecord, write_run

LEGACY = Path(__file__).parents[2] / "fixtures" / "legacy"
SAME = [i % 4 == 0 for i in range(200)]


def _code(a: Path, b: Path, margin: float = 0.1) -> tuple[int, str]:
    return compare_main(a, b, margin=margin, alpha=0.05, format="text")


def test_identical_runs_on_enough_pairs_are_equivalent_exit_0(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {"saliency": SAME, "oracle": [False] * 200})
    b = write_run(tmp_path / "b", {"saliency": SAME, "oracle": [False] * 200})
    code, text = _code(a, b)
    assert code == 0, text
    assert "EXIT 0" in text
    assert "equivalent: all 2 compared" in text


def test_flipped_verdicts_are_a_regression_exit_1_and_are_listed(tmp_path: Path) -> None:
    flipped = [v or 10 <= i < 40 for i, v in enumerate(SAME)]
    a = write_run(tmp_path / "a", {"saliency": SAME})
    b = write_run(tmp_path / "b", {"saliency": flipped})
    result = compare_paths(a, b, margin=0.1, alpha=0.05)
    assert result.exit_code == 1
    (pc,) = result.paired
    assert pc.verdict == "regression"
    assert pc.n_flips == sum(a != b for a, b in zip(SAME, flipped, strict=True))
    assert pc.risk_difference is not None
    assert pc.risk_difference.estimate > 0  # B - A: FR went up
    assert pc.mcnemar is not None
    assert pc.mcnemar.test.reject
    (margin_delta,) = [m for m in pc.metric_deltas if m.metric == "margin_rad"]
    assert margin_delta.max_abs_delta == pytest.approx(0.95 + 0.3)
    text = compare_main(a, b, margin=0.1, alpha=0.05, format="text")[1]
    assert "flip p0010: survived (valid) -> falsified (valid)" in text
    assert "regression: m/saliency" in text


def test_identical_runs_on_too_few_pairs_are_inconclusive_exit_4_with_the_pairs_needed(
        tmp_path: Path) -> None:
    # was exit 1 ("regression") before issue #17: not shown equivalent is not a difference
    a = write_run(tmp_path / "a", {"saliency": SAME[:12]})
    b = write_run(tmp_path / "b", {"saliency": SAME[:12]})
    code, text = _code(a, b)
    assert code == EXIT_INCONCLUSIVE == 4
    assert "EXIT 4 (INCONCLUSIVE)" in text
    assert "not shown equivalent within +-0.1" in text
    assert "inconclusive: m/saliency: neither equivalence within +-0.1 nor a difference shown" \
        in text
    # no discordant pair in 12: one assumed (1/24 each way); the paired TOST then needs 96
    assert "about 96 shared pairs needed to show equivalence (80% power" in text
    (pc,) = compare_paths(a, b, margin=0.1, alpha=0.05).paired
    assert pc.verdict == "inconclusive"
    assert pc.plan is not None
    assert (pc.plan.n_observed, pc.plan.n_needed) == (12, 96)
    doc = json.loads(compare_main(a, b, margin=0.1, alpha=0.05, format="json")[1])
    assert (doc["exit_code"], doc["exit_verdict"]) == (4, "INCONCLUSIVE")
    assert doc["paired"][0]["plan"]["n_needed"] == 96


def test_a_regression_on_few_pairs_is_still_exit_1(tmp_path: Path) -> None:
    # 12 pairs, 8 of them falsified only in B: McNemar exact p = 2 / 2^8 < 0.05
    base = [False] * 12
    a = write_run(tmp_path / "a", {"saliency": base})
    b = write_run(tmp_path / "b", {"saliency": [i < 8 for i in range(12)]})
    code, text = _code(a, b)
    assert code == EXIT_FAILED == 1
    assert "McNemar p = 0.00781 (significant)" in text


def test_a_difference_interval_beyond_the_margin_is_a_regression_without_mcnemar(
        tmp_path: Path) -> None:
    # 5 of 5 pairs newly falsified: exact McNemar p = 2 / 2^5 = 0.0625 does not reject, but the
    # Newcombe interval of B - A, [0.386, 1], lies beyond the margin: a difference is shown
    a = write_run(tmp_path / "a", {"saliency": [False] * 5})
    b = write_run(tmp_path / "b", {"saliency": [True] * 5})
    result = compare_paths(a, b, margin=0.05, alpha=0.05)
    (pc,) = result.paired
    assert pc.mcnemar is not None
    assert pc.risk_difference is not None
    assert not pc.mcnemar.test.reject
    assert pc.risk_difference.low == pytest.approx(0.3855, abs=1e-4)
    assert (result.exit_code, pc.verdict) == (1, "regression")
    assert "beyond the margin" in pc.reason


def test_different_estimands_cannot_be_compared_exit_2(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {"saliency": SAME})
    b = write_run(tmp_path / "b", {"saliency": SAME}, verdict_rule="theorem")
    code, text = _code(a, b)
    assert code == 2
    assert "different estimands: A share_falsified_itt[verdict=simple], " \
           "B share_falsified_itt[verdict=theorem]" in text


def test_no_shared_pairs_cannot_be_compared_exit_2(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {"saliency": SAME})
    b = write_run(tmp_path / "b", {"saliency": SAME}, first_pair=1000)
    code, text = _code(a, b)
    assert code == 2
    assert "no shared pair ids" in text


def test_same_pair_id_with_other_images_cannot_be_compared_exit_2(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {"saliency": SAME})
    b = write_run(tmp_path / "b", {"saliency": SAME}, image_salt="f")
    code, text = _code(a, b)
    assert code == 2
    assert "200 pair id(s) name different images" in text


def test_a_summary_that_disagrees_with_its_records_cannot_be_compared(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {"saliency": SAME})
    b = write_run(tmp_path / "b", {"saliency": SAME})
    doc = json.loads((b / "summary.json").read_text(encoding="utf-8"))
    doc["methods"]["saliency"]["fr_itt"]["count"] -= 1
    doc["methods"]["saliency"]["fr_itt"]["estimate"] = \
        doc["methods"]["saliency"]["fr_itt"]["count"] / 200
    (b / "summary.json").write_text(json.dumps(doc), encoding="utf-8")
    rerecord(b, "summary.json")
    code, text = _code(a, b)
    assert code == 2
    assert "summary.json says 49/200 falsified but records.jsonl has 50/200" in text


def test_protocol_and_version_differences_are_listed_first_and_do_not_block(
        tmp_path: Path) -> None:
    other = {**PROTOCOL, "falsification": {"q_frac": 0.15, "fill": "mean"}}
    a = write_run(tmp_path / "a", {"saliency": SAME})
    b = write_run(tmp_path / "b", {"saliency": SAME}, protocol=other,
                  packages={"numpy": "2.5.0", "torch": "2.13.0"})
    code, text = _code(a, b)
    assert code == 0
    assert "[protocol] falsification.q_frac: A 0.1 | B 0.15" in text
    assert "[provenance] packages.numpy: A \"2.4.6\" | B \"2.5.0\"" in text
    assert text.index("[protocol]") < text.index("Paired comparisons")


def test_partial_overlap_is_paired_on_the_shared_pairs(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {"saliency": SAME})
    b = write_run(tmp_path / "b", {"saliency": SAME[50:] + SAME[:50]}, first_pair=50)
    result = compare_paths(a, b, margin=0.1, alpha=0.05)
    (pc,) = result.paired
    assert (pc.n_shared, pc.n_only_a, pc.n_only_b) == (150, 50, 50)
    assert pc.n_flips == 0


def test_a_trivial_pair_counts_as_falsified_and_its_status_change_is_listed(
        tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {"saliency": SAME})
    b = write_run(tmp_path / "b", {"saliency": SAME}, trivial=[0])  # p0000 was falsified
    (pc,) = compare_paths(a, b, margin=0.1, alpha=0.05).paired
    (change,) = pc.changes
    assert (change.status_a, change.status_b, change.verdict_flip) == ("valid", "trivial", False)


def test_json_output_is_strict_and_complete(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {"saliency": SAME})
    b = write_run(tmp_path / "b", {"saliency": [not v for v in SAME]})
    code, raw = compare_main(a, b, margin=0.1, alpha=0.05, format="json")
    doc = json.loads(raw)
    assert code == doc["exit_code"] == 1
    (pc,) = doc["paired"]
    assert pc["n_flips"] == 200
    assert pc["mcnemar"]["test"]["reject"] is True
    assert pc["equivalence"]["equivalent"] is False


def test_a_run_against_a_legacy_file_is_not_comparable(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {"saliency": SAME})
    code, text = _code(a, LEGACY / "exp6_4_n500_results.json")
    assert code == 2
    assert "B has no pair ids" in text


def test_a_folder_without_summary_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty: not a complete faceattr run folder "
                                         r"\(no summary\.json\)"):
        compare_paths(tmp_path / "empty", tmp_path / "empty", margin=0.1, alpha=0.05)


@pytest.mark.parametrize("name", ["summary.json", "manifest.json", "protocol.json"])
def test_a_corrupt_artefact_is_an_input_error(tmp_path: Path, name: str) -> None:
    a = write_run(tmp_path / "a", {"saliency": SAME})
    (a / name).write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match=rf"{name}: edited after the run"):
        compare_paths(a, a, margin=0.1, alpha=0.05)  # hand-edited: refused by its hash
    rerecord(a, name)
    with pytest.raises(InputError, match=rf"{name}: not valid JSON"):
        compare_paths(a, a, margin=0.1, alpha=0.05)


def test_a_missing_path_and_a_bad_margin_are_input_errors(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {"saliency": SAME})
    with pytest.raises(InputError, match=r"nope\.json: file not found"):
        compare_paths(a, tmp_path / "nope.json", margin=0.1, alpha=0.05)
    with pytest.raises(InputError, match="margin must satisfy 0 < margin < 1"):
        compare_paths(a, a, margin=1.5, alpha=0.05)
    with pytest.raises(InputError, match=r"alpha must be < 0\.5"):
        compare_paths(a, a, margin=0.1, alpha=0.6)


def test_a_record_with_a_renamed_key_is_refused(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {"saliency": SAME})
    lines = (a / "records.jsonl").read_text(encoding="utf-8").replace(
        '"falsified":', '"is_falsified":')
    (a / "records.jsonl").write_text(lines, encoding="utf-8")
    rerecord(a, "records.jsonl")
    with pytest.raises(InputError, match=r"records\.jsonl\S*: .*'is_falsified'"):
        compare_paths(a, a, margin=0.1, alpha=0.05)


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {"saliency": SAME})
    with pytest.raises(InputError, match="format must be 'text' or 'json'"):
        compare_main(a, a, margin=0.1, alpha=0.05, format="yaml")  # type: ignore[arg-type]


def test_two_real_runs_with_a_different_fill_list_the_protocol_change(tmp_path: Path) -> None:
    from faceattr.experiments.golden import GOLDEN_DIR
    from faceattr.experiments.run import run_protocol
    from faceattr.protocol import load_protocol

    text = (GOLDEN_DIR / "synthetic_small.toml").read_text(encoding="utf-8")
    roots = []
    for name, fill in (("a", 'fill = "mean"'), ("b", 'fill = "zero"')):
        path = tmp_path / f"{name}.toml"
        path.write_text(text.replace('fill = "mean"', fill).replace(
            "n_pairs = 16", "n_pairs = 6"), encoding="utf-8")
        roots.append(run_protocol(load_protocol(path), tmp_path / name, progress=False).root)
    result = compare_paths(roots[0], roots[1], margin=0.1, alpha=0.05)
    # 6 pairs can never show equivalence within 0.1 (25 would at zero discordance), and no
    # method shows a difference: inconclusive (exit 1 before issue #17)
    assert result.exit_code == 4
    assert {p.verdict for p in result.paired} == {"inconclusive"}
    assert [c.key for c in result.context if c.category == "protocol"] == ["falsification.fill"]
    assert {p.method for p in result.paired} == {"saliency", "oracle", "inverted", "random",
                                                 "constant"}


def test_the_html_section_is_escaped(tmp_path: Path) -> None:
    from faceattr.compare import render_html_section

    a = write_run(tmp_path / "a", {"<b>": SAME})
    html = render_html_section(compare_paths(a, a, margin=0.1, alpha=0.05))
    assert "Comparison: EQUIVALENT (exit 0)" in html
    assert "&lt;b&gt;" in html
    assert "<b>" not in html
    small = write_run(tmp_path / "small", {"saliency": SAME[:12]})
    html = render_html_section(compare_paths(small, small, margin=0.1, alpha=0.05))
    assert "Comparison: INCONCLUSIVE (exit 4)" in html
