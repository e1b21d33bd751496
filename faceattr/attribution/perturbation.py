"""Perturbation methods of the verification score: Occlusion, KernelSHAP and LIME (captum).

KernelSHAP and LIME work on *superpixels*. scikit-image is not a dependency, so the superpixels
are a fixed grid of ``cell_px x cell_px`` cells: deterministic, model-independent and the same for
every image — not SLIC segments that follow image content. Maps are therefore piecewise constant
on that grid.

captum samples KernelSHAP/LIME coalitions with torch's *global* RNG. Each pair's call therefore
runs inside ``torch.random.fork_rng(devices=[])`` with the default generator re-seeded from the
keyed stream ``(seed, pair_id, model, method_id, "samples")``: the global state is restored on
exit, the draws depend only on the key, and same seed -> identical map (PITFALLS.md #14).
captum's interpretable models for these methods are scikit-learn wrappers; scikit-learn is not a
dependency, so a closed-form weighted (ridge) least-squares model is supplied
(:class:`WeightedLeastSquares`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from captum._utils.models.model import Model
from captum.attr import KernelShap as CaptumKernelShap
from captum.attr import Lime as CaptumLime
from captum.attr import Occlusion as CaptumOcclusion
from numpy.typing import NDArray
from torch.utils.data import DataLoader

from faceattr.attribution.base import (
    AttributionBatch,
    AttributionMethod,
    BatchParams,
    MethodInfo,
    VerificationScoreModule,
    aggregate_channels,
)
from faceattr.attribution.baselines import BaselineParams
from faceattr.params import param
from faceattr.rng import torch_generator

__all__ = ["LIME", "KernelSHAP", "Occlusion", "WeightedLeastSquares", "grid_superpixels"]


class Occlusion(AttributionMethod):
    """Occlusion: the drop of the verification score when a patch is replaced by the baseline.

    A ``patch_px x patch_px`` window (all channels) slides with ``stride_px``; each pixel gets
    the mean score change ``s(x) - s(x with window -> baseline)`` over the windows covering it
    (``captum.attr.Occlusion``), summed over channels with sign (the three channels carry the
    same value, so the map is three times the per-pixel effect).

    The baseline fills the occluded window; ``internal_batch_size`` is captum's
    ``perturbations_per_eval`` (occluded copies per forward pass).

    Parameters
    ----------
    method_id : str
    params : Occlusion.Params, optional
        See ``Params`` (defaults when omitted).

    References
    ----------
    M. D. Zeiler, R. Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014.
    """

    info = MethodInfo(name="occlusion", reference="Zeiler & Fergus 2014",
                      aggregation="signed_sum", multiplies_by_inputs=False,
                      has_convergence_delta=False, stochastic=False, is_control=False)

    @dataclass(frozen=True, kw_only=True)
    class Params(BaselineParams, BatchParams):
        """The occluding window."""

        patch_px: int = param(8, minimum=1, maximum=1024, unit="px",
                              doc="side of the square occluding window")
        stride_px: int = param(4, minimum=1, maximum=1024, unit="px",
                               doc="step of the window; (side - patch_px) must be a multiple")

    params: Params

    def __init__(self, method_id: str, params: Occlusion.Params | None = None) -> None:
        super().__init__(method_id, params)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return the occlusion maps (N, H, W)."""
        patch, stride = self.params.patch_px, self.params.stride_px
        height, width = batch.probes.shape[-2:]
        for side in (height, width):
            if patch > side or (side - patch) % stride:
                raise ValueError(f"occlusion patch_px={patch}, stride_px={stride} do not tile "
                                 f"a side of {side} px (need (side - patch_px) % stride_px == 0)")
        score = VerificationScoreModule(batch.model, batch.partner_embeddings)
        probes = batch.probes.detach()
        baselines = self.params.make_baselines(probes)
        channels = probes.shape[1]
        with torch.no_grad():
            relevance = CaptumOcclusion(score).attribute(
                probes, sliding_window_shapes=(channels, patch, patch),
                strides=(channels, stride, stride), baselines=baselines,
                additional_forward_args=(batch.partner_embeddings,),
                perturbations_per_eval=self.params.internal_batch_size)
        return aggregate_channels(relevance, self.info.aggregation)


