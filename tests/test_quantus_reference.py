# Quantus 0.6.0 (Hedström et al., JMLR 24, 2023) as an independent reference for faceattr's
# metrics (faceattr/validity/metrics.py), on identical inputs.
#
# Quantus explains a classifier's logit y for model(x). The verification score is wrapped as a
# one-output "model" for fixed partners: an nn.Module returning s(x, x_b)[:, None] (y_batch =
# 0), with Quantus' normalisation and abs switched off (faceattr applies neither).
#
# Identical inputs: Quantus flattens the attributions broadcast to the input's shape and
# perturbs single *channel values*, while faceattr removes whole pixels. So the probes are made
# grey: Quantus sees (N, 1, H, W), the wrapper repeats the channel, and faceattr sees the same
# grey image as three equal channels; every Quantus "feature" is then one pixel. The maps are
# the synthetic CNN's saliency and oracle maps on those probes; for the order-based metrics
# (pixel flipping, ROAD) ties are broken by faceattr's rule (stable, pixel index) into distinct
# values given to both, because Quantus sorts with numpy's unstable default argsort.
#
# Matched perturbations: baseline 0.0 (faceattr's "zero" fill; Quantus' string "black" is the
# image's *minimum*, and every string baseline also draws np.random.uniform); ROAD with
# noise 0 (faceattr's road_noise_sd = 0). Quantus' ROAD scores argmax(model(x)) == y, not the
# score: the wrapper there returns (s, tau) so that Quantus' output is the decision s >= tau,
# and it also records the score on every image Quantus feeds it, which gives Quantus' own
# score curve. Quantus 0.6's calculate_auc calls np.trapz, which numpy 2.4 removed, so the
# pixel-flipping curves are requested (return_auc_per_sample=False) and Quantus' area rule
# (trapezoid, unit spacing) is applied to them here.
#
# Randomness: FaithfulnessCorrelation draws its subsets with np.random.choice from numpy's
# legacy global state and accepts no generator. The test seeds that state for the one call and
# restores it afterwards, replays the same draws from a local RandomState, and hands those
# subsets to faceattr explicitly (faceattr's own subsets come from keyed generators and are
# different draws by design). Agreement is then exact up to float32 forwards.
from __future__ import annotations

import contextlib
import importlib
import warnings
from collections.abc import Iterator
from types import ModuleType

import numpy as np
import pytest
import torch
from torch import nn

from faceattr.attribution import AttributionBatch, build_method
from faceattr.data.synthetic_pairs import SyntheticPairSource
from faceattr.falsification import PairInputs
from faceattr.falsification.counterfactuals import counterfactuals
from faceattr.models.base import VerificationModel, embed_batched
from faceattr.models.synthetic_cnn import load_synthetic_model
from faceattr.rng import numpy_generator
from faceattr.validity.metrics import MetricSettings, evaluate_maps, removal_counts, trapezoid

N_PAIRS = 4
PERCENTAGES = [10, 20, 30, 40, 50, 60, 70, 80, 90]
FLIP_STEP = 256
FC_RUNS, FC_SUBSET = 20, 256
SETTINGS = MetricSettings(
    n_steps=4, road_fractions=tuple(p / 100 for p in PERCENTAGES), road_noise_sd=0.0,
    faithfulness_runs=FC_RUNS, faithfulness_subset_px=FC_SUBSET, faithfulness_fill="zero",
    flip_pixels_per_step=FLIP_STEP, flip_fill="zero")
SCORE_ATOL = 2e-6  # float32 forwards: same images, scores agree to a few ulp of 1.0


def _quantus() -> ModuleType:
    """Import Quantus 0.6 (installed --no-deps) or skip, naming the missing package."""
    try:
        # zennit's package __init__ needs torchvision (absent here): register zennit the way
        # faceattr's LRP does, so that Quantus' `from zennit import ...` finds it
        from faceattr.attribution.propagation import _zennit

        _zennit()
    except ImportError:
        pass  # no zennit: Quantus then skips its zennit import itself
    try:
        return importlib.import_module("quantus")
    except ModuleNotFoundError as exc:
        pytest.skip(f"the Quantus reference tests need the package {exc.name!r} (install the "
                    "test group: pip install --no-deps quantus==0.6.0 plus scikit-image, "
                    "scikit-learn, opencv-python-headless, cachetools)")


