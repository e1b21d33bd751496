# Occlusion, KernelSHAP, LIME: keyed sampling, efficiency, the closed-form surrogate.
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from faceattr.attribution.perturbation import (
    LIME,
    KernelSHAP,
    Occlusion,
    WeightedLeastSquares,
    grid_superpixels,
)
from faceattr.models.base import verification_score
from tests.attribution.common import make_batch, model


def test_weighted_least_squares_recovers_a_linear_function() -> None:
    gen = torch.Generator().manual_seed(1)  # explicit local generator
    x = torch.randint(0, 2, (200, 5), generator=gen).float()
    coef = torch.tensor([0.5, -1.0, 2.0, 0.0, 0.25])
    y = 0.3 + x @ coef
    w = torch.rand(200, generator=gen) + 0.1
    surrogate = WeightedLeastSquares(ridge=0.0)
    surrogate.fit(DataLoader(TensorDataset(x, y, w), batch_size=64))
    torch.testing.assert_close(surrogate.representation(), coef[None], rtol=0, atol=1e-5)
    torch.testing.assert_close(surrogate(x), y, rtol=0, atol=1e-5)


def test_weighted_least_squares_refuses_use_before_fit() -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        WeightedLeastSquares(ridge=1.0).representation()


def test_grid_superpixels() -> None:
    mask = grid_superpixels(16, 12, 8)
    assert mask.shape == (1, 1, 16, 12)
    assert sorted(mask.unique().tolist()) == [0, 1, 2, 3]
    assert mask[0, 0, 9, 11].item() == 3


def test_kernel_shap_is_efficient() -> None:
    # Shapley efficiency: cell values sum to s(x) - s(baseline); captum pins the empty and full
    # coalitions with weight 1e6 against ~1 for the others, so the residual is ~1e-6 relative
    batch = make_batch(model("synthetic_cnn"), 2)
    cell = 16
    maps = KernelSHAP("ks", KernelSHAP.Params(n_samples=60, cell_px=cell)).attribute(batch)
    cell_sum = maps[:, ::cell, ::cell].sum(axis=(1, 2))
    with torch.no_grad():
        gain = (verification_score(batch.model.embed(batch.probes), batch.partner_embeddings)
                - verification_score(batch.model.embed(torch.zeros_like(batch.probes)),
                                     batch.partner_embeddings))
    np.testing.assert_allclose(cell_sum, gain.double().numpy(), atol=1e-3)


@pytest.mark.parametrize("cls", [KernelSHAP, LIME])
def test_superpixel_maps_are_constant_on_cells_and_keyed_by_pair(cls: type[LIME]) -> None:
    batch = make_batch(model("synthetic_cnn"), 2)
    params = cls.Params(n_samples=40, cell_px=16)
    maps = cls("m", params).attribute(batch)
    cells = maps.reshape(2, 4, 16, 4, 16)
    assert np.ptp(cells, axis=(2, 4)).max() == 0.0
    # another method id is another stream: the maps differ
    assert not np.array_equal(maps, cls("m2", params).attribute(batch))


def test_occlusion_refuses_a_window_that_does_not_tile() -> None:
    with pytest.raises(ValueError, match="do not tile a side of 64 px"):
        Occlusion("o", Occlusion.Params(patch_px=10, stride_px=4)).attribute(
            make_batch(model("synthetic_cnn"), 1))


def test_occlusion_of_one_window_is_the_score_drop() -> None:
    batch = make_batch(model("synthetic_cnn"), 1)
    maps = Occlusion("o", Occlusion.Params(patch_px=64, stride_px=64)).attribute(batch)
    with torch.no_grad():
        drop = (verification_score(batch.model.embed(batch.probes), batch.partner_embeddings)
                - verification_score(batch.model.embed(torch.zeros_like(batch.probes)),
                                     batch.partner_embeddings))
    np.testing.assert_allclose(maps, np.full((1, 64, 64), 3 * float(drop)), rtol=1e-5)