class WeightedLeastSquares(Model):  # type: ignore[misc]
    """Closed-form weighted ridge regression with an unpenalised intercept (captum ``Model``).

    Minimises ``sum_i w_i (y_i - b - x_i . c)^2 + ridge * |c|^2`` in float64 by ``lstsq`` on the
    square-root-weighted design; deterministic, no iterations and no random initialisation.
    ``representation()`` returns ``c`` as (1, M), as captum's linear models do.
    """

    def __init__(self, ridge: float) -> None:
        self.ridge = ridge
        self.coef: torch.Tensor | None = None
        self.intercept: torch.Tensor | None = None

    def fit(self, train_data: DataLoader[Any], **kwargs: object) -> None:
        """Fit on all ``(x, y, w)`` batches of ``train_data``."""
        xs, ys, ws = [], [], []
        for x, y, w in train_data:
            xs.append(x.reshape(x.shape[0], -1))
            ys.append(y.reshape(-1))
            ws.append(w.reshape(-1))
        x_all = torch.cat(xs).to(torch.float64)
        y_all = torch.cat(ys).to(torch.float64)
        root_w = torch.cat(ws).to(torch.float64).clamp_min(0.0).sqrt()
        design = torch.cat([torch.ones(x_all.shape[0], 1, dtype=torch.float64), x_all], dim=1)
        lhs, rhs = design * root_w[:, None], y_all * root_w
        if self.ridge > 0:
            n_features = x_all.shape[1]
            penalty = torch.cat([torch.zeros(1, n_features + 1, dtype=torch.float64),
                                 torch.cat([torch.zeros(n_features, 1, dtype=torch.float64),
                                            np.sqrt(self.ridge) * torch.eye(
                                                n_features, dtype=torch.float64)], dim=1)])
            lhs = torch.cat([lhs, penalty[1:]])
            rhs = torch.cat([rhs, torch.zeros(n_features, dtype=torch.float64)])
        solution = torch.linalg.lstsq(lhs, rhs[:, None], driver="gelsd").solution[:, 0]
        self.intercept, self.coef = solution[:1], solution[1:]

    def representation(self) -> torch.Tensor:
        """Return the coefficients (1, M), float32."""
        if self.coef is None:
            raise RuntimeError("WeightedLeastSquares.representation() before fit()")
        return self.coef.to(torch.float32)[None, :]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Predict ``b + x . c``."""
        if self.coef is None or self.intercept is None:
            raise RuntimeError("WeightedLeastSquares called before fit()")
        return (x.to(torch.float64).reshape(x.shape[0], -1) @ self.coef + self.intercept).float()


def grid_superpixels(height: int, width: int, cell_px: int) -> torch.Tensor:
    """Feature ids (1, 1, H, W) of a grid of ``cell_px`` cells (ragged last row/column)."""
    n_cols = -(-width // cell_px)
    rows = torch.arange(height) // cell_px
    cols = torch.arange(width) // cell_px
    return (rows[:, None] * n_cols + cols[None, :])[None, None]


class _SuperpixelMethod(AttributionMethod):
    @dataclass(frozen=True, kw_only=True)
    class Params(BaselineParams, BatchParams):
        """The sampling budget and the superpixel grid."""

        n_samples: int = param(200, minimum=3, maximum=1 << 16, unit="samples",
                               doc="perturbed copies (coalitions) evaluated per pair")
        cell_px: int = param(8, minimum=1, maximum=1024, unit="px",
                             doc="side of a superpixel grid cell (absent cells take the baseline)")

    params: Params

    def __init__(self, method_id: str, params: _SuperpixelMethod.Params | None = None) -> None:
        super().__init__(method_id, params)

    def _explainer(self, score: VerificationScoreModule) -> CaptumLime:
        raise NotImplementedError

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return superpixel maps (N, H, W), one keyed sampling stream per pair."""
        probes = batch.probes.detach()
        baselines = self.params.make_baselines(probes)
        mask = grid_superpixels(probes.shape[2], probes.shape[3], self.params.cell_px)
        maps = []
        for row, pair_id in enumerate(batch.pair_ids):
            partner = batch.partner_embeddings[row:row + 1]
            explainer = self._explainer(VerificationScoreModule(batch.model, partner))
            stream = torch_generator(batch.seed, pair_id, batch.model.name, self.method_id,
                                     "samples")
            pair_seed = int(torch.randint(0, 2**62, (1,), generator=stream).item())
            with torch.random.fork_rng(devices=[]), torch.no_grad():
                torch.default_generator.manual_seed(pair_seed)
                relevance = explainer.attribute(
                    probes[row:row + 1], baselines=baselines[row:row + 1],
                    additional_forward_args=(partner,), feature_mask=mask,
                    n_samples=self.params.n_samples,
                    perturbations_per_eval=self.params.internal_batch_size)
            maps.append(aggregate_channels(relevance, "signed_sum") / probes.shape[1])
        return np.concatenate(maps)

    def describe(self) -> dict[str, str | bool | float | int]:
        """Include the superpixel kind."""
        return {**super().describe(), "superpixels": "grid"}