@contextlib.contextmanager
def _legacy_global_seed(seed: int) -> Iterator[None]:
    """Seed numpy's legacy global RNG for one Quantus call and restore it afterwards.

    Quantus 0.6 draws from np.random.* and takes no generator; nothing in faceattr reads this
    state, and the test leaves it as it found it.
    """
    saved = np.random.get_state()  # noqa: NPY002 - saving the global state to restore it
    np.random.set_state(np.random.RandomState(seed).get_state())  # noqa: NPY002, TID251 - Quantus reads only the global state
    try:
        yield
    finally:
        np.random.set_state(saved)  # noqa: NPY002 - restore


class ScoreModel(nn.Module):
    """The verification score as a Quantus model: grey (N, 1, H, W) -> s(x, x_b)[:, None].

    With ``thresholds`` it returns (s, tau), so that Quantus' argmax == 0 is ``s >= tau``. Every
    score it computes is recorded in ``seen`` (rows in call order).
    """

    def __init__(self, model: VerificationModel, partners: np.ndarray,
                 thresholds: np.ndarray | None = None) -> None:
        super().__init__()
        self.network = model.network  # a submodule: .eval() reaches it
        self.model = model
        self.partners = torch.from_numpy(partners)
        self.thresholds = None if thresholds is None else torch.from_numpy(thresholds)
        self.seen: list[np.ndarray] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[0] == self.partners.shape[0], "one partner per row"
        score = (self.model.embed(x.expand(-1, 3, -1, -1).contiguous())
                 * self.partners).sum(dim=1)
        self.seen.append(score.detach().numpy().copy())
        if self.thresholds is None:
            return score[:, None]
        return torch.stack([score, self.thresholds.to(score.dtype)], dim=1)


@pytest.fixture(scope="module")
def world() -> dict[str, object]:
    quantus = _quantus()
    model = load_synthetic_model()
    source = SyntheticPairSource(world_seed=0, n_pairs=N_PAIRS, genuine_fraction=0.5,
                                 first_identity=1000, sampling_seed=3)
    pairs = source.pairs()
    loaded = [source.load_image(p.image_a) for p in pairs]
    grey = np.stack([im.image.mean(axis=0, keepdims=True) for im in loaded]).astype(np.float32)
    probes = np.ascontiguousarray(np.repeat(grey, 3, axis=1))
    partners = np.stack([source.load_image(p.image_b).image for p in pairs])
    emb = embed_batched(model, torch.from_numpy(np.concatenate([probes, partners])),
                        chunk_size=64).numpy()
    masks = np.stack([im.identity_mask for im in loaded])
    inputs = PairInputs(pairs=pairs, probes=probes, probe_embeddings=emb[:N_PAIRS],
                        partner_embeddings=emb[N_PAIRS:], identity_masks=masks)
    batch = AttributionBatch(model=model, probes=torch.from_numpy(probes),
                             partner_embeddings=torch.from_numpy(inputs.partner_embeddings),
                             pair_ids=tuple(p.pair_id for p in pairs), identity_masks=masks,
                             seed=0)
    maps = {name: np.asarray(build_method(name, name, {}, "test").attribute(batch),
                             dtype=np.float64) for name in ("saliency", "oracle")}
    return {"quantus": quantus, "model": model, "inputs": inputs, "grey": grey, "maps": maps}


def _distinct(maps: np.ndarray) -> np.ndarray:
    """Distinct values in faceattr's order (stable sort of -phi, ties by pixel index)."""
    out = np.empty_like(maps)
    for row, phi in enumerate(maps):
        order = np.argsort(-phi.ravel(), kind="stable")
        ranks = np.empty(phi.size)
        ranks[order] = np.arange(phi.size, 0, -1, dtype=np.float64)
        out[row] = ranks.reshape(phi.shape)
    return out


