"""The gate's checks: one test per claim family, parametrized with every declared claim.

Collected by ``faceattr validate`` (``pytest --pyargs faceattr.gate.checks -p
faceattr.gate.plugin``) and, in the faceattr checkout, by ``validation/test_claims.py``. Each
test judges the claims of its family (:func:`faceattr.gate.plugin.judge`); the family of a
claim kind is declared in its registry entry, and a family no check below names is judged by
:func:`test_other_family` (a user's claim kind).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from faceattr.claims import ClaimResult, ClaimSpec
from faceattr.protocol import Protocol

Case = tuple[Protocol, ClaimSpec]
Judge = Callable[[Case], ClaimResult]


def _assert_passed(claim: Case, judge: Judge) -> None:
    result = judge(claim)
    assert result.passed, f"{result.claim_id}: {result.detail}"


@pytest.mark.claim_family("artefact")
def test_artefact(claim: Case, judge: Judge) -> None:
    """Artefact controls (ROAD): verdicts are not explained by the removed shape or by blur.

    Under every fill, few passes are explained by S_high's shape alone, and a blurred
    random map stays at chance.
    """
    _assert_passed(claim, judge)


@pytest.mark.claim_family("attrition")
def test_attrition(claim: Case, judge: Judge) -> None:
    """Attrition claims: few pairs end in an error status.

    Errors are counted, never dropped, and stay rare (PITFALLS.md #3).
    """
    _assert_passed(claim, judge)


@pytest.mark.claim_family("completeness")
def test_completeness(claim: Case, judge: Judge) -> None:
    """IG completeness claims (Sundararajan et al. 2017).

    IG-family attributions add up to the change of the explained score.
    """
    _assert_passed(claim, judge)


@pytest.mark.claim_family("control")
def test_control(claim: Case, judge: Judge) -> None:
    """Control claims: oracle, inverted, random and constant maps give their known answers.

    The falsification test gives each control map its known answer (ARCHITECTURE.md,
    Controls): oracle rarely falsified, inverted almost always, random at chance, constant
    untestable.
    """
    _assert_passed(claim, judge)


@pytest.mark.claim_family("determinism")
def test_determinism(claim: Case, judge: Judge) -> None:
    """Determinism claims: identical records across processes, method orders and batch sizes.

    Identical seeds give byte-identical records in fresh processes whatever the method
    order and batch size; another seed changes the stochastic fields (PITFALLS.md #14).
    """
    _assert_passed(claim, judge)


@pytest.mark.claim_family("guard")
def test_guard(claim: Case, judge: Judge) -> None:
    """Guards: no degenerate per-pair metric, no duplicate methods.

    No per-pair metric is constant across pairs and no two methods share maps
    (PITFALLS.md #1, #20).
    """
    _assert_passed(claim, judge)


@pytest.mark.claim_family("k_sufficiency")
def test_k_sufficiency(claim: Case, judge: Judge) -> None:
    """K sufficiency: K meets the Hoeffding requirement.

    K counterfactuals per region reach the declared precision of the mean drift (Hoeffding).
    """
    _assert_passed(claim, judge)


@pytest.mark.claim_family("gate")
def test_model_gate(claim: Case, judge: Judge) -> None:
    """Model-gate claims: the model verifies faces on the run's pairs.

    The model separates genuine from impostor pairs before any attribution is trusted
    (PITFALLS.md #16).
    """
    _assert_passed(claim, judge)


@pytest.mark.claim_family("partner")
def test_partner_sensitivity(claim: Case, judge: Judge) -> None:
    """Partner-sensitivity claims: a map of s(x_a, x_b) changes with the partner x_b.

    Re-explained against a random impostor partner, a method's maps change (the verification
    analogue of Sixt et al.'s Random Logit test, ICML 2020); a method partner-free by design
    is declared insensitive and its maps must stay the same.
    """
    _assert_passed(claim, judge)


@pytest.mark.claim_family("randomisation")
def test_randomisation(claim: Case, judge: Judge) -> None:
    """Adebayo model-parameter randomisation claims (cascading and independent).

    A faithful map changes when the model's parameters are randomised (Adebayo et al.,
    "Sanity Checks for Saliency Maps", NeurIPS 2018); declared insensitive methods are
    expected failures, and an unexpected pass fails.
    """
    _assert_passed(claim, judge)


@pytest.mark.claim_family("regression")
def test_regression(claim: Case, judge: Judge) -> None:
    """Regression claims: the run is equivalent to its declared baseline run.

    No verdict moved beyond the declared margin against the baseline run (paired McNemar
    and TOST on the shared pairs, through ``faceattr compare``).
    """
    _assert_passed(claim, judge)


@pytest.mark.claim_family("separation")
def test_separation(claim: Case, judge: Judge) -> None:
    """FR separation claims per Theorem 3.5 (paired, Holm-corrected).

    Method A is falsified less often than method B on the same pairs (exact McNemar, Holm).
    """
    _assert_passed(claim, judge)


@pytest.mark.claim_family("strata")
def test_strata(claim: Case, judge: Judge) -> None:
    """Stratum effects: where a method fails more (or less) often, or no effect beyond a margin.

    A declared stratum of a pair covariate (pose, lighting, occlusion, the synthetic world's
    nuisance) changes a method's falsification rate in the declared direction (Fisher exact,
    Holm over the stratified analysis), or shows no effect beyond a declared margin (TOST).
    """
    _assert_passed(claim, judge)


@pytest.mark.claim_family("target")
def test_target(claim: Case, judge: Judge) -> None:
    """Target claims: the explained scalar is the verification score and varies with the probe.

    The attributed scalar responds to the probe (target sanity, PITFALLS.md #5) and, at the
    probe, equals the pair's verification score (target identity).
    """
    _assert_passed(claim, judge)


@pytest.mark.claim_family("uniformity")
def test_uniformity(claim: Case, judge: Judge) -> None:
    """Uniformity claims: few maps of a method are trivial (cannot rank pixels).

    A method's maps can rank pixels on almost every pair: the share of trivial maps is bounded
    (PITFALLS.md #4).
    """
    _assert_passed(claim, judge)


@pytest.mark.claim_family("validity")
def test_validity(claim: Case, judge: Judge) -> None:
    """Discriminative validity: the test's outcome ranks maps as the ground truth does.

    Across maps of known quality (dose-response family) or the registry's methods, the
    falsification outcome's rank correlation with ground-truth quality meets its threshold.
    """
    _assert_passed(claim, judge)


@pytest.mark.claim_family("*")
def test_other_family(claim: Case, judge: Judge) -> None:
    """Claims of a family none of the checks above names (a user's claim kind, registered
    through the ``faceattr.claims`` entry points or an import path)."""
    _assert_passed(claim, judge)