class KernelSHAP(_SuperpixelMethod):
    """Kernel SHAP over grid superpixels (``captum.attr.KernelShap``).

    Coalitions of superpixels are sampled by captum's Shapley-kernel sampler (absent cells take
    the baseline) and the Shapley values are the weighted least-squares fit
    (:class:`WeightedLeastSquares` without ridge) of the score on the coalition indicators.
    Each pixel gets its cell's value (channels share it).

    Parameters
    ----------
    method_id : str
    params : KernelSHAP.Params, optional
        See ``Params`` (defaults when omitted).

    References
    ----------
    S. M. Lundberg, S.-I. Lee, "A Unified Approach to Interpreting Model Predictions",
    NeurIPS 2017.
    """

    info = MethodInfo(name="kernel_shap", reference="Lundberg & Lee 2017",
                      aggregation="signed_sum", multiplies_by_inputs=False,
                      has_convergence_delta=False, stochastic=True, is_control=False)

    def _explainer(self, score: VerificationScoreModule) -> CaptumLime:
        explainer = CaptumKernelShap(score)
        # KernelShap fixes a scikit-learn regression in its constructor; swap in the
        # closed-form fit (same estimator: weighted least squares with intercept)
        explainer.interpretable_model = WeightedLeastSquares(ridge=0.0)
        return explainer


class LIME(_SuperpixelMethod):
    """LIME over grid superpixels (``captum.attr.Lime``).

    Superpixels are switched off (set to the baseline) independently with probability 1/2
    (captum's default sampler); samples are weighted by captum's default exponential kernel of
    the cosine distance to the probe (width 1); the surrogate is a weighted *ridge* regression
    with penalty 1 — the default of Ribeiro et al.'s reference ``lime`` package — fitted in
    closed form (:class:`WeightedLeastSquares`) instead of captum's scikit-learn Lasso.

    Parameters
    ----------
    method_id : str
    params : LIME.Params, optional
        See ``Params`` (the same as :class:`KernelSHAP`'s; defaults when omitted).

    References
    ----------
    M. T. Ribeiro, S. Singh, C. Guestrin, "'Why Should I Trust You?': Explaining the
    Predictions of Any Classifier", KDD 2016.
    """

    info = MethodInfo(name="lime", reference="Ribeiro et al. 2016", aggregation="signed_sum",
                      multiplies_by_inputs=False, has_convergence_delta=False, stochastic=True,
                      is_control=False)

    def _explainer(self, score: VerificationScoreModule) -> CaptumLime:
        return CaptumLime(score, interpretable_model=WeightedLeastSquares(ridge=1.0))

