# The completeness residual's trend with n_steps is measured for path methods only.
from __future__ import annotations

from pathlib import Path

from faceattr.experiments.completeness_trend import completeness_trend
from faceattr.io import read_json
from faceattr.protocol import MethodSpec
from tests.attribution.common import make_batch, model


def test_residual_shrinks_with_n_steps_and_only_path_methods_are_trended(tmp_path: Path) -> None:
    specs = [MethodSpec(id="ig", method="integrated_gradients", relevance="abs",
                        params=(("n_steps", 32),)),
             MethodSpec(id="dl", method="deeplift", relevance="abs", params=()),  # no steps
             MethodSpec(id="s", method="saliency", relevance="signed", params=())]
    batch = make_batch(model("synthetic_cnn"), 3)
    trend = completeness_trend(tmp_path, specs, batch, n_steps_grid=[2, 32], where="test")
    assert set(trend["methods"]) == {"ig"}
    coarse, fine = trend["methods"]["ig"]
    assert fine["mean_abs_residual"] < coarse["mean_abs_residual"]
    assert read_json(tmp_path / "completeness_trend.json") == trend
