"""The repaired model-parameter randomisation tests: Smooth MPRT and Efficient MPRT.

Hedström et al. (2023) show that the classic MPRT's verdict depends on choices its users rarely
report — the preprocessing of the maps (absolute values; normalisation matters only for
similarities that are not scale-invariant), the layer order (top-down randomisation keeps the
lower layers, whose features still shape the map) and the similarity measure — and that gradient
noise alone makes maps dissimilar. They propose two repairs, computed here beside the classic
test on the same pairs:

- **sMPRT** (Smooth MPRT): each map is averaged over ``n_samples`` noisy copies of the probe
  before maps are compared: ``phi_bar(x) = (1/S) sum_s phi(x + eps_s)``, ``eps_s ~ N(0,
  sigma_i^2 I)`` with ``sigma_i = noise_frac * (max x_i - min x_i)`` and the last ``eps`` zero
  (so ``S = 1`` is the plain map), as Quantus 0.6's ``SmoothMPRT``. The similarity is the
  Spearman rank correlation of the smoothed maps (of their absolute values when ``smprt_abs``),
  at every step of a cascade in the declared ``layer_order``; the last step randomises every
  layer. The noise is drawn from the keyed stream ``(seed, pair_id, model, method_id, "smprt")``
  and is the *same* on every model state, so two states differ only in their parameters
  (Quantus draws fresh noise for each state from numpy's global RNG).
- **eMPRT** (Efficient MPRT): the rise in the map's complexity after *full* randomisation,
  ``ratio = H(phi(x; f_random)) / H(phi(x; f))`` with ``H`` the Shannon entropy (nats) of the
  map's values in ``n_bins`` equal-width bins between their minimum and maximum (of
  ``|phi|`` when ``emprt_abs``). A map that depends on the model becomes noise-like when the model
  is random: its ratio exceeds 1. Quantus 0.6's ``EfficientMPRT`` returns ``ratio - 1`` (the
  relative rise); the ratio is recorded here and the relative rise is ``ratio - 1``. Only two
  model states enter, so the layer order cannot change it.

Normalisation: a positive rescaling of a map changes neither a rank correlation nor the counts of
an equal-width histogram spanning the map's range, so Quantus' default normalisation (dividing by
the root of the average second moment) cannot change either statistic; it is not a setting here.

References
----------
A. Hedström, L. Weber, S. Lapuschkin, M. M.-C. Höhne, "Sanity Checks Revisited: An Exploration
to Repair the Model Parameter Randomisation Test", XAI in Action workshop, NeurIPS 2023
(arXiv:2401.06465).

J. Adebayo, J. Gilmer, M. Muelly, I. Goodfellow, M. Hardt, B. Kim, "Sanity Checks for Saliency
Maps", NeurIPS 2018.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.stats import entropy as shannon_entropy

from faceattr.attribution.base import AttributionBatch, AttributionMethod
from faceattr.randomisation.layers import cascading_steps
from faceattr.randomisation.similarity import is_constant_map, spearman_abs
from faceattr.rng import numpy_generator

__all__ = [
    "LAYER_ORDERS",
    "LayerOrder",
    "RepairedCurves",
    "RepairedResult",
    "RepairedSettings",
    "SmprtStep",
    "discrete_entropy",
    "layer_steps",
    "run_repaired",
    "smoothed_maps",
    "smprt_noise",
    "smprt_similarity",
]

LayerOrder = Literal["bottom_up", "top_down"]
LAYER_ORDERS: Final[tuple[LayerOrder, ...]] = ("bottom_up", "top_down")


@dataclass(frozen=True, slots=True)
class RepairedSettings:
    """The declared choices of the repaired tests (``[randomisation]`` of the protocol).

    Attributes
    ----------
    methods : tuple of str
        Method ids the repaired tests run on (sorted).
    n_samples : int
        sMPRT: maps averaged per probe (the last one noise-free).
    noise_frac : float
        sMPRT: noise SD as a fraction of each probe's value range (Quantus ``noise_magnitude``).
    layer_order : {"bottom_up", "top_down"}
        sMPRT: the cascade's order (Hedström et al. recommend bottom-up).
    smprt_abs : bool
        sMPRT: compare ``|phi_bar|`` (Quantus' default) rather than signed smoothed maps.
    emprt_abs : bool
        eMPRT: histogram ``|phi|`` rather than ``phi`` (Quantus' default: signed).
    n_bins : int
        eMPRT: equal-width bins of the entropy (100 in the paper and in Quantus).
    """

    methods: tuple[str, ...]
    n_samples: int
    noise_frac: float
    layer_order: LayerOrder
    smprt_abs: bool
    emprt_abs: bool
    n_bins: int

    def __post_init__(self) -> None:
        if not self.methods or list(self.methods) != sorted(set(self.methods)):
            raise ValueError(f"methods must be non-empty, unique and sorted, got {self.methods}")
        if self.n_samples < 1 or self.n_bins < 2:
            raise ValueError(f"n_samples >= 1 and n_bins >= 2 required, got {self.n_samples}, "
                             f"{self.n_bins}")
        if not (math.isfinite(self.noise_frac) and 0.0 <= self.noise_frac <= 1.0):
            raise ValueError(f"noise_frac must be a fraction in [0, 1], got {self.noise_frac!r}")
        if self.layer_order not in LAYER_ORDERS:
            raise ValueError(f"layer_order must be one of {LAYER_ORDERS}, got "
                             f"{self.layer_order!r}")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (the normalisation is recorded as the fixed choice it is)."""
        return {"methods": list(self.methods), "n_samples": self.n_samples,
                "noise_frac": self.noise_frac, "layer_order": self.layer_order,
                "smprt_abs": self.smprt_abs, "emprt_abs": self.emprt_abs, "n_bins": self.n_bins,
                "normalisation": "none (both statistics are invariant to a positive rescaling)"}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> RepairedSettings:
        """Rebuild from :meth:`to_json` output (exact keys)."""
        _exact_keys(row, {"methods", "n_samples", "noise_frac", "layer_order", "smprt_abs",
                          "emprt_abs", "n_bins", "normalisation"}, "repaired settings")
        return cls(methods=tuple(row["methods"]), n_samples=row["n_samples"],
                   noise_frac=row["noise_frac"], layer_order=row["layer_order"],
                   smprt_abs=row["smprt_abs"], emprt_abs=row["emprt_abs"],
                   n_bins=row["n_bins"])


def _exact_keys(row: Mapping[str, Any], expected: set[str], where: str) -> None:
    if not isinstance(row, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(row).__name__}")
    if set(row) != expected:
        missing, extra = sorted(expected - set(row)), sorted(set(row) - expected)
        raise ValueError(f"{where}: keys differ (missing {missing}, unexpected {extra})")


def _finite_in(values: Sequence[float], low: float, high: float, where: str) -> None:
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not (math.isfinite(value) and low <= value <= high):
            raise ValueError(f"{where}: {value!r} is not a number in [{low}, {high}]")


@dataclass(frozen=True, slots=True)
class SmprtStep:
    """sMPRT similarities after one step of the cascade.

    Attributes
    ----------
    layers_randomised : tuple of str
        The layers re-initialised in this step, in the cascade's order.
    per_pair : tuple of float
        Spearman rank correlation of each pair's smoothed maps, in [-1, 1].
    mean : float
        Their mean.
    """

    layers_randomised: tuple[str, ...]
    per_pair: tuple[float, ...]
    mean: float

    def __post_init__(self) -> None:
        if not self.layers_randomised or not self.per_pair:
            raise ValueError("an sMPRT step needs layers and per-pair values")
        _finite_in((*self.per_pair, self.mean), -1.0, 1.0, "sMPRT similarity")
        if not math.isclose(float(np.mean(self.per_pair)), self.mean, rel_tol=1e-12,
                            abs_tol=1e-12):
            raise ValueError(f"sMPRT mean {self.mean!r} does not match its per-pair values")

    @classmethod
    def of(cls, layers: tuple[str, ...], per_pair: Sequence[float]) -> SmprtStep:
        """Build from per-pair values (the mean derived)."""
        values = tuple(float(v) for v in per_pair)
        return cls(layers_randomised=layers, per_pair=values, mean=float(np.mean(values)))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"layers_randomised": list(self.layers_randomised),
                "per_pair": list(self.per_pair), "mean": self.mean}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> SmprtStep:
        """Rebuild from :meth:`to_json` output (exact keys)."""
        _exact_keys(row, {"layers_randomised", "per_pair", "mean"}, "sMPRT step")
        return cls(layers_randomised=tuple(row["layers_randomised"]),
                   per_pair=tuple(row["per_pair"]), mean=row["mean"])


@dataclass(frozen=True, slots=True)
class RepairedCurves:
    """One method's sMPRT curve and eMPRT complexities.

    Attributes
    ----------
    method_id, method_name : str
    smoothed_constant : tuple of bool
        Per pair: the smoothed map on the trained model is constant (it ranks nothing; the
        pair is untestable and counts against a claim).
    smprt : tuple of SmprtStep
        One per cascade step in the declared layer order; the last randomises every layer.
    complexity_before, complexity_after : tuple of float
        Per pair: entropy (nats) of the map on the trained and on the fully randomised model.
    complexity_ratio : tuple of float or None
        Per pair: ``after / before``; ``None`` where ``before`` is 0 (a constant map: the ratio is
        undefined, never NaN).
    error : str or None
        ``"<ExceptionType>: <message>"`` when the method failed (then everything else is
        empty), else ``None``.
    """

    method_id: str
    method_name: str
    smoothed_constant: tuple[bool, ...]
    smprt: tuple[SmprtStep, ...]
    complexity_before: tuple[float, ...]
    complexity_after: tuple[float, ...]
    complexity_ratio: tuple[float | None, ...]
    error: str | None

    def __post_init__(self) -> None:
        where = f"repaired method {self.method_id}"
        if self.error is not None:
            if self.smprt or self.complexity_before or self.complexity_after \
                    or self.complexity_ratio or self.smoothed_constant:
                raise ValueError(f"{where}: a failed method has no values")
            return
        n_pairs = len(self.smoothed_constant)
        sizes = {len(self.complexity_before), len(self.complexity_after),
                 len(self.complexity_ratio), *(len(s.per_pair) for s in self.smprt)}
        if not self.smprt or sizes != {n_pairs}:
            raise ValueError(f"{where}: every per-pair tuple must have {n_pairs} entries")
        _finite_in((*self.complexity_before, *self.complexity_after), 0.0, math.inf,
                   f"{where} complexity")
        for before, after, ratio in zip(self.complexity_before, self.complexity_after,
                                        self.complexity_ratio, strict=True):
            expected = None if before == 0.0 else after / before
            if (ratio is None) != (expected is None) or (
                    ratio is not None and expected is not None
                    and not math.isclose(ratio, expected, rel_tol=1e-12)):
                raise ValueError(f"{where}: complexity_ratio {ratio!r} is not after / before "
                                 f"= {expected!r}")

    @property
    def full(self) -> SmprtStep:
        """The sMPRT step with every layer randomised."""
        return self.smprt[-1]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (strict JSON: an undefined ratio is null)."""
        return {"method_id": self.method_id, "method_name": self.method_name,
                "smoothed_constant": list(self.smoothed_constant),
                "smprt": [s.to_json() for s in self.smprt],
                "complexity_before": list(self.complexity_before),
                "complexity_after": list(self.complexity_after),
                "complexity_ratio": list(self.complexity_ratio), "error": self.error}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> RepairedCurves:
        """Rebuild from :meth:`to_json` output (exact keys)."""
        _exact_keys(row, {"method_id", "method_name", "smoothed_constant", "smprt",
                          "complexity_before", "complexity_after", "complexity_ratio",
                          "error"}, "repaired method")
        return cls(method_id=row["method_id"], method_name=row["method_name"],
                   smoothed_constant=tuple(row["smoothed_constant"]),
                   smprt=tuple(SmprtStep.from_json(s) for s in row["smprt"]),
                   complexity_before=tuple(row["complexity_before"]),
                   complexity_after=tuple(row["complexity_after"]),
                   complexity_ratio=tuple(row["complexity_ratio"]), error=row["error"])


@dataclass(frozen=True, slots=True)
class RepairedResult:
    """The repaired tests of one run: the settings, then one entry per method (id order)."""

    settings: RepairedSettings
    methods: tuple[RepairedCurves, ...]

    def __post_init__(self) -> None:
        ids = tuple(m.method_id for m in self.methods)
        if ids != self.settings.methods:
            raise ValueError(f"repaired methods {ids} are not the declared {self.settings.methods}")

    def method(self, method_id: str) -> RepairedCurves:
        """One method's values (an unknown id raises)."""
        for curves in self.methods:
            if curves.method_id == method_id:
                return curves
        raise KeyError(f"the repaired tests did not run {method_id!r}; they ran "
                       f"{list(self.settings.methods)}")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"settings": self.settings.to_json(),
                "methods": [m.to_json() for m in self.methods]}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> RepairedResult:
        """Rebuild from :meth:`to_json` output (exact keys)."""
        _exact_keys(row, {"settings", "methods"}, "repaired result")
        return cls(settings=RepairedSettings.from_json(row["settings"]),
                   methods=tuple(RepairedCurves.from_json(m) for m in row["methods"]))


