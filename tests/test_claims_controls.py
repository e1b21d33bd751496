# Each control claim passes on the known answer and fails on a planted defect.
from __future__ import annotations

import pytest

from tests.helpers import judge, records

ORACLE = {"method": "oracle", "threshold": 0.05, "on": "ci_high"}
INVERTED = {"method": "inverted", "threshold": 0.95, "on": "ci_low"}
RANDOM = {"method": "random", "chance_rate": 0.5}
CONSTANT = {"method": "constant"}


def _healthy() -> dict[str, list]:
    return {"oracle": records("oracle", n_falsified=0, n_passed=200),
            "inverted": records("inverted", n_falsified=200, n_passed=0),
            "random": records("random", n_falsified=96, n_passed=104),
            "constant": records("constant", n_falsified=0, n_passed=0, n_trivial=200)}


@pytest.mark.parametrize(("kind", "params"), [
    ("fr_at_most", ORACLE), ("fr_at_least", INVERTED), ("fr_chance", RANDOM),
    ("all_trivial", CONSTANT)])
def test_control_passes_on_known_answer(kind: str, params: dict) -> None:
    result = judge(kind, params, _healthy())
    assert result.passed, result.detail


def test_oracle_claim_fails_when_oracle_is_often_falsified() -> None:
    # planted: a sign error makes the oracle fail 20 of 200 pairs
    rows = _healthy() | {"oracle": records("oracle", n_falsified=20, n_passed=180)}
    result = judge("fr_at_most", ORACLE, rows)
    assert not result.passed
    # Wilson upper bound of 20/200 by hand, z = 1.959964:
    # (0.1 + z^2/2n + z*sqrt(0.1*0.9/n + z^2/4n^2)) / (1 + z^2/n)
    assert result.observed == pytest.approx(0.149406, abs=1e-6)


def test_oracle_claim_judged_on_upper_bound_fails_on_small_n() -> None:
    # 0 of 30 falsified: the estimate is 0 but the Wilson upper bound (0.114) exceeds 0.05
    rows = {"oracle": records("oracle", n_falsified=0, n_passed=30)}
    assert not judge("fr_at_most", ORACLE, rows).passed


def test_trivial_oracle_maps_count_against_the_oracle() -> None:
    # planted: dropping trivial pairs would hide these (PITFALLS.md #4)
    rows = _healthy() | {"oracle": records("oracle", n_falsified=0, n_passed=150, n_trivial=50)}
    assert not judge("fr_at_most", ORACLE, rows).passed


def test_inverted_claim_fails_when_the_sign_convention_flips() -> None:
    rows = _healthy() | {"inverted": records("inverted", n_falsified=10, n_passed=190)}
    assert not judge("fr_at_least", INVERTED, rows).passed


@pytest.mark.parametrize(("n_falsified", "n_passed"), [(190, 10), (10, 190)])
def test_random_claim_fails_far_from_chance(n_falsified: int, n_passed: int) -> None:
    rows = _healthy() | {"random": records("random", n_falsified=n_falsified, n_passed=n_passed)}
    result = judge("fr_chance", RANDOM, rows)
    assert not result.passed
    assert "excludes 0.5" in result.detail


def test_constant_claim_fails_when_a_constant_map_is_judged() -> None:
    # planted: a "fallback map" replaced the constant map and was tested (PITFALLS.md #3)
    rows = _healthy() | {"constant": records("constant", n_falsified=0, n_passed=5,
                                             n_trivial=195)}
    assert not judge("all_trivial", CONSTANT, rows).passed


def test_gate_claim_fails_on_a_model_that_does_not_verify() -> None:
    assert judge("model_gate", {"min_auc": 0.95}, _healthy()).passed
    result = judge("model_gate", {"min_auc": 0.95}, _healthy(), auc=0.51)
    assert not result.passed


def test_claim_on_an_unknown_method_raises() -> None:
    with pytest.raises(ValueError, match="method = 'saliency' is not allowed"):
        judge("fr_at_most", {**ORACLE, "method": "saliency"}, _healthy())


def test_tar_at_far_by_hand() -> None:
    import numpy as np

    from faceattr.experiments.gate import tar_at_far

    impostor = np.linspace(0.0, 0.99, 100)  # 100 impostors: FAR 1% lets the top one above
    genuine = np.array([0.5, 0.97, 0.985, 0.995, 1.0])
    scores = np.concatenate([genuine, impostor])
    labels = np.array([True] * 5 + [False] * 100)
    # threshold = second highest impostor (0.98): genuine above it are 0.985, 0.995, 1.0
    assert tar_at_far(scores, labels, 1e-2) == pytest.approx(3 / 5)
    # FAR 0.1% of 100 impostors allows none: threshold = highest impostor (0.99)
    assert tar_at_far(scores, labels, 1e-3) == pytest.approx(2 / 5)
