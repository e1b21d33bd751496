# Planted defects: each defective method must fail its check, with the check's name first.
from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import pytest
from scipy.stats import rankdata

from faceattr.attribution.base import AttributionMethod
from faceattr.testing import METHOD_CHECKS, CheckFailure, check_method, method_checks
from faceattr.testing.methods import _average_ranks, _rank_correlation
from tests.testing import components as c

PATH = "tests.testing.components"


@pytest.fixture(autouse=True)
def _restore_global_rng() -> Iterator[None]:
    # the planted global-RNG defect draws from np.random: leave no trace for other tests
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    yield
    np.random.set_state(np_state)  # noqa: NPY002
    random.setstate(py_state)


def run_check(method: object, check: str, **kwargs: object) -> None:
    checks = dict(method_checks(method, **kwargs))  # type: ignore[arg-type]
    checks[check]()


def test_a_correct_user_method_passes_every_check_by_path_and_by_class() -> None:
    names = [name for name, _ in method_checks(f"{PATH}:SignedGradient")]
    assert names == list(METHOD_CHECKS)
    check_method(f"{PATH}:SignedGradient")
    check_method(c.SignedGradient, checks=["batch_invariance", "fresh_process_determinism"])


@pytest.mark.parametrize(("defect", "check", "message"), [
    (c.NaNMaps, "maps_finite", r"4 non-finite value\(s\) \(NaN or inf\) in pair\(s\) "
                               r"\[0, 1, 2, 3\]"),
    (c.ZeroMaps, "maps_not_constant", r"the map of every pair is constant"),
    (c.UndeclaredDelta, "details_consistent", r"info.has_convergence_delta = True but "
                                              r"attribute_with_details gives "
                                              r"convergence_delta = None"),
    (c.BatchMaxSaliency, "batch_invariance", r"pair \d attributed alone and inside a batch of "
                                             r"4 differs by"),
    (c.HashSeeded, "fresh_process_determinism", r"the same seed gives different maps in a "
                                                r"fresh process"),
    (c.GlobalRngJitter, "global_rng_untouched", r"changed the global RNG state of numpy"),
    (c.RenamedSaliency, "distinct_from_builtins", r"its maps are those of the built-in "
                                                  r"'saliency': the min-max normalised maps "
                                                  r"agree within 0 "),
    (c.RescaledSaliency, "distinct_from_builtins", r"built-in 'saliency': the min-max "
                                                   r"normalised maps agree"),
    (c.SqrtSaliency, "distinct_from_builtins", r"built-in 'saliency': Spearman rho >= 1\.0000"),
    (c.FirstComponentSaliency, "partner_dependence", r"the map of pair\(s\) \[0, 1, 2, 3\] does "
                                                     r"not change when the partner embedding "
                                                     r"changes"),
    (c.NormTargetSaliency, "partner_dependence", r"does not change when the partner"),
])
def test_each_planted_defect_fails_its_check(defect: type[AttributionMethod], check: str,
                                             message: str) -> None:
    expected = rf"^{check} failed for method '{defect.info.name}' " \
               rf"\({PATH}:{defect.__name__}\): .*{message}"
    with pytest.raises(AssertionError, match=expected):
        run_check(defect, check)
    with pytest.raises(AssertionError, match=expected):
        check_method(defect, checks=[check])


def test_the_hash_defect_passes_in_one_process() -> None:
    # what only a fresh process can see: the in-process checks pass
    for check in ("maps_finite", "batch_invariance", "global_rng_untouched",
                  "partner_dependence"):
        run_check(c.HashSeeded, check)


def test_a_class_another_process_cannot_import_fails_the_fresh_process_check() -> None:
    class Inner(c.SignedGradient):
        info = c.SignedGradient.info

    with pytest.raises(AssertionError, match=r"^fresh_process_determinism failed .*cannot be "
                                             r"imported by another process \(defined in "
                                             r"__main__ or inside a function\)"):
        run_check(Inner, "fresh_process_determinism")


def test_a_method_that_cannot_be_built_fails_every_check_by_name() -> None:
    for name, check in method_checks("saliency", params={"n_steps": 3}):
        with pytest.raises(AssertionError, match=rf"^{name} failed for method 'saliency': raised "
                                                 r"ProtocolError: .*unknown key 'n_steps'"):
            check()
    with pytest.raises(AssertionError, match=r"^maps_finite failed for method "
                                             r"'no.such:Method': raised ProtocolError"):
        run_check("no.such:Method", "maps_finite")


def test_a_components_own_assertion_is_reported_under_the_check_name() -> None:
    with pytest.raises(CheckFailure, match=r"^maps_finite failed for method 'one_pair_only' "
                                           r"\(.*\): raised AssertionError: one pair at a time"):
        run_check(c.OnePairOnly, "maps_finite")


def test_controls_skip_partner_dependence_and_say_so() -> None:
    names = [name for name, _ in method_checks(c.SaliencyCopyAsControl)]
    assert "partner_dependence" not in names
    assert names == [n for n in METHOD_CHECKS if n != "partner_dependence"]
    with pytest.raises(ValueError, match=r"method check 'partner_dependence' does not apply"):
        check_method(c.SaliencyCopyAsControl, checks=["partner_dependence"])
    with pytest.raises(ValueError, match=r"unknown method check 'map_finite'; known: "
                                         r"maps_finite"):
        check_method("saliency", checks=["map_finite"])


def test_checks_are_named_for_pytest_ids() -> None:
    for name, check in method_checks("saliency"):
        assert check.__name__ == f"check_{name}"


def test_a_user_passed_model_is_used_and_rebuilt_in_the_fresh_process() -> None:
    from faceattr.models.synthetic_cnn import load_synthetic_model
    from faceattr.testing import tiny_model

    model = load_synthetic_model()  # its network class rebuilds with no arguments
    check_method(c.SignedGradient, model=model,
                 checks=["maps_finite", "fresh_process_determinism"])
    # an nn.Sequential cannot be rebuilt from its class alone: one line saying what to pass
    with pytest.raises(AssertionError, match=r"network torch\.nn\.modules\.container:Sequential "
                                             r"cannot be rebuilt in a fresh process"):
        check_method(c.SignedGradient, model=tiny_model(),
                     checks=["fresh_process_determinism"])
    with pytest.raises(AssertionError, match=r"^batch_invariance failed"):
        run_check(c.BatchMaxSaliency, "batch_invariance", model=model)


def test_ranks_match_scipy_and_a_constant_map_has_no_rank_correlation() -> None:
    values = np.array([[3.0, 1.0, 3.0], [2.0, 2.0, 0.5]])
    np.testing.assert_array_equal(_average_ranks(values), rankdata(values.ravel()))
    assert np.isnan(_rank_correlation(np.ones((2, 2)), values[:, :2]))
    assert _rank_correlation(values, values ** 3) == pytest.approx(1.0)