def layer_steps(layers: Sequence[str], order: LayerOrder) -> tuple[tuple[str, ...], ...]:
    """The cascade of ``layers`` (given bottom-up) in ``order``; the last step has them all.

    ``"top_down"`` is :func:`~faceattr.randomisation.layers.cascading_steps` (Adebayo et al.);
    ``"bottom_up"`` randomises the first layer, then the first two, ... (Quantus' and
    Hedström et al.'s default for the repaired tests).
    """
    if order == "top_down":
        return cascading_steps(layers)
    if order == "bottom_up":
        return tuple(tuple(layers[:i + 1]) for i in range(len(layers)))
    raise ValueError(f"unknown layer order {order!r}; known: {', '.join(LAYER_ORDERS)}")


def discrete_entropy(values: NDArray[np.float64], n_bins: int) -> float:
    """Shannon entropy (nats) of ``values`` in ``n_bins`` equal-width bins over their range.

    The bins span ``[min, max]`` (``numpy.histogram``); the entropy of the bin frequencies is
    ``scipy.stats.entropy`` — Hedström et al.'s complexity ``H`` and Quantus'
    ``discrete_entropy``. A constant map falls in one bin: entropy 0.
    """
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("entropy needs a non-empty finite map")
    counts, _ = np.histogram(values.ravel(), bins=n_bins)
    return float(shannon_entropy(counts))