def _call(metric: object, wrapper: nn.Module, world: dict[str, object], a_batch: np.ndarray,
          rows: slice = slice(None)) -> object:
    grey = world["grey"][rows]  # type: ignore[index]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = metric(model=wrapper.eval(), x_batch=grey,  # type: ignore[operator]
                     y_batch=np.zeros(grey.shape[0], dtype=np.int64), a_batch=a_batch,
                     channel_first=True, softmax=False, device="cpu", batch_size=N_PAIRS)
    # Quantus warns when a perturbation changed nothing: that would mean mismatched settings
    assert not [w for w in caught if "didn't cause change" in str(w.message)]
    return out


def _faceattr(world: dict[str, object], maps: np.ndarray, subsets: object = None) -> list:
    return evaluate_maps(world["model"], world["inputs"], maps, method_id="m",  # type: ignore[arg-type]
                         seed=0, settings=SETTINGS, subsets=subsets)  # type: ignore[arg-type]


@pytest.mark.parametrize("map_name", ["saliency", "oracle"])
def test_pixel_flipping_matches_quantus(world: dict[str, object], map_name: str) -> None:
    quantus = world["quantus"]
    maps = _distinct(world["maps"][map_name])  # type: ignore[index]
    inputs = world["inputs"]
    wrapper = ScoreModel(world["model"], inputs.partner_embeddings)  # type: ignore[arg-type, attr-defined]
    metric = quantus.PixelFlipping(  # type: ignore[attr-defined]
        features_in_step=FLIP_STEP, perturb_baseline=0.0, abs=False, normalise=False,
        return_auc_per_sample=False, disable_warnings=True, display_progressbar=False)
    with _legacy_global_seed(0):  # PixelFlipping draws nothing; restored all the same
        curves = np.asarray(_call(metric, wrapper, world, maps[:, None]), dtype=np.float64)
    ours = _faceattr(world, maps)
    mine = np.array([r.pixel_flipping.scores for r in ours])
    assert curves.shape == mine.shape == (N_PAIRS, 4096 // FLIP_STEP)
    curve_diff = float(np.abs(curves - mine).max())
    area_diff = max(abs(trapezoid(c, np.arange(c.size, dtype=np.float64))
                        - r.pixel_flipping.area) for c, r in zip(curves, ours, strict=True))
    print(f"pixel flipping ({map_name}): max |curve diff| {curve_diff:.2e}, "
          f"max |area diff| {area_diff:.2e}")
    assert curve_diff < SCORE_ATOL
    assert area_diff < SCORE_ATOL * curves.shape[1]


@pytest.mark.parametrize("map_name", ["saliency", "oracle"])
def test_faithfulness_correlation_matches_quantus_on_replayed_subsets(
        world: dict[str, object], map_name: str) -> None:
    quantus = world["quantus"]
    maps = world["maps"][map_name]  # type: ignore[index]
    inputs = world["inputs"]
    wrapper = ScoreModel(world["model"], inputs.partner_embeddings)  # type: ignore[arg-type, attr-defined]
    metric = quantus.FaithfulnessCorrelation(  # type: ignore[attr-defined]
        nr_runs=FC_RUNS, subset_size=FC_SUBSET, perturb_baseline=0.0, abs=False,
        normalise=False, return_aggregate=False, disable_warnings=True,
        display_progressbar=False)
    seed = 20260101
    before = np.random.get_state()  # noqa: NPY002 - checking the test leaves it untouched
    with _legacy_global_seed(seed):
        theirs = np.asarray(_call(metric, wrapper, world, maps[:, None]), dtype=np.float64)
    after = np.random.get_state()  # noqa: NPY002
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    # Quantus' draws, replayed from a local generator: per run, one subset per row
    replay = np.random.RandomState(seed)  # noqa: TID251 - replaying Quantus' legacy draws
    subsets: list[list[np.ndarray]] = [[] for _ in range(N_PAIRS)]
    for _ in range(FC_RUNS):
        for row in range(N_PAIRS):
            subsets[row].append(replay.choice(4096, FC_SUBSET, replace=False))
    ours = _faceattr(world, maps, subsets)
    mine = np.array([r.faithfulness.correlation for r in ours], dtype=np.float64)
    diff = float(np.abs(theirs - mine).max())
    print(f"faithfulness correlation ({map_name}): Quantus {np.round(theirs, 4).tolist()}, "
          f"max |diff| {diff:.2e}")
    assert np.isfinite(theirs).all()
    assert diff < 1e-4  # Pearson of drops of ~1e-2 computed from float32 scores
    # faceattr's own (keyed) draws are other subsets: a different estimate of the same thing
    keyed = np.array([r.faithfulness.correlation for r in _faceattr(world, maps)])
    assert not np.allclose(keyed, mine)


def test_noisy_linear_imputation_matches_quantus(world: dict[str, object]) -> None:
    perturb = importlib.import_module("quantus.functions.perturb_func")
    grey = world["grey"]
    maps = _distinct(world["maps"]["saliency"])  # type: ignore[index]
    worst = 0.0
    for row in range(N_PAIRS):
        order = np.argsort(-maps[row].ravel(), kind="stable")
        for k in removal_counts(4096, [0.1, 0.5, 0.9]):
            with _legacy_global_seed(0):  # noise 0: Quantus still draws randn(...) * 0
                theirs = perturb.noisy_linear_imputation(arr=grey[row], indices=order[:k],
                                                         noise=0.0)
            image = np.repeat(grey[row], 3, axis=0)  # type: ignore[index]
            ours = counterfactuals(image, np.sort(order[:k]), fill="nli", perturbation_sigma=0.0,
                                   rngs=[numpy_generator(0, "nli")])[0]
            assert np.allclose(ours[0], ours[1])
            assert np.allclose(ours[0], ours[2])
            worst = max(worst, float(np.abs(ours[0] - theirs[0]).max()))
    print(f"noisy linear imputation (noise 0): max |pixel diff| {worst:.2e}")
    assert worst < 1e-6  # float32 images, float64 solves


@pytest.mark.parametrize("map_name", ["saliency", "oracle"])
def test_road_morf_matches_quantus(world: dict[str, object], map_name: str) -> None:
    quantus = world["quantus"]
    maps = _distinct(world["maps"][map_name])  # type: ignore[index]
    inputs = world["inputs"]
    ours = _faceattr(world, maps)
    curve_diff, decisions, disagreements = 0.0, 0, 0
    for row in range(N_PAIRS):
        morf = np.array(ours[row].road.morf_scores)
        tau = np.array([float(np.median(morf))], dtype=np.float32)
        wrapper = ScoreModel(world["model"], inputs.partner_embeddings[row:row + 1],  # type: ignore[arg-type, attr-defined]
                             thresholds=tau)
        metric = quantus.ROAD(percentages=PERCENTAGES, noise=0.0, abs=False,  # type: ignore[attr-defined]
                              normalise=False, return_aggregate=False, disable_warnings=True,
                              display_progressbar=False)
        with _legacy_global_seed(0):
            result = _call(metric, wrapper, world, maps[row:row + 1, None],
                           rows=slice(row, row + 1))
        # Quantus' own score curve: the scores of the images it fed the model
        seen = np.concatenate(wrapper.seen).astype(np.float64)
        assert seen.shape == (len(PERCENTAGES),)
        curve_diff = max(curve_diff, float(np.abs(seen - morf).max()))
        # Quantus' output: the decision s >= tau at each percentage
        for p, s in zip(PERCENTAGES, morf, strict=True):
            if abs(s - float(tau[0])) < 1e-5:
                continue  # on the threshold: float32 vs float64 may go either way
            decisions += 1
            disagreements += int(bool(result[p]) != bool(s >= tau[0]))  # type: ignore[index]
    print(f"ROAD MoRF ({map_name}): max |curve diff| {curve_diff:.2e}, decisions "
          f"{decisions}, disagreements {disagreements}")
    assert curve_diff < SCORE_ATOL
    assert decisions >= N_PAIRS * (len(PERCENTAGES) - 1) - N_PAIRS
    assert disagreements == 0


def test_quantus_calls_leave_the_global_rng_alone() -> None:
    # the seeding helper restores the legacy state even when the call inside fails
    before = np.random.get_state()  # noqa: NPY002
    def failing_call() -> None:
        with _legacy_global_seed(1):
            np.random.random()  # noqa: NPY002 - drawing from the seeded global state on purpose
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing_call()
    after = np.random.get_state()  # noqa: NPY002
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
