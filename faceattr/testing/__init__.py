"""Checks for component authors: run on your method, model or pair source the checks the
built-ins pass (scikit-learn's ``check_estimator`` / ``parametrize_with_checks`` idea).

``check_method``, ``check_model`` and ``check_source`` run every applicable check and raise
:class:`CheckFailure` (an :class:`AssertionError`) with a one-line reason naming the first
failing check;
``method_checks``, ``model_checks`` and ``source_checks`` yield ``(check_name, check)`` for
``pytest.mark.parametrize``::

    import pytest
    from faceattr.testing import check_source, method_checks

    @pytest.mark.parametrize(("name", "check"),
                             method_checks("mystudy.attributions:SimilarityRISE",
                                           params={"n_masks": 16}))
    def test_similarity_rise(name, check):
        check()

The tolerances and their derivations are in :mod:`faceattr.testing.tolerances`.
"""

from faceattr.testing._common import Check, CheckFailure, CheckFn, tiny_model
from faceattr.testing.methods import (
    BUILTIN_CHECK_PARAMS,
    METHOD_CHECKS,
    MethodRef,
    ModelRef,
    check_method,
    method_checks,
)
from faceattr.testing.models import MODEL_CHECKS, check_model, model_checks
from faceattr.testing.sources import SOURCE_CHECKS, SourceRef, check_source, source_checks

__all__ = ["BUILTIN_CHECK_PARAMS", "METHOD_CHECKS", "MODEL_CHECKS", "SOURCE_CHECKS", "Check",
           "CheckFailure", "CheckFn", "MethodRef", "ModelRef", "SourceRef", "check_method",
           "check_model", "check_source", "method_checks", "model_checks", "source_checks",
           "tiny_model"]