def smprt_noise(batch: AttributionBatch, method_id: str, n_samples: int) -> NDArray[np.float64]:
    """Standard-normal sMPRT noise (N, S, C, H, W): keyed per pair, the last sample zero."""
    shape = tuple(batch.probes.shape[1:])
    rows = []
    for pair_id in batch.pair_ids:
        rng = numpy_generator(batch.seed, pair_id, batch.model.name, method_id, "smprt")
        draws = rng.standard_normal((n_samples - 1, *shape))
        rows.append(np.concatenate([draws, np.zeros((1, *shape))], axis=0))
    return np.stack(rows)


def smoothed_maps(method: AttributionMethod, batch: AttributionBatch,
                  standard_noise: NDArray[np.float64], noise_frac: float) -> NDArray[np.float64]:
    """The maps averaged over noisy copies of each probe, (N, H, W) float64.

    Parameters
    ----------
    method : AttributionMethod
    batch : AttributionBatch
        The probes and partner embeddings of one model state.
    standard_noise : ndarray of float64
        (N, S, C, H, W) standard-normal draws (:func:`smprt_noise`, or a reference's own).
    noise_frac : float
        Noise SD per probe as a fraction of its value range ``max - min``.

    Returns
    -------
    ndarray of float64
        ``(1/S) sum_s phi(x + sigma eps_s)``; the noisy images are float32 (computed in float64
        and rounded, as Quantus feeds its model) and not clipped.
    """
    probes = batch.probes.detach().to(torch.float64).numpy()
    n_rows, n_samples = standard_noise.shape[:2]
    if standard_noise.shape[2:] != probes.shape[1:] or n_rows != probes.shape[0]:
        raise ValueError(f"noise of shape {standard_noise.shape} does not match the probes "
                         f"{probes.shape}")
    axes = tuple(range(1, probes.ndim))
    sigma = noise_frac * (probes.max(axis=axes, keepdims=True) -
                          probes.min(axis=axes, keepdims=True))
    total = np.zeros((n_rows, *probes.shape[2:]), dtype=np.float64)
    for s in range(n_samples):
        noisy = torch.from_numpy((probes + sigma * standard_noise[:, s]).astype(np.float32))
        maps = np.asarray(method.attribute(dataclasses.replace(batch, probes=noisy)),
                          dtype=np.float64)
        if maps.shape != total.shape or not np.all(np.isfinite(maps)):
            raise ValueError(f"maps of shape {maps.shape} (finite: "
                             f"{bool(np.all(np.isfinite(maps)))}), expected {total.shape}")
        total += maps
    smoothed: NDArray[np.float64] = total / n_samples
    return smoothed


