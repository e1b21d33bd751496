"""The evaluation metrics researchers use to compare explanations, for the verification score.

Every metric here perturbs the probe ``x_a`` guided by a relevance map and watches the
verification score ``s(x', x_b) = <f(x'), f(x_b)>`` (``f`` = the model's L2-normalised
embedding, the partner held fixed; see :mod:`faceattr.models.base`), on the same maps and
pairs as the falsification test. The fills are faceattr's own
(:func:`faceattr.falsification.counterfactuals.fill_of`, written by
:func:`~faceattr.falsification.counterfactuals.counterfactuals`), all randomness comes from
generators keyed by ``(seed, pair_id, model, method, metric, index)``
(:func:`faceattr.rng.numpy_generator`), counterfactuals are embedded in fixed-size chunks
(:func:`faceattr.models.base.embed_batched`) and every result is float64.

Pixels are ranked by the map as the falsification test ranks them: most relevant first by a
stable sort of ``-phi`` (ties by flat pixel index, as :mod:`~faceattr.falsification.quality`
and the regions break them); least relevant first by a stable sort of ``phi``.

Metrics (``n`` = pixels of the image):

- **deletion AUC** (Petsiuk et al., "RISE", BMVC 2018; used for face verification by CorrRISE,
  WACV 2024, and FGGB): the ``k_j = floor(j n / n_steps)`` most relevant pixels replaced by the
  declared fill, ``j = 0 .. n_steps``; area under ``s`` against the removed fraction
  ``k_j / n`` by the trapezoid rule on [0, 1]. Lower = the map found what the score needs.
- **insertion AUC** (same references): start from the baseline image (every pixel filled,
  ``blur`` by default) and restore the ``k_j`` most relevant pixels; area as for deletion.
  Higher = better.
- **ROAD MoRF / LeRF** (Rong et al., "A consistent and efficient evaluation strategy for
  attribution methods", ICML 2022): at each removal fraction ``p``, the ``floor(p n)`` most
  (MoRF) or least (LeRF) relevant pixels imputed by faceattr's noisy linear imputation
  (:func:`~faceattr.falsification.counterfactuals.linear_imputation` plus ``N(0, sd^2)`` noise
  from a keyed generator, clipped to [0, 1]); the area is the trapezoid over the fractions
  divided by their span (the curve's mean level). MoRF lower / LeRF higher = better; the gap
  ``LeRF - MoRF`` is faceattr's single-number summary of the two.
- **faithfulness correlation** (Bhatt, Weller & Moura, "Evaluating and aggregating
  feature-based model explanations", IJCAI 2020): for ``R`` random pixel subsets of a fixed
  size (keyed draws), Pearson's correlation between the subset's relevance sum and the score
  drop ``s(x) - s(x')`` when the subset is filled. Higher = better; undefined (None, with a
  reason) when either column is constant.
- **pixel flipping** (Bach et al., "On pixel-wise explanations for non-linear classifier
  decisions by layer-wise relevance propagation", PLoS ONE 10(7), 2015; Quantus'
  ``PixelFlipping``, Hedström et al., JMLR 24, 2023): ``pixels_per_step`` more pixels flipped to
  the fill (``zero`` = Quantus' ``perturb_baseline=0.0``) per step, most relevant first, the
  score recorded after every step (the clean image is not a point, as in Quantus); the area is
  Quantus' ``calculate_auc``: the trapezoid rule with unit spacing. Lower = better.

A constant map (range at most :data:`~faceattr.falsification.regions.ATOL_CONSTANT_MAP`
relative) cannot rank pixels: its pair gets status ``trivial`` and no metric values.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from faceattr.falsification.counterfactuals import counterfactuals, fill_of
from faceattr.falsification.engine import PairInputs, clean_scores
from faceattr.falsification.regions import ATOL_CONSTANT_MAP
from faceattr.models.base import VerificationModel, embed_batched
from faceattr.rng import numpy_generator

__all__ = ["METRICS", "DeletionResult", "FaithfulnessCorrelationResult", "InsertionResult",
           "MetricInfo", "MetricSettings", "PairMetrics", "PixelFlippingResult", "RoadResult",
           "evaluate_maps", "faithfulness_subsets", "metric_values", "removal_counts",
           "trapezoid"]

_FloatArray = NDArray[np.float64]
_IndexArray = NDArray[np.intp]
_FULL_FILL_REFUSED = "nli"  # ROAD's imputation needs known neighbours: never 100% removal


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """What a scalar metric is and which way is better.

    Attributes
    ----------
    name : str
    orientation : {1, -1}
        ``+1`` when a higher value means the metric judged the map better, ``-1`` when lower.
    reference : str
        The paper that defines it.
    """

    name: str
    orientation: int
    reference: str


#: The scalar metrics :func:`metric_values` returns, in table order.
METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("deletion_auc", -1, "Petsiuk et al. 2018 (RISE); CorrRISE WACV 2024; FGGB"),
    MetricInfo("insertion_auc", 1, "Petsiuk et al. 2018 (RISE); CorrRISE WACV 2024; FGGB"),
    MetricInfo("road_morf_area", -1, "Rong et al. ICML 2022 (ROAD, MoRF)"),
    MetricInfo("road_lerf_area", 1, "Rong et al. ICML 2022 (ROAD, LeRF)"),
    MetricInfo("road_gap", 1, "Rong et al. ICML 2022 (LeRF area - MoRF area)"),
    MetricInfo("faithfulness_correlation", 1, "Bhatt et al. IJCAI 2020"),
    MetricInfo("pixel_flipping_area", -1, "Bach et al. PLoS ONE 2015; Quantus PixelFlipping"),
)


@dataclass(frozen=True, slots=True)
class MetricSettings:
    """How the metrics perturb the probe.

    Attributes
    ----------
    n_steps : int
        Deletion / insertion steps (``n_steps + 1`` curve points, both ends included).
    deletion_fill : str
        The fill of removed pixels (a registered fill; not ``nli``, which cannot fill a whole
        image: ROAD covers it).
    insertion_baseline : str
        The fill of the not-yet-inserted pixels (``blur``: the clean image blurred with
        ``blur_sigma_px``, RISE's choice; not ``nli``).
    blur_sigma_px : float
        Gaussian sigma of every ``blur`` fill, pixels.
    road_fractions : tuple of float
        ROAD's removal fractions, increasing, each in (0, 1).
    road_noise_sd : float
        SD of ROAD's noise added to the imputed pixels (Rong et al.; Quantus' default 0.01).
    faithfulness_runs, faithfulness_subset_px : int
        Random subsets and their size in pixels (Bhatt et al.'s ``|S|``).
    faithfulness_fill : str
        The fill of a subset.
    flip_pixels_per_step : int
        Pixels flipped per pixel-flipping step (Quantus' ``features_in_step`` on a one-channel
        input).
    flip_fill : str
        The fill of flipped pixels (``zero`` = Quantus' ``perturb_baseline=0.0``; not ``nli``).
    forward_chunk : int
        Rows per model forward (fixed, zero-padded).
    pairs_per_batch : int
        Pairs whose counterfactuals are embedded together (memory bound; no effect on values).
    """

    n_steps: int = 10
    deletion_fill: str = "mean"
    insertion_baseline: str = "blur"
    blur_sigma_px: float = 4.0
    road_fractions: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    road_noise_sd: float = 0.01
    faithfulness_runs: int = 32
    faithfulness_subset_px: int = 256
    faithfulness_fill: str = "mean"
    flip_pixels_per_step: int = 256
    flip_fill: str = "zero"
    forward_chunk: int = 64
    pairs_per_batch: int = 8

    def __post_init__(self) -> None:
        for name in ("n_steps", "faithfulness_runs", "faithfulness_subset_px",
                     "flip_pixels_per_step", "forward_chunk", "pairs_per_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"metric setting {name} must be an int >= 1, got {value!r}")
        if self.faithfulness_runs < 3:
            raise ValueError("faithfulness_runs must be >= 3 (a correlation needs 3 points)")
        fractions = self.road_fractions
        if not fractions or any(not 0.0 < f < 1.0 for f in fractions) or any(
                b <= a for a, b in itertools.pairwise(fractions)):
            raise ValueError(f"road_fractions must increase strictly inside (0, 1), got "
                             f"{fractions!r}")
        if not (math.isfinite(self.road_noise_sd) and self.road_noise_sd >= 0.0):
            raise ValueError(f"road_noise_sd must be >= 0, got {self.road_noise_sd!r}")
        if not (math.isfinite(self.blur_sigma_px) and self.blur_sigma_px > 0.0):
            raise ValueError(f"blur_sigma_px must be > 0, got {self.blur_sigma_px!r}")
        for name in ("deletion_fill", "insertion_baseline", "flip_fill", "faithfulness_fill"):
            fill = getattr(self, name)
            fill_of(fill, f"metric setting {name}")
            if fill == _FULL_FILL_REFUSED and name != "faithfulness_fill":
                raise ValueError(f"metric setting {name} = 'nli': noisy linear imputation "
                                 "cannot fill the whole image; ROAD (road_*) is the NLI metric")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"n_steps": self.n_steps, "deletion_fill": self.deletion_fill,
                "insertion_baseline": self.insertion_baseline,
                "blur_sigma_px": self.blur_sigma_px, "road_fractions": list(self.road_fractions),
                "road_noise_sd": self.road_noise_sd, "faithfulness_runs": self.faithfulness_runs,
                "faithfulness_subset_px": self.faithfulness_subset_px,
                "faithfulness_fill": self.faithfulness_fill,
                "flip_pixels_per_step": self.flip_pixels_per_step, "flip_fill": self.flip_fill,
                "forward_chunk": self.forward_chunk}


def _floats(values: Sequence[float] | _FloatArray, what: str) -> tuple[float, ...]:
    out = tuple(float(v) for v in values)
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{what} must be finite")
    return out


@dataclass(frozen=True, slots=True)
class DeletionResult:
    """Deletion curve of one pair (Petsiuk et al. 2018).

    Attributes
    ----------
    fractions : tuple of float
        Removed fraction ``k_j / n`` of each point, from 0 to 1.
    scores : tuple of float
        ``s(x'_j, x_b)``; the first is the clean score.
    auc : float
        Trapezoid area of ``scores`` over ``fractions`` (on [0, 1]).
    fill : str
    """

    fractions: tuple[float, ...]
    scores: tuple[float, ...]
    auc: float
    fill: str

    def __post_init__(self) -> None:
        if len(self.fractions) != len(self.scores) or len(self.scores) < 2:
            raise ValueError("a deletion curve needs >= 2 points, one score per fraction")
        _floats((*self.fractions, *self.scores, self.auc), "a deletion curve")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"fractions": list(self.fractions), "scores": list(self.scores),
                "auc": self.auc, "fill": self.fill}


@dataclass(frozen=True, slots=True)
class InsertionResult:
    """Insertion curve of one pair (Petsiuk et al. 2018).

    Attributes
    ----------
    fractions : tuple of float
        Inserted fraction ``k_j / n``, from 0 (the baseline image) to 1 (the clean image).
    scores : tuple of float
        ``s(x'_j, x_b)``; the last is the clean score.
    auc : float
        Trapezoid area of ``scores`` over ``fractions``.
    baseline : str
        The fill of the pixels not yet inserted.
    """

    fractions: tuple[float, ...]
    scores: tuple[float, ...]
    auc: float
    baseline: str

    def __post_init__(self) -> None:
        if len(self.fractions) != len(self.scores) or len(self.scores) < 2:
            raise ValueError("an insertion curve needs >= 2 points, one score per fraction")
        _floats((*self.fractions, *self.scores, self.auc), "an insertion curve")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"fractions": list(self.fractions), "scores": list(self.scores),
                "auc": self.auc, "baseline": self.baseline}


@dataclass(frozen=True, slots=True)
class RoadResult:
    """ROAD's MoRF and LeRF curves of one pair (Rong et al., ICML 2022).

    Attributes
    ----------
    fractions : tuple of float
        Removal fractions.
    n_removed : tuple of int
        ``floor(p n)`` pixels imputed at each fraction.
    morf_scores, lerf_scores : tuple of float
        Scores with the most / least relevant pixels imputed.
    morf_area, lerf_area : float
        Trapezoid area over the fractions divided by their span (equal to the score for a
        single fraction).
    noise_sd : float
    """

    fractions: tuple[float, ...]
    n_removed: tuple[int, ...]
    morf_scores: tuple[float, ...]
    lerf_scores: tuple[float, ...]
    morf_area: float
    lerf_area: float
    noise_sd: float

    def __post_init__(self) -> None:
        n = len(self.fractions)
        if not n or len(self.n_removed) != n or len(self.morf_scores) != n or \
                len(self.lerf_scores) != n:
            raise ValueError("ROAD curves need one score per fraction")
        _floats((*self.morf_scores, *self.lerf_scores, self.morf_area, self.lerf_area),
                "ROAD curves")

    @property
    def gap(self) -> float:
        """``lerf_area - morf_area`` (higher = the map separates relevant from irrelevant)."""
        return self.lerf_area - self.morf_area

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"fractions": list(self.fractions), "n_removed": list(self.n_removed),
                "morf_scores": list(self.morf_scores), "lerf_scores": list(self.lerf_scores),
                "morf_area": self.morf_area, "lerf_area": self.lerf_area, "gap": self.gap,
                "noise_sd": self.noise_sd}


@dataclass(frozen=True, slots=True)
class FaithfulnessCorrelationResult:
    """Faithfulness correlation of one pair (Bhatt et al., IJCAI 2020).

    Attributes
    ----------
    relevance_sums : tuple of float
        Sum of the map over each random subset.
    score_drops : tuple of float
        ``s(x) - s(x')`` with the subset filled.
    correlation : float or None
        Pearson's r of the two; None (with ``undefined_reason``) when either is constant.
    subset_px : int
    fill : str
    undefined_reason : str or None
    """

    relevance_sums: tuple[float, ...]
    score_drops: tuple[float, ...]
    correlation: float | None
    subset_px: int
    fill: str
    undefined_reason: str | None

    def __post_init__(self) -> None:
        if len(self.relevance_sums) != len(self.score_drops):
            raise ValueError("one score drop per subset")
        _floats((*self.relevance_sums, *self.score_drops), "faithfulness correlation inputs")
        if (self.correlation is None) == (self.undefined_reason is None):
            raise ValueError("a faithfulness correlation has a value or a reason, not both")
        if self.correlation is not None and not -1.0 <= self.correlation <= 1.0:
            raise ValueError(f"correlation {self.correlation!r} outside [-1, 1]")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (None, never NaN, for an undefined correlation)."""
        return {"relevance_sums": list(self.relevance_sums),
                "score_drops": list(self.score_drops), "correlation": self.correlation,
                "subset_px": self.subset_px, "fill": self.fill,
                "undefined_reason": self.undefined_reason}


@dataclass(frozen=True, slots=True)
class PixelFlippingResult:
    """Pixel-flipping curve of one pair (Bach et al. 2015; Quantus ``PixelFlipping``).

    Attributes
    ----------
    pixels_per_step : int
    scores : tuple of float
        Score after each step (``ceil(n / pixels_per_step)`` points; the clean image is not
        one).
    area : float
        Trapezoid rule with unit spacing (Quantus' ``calculate_auc``).
    fill : str
    """

    pixels_per_step: int
    scores: tuple[float, ...]
    area: float
    fill: str

    def __post_init__(self) -> None:
        if not self.scores:
            raise ValueError("a pixel-flipping curve needs >= 1 point")
        _floats((*self.scores, self.area), "a pixel-flipping curve")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"pixels_per_step": self.pixels_per_step, "scores": list(self.scores),
                "area": self.area, "fill": self.fill}


@dataclass(frozen=True, slots=True)
class PairMetrics:
    """Every metric of one map on one pair.

    Attributes
    ----------
    pair_id, model, method : str
        The join key (as the falsification records').
    is_genuine : bool
    status : {"valid", "trivial"}
        ``trivial``: a constant map, no metric values (``reason`` says why).
    clean_score : float
        ``s(x_a, x_b)`` (:func:`faceattr.falsification.engine.clean_scores`).
    deletion, insertion, road, faithfulness, pixel_flipping
        The results; None for a trivial map.
    reason : str or None
    """

    pair_id: str
    model: str
    method: str
    is_genuine: bool
    status: str
    clean_score: float
    deletion: DeletionResult | None = None
    insertion: InsertionResult | None = None
    road: RoadResult | None = None
    faithfulness: FaithfulnessCorrelationResult | None = None
    pixel_flipping: PixelFlippingResult | None = None
    reason: str | None = field(default=None)

    def __post_init__(self) -> None:
        parts = (self.deletion, self.insertion, self.road, self.faithfulness,
                 self.pixel_flipping)
        if self.status == "valid":
            if any(p is None for p in parts) or self.reason is not None:
                raise ValueError("a valid pair has every metric and no reason")
        elif self.status == "trivial":
            if any(p is not None for p in parts) or self.reason is None:
                raise ValueError("a trivial pair has a reason and no metric")
        else:
            raise ValueError(f"unknown metric status {self.status!r}")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (None for absent values, never NaN)."""
        def part(p: Any) -> Any:
            return None if p is None else p.to_json()

        return {"pair_id": self.pair_id, "model": self.model, "method": self.method,
                "is_genuine": self.is_genuine, "status": self.status, "reason": self.reason,
                "clean_score": self.clean_score, "deletion": part(self.deletion),
                "insertion": part(self.insertion), "road": part(self.road),
                "faithfulness": part(self.faithfulness),
                "pixel_flipping": part(self.pixel_flipping)}


def metric_values(result: PairMetrics) -> dict[str, float | None]:
    """The scalar metrics of :data:`METRICS` for one pair (None where undefined)."""
    if result.status != "valid":
        return {m.name: None for m in METRICS}
    assert result.deletion is not None
    assert result.insertion is not None
    assert result.road is not None
    assert result.faithfulness is not None
    assert result.pixel_flipping is not None
    return {"deletion_auc": result.deletion.auc, "insertion_auc": result.insertion.auc,
            "road_morf_area": result.road.morf_area, "road_lerf_area": result.road.lerf_area,
            "road_gap": result.road.gap,
            "faithfulness_correlation": result.faithfulness.correlation,
            "pixel_flipping_area": result.pixel_flipping.area}


def trapezoid(y: Sequence[float] | _FloatArray, x: Sequence[float] | _FloatArray) -> float:
    """The composite trapezoid rule ``sum (x_{i+1} - x_i) (y_i + y_{i+1}) / 2``, float64."""
    ys, xs = np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)
    if ys.shape != xs.shape or ys.ndim != 1:
        raise ValueError("trapezoid needs two 1-D arrays of one length")
    return float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2.0))


def removal_counts(n_pixels: int, fractions: Sequence[float]) -> tuple[int, ...]:
    """``floor(p n)`` pixels for each fraction (ROAD's and Quantus' count)."""
    return tuple(math.floor(f * n_pixels + 1e-9) for f in fractions)


def faithfulness_subsets(seed: int, pair_id: str, model: str, method: str, n_pixels: int,
                         settings: MetricSettings) -> list[_IndexArray]:
    """The random pixel subsets of one pair's faithfulness correlation.

    Subset ``r`` is drawn without replacement from the stream
    ``(seed, pair_id, model, method, "faithfulness_correlation", r)``: it depends on nothing
    else (not on other methods, other pairs or the number of runs before it).
    """
    size = settings.faithfulness_subset_px
    if size >= n_pixels:
        raise ValueError(f"faithfulness_subset_px={size} must be < the image's {n_pixels} px")
    return [np.sort(numpy_generator(seed, pair_id, model, method, "faithfulness_correlation",
                                    r).choice(n_pixels, size=size, replace=False))
            for r in range(settings.faithfulness_runs)]


def _is_constant(flat: _FloatArray) -> bool:
    scale = max(float(np.abs(flat).max()), 1.0)
    return float(flat.max() - flat.min()) <= ATOL_CONSTANT_MAP * scale


@dataclass(frozen=True, slots=True, eq=False)
class _Pair:
    """One pair's inputs and stream keys."""

    image: NDArray[np.float32]  # (C, H, W)
    relevance: _FloatArray  # flat (n,)
    seed: int
    keys: tuple[str, str, str]  # (pair_id, model, method)
    subsets: Sequence[_IndexArray]


class _Images:
    """Counterfactual images of one pair, written into one preallocated block."""

    def __init__(self, pair: _Pair, n_images: int) -> None:
        self.pair = pair
        self.block = np.empty((n_images, *pair.image.shape), dtype=np.float32)
        self.row = 0

    def add(self, idx: _IndexArray, fill: str, metric: str, index: int, *,
            noise_sd: float = 0.0, blur_sigma_px: float = 0.0) -> None:
        out = self.block[self.row:self.row + 1]
        self.row += 1
        if idx.size == 0:
            out[0] = self.pair.image
            return
        rng = numpy_generator(self.pair.seed, *self.pair.keys, metric, index)
        counterfactuals(self.pair.image, np.sort(idx), fill=fill, perturbation_sigma=noise_sd,
                        rngs=[rng], blur_sigma_px=blur_sigma_px, out=out)


def _layout(n: int, settings: MetricSettings) -> tuple[tuple[int, ...], tuple[int, ...],
                                                       tuple[int, ...]]:
    steps = tuple(j * n // settings.n_steps for j in range(settings.n_steps + 1))
    road = removal_counts(n, settings.road_fractions)
    per = settings.flip_pixels_per_step
    flips = tuple(min(j * per, n) for j in range(1, -(-n // per) + 1))
    return steps, road, flips


def _images(pair: _Pair, settings: MetricSettings) -> NDArray[np.float32]:
    n = pair.relevance.size
    steps, road, flips = _layout(n, settings)
    morf = np.argsort(-pair.relevance, kind="stable")
    lerf = np.argsort(pair.relevance, kind="stable")
    total = 2 * settings.n_steps + 2 * len(road) + len(pair.subsets) + len(flips)
    images = _Images(pair, total)
    sigma = settings.blur_sigma_px
    for j, k in enumerate(steps[1:], start=1):
        images.add(morf[:k], settings.deletion_fill, "deletion", j, blur_sigma_px=sigma)
    for j, k in enumerate(steps[:-1]):
        images.add(morf[k:], settings.insertion_baseline, "insertion", j, blur_sigma_px=sigma)
    for order, name in ((morf, "road_morf"), (lerf, "road_lerf")):
        for j, k in enumerate(road):
            images.add(order[:k], "nli", name, j, noise_sd=settings.road_noise_sd)
    for r, subset in enumerate(pair.subsets):
        images.add(subset, settings.faithfulness_fill, "faithfulness_correlation", r,
                   blur_sigma_px=sigma)
    for j, k in enumerate(flips):
        images.add(morf[:k], settings.flip_fill, "pixel_flipping", j, blur_sigma_px=sigma)
    assert images.row == total
    return images.block


def _pearson(a: _FloatArray, b: _FloatArray) -> tuple[float | None, str | None]:
    for name, values in (("relevance sums", a), ("score drops", b)):
        if float(np.ptp(values)) == 0.0:
            return None, f"the {name} are constant over the subsets: no correlation"
    da, db = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float(np.sum(da * da)) * float(np.sum(db * db)))
    if denominator == 0.0:
        return None, "zero variance: no correlation"
    return min(max(float(np.sum(da * db)) / denominator, -1.0), 1.0), None


def _assemble(pair: _Pair, clean: float, scores: _FloatArray,
              settings: MetricSettings) -> tuple[DeletionResult, InsertionResult, RoadResult,
                                                 FaithfulnessCorrelationResult,
                                                 PixelFlippingResult]:
    n = pair.relevance.size
    steps, road, flips = _layout(n, settings)
    fractions = np.array(steps, dtype=np.float64) / n
    at = 0

    def take(count: int) -> _FloatArray:
        nonlocal at
        part = scores[at:at + count]
        at += count
        return part

    deleted = np.concatenate([[clean], take(settings.n_steps)])
    inserted = np.concatenate([take(settings.n_steps), [clean]])
    morf, lerf = take(len(road)), take(len(road))
    drops = clean - take(len(pair.subsets))
    flipped = take(len(flips))
    assert at == scores.size
    road_x = np.asarray(settings.road_fractions, dtype=np.float64)
    span = float(road_x[-1] - road_x[0])

    def road_area(curve: _FloatArray) -> float:
        return float(curve[0]) if span == 0.0 else trapezoid(curve, road_x) / span

    sums = np.array([float(pair.relevance[s].sum()) for s in pair.subsets])
    r, reason = _pearson(sums, drops)
    return (
        DeletionResult(fractions=_floats(fractions, "fractions"),
                       scores=_floats(deleted, "deletion scores"),
                       auc=trapezoid(deleted, fractions), fill=settings.deletion_fill),
        InsertionResult(fractions=_floats(fractions, "fractions"),
                        scores=_floats(inserted, "insertion scores"),
                        auc=trapezoid(inserted, fractions), baseline=settings.insertion_baseline),
        RoadResult(fractions=tuple(settings.road_fractions), n_removed=road,
                   morf_scores=_floats(morf, "MoRF scores"),
                   lerf_scores=_floats(lerf, "LeRF scores"), morf_area=road_area(morf),
                   lerf_area=road_area(lerf), noise_sd=settings.road_noise_sd),
        FaithfulnessCorrelationResult(
            relevance_sums=_floats(sums, "relevance sums"),
            score_drops=_floats(drops, "score drops"), correlation=r,
            subset_px=settings.faithfulness_subset_px, fill=settings.faithfulness_fill,
            undefined_reason=reason),
        PixelFlippingResult(pixels_per_step=settings.flip_pixels_per_step,
                            scores=_floats(flipped, "pixel-flipping scores"),
                            area=trapezoid(flipped, np.arange(flipped.size, dtype=np.float64)),
                            fill=settings.flip_fill))


def evaluate_maps(model: VerificationModel, inputs: PairInputs, maps: NDArray[np.float64], *,
                  method_id: str, seed: int, settings: MetricSettings,
                  subsets: Sequence[Sequence[_IndexArray]] | None = None) -> list[PairMetrics]:
    """Every metric of one method's maps on a batch of pairs.

    Parameters
    ----------
    model : VerificationModel
    inputs : PairInputs
        The pairs, their probes and clean embeddings (as the falsification test's).
    maps : ndarray (N, H, W)
        The maps as the falsification test ranks them (signed or ``|phi|``, as declared).
    method_id, seed : str, int
        Stream keys.
    settings : MetricSettings
    subsets : sequence (N) of sequences of int arrays, optional
        Explicit faithfulness subsets per pair (a reference comparison replays another
        library's draws); None draws them with :func:`faithfulness_subsets`.

    Returns
    -------
    list of PairMetrics
        One per pair, in input order.

    Raises
    ------
    ValueError
        For a non-finite map or shapes that do not match.
    """
    n_rows, height, width = inputs.probes.shape[0], inputs.probes.shape[2], inputs.probes.shape[3]
    if maps.shape != (n_rows, height, width):
        raise ValueError(f"maps of shape {maps.shape} for {n_rows} probes of {height}x{width}")
    if subsets is not None and len(subsets) != n_rows:
        raise ValueError(f"{len(subsets)} subset lists for {n_rows} pairs")
    if not np.isfinite(maps).all():
        raise ValueError("metrics need finite maps")
    scores_clean = clean_scores(inputs)
    results: list[PairMetrics | None] = [None] * n_rows
    todo: list[tuple[int, _Pair]] = []
    for i, pair in enumerate(inputs.pairs):
        flat = np.asarray(maps[i], dtype=np.float64).ravel()
        if _is_constant(flat):
            results[i] = PairMetrics(pair_id=pair.pair_id, model=model.name, method=method_id,
                                     is_genuine=pair.is_genuine, status="trivial",
                                     clean_score=float(scores_clean[i]),
                                     reason="constant map: max - min <= atol")
            continue
        chosen = (faithfulness_subsets(seed, pair.pair_id, model.name, method_id, flat.size,
                                       settings)
                  if subsets is None else [np.asarray(s, dtype=np.intp) for s in subsets[i]])
        todo.append((i, _Pair(image=inputs.probes[i], relevance=flat, seed=seed,
                              keys=(pair.pair_id, model.name, method_id), subsets=chosen)))
    for start in range(0, len(todo), settings.pairs_per_batch):
        group = todo[start:start + settings.pairs_per_batch]
        blocks = [_images(p, settings) for _, p in group]
        embedded = embed_batched(model, torch.from_numpy(np.concatenate(blocks)),
                                 chunk_size=settings.forward_chunk).numpy().astype(np.float64)
        offset = 0
        for (i, p), block in zip(group, blocks, strict=True):
            rows = embedded[offset:offset + block.shape[0]]
            offset += block.shape[0]
            partner = inputs.partner_embeddings[i].astype(np.float64)
            pair = inputs.pairs[i]
            deletion, insertion, road, faith, flip = _assemble(
                p, float(scores_clean[i]), rows @ partner, settings)
            results[i] = PairMetrics(
                pair_id=pair.pair_id, model=model.name, method=method_id,
                is_genuine=pair.is_genuine, status="valid", clean_score=float(scores_clean[i]),
                deletion=deletion, insertion=insertion, road=road, faithfulness=faith,
                pixel_flipping=flip)
    out = [r for r in results if r is not None]
    assert len(out) == n_rows
    return out
