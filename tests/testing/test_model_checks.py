# Planted model defects: each must fail its check, with the check's name first.
from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from faceattr.models.base import VerificationModel
from faceattr.testing import MODEL_CHECKS, check_model, model_checks, tiny_model
from faceattr.testing.tolerances import atol_unit_norm
from tests import helpers
from tests.testing import components as c


def run_check(model: VerificationModel, check: str) -> None:
    dict(model_checks(model))[check]()


def test_the_tiny_check_model_is_the_attribution_tests_tiny_model() -> None:
    ours, theirs = tiny_model(), helpers.tiny_model()
    for (name, a), (_, b) in zip(ours.network.state_dict().items(),
                                 theirs.network.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    check_model(ours)


@pytest.mark.parametrize(("make", "check", "message"), [
    (c.standardising_model, "input_range", r"embed returned non-finite or non-float values"),
    (c.unnormalised_model, "embedding_normalised", r"embedding norms are \[.*\], not 1"),
    (c.detached_model, "input_gradient", r"the verification score has no gradient path to the "
                                         r"input"),
    (c.input_blind_model, "input_gradient", r"no gradient path"),
    (c.input_blind_model, "input_dependence", r"images 0 and 1 differ but their embeddings "
                                              r"agree within 0"),
    (c.train_mode_batchnorm_model, "batch_invariance", r"image 0 embedded alone and inside a "
                                                       r"batch of 4 differs by"),
])
def test_each_planted_defect_fails_its_check(make: Callable[[], VerificationModel], check: str,
                                             message: str) -> None:
    model = make()
    expected = rf"^{check} failed for model '{model.name}': .*{message}"
    with pytest.raises(AssertionError, match=expected):
        run_check(model, check)
    with pytest.raises(AssertionError, match=expected):
        check_model(model, checks=[check])


def test_the_standardising_model_passes_on_textured_images() -> None:
    # only the uniform (all-black / all-white) images expose it
    for check in ("embedding_normalised", "input_gradient", "input_dependence"):
        run_check(c.standardising_model(), check)


def test_a_model_refusing_its_declared_size_fails_input_range() -> None:
    base = tiny_model()
    wrong = VerificationModel(name="wrong_size", network=base.network, input_size_px=20,
                              pixel_mean=0.0, pixel_scale=255.0, weights_sha256="0" * 64)
    with pytest.raises(AssertionError, match=r"^input_range failed for model 'wrong_size': "
                                             r"embed refused float32 images in \[0, 1\] of "
                                             r"shape \(4, 3, 20, 20\)"):
        run_check(wrong, "input_range")


def test_model_checks_by_name_and_selection() -> None:
    assert [name for name, _ in model_checks("synthetic_cnn")] == list(MODEL_CHECKS)
    check_model("synthetic_cnn", checks=["embedding_normalised"])
    with pytest.raises(ValueError, match=r"unknown model check 'gradient'"):
        check_model("synthetic_cnn", checks=["gradient"])
    with pytest.raises(AssertionError, match=r"^input_range failed for model 'no_such_model': "
                                             r"raised ProtocolError"):
        run_check("no_such_model", "input_range")  # type: ignore[arg-type]


def test_unit_norm_tolerance_is_dimension_times_eps() -> None:
    assert atol_unit_norm(128, torch.float32) == pytest.approx(128 * 2.0 ** -23)
    assert atol_unit_norm(16, torch.float64) == pytest.approx(16 * 2.0 ** -52)