def smprt_similarity(original: NDArray[np.float64], randomised: NDArray[np.float64], *,
                     use_abs: bool) -> float:
    """Spearman rank correlation of two smoothed (H, W) maps (of ``|phi|`` when ``use_abs``).

    Ties and constant maps as in :func:`~faceattr.randomisation.similarity.spearman_abs`
    (a constant map correlates 0). Without ``use_abs`` the signed maps are ranked: a map is
    shifted so that its minimum is 0, which keeps its ranks and lets ``spearman_abs`` (which
    ranks ``|phi|``) rank the signed values.
    """
    if use_abs:
        return spearman_abs(original, randomised)
    return spearman_abs(original - original.min(), randomised - randomised.min())


def _complexities(before: NDArray[np.float64], after: NDArray[np.float64], *,
                  use_abs: bool, n_bins: int) -> tuple[list[float], list[float],
                                                       list[float | None]]:
    prep = np.abs if use_abs else (lambda a: a)
    h_before = [discrete_entropy(prep(m), n_bins) for m in before]
    h_after = [discrete_entropy(prep(m), n_bins) for m in after]
    ratios = [None if b == 0.0 else a / b for b, a in zip(h_before, h_after, strict=True)]
    return h_before, h_after, ratios


def run_repaired(method: AttributionMethod, states: Sequence[AttributionBatch],
                 settings: RepairedSettings, steps: Sequence[tuple[str, ...]]
                 ) -> RepairedCurves:
    """sMPRT and eMPRT of one method over model states: the trained one, then one per step.

    Parameters
    ----------
    method : AttributionMethod
    states : sequence of AttributionBatch
        ``states[0]`` on the trained model, ``states[i + 1]`` on the model after ``steps[i]``
        (each with its own partner embeddings); the last state has every layer randomised.
    settings : RepairedSettings
    steps : sequence of tuple of str
        The cascade (:func:`layer_steps`), one per randomised state.

    Returns
    -------
    RepairedCurves
        With ``error`` set (and nothing else) when the method raised on any state.
    """
    if len(states) != len(steps) + 1:
        raise ValueError(f"{len(states)} model states for {len(steps)} steps")
    try:
        noise = smprt_noise(states[0], method.method_id, settings.n_samples)
        smooth = [smoothed_maps(method, state, noise, settings.noise_frac) for state in states]
        plain = [np.asarray(method.attribute(state), dtype=np.float64)
                 for state in (states[0], states[-1])]
        for maps in plain:
            if maps.shape != smooth[0].shape or not np.all(np.isfinite(maps)):
                raise ValueError(f"maps of shape {maps.shape} are not finite (H, W) maps")
    except Exception as exc:  # noqa: BLE001 — recorded on the method, never dropped
        return RepairedCurves(method_id=method.method_id, method_name=method.info.name,
                              smoothed_constant=(), smprt=(), complexity_before=(),
                              complexity_after=(), complexity_ratio=(),
                              error=f"{type(exc).__name__}: {exc}")
    n_pairs = smooth[0].shape[0]
    curve = tuple(
        SmprtStep.of(tuple(step), [smprt_similarity(smooth[0][i], maps[i],
                                                    use_abs=settings.smprt_abs)
                                   for i in range(n_pairs)])
        for step, maps in zip(steps, smooth[1:], strict=True))
    before, after, ratios = _complexities(plain[0], plain[1], use_abs=settings.emprt_abs,
                                          n_bins=settings.n_bins)
    return RepairedCurves(method_id=method.method_id, method_name=method.info.name,
                          smoothed_constant=tuple(is_constant_map(m) for m in smooth[0]),
                          smprt=curve, complexity_before=tuple(before),
                          complexity_after=tuple(after), complexity_ratio=tuple(ratios),
                          error=None)
