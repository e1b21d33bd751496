"""Records computed from float32 embeddings, as the engine computes them, and the same records
on "another machine": every raw embedding nudged by a few ulps and normalised with another
float32 summation order (no torch, no model)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from faceattr.falsification.verdicts import (
    simple_verdict_falsified,
    summarise_drifts,
    theorem_verdict,
)
from faceattr.records import PairRecord
from tests.compare.builders import PROTOCOL, pair_id

DIM = 128
K = 6
TAU_HIGH, TAU_LOW, EPSILON, TEST_ALPHA = 0.5, 0.3, 0.1, 0.05
THEOREM: dict[str, Any] = {"distance": "geodesic", "tau_high": TAU_HIGH, "tau_low": TAU_LOW,
                           "epsilon": EPSILON, "test_alpha": TEST_ALPHA}
FULL_PROTOCOL: dict[str, Any] = {**PROTOCOL,
                                 "falsification": {**PROTOCOL["falsification"], **THEOREM}}

F32 = NDArray[np.float32]


@dataclass(frozen=True)
class RawPair:
    """Raw (unnormalised) float32 network outputs of a pair: probe, partner, 2K counterfactuals."""

    probe: F32
    partner: F32
    high: F32  # (K, DIM)
    low: F32   # (K, DIM)


def raw_pairs(n: int, *, seed: int, n_ties: int) -> list[RawPair]:
    """``n`` pairs; the first ``n_ties`` have low-region counterfactuals that equal the
    high-region ones up to a last-bit change, so their margin is ~1e-8 rad (a tie)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        probe = rng.standard_normal(DIM).astype(np.float32)
        partner = (probe + rng.standard_normal(DIM).astype(np.float32)).astype(np.float32)
        scale_high = rng.uniform(0.02, 1.0)
        high = (probe + scale_high * rng.standard_normal((K, DIM))).astype(np.float32)
        if i < n_ties:
            low = nudge(high, rng, ulps=1)
        else:
            scale_low = rng.uniform(0.01, 1.0)
            low = (probe + scale_low * rng.standard_normal((K, DIM))).astype(np.float32)
        out.append(RawPair(probe=probe, partner=partner, high=high, low=low))
    return out


def nudge(x: F32, rng: np.random.Generator, *, ulps: int) -> F32:
    """Move every entry by a random number of ulps in [-ulps, ulps] (float32)."""
    steps = rng.integers(-ulps, ulps + 1, size=x.shape)
    out = x.copy()
    for _ in range(ulps):
        up, down = steps > 0, steps < 0
        out[up] = np.nextafter(out[up], np.float32(np.inf))
        out[down] = np.nextafter(out[down], np.float32(-np.inf))
        steps = steps - np.sign(steps)
    return out


def normalise(x: F32, *, order: str) -> F32:
    """L2-normalise rows in float32: numpy's pairwise sum, or a sequential reversed sum."""
    x2 = np.atleast_2d(x)
    if order == "pairwise":
        norm = np.sqrt(np.sum(x2 * x2, axis=1, dtype=np.float32))
    else:
        squares = (x2 * x2)[:, ::-1]
        norm = np.sqrt(np.cumsum(squares, axis=1, dtype=np.float32)[:, -1])
    out: F32 = (x2 / norm[:, None]).astype(np.float32)
    return out


def record_of(i: int, pair: RawPair, *, method: str, order: str) -> PairRecord:
    """The record the engine would write for this pair (float64 metrics from float32 embeddings)."""
    probe = normalise(pair.probe, order=order)[0].astype(np.float64)
    partner = normalise(pair.partner, order=order)[0].astype(np.float64)
    block = np.concatenate([normalise(pair.high, order=order),
                            normalise(pair.low, order=order)]).astype(np.float64)
    drifts = np.arccos(np.clip(block @ probe, -1.0, 1.0))
    score = float(probe @ partner)
    drops = score - block @ partner
    summary = summarise_drifts(drifts[:K], drifts[K:])
    theorem = theorem_verdict(drifts[:K], drifts[K:], tau_high=TAU_HIGH, tau_low=TAU_LOW,
                              epsilon=EPSILON, alpha=TEST_ALPHA)
    simple = simple_verdict_falsified(summary)
    return PairRecord(
        pair_id=pair_id(i), model="m", method=method, is_genuine=True, status="valid",
        status_reason=None, falsified=simple, verdict_rule="simple", falsified_simple=simple,
        falsified_theorem=theorem.falsified, p_high=theorem.p_high, p_low=theorem.p_low,
        score_clean=score, n_high_px=10, n_low_px=10, n_boundary_ties=0, area_ratio=1.0,
        area_confound=False, map_sha256=f"{i:064x}", map_range=1.0, map_entropy_norm=0.9,
        map_gini=0.3, gt_roc_auc=None, gt_rank_accuracy=None, gt_mass_accuracy=None,
        attribution_sum=None, convergence_delta=None, target_grad_norm=None,
        drift_high_rad=tuple(float(v) for v in drifts[:K]),
        drift_low_rad=tuple(float(v) for v in drifts[K:]),
        score_drop_high=tuple(float(v) for v in drops[:K]),
        score_drop_low=tuple(float(v) for v in drops[K:]),
        d_high_rad=summary.d_high_rad, d_low_rad=summary.d_low_rad,
        sd_high_rad=summary.sd_high_rad, sd_low_rad=summary.sd_low_rad,
        margin_rad=summary.margin_rad, pairwise_violation_frac=summary.pairwise_violation_frac,
        regions_sha256=f"{i:064x}")


def two_machines(n: int, *, seed: int, n_ties: int, ulps: int = 3
                 ) -> tuple[list[PairRecord], list[PairRecord]]:
    """Records of ``n`` pairs on machine A, and on machine B whose float32 forward differs in
    the last bits (each raw output nudged by up to ``ulps`` ulps) and whose ``normalize``
    sums in another order."""
    pairs = raw_pairs(n, seed=seed, n_ties=n_ties)
    rng = np.random.default_rng(seed + 1)
    other = [RawPair(probe=nudge(p.probe, rng, ulps=ulps),
                     partner=nudge(p.partner, rng, ulps=ulps),
                     high=nudge(p.high, rng, ulps=ulps), low=nudge(p.low, rng, ulps=ulps))
             for p in pairs]
    a = [record_of(i, p, method="saliency", order="pairwise") for i, p in enumerate(pairs)]
    b = [record_of(i, p, method="saliency", order="sequential") for i, p in enumerate(other)]
    return a, b


def swapped(r: PairRecord) -> PairRecord:
    """A real change of the science: the high and low regions trade places (margin -> -margin)."""
    return replace(r, drift_high_rad=r.drift_low_rad, drift_low_rad=r.drift_high_rad,
                   d_high_rad=r.d_low_rad, d_low_rad=r.d_high_rad, sd_high_rad=r.sd_low_rad,
                   sd_low_rad=r.sd_high_rad, margin_rad=-float(r.margin_rad or 0.0),
                   pairwise_violation_frac=1.0 - float(r.pairwise_violation_frac or 0.0),
                   falsified=not r.falsified, falsified_simple=not r.falsified_simple)
