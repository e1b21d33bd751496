"""Two runs that differ only in the last float bits of their embeddings compare as equivalent
(or inconclusive on few pairs), never as a regression; a real change is still detected."""

from __future__ import annotations

from pathlib import Path

from faceattr.compare import compare_paths
from faceattr.records import PairRecord
from faceattr.stats.tolerance import TheoremSettings, record_tolerance
from tests.compare.builders import write_records_run
from tests.compare.float_runs import FULL_PROTOCOL, swapped, two_machines

THEOREM = TheoremSettings.from_protocol(FULL_PROTOCOL)


def _runs(tmp_path: Path, a: list[PairRecord], b: list[PairRecord]) -> tuple[Path, Path]:
    return (write_records_run(tmp_path / "a", {"saliency": a}, protocol=FULL_PROTOCOL),
            write_records_run(tmp_path / "b", {"saliency": b}, protocol=FULL_PROTOCOL))


def test_last_bit_differences_compare_as_equivalent_with_flips_only_on_boundary_pairs(
        tmp_path: Path) -> None:
    a, b = two_machines(300, seed=0, n_ties=12)
    flipped = [ra.pair_id for ra, rb in zip(a, b, strict=True) if ra.falsified != rb.falsified]
    assert flipped  # the ties really flip on the other "machine"
    result = compare_paths(*_runs(tmp_path, a, b), margin=0.1, alpha=0.05)
    assert result.exit_code == 0, result.exit_reasons
    (pc,) = result.paired
    assert pc.verdict == "equivalent"
    assert pc.n_flips == pc.n_boundary_flips == len(flipped)
    assert all(c.boundary for c in pc.changes)
    assert pc.n_boundary == 12  # exactly the engineered ties (|margin| ~ 1e-8 rad)
    assert pc.mcnemar is not None
    assert pc.mcnemar.table.n_discordant == 0
    assert all(md.n_beyond_tolerance == 0 for md in pc.metric_deltas)
    assert any(md.max_abs_delta for md in pc.metric_deltas)  # the metrics did move


def test_last_bit_differences_on_few_pairs_are_inconclusive_not_a_regression(
        tmp_path: Path) -> None:
    a, b = two_machines(20, seed=1, n_ties=6)
    result = compare_paths(*_runs(tmp_path, a, b), margin=0.1, alpha=0.05)
    assert result.exit_code == 4, result.exit_reasons
    (pc,) = result.paired
    assert pc.n_boundary_flips >= 1
    assert pc.n_flips == pc.n_boundary_flips
    assert pc.plan is not None
    assert pc.plan.n_needed is not None
    assert pc.plan.n_needed > pc.n_tested


def test_many_boundary_flips_one_way_are_still_not_a_regression(tmp_path: Path) -> None:
    # every tie is made to flip the same way (falsified in A, survived in B): McNemar on them
    # would reject (p = 2 / 2^20), but float noise at the boundary is not evidence
    a, b = two_machines(200, seed=2, n_ties=40)
    ties = [i for i, (ra, rb) in enumerate(zip(a, b, strict=True))
            if record_tolerance(ra, THEOREM).boundary_simple and
            record_tolerance(rb, THEOREM).boundary_simple]
    forced_a, forced_b = list(a), list(b)
    n_forced = 0
    for i in ties:
        ma, mb = a[i].margin_rad, b[i].margin_rad
        assert ma is not None
        assert mb is not None
        if ma <= 0 < mb:
            n_forced += 1
        elif mb <= 0 < ma:
            forced_a[i], forced_b[i] = b[i], a[i]  # the two machines' records trade places
            n_forced += 1
    assert n_forced >= 10
    result = compare_paths(*_runs(tmp_path, forced_a, forced_b), margin=0.1, alpha=0.05)
    (pc,) = result.paired
    assert pc.n_boundary_flips == n_forced
    assert result.exit_code == 0, result.exit_reasons


def test_a_real_change_on_non_boundary_pairs_is_still_detected(tmp_path: Path) -> None:
    a, b = two_machines(300, seed=0, n_ties=12)
    survivors = [i for i, r in enumerate(b) if not r.falsified][12:52]
    changed = list(b)
    for i in survivors:
        changed[i] = swapped(b[i])  # high and low regions trade places: a real change
    result = compare_paths(*_runs(tmp_path, a, changed), margin=0.1, alpha=0.05)
    assert result.exit_code == 1, result.exit_reasons
    (pc,) = result.paired
    assert pc.verdict == "regression"
    real = [c for c in pc.changes if c.verdict_flip and not c.boundary]
    assert {c.pair_id for c in real} == {b[i].pair_id for i in survivors}
    (margin,) = [md for md in pc.metric_deltas if md.metric == "margin_rad"]
    assert margin.n_beyond_tolerance == len(survivors)


def test_a_single_real_flip_is_listed_as_real_not_boundary(tmp_path: Path) -> None:
    a, b = two_machines(300, seed=0, n_ties=12)
    i = next(i for i, r in enumerate(b) if not r.falsified and i >= 12)
    changed = list(b)
    changed[i] = swapped(b[i])
    result = compare_paths(*_runs(tmp_path, a, changed), margin=0.1, alpha=0.05)
    (pc,) = result.paired
    (real,) = [c for c in pc.changes if not c.boundary]
    assert (real.pair_id, real.verdict_flip) == (b[i].pair_id, True)
    assert pc.n_flips - pc.n_boundary_flips == 1
    assert "1 verdict flip(s)" in pc.reason
