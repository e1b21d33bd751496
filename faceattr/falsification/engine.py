"""Batched falsification of one method's maps on a batch of pairs.

All 2K counterfactuals of all pairs in a batch go through the model together, in
fixed-size chunks (PITFALLS.md #17); every draw comes from the stream
``(seed, pair_id, model, method, region, k)`` (PITFALLS.md #14).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray

from faceattr.data.pairs import Pair
from faceattr.falsification.counterfactuals import FillStrategy, counterfactuals
from faceattr.falsification.mapstats import MapStats, map_stats
from faceattr.falsification.quality import MapQuality, map_quality
from faceattr.falsification.regions import (
    NonFiniteMapError,
    Regions,
    TrivialMap,
    quantile_regions,
    region_fingerprint,
    threshold_regions,
)
from faceattr.falsification.verdicts import (
    simple_verdict_falsified,
    summarise_drifts,
    theorem_verdict,
)
from faceattr.models.base import VerificationModel, embed_batched
from faceattr.records import PairRecord
from faceattr.rng import numpy_generator

__all__ = ["FalsificationSettings", "PairInputs", "RegionTransform", "clean_scores",
           "failed_record", "falsify_maps"]

RegionTransform = Callable[[int, Regions], "Regions | TrivialMap"]
"""``(row, regions) -> regions``: replaces a pair's regions before the counterfactuals are
drawn (the artefact controls move ``S_high``); a :class:`TrivialMap` marks the pair trivial."""


@dataclass(frozen=True, slots=True)
class FalsificationSettings:
    """How the test is run (see the protocol's ``[falsification]`` table).

    Attributes
    ----------
    regions : {"quantile", "threshold"}
        Area-matched top/bottom ``q_frac`` (default) or the theorem's literal thresholds
        ``theta_high`` / ``theta_low`` on the min-max normalised map.
    area_ratio_bounds : (float, float)
        ``|S_high| / |S_low|`` outside these bounds flags the area confound.
    k_per_region, fill, blur_sigma_px, perturbation_sigma
        Counterfactual draws per region and how each is made.
    verdict : {"simple", "theorem"}
        The primary verdict; both are always recorded.
    distance : {"geodesic", "score_drop"}
        What Theorem 3.5 tests: geodesic drifts (radians) or verification-score drops.
    tau_high, tau_low, epsilon, alpha
        Theorem 3.5 thresholds (in the distance's unit) and the level of each one-sided test.
    forward_chunk : int
        Rows per model forward (fixed, zero-padded).
    """

    regions: Literal["quantile", "threshold"]
    q_frac: float
    theta_high: float
    theta_low: float
    area_ratio_bounds: tuple[float, float]
    k_per_region: int
    fill: FillStrategy
    blur_sigma_px: float
    perturbation_sigma: float
    verdict: Literal["simple", "theorem"]
    distance: Literal["geodesic", "score_drop"]
    tau_high: float
    tau_low: float
    epsilon: float
    alpha: float
    forward_chunk: int

    def split(self, relevance: NDArray[np.float64]) -> Regions | TrivialMap:
        """The regions of one map under these settings."""
        if self.regions == "quantile":
            return quantile_regions(relevance, self.q_frac)
        return threshold_regions(relevance, theta_high=self.theta_high,
                                 theta_low=self.theta_low)


@dataclass(frozen=True, slots=True, eq=False)
class PairInputs:
    """A batch of pairs with their clean images and embeddings (computed once per image), and
    the probes' ground-truth identity masks where the data source knows them."""

    pairs: Sequence[Pair]
    probes: NDArray[np.float32]  # (N, 3, H, W)
    probe_embeddings: NDArray[np.float32]  # (N, D)
    partner_embeddings: NDArray[np.float32]  # (N, D)
    identity_masks: NDArray[np.bool_] | None = None  # (N, H, W)

    def subset(self, rows: Sequence[int]) -> PairInputs:
        """The pairs at ``rows``, in that order."""
        index = list(rows)
        return PairInputs(
            pairs=[self.pairs[i] for i in index], probes=self.probes[index],
            probe_embeddings=self.probe_embeddings[index],
            partner_embeddings=self.partner_embeddings[index],
            identity_masks=None if self.identity_masks is None else self.identity_masks[index])

    def quality(self, row: int, relevance: NDArray[np.float64]) -> MapQuality | None:
        """Ground-truth quality of a finite map of pair ``row`` (None without a mask)."""
        if self.identity_masks is None:
            return None
        return map_quality(relevance, self.identity_masks[row])


def failed_record(pair: Pair, model: str, method: str, status: str, reason: str,
                  score_clean: float | None, verdict_rule: str,
                  stats: MapStats | None = None,
                  quality: MapQuality | None = None) -> PairRecord:
    """A trivial or error record: counted as falsified (intention-to-treat)."""
    return PairRecord(
        pair_id=pair.pair_id, model=model, method=method, is_genuine=pair.is_genuine,
        status=status, status_reason=reason, falsified=True, verdict_rule=verdict_rule,
        falsified_simple=True, falsified_theorem=True, p_high=None, p_low=None,
        score_clean=score_clean, n_high_px=None, n_low_px=None, n_boundary_ties=None,
        area_ratio=None, area_confound=None,
        map_sha256=None if stats is None else stats.sha256,
        map_range=None if stats is None else stats.range,
        map_entropy_norm=None if stats is None else stats.entropy_norm,
        map_gini=None if stats is None else stats.gini,
        gt_roc_auc=None if quality is None else quality.roc_auc,
        gt_rank_accuracy=None if quality is None else quality.rank_accuracy,
        gt_mass_accuracy=None if quality is None else quality.mass_accuracy,
        attribution_sum=None, convergence_delta=None, target_grad_norm=None,
        drift_high_rad=(), drift_low_rad=(), score_drop_high=(), score_drop_low=(),
        d_high_rad=None, d_low_rad=None, sd_high_rad=None, sd_low_rad=None, margin_rad=None,
        pairwise_violation_frac=None, regions_sha256=None)


def clean_scores(inputs: PairInputs) -> NDArray[np.float64]:
    """Verification scores ``<f(x_a), f(x_b)>`` of the clean pairs, float64 (N,).

    The one place clean scores are computed, so that records and the model gate agree to
    the last bit.
    """
    products = (inputs.probe_embeddings.astype(np.float64)
                * inputs.partner_embeddings.astype(np.float64))
    scores: NDArray[np.float64] = products.sum(axis=1)
    return scores


def _region_streams(seed: int, pair_id: str, model: str, method: str, region: str,
                    k: int) -> list[np.random.Generator]:
    return [numpy_generator(seed, pair_id, model, method, region, i) for i in range(k)]


def falsify_maps(model: VerificationModel, inputs: PairInputs, maps: NDArray[np.float64], *,
                 method_id: str, seed: int, settings: FalsificationSettings,
                 transform: RegionTransform | None = None) -> list[PairRecord]:
    """Run the falsification test for one method on a batch of pairs.

    Parameters
    ----------
    model : VerificationModel
    inputs : PairInputs
    maps : ndarray (N, H, W)
        The method's relevance maps, one per pair.
    method_id, seed, settings
        Stream keys and test settings.
    transform : callable or None
        Replaces each pair's regions before the draws (artefact controls); None keeps them.

    Returns
    -------
    list of PairRecord
        One per pair, in input order, each with a status.
    """
    scores = clean_scores(inputs)
    k = settings.k_per_region
    plans: list[tuple[Regions, MapStats, MapQuality | None] | PairRecord] = []
    valid: list[tuple[int, Regions]] = []
    for i, pair in enumerate(inputs.pairs):
        score = float(scores[i])
        try:
            split = settings.split(maps[i])
        except NonFiniteMapError as exc:
            plans.append(failed_record(pair, model.name, method_id, "error:NonFiniteMap",
                                       str(exc), score, settings.verdict))
            continue
        stats, quality = map_stats(maps[i]), inputs.quality(i, maps[i])
        if isinstance(split, Regions) and transform is not None:
            split = transform(i, split)
        if not isinstance(split, Regions):
            plans.append(failed_record(pair, model.name, method_id, "trivial", split.reason,
                                       score, settings.verdict, stats, quality))
            continue
        plans.append((split, stats, quality))
        valid.append((i, split))
    # all 2K counterfactuals of all pairs written straight into one batch: no per-region
    # blocks and no concatenated copy (half the peak memory of the batch's images)
    cf_embeddings = np.zeros((0, inputs.probe_embeddings.shape[1]), dtype=np.float32)
    if valid:
        batch = np.empty((len(valid) * 2 * k, *inputs.probes.shape[1:]), dtype=np.float32)
        row = 0
        for i, split in valid:
            pair_id = inputs.pairs[i].pair_id
            for region, idx in (("high", split.high_idx), ("low", split.low_idx)):
                rngs = _region_streams(seed, pair_id, model.name, method_id, region, k)
                counterfactuals(inputs.probes[i], idx, fill=settings.fill,
                                perturbation_sigma=settings.perturbation_sigma, rngs=rngs,
                                blur_sigma_px=settings.blur_sigma_px, out=batch[row:row + k])
                row += k
        cf_embeddings = embed_batched(model, torch.from_numpy(batch),
                                      chunk_size=settings.forward_chunk).numpy()
    return _assemble(model.name, method_id, inputs, plans, cf_embeddings, scores, settings)


def _assemble(model: str, method_id: str, inputs: PairInputs,
              plans: list[tuple[Regions, MapStats, MapQuality | None] | PairRecord],
              cf_embeddings: NDArray[np.float32], scores: NDArray[np.float64],
              settings: FalsificationSettings) -> list[PairRecord]:
    k = settings.k_per_region
    records: list[PairRecord] = []
    offset = 0
    for i, plan in enumerate(plans):
        if isinstance(plan, PairRecord):
            records.append(plan)
            continue
        regions, stats, quality = plan
        block = cf_embeddings[offset:offset + 2 * k].astype(np.float64)
        offset += 2 * k
        clean = inputs.probe_embeddings[i].astype(np.float64)
        partner = inputs.partner_embeddings[i].astype(np.float64)
        drifts = np.arccos(np.clip(block @ clean, -1.0, 1.0))
        drops = scores[i] - block @ partner
        summary = summarise_drifts(drifts[:k], drifts[k:])
        tested = drifts if settings.distance == "geodesic" else drops
        theorem = theorem_verdict(tested[:k], tested[k:], tau_high=settings.tau_high,
                                  tau_low=settings.tau_low, epsilon=settings.epsilon,
                                  alpha=settings.alpha)
        simple = simple_verdict_falsified(summary)
        area_ratio = regions.high_idx.size / regions.low_idx.size
        low_bound, high_bound = settings.area_ratio_bounds
        pair = inputs.pairs[i]
        records.append(PairRecord(
            pair_id=pair.pair_id, model=model, method=method_id, is_genuine=pair.is_genuine,
            status="valid", status_reason=None,
            falsified=simple if settings.verdict == "simple" else theorem.falsified,
            verdict_rule=settings.verdict, falsified_simple=simple,
            falsified_theorem=theorem.falsified, p_high=theorem.p_high, p_low=theorem.p_low,
            score_clean=float(scores[i]), n_high_px=int(regions.high_idx.size),
            n_low_px=int(regions.low_idx.size), n_boundary_ties=regions.n_boundary_ties,
            area_ratio=area_ratio, attribution_sum=None, convergence_delta=None,
            target_grad_norm=None, map_sha256=stats.sha256, map_range=stats.range,
            map_entropy_norm=stats.entropy_norm, map_gini=stats.gini,
            gt_roc_auc=None if quality is None else quality.roc_auc,
            gt_rank_accuracy=None if quality is None else quality.rank_accuracy,
            gt_mass_accuracy=None if quality is None else quality.mass_accuracy,
            area_confound=not low_bound <= area_ratio <= high_bound,
            drift_high_rad=tuple(float(v) for v in drifts[:k]),
            drift_low_rad=tuple(float(v) for v in drifts[k:]),
            score_drop_high=tuple(float(v) for v in drops[:k]),
            score_drop_low=tuple(float(v) for v in drops[k:]),
            d_high_rad=summary.d_high_rad, d_low_rad=summary.d_low_rad,
            sd_high_rad=summary.sd_high_rad, sd_low_rad=summary.sd_low_rad,
            margin_rad=summary.margin_rad,
            pairwise_violation_frac=summary.pairwise_violation_frac,
            regions_sha256=region_fingerprint(regions)))
    return records
