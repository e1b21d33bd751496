"""The model-parameter randomisation stage: maps on randomised models vs the original maps.

For every method, the maps of a few pairs are computed on the trained model and on each
randomised copy of it — after each cascading (top-down) step and after each independent
single-layer randomisation (:mod:`faceattr.randomisation.layers`) — and each randomised map is
compared with the original map of the same pair by every metric of
:mod:`faceattr.randomisation.similarity`. The result is one frozen, validated record, written as
``randomisation.json`` in the run folder; the ``randomisation`` claims are judged on it.

On a randomised model the explained scalar is that model's own verification score
``s_r(x_a, x_b) = <f_r(x_a), f_r(x_b)>``: the partner embeddings are recomputed with the
randomised network, as Adebayo et al. re-explain the class logit of the randomised network.
Unlike Quantus' MPRT (whose average silently included the unrandomised score, and whose
result shape depends on flags), the record has one fixed shape: the original is not a step,
and every step lists which layers it randomised.

References
----------
J. Adebayo, J. Gilmer, M. Muelly, I. Goodfellow, M. Hardt, B. Kim, "Sanity Checks for Saliency
Maps", NeurIPS 2018.

A. Hedström et al., "Quantus: An Explainable AI Toolkit for Responsible Evaluation of Neural
Network Explanations and Beyond", JMLR 24(34), 2023 (MPRT, ``layer_order="top_down"`` and
``"independent"``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import torch
from numpy.typing import NDArray

from faceattr.attribution.base import AttributionBatch, AttributionMethod
from faceattr.io import read_json, write_json
from faceattr.models.base import VerificationModel
from faceattr.randomisation.layers import cascading_steps, randomisable_layers, randomise_layers
from faceattr.randomisation.repaired import (
    RepairedResult,
    RepairedSettings,
    layer_steps,
    run_repaired,
)
from faceattr.randomisation.similarity import METRICS, Metric, is_constant_map, map_similarity

__all__ = ["FORMAT_VERSION", "ORDERS", "RANDOMISATION_FILE", "MethodCurves", "Order",
           "RandomisationResult", "RandomisationStep", "StepSimilarity", "load_randomisation",
           "run_randomisation", "write_randomisation"]

Order = Literal["cascading", "independent"]
ORDERS: Final[tuple[Order, ...]] = ("cascading", "independent")

RANDOMISATION_FILE: Final = "randomisation.json"
"""The stage's artefact in a run folder."""

FORMAT_VERSION: Final = 2
"""2 adds ``repaired`` (sMPRT and eMPRT, :mod:`faceattr.randomisation.repaired`); a version-1
file (no such key) still loads, with ``repaired = None``."""

_PARTNER_ATOL: Final = 1e-4
"""How far the batch's partner embeddings may be from ``f(partner_images)`` (float32 rounding
of a differently batched forward is ~1e-7); a larger gap means the images do not belong to the
batch."""


def _bounds(metric: str) -> tuple[float, float]:
    return (0.0, 1.0) if metric == "topk" else (-1.0, 1.0)


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values))


@dataclass(frozen=True, slots=True)
class StepSimilarity:
    """One metric's similarities of one step's maps to the original maps.

    Attributes
    ----------
    metric : {"spearman_abs", "ssim", "topk"}
    per_pair : tuple of float
        One value per pair, in the result's ``pair_ids`` order.
    mean : float
        Their mean.
    """

    metric: Metric
    per_pair: tuple[float, ...]
    mean: float

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; known: {', '.join(METRICS)}")
        if not self.per_pair:
            raise ValueError(f"{self.metric}: no per-pair values")
        low, high = _bounds(self.metric)
        for value in (*self.per_pair, self.mean):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not (math.isfinite(value) and low <= value <= high):
                raise ValueError(f"{self.metric}: similarity {value!r} is not a number in "
                                 f"[{low}, {high}]")
        expected = _mean(self.per_pair)
        if not math.isclose(expected, self.mean, rel_tol=1e-12, abs_tol=1e-12):
            raise ValueError(f"{self.metric}: mean {self.mean!r} does not match the per-pair "
                             f"values (mean {expected!r})")

    @classmethod
    def of(cls, metric: Metric, per_pair: Sequence[float]) -> StepSimilarity:
        """Build from per-pair values (the mean derived)."""
        values = tuple(float(v) for v in per_pair)
        return cls(metric=metric, per_pair=values, mean=_mean(values))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (the metric is the key it is stored under)."""
        return {"per_pair": list(self.per_pair), "mean": self.mean}

    @classmethod
    def from_json(cls, metric: Metric, row: Mapping[str, Any]) -> StepSimilarity:
        """Rebuild from :meth:`to_json` output (exact keys)."""
        _exact_keys(row, {"per_pair", "mean"}, f"similarity {metric}")
        return cls(metric=metric, per_pair=tuple(row["per_pair"]), mean=row["mean"])


@dataclass(frozen=True, slots=True)
class RandomisationStep:
    """The maps of one randomised model compared with the original maps.

    Attributes
    ----------
    layer : str
        The layer this step adds: in a cascading step the lowest layer randomised so far, in an
        independent step the only one.
    layers_randomised : tuple of str
        Every layer re-initialised in this step, top-down.
    similarities : tuple of StepSimilarity
        One per metric, in :data:`~faceattr.randomisation.similarity.METRICS` order.
    """

    layer: str
    layers_randomised: tuple[str, ...]
    similarities: tuple[StepSimilarity, ...]

    def __post_init__(self) -> None:
        if not self.layers_randomised or self.layers_randomised[-1] != self.layer:
            raise ValueError(f"step {self.layer!r}: layers_randomised {self.layers_randomised} "
                             "must end with the step's layer")
        if tuple(s.metric for s in self.similarities) != METRICS:
            raise ValueError(f"step {self.layer!r}: similarities must list {METRICS}, got "
                             f"{tuple(s.metric for s in self.similarities)}")
        if len({len(s.per_pair) for s in self.similarities}) != 1:
            raise ValueError(f"step {self.layer!r}: metrics disagree on the number of pairs")

    @property
    def n_layers_randomised(self) -> int:
        """How many layers this step re-initialised."""
        return len(self.layers_randomised)

    def similarity(self, metric: Metric) -> StepSimilarity:
        """The similarities by ``metric`` (an unknown metric raises)."""
        for entry in self.similarities:
            if entry.metric == metric:
                return entry
        raise KeyError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"layer": self.layer, "layers_randomised": list(self.layers_randomised),
                "n_layers_randomised": self.n_layers_randomised,
                "similarity": {s.metric: s.to_json() for s in self.similarities}}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> RandomisationStep:
        """Rebuild from :meth:`to_json` output (exact keys)."""
        _exact_keys(row, {"layer", "layers_randomised", "n_layers_randomised", "similarity"},
                    "randomisation step")
        similarity = row["similarity"]
        _exact_keys(similarity, set(METRICS), f"step {row['layer']!r} similarity")
        step = cls(layer=row["layer"], layers_randomised=tuple(row["layers_randomised"]),
                   similarities=tuple(StepSimilarity.from_json(m, similarity[m])
                                      for m in METRICS))
        if row["n_layers_randomised"] != step.n_layers_randomised:
            raise ValueError(f"step {step.layer!r}: n_layers_randomised "
                             f"{row['n_layers_randomised']} != {step.n_layers_randomised}")
        return step


@dataclass(frozen=True, slots=True)
class MethodCurves:
    """One method's randomisation curves.

    Attributes
    ----------
    method_id, method_name : str
        The protocol's method id and its registry name.
    original_constant : tuple of bool
        Per pair: the map on the trained model is constant. It ranks no pixel, so its
        similarities are chance values that say nothing about the method; a claim on a method
        with any constant original map fails (a trivial map is a failed pair, not a dropped
        one).
    cascading : tuple of RandomisationStep
        Top-down: step ``i`` randomises the top ``i + 1`` layers; the last step randomises all.
    independent : tuple of RandomisationStep
        One step per layer, in the same top-down order.
    error : str or None
        ``"<ExceptionType>: <message>"`` when the method failed on the original or a randomised
        model (the curves are then empty; a claim on the method fails), else ``None``.
    """

    method_id: str
    method_name: str
    original_constant: tuple[bool, ...]
    cascading: tuple[RandomisationStep, ...]
    independent: tuple[RandomisationStep, ...]
    error: str | None

    def __post_init__(self) -> None:
        if self.error is not None and (self.cascading or self.independent):
            raise ValueError(f"method {self.method_id}: a failed method has no curves")

    def curve(self, order: Order) -> tuple[RandomisationStep, ...]:
        """The steps of one order."""
        if order == "cascading":
            return self.cascading
        if order == "independent":
            return self.independent
        raise ValueError(f"unknown order {order!r}; known: {', '.join(ORDERS)}")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"method_id": self.method_id, "method_name": self.method_name,
                "original_constant": list(self.original_constant),
                "cascading": [s.to_json() for s in self.cascading],
                "independent": [s.to_json() for s in self.independent], "error": self.error}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> MethodCurves:
        """Rebuild from :meth:`to_json` output (exact keys)."""
        _exact_keys(row, {"method_id", "method_name", "original_constant", "cascading",
                          "independent", "error"}, "randomisation method")
        return cls(method_id=row["method_id"], method_name=row["method_name"],
                   original_constant=tuple(row["original_constant"]),
                   cascading=tuple(RandomisationStep.from_json(s) for s in row["cascading"]),
                   independent=tuple(RandomisationStep.from_json(s) for s in row["independent"]),
                   error=row["error"])


@dataclass(frozen=True, slots=True)
class RandomisationResult:
    """The randomisation stage of one run.

    Attributes
    ----------
    model : str
        The model's name.
    seed : int
        Seed of the layer re-initialisation streams.
    pair_ids : tuple of str
        The pairs compared, in the order of every ``per_pair`` tuple.
    layers : tuple of str
        The randomised weight layers in forward (bottom-up) order.
    topk_frac : float
        Fraction of pixels in the top sets of the ``topk`` metric.
    methods : tuple of MethodCurves
        One per method, in method-id order.
    repaired : RepairedResult or None
        sMPRT and eMPRT (Hedström et al. 2023) of the declared methods on the same pairs, with
        the settings they ran under; ``None`` when the protocol declares none.
    """

    model: str
    seed: int
    pair_ids: tuple[str, ...]
    layers: tuple[str, ...]
    topk_frac: float
    methods: tuple[MethodCurves, ...]
    repaired: RepairedResult | None = None

    def __post_init__(self) -> None:
        if not self.pair_ids or len(set(self.pair_ids)) != len(self.pair_ids):
            raise ValueError(f"pair_ids must be non-empty and unique, got {self.pair_ids}")
        if not self.layers or len(set(self.layers)) != len(self.layers):
            raise ValueError(f"layers must be non-empty and unique, got {self.layers}")
        if not 0.0 < self.topk_frac < 1.0:
            raise ValueError(f"topk_frac must be in (0, 1), got {self.topk_frac!r}")
        ids = [m.method_id for m in self.methods]
        if ids != sorted(set(ids)):
            raise ValueError(f"methods must be unique and sorted by id, got {ids}")
        cascade = cascading_steps(self.layers)
        n_pairs = len(self.pair_ids)
        for curves in self.methods:
            where = f"method {curves.method_id}"
            if len(curves.original_constant) != n_pairs:
                raise ValueError(f"{where}: original_constant has "
                                 f"{len(curves.original_constant)} entries for {n_pairs} pairs")
            if curves.error is not None:
                continue
            got_c = tuple(s.layers_randomised for s in curves.cascading)
            got_i = tuple(s.layers_randomised for s in curves.independent)
            if got_c != cascade:
                raise ValueError(f"{where}: cascading steps {got_c} are not the top-down "
                                 f"cascade {cascade}")
            if got_i != tuple((step[-1],) for step in cascade):
                raise ValueError(f"{where}: independent steps {got_i} are not one per layer, "
                                 "top-down")
            for step in (*curves.cascading, *curves.independent):
                if len(step.similarities[0].per_pair) != n_pairs:
                    raise ValueError(f"{where}, step {step.layer}: "
                                     f"{len(step.similarities[0].per_pair)} values for "
                                     f"{n_pairs} pairs")
        if self.repaired is not None:
            self._check_repaired(self.repaired, set(ids))

    def _check_repaired(self, repaired: RepairedResult, ids: set[str]) -> None:
        unknown = sorted(set(repaired.settings.methods) - ids)
        if unknown:
            raise ValueError(f"repaired tests ran {unknown}, which the stage did not")
        steps = layer_steps(self.layers, repaired.settings.layer_order)
        for curves in repaired.methods:
            if curves.error is not None:
                continue
            if len(curves.smoothed_constant) != self.n_pairs:
                raise ValueError(f"repaired method {curves.method_id}: "
                                 f"{len(curves.smoothed_constant)} pairs, expected "
                                 f"{self.n_pairs}")
            if tuple(s.layers_randomised for s in curves.smprt) != steps:
                raise ValueError(f"repaired method {curves.method_id}: sMPRT steps are not the "
                                 f"{repaired.settings.layer_order} cascade {steps}")

    @property
    def n_pairs(self) -> int:
        """Pairs compared."""
        return len(self.pair_ids)

    def method(self, method_id: str) -> MethodCurves:
        """The curves of one method (an unknown id raises)."""
        for curves in self.methods:
            if curves.method_id == method_id:
                return curves
        raise KeyError(f"the randomisation stage has no method {method_id!r}; it has "
                       f"{[m.method_id for m in self.methods]}")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (every similarity is finite: strict JSON)."""
        return {"version": FORMAT_VERSION, "model": self.model, "seed": self.seed,
                "pair_ids": list(self.pair_ids), "layers": list(self.layers),
                "topk_frac": self.topk_frac, "metrics": list(METRICS),
                "methods": [m.to_json() for m in self.methods],
                "repaired": None if self.repaired is None else self.repaired.to_json()}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> RandomisationResult:
        """Rebuild from :meth:`to_json` output (exact keys, same format version)."""
        keys = {"version", "model", "seed", "pair_ids", "layers", "topk_frac", "metrics",
                "methods"}
        version = row.get("version") if isinstance(row, Mapping) else None
        if version not in (1, FORMAT_VERSION):
            raise ValueError(f"randomisation result: version {version!r} is not 1 or "
                             f"{FORMAT_VERSION}")
        _exact_keys(row, keys | ({"repaired"} if version == FORMAT_VERSION else set()),
                    "randomisation result")
        repaired = row.get("repaired")
        if tuple(row["metrics"]) != METRICS:
            raise ValueError(f"randomisation result: metrics {row['metrics']} are not "
                             f"{list(METRICS)}")
        return cls(model=row["model"], seed=row["seed"], pair_ids=tuple(row["pair_ids"]),
                   layers=tuple(row["layers"]), topk_frac=row["topk_frac"],
                   methods=tuple(MethodCurves.from_json(m) for m in row["methods"]),
                   repaired=None if repaired is None else RepairedResult.from_json(repaired))


def _exact_keys(row: Mapping[str, Any], expected: set[str], where: str) -> None:
    if not isinstance(row, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(row).__name__}")
    if set(row) != expected:
        missing, extra = sorted(expected - set(row)), sorted(set(row) - expected)
        raise ValueError(f"{where}: keys differ (missing {missing}, unexpected {extra})")


def write_randomisation(folder_root: Path, result: RandomisationResult) -> Path:
    """Write ``randomisation.json`` into a run folder (atomic, strict JSON); return its path."""
    path = folder_root / RANDOMISATION_FILE
    write_json(path, result.to_json())
    return path


def load_randomisation(run_root: Path) -> RandomisationResult | None:
    """Read a run's ``randomisation.json``; ``None`` when the run has no randomisation stage.

    Raises
    ------
    ValueError
        If the file exists but is corrupt or does not validate.
    """
    path = run_root / RANDOMISATION_FILE
    if not path.exists():
        return None
    try:
        return RandomisationResult.from_json(read_json(path))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a randomisation result ({exc})") from None


def _pair_rows(n_total: int, n_pairs: int) -> list[int]:
    if not 1 <= n_pairs <= n_total:
        raise ValueError(f"n_pairs must be in [1, {n_total}] (the batch's rows), got {n_pairs}")
    return [(i * n_total) // n_pairs for i in range(n_pairs)]


def _sub_batch(batch: AttributionBatch, model: VerificationModel, rows: list[int],
               partner_images: torch.Tensor) -> AttributionBatch:
    with torch.no_grad():
        partners = model.embed(partner_images).detach()
    return AttributionBatch(
        model=model, probes=batch.probes[rows], partner_embeddings=partners,
        pair_ids=tuple(batch.pair_ids[r] for r in rows),
        identity_masks=None if batch.identity_masks is None else batch.identity_masks[rows],
        seed=batch.seed)


def _maps(method: AttributionMethod, batch: AttributionBatch) -> NDArray[np.float64]:
    maps = np.asarray(method.attribute(batch), dtype=np.float64)
    expected = (batch.probes.shape[0], *batch.probes.shape[-2:])
    if maps.shape != expected:
        raise ValueError(f"maps of shape {maps.shape}, expected {expected}")
    if not np.all(np.isfinite(maps)):
        raise ValueError("maps are not finite")
    return maps


def run_randomisation(model: VerificationModel, methods: Sequence[AttributionMethod],
                      batch: AttributionBatch, *, partner_images: torch.Tensor, seed: int,
                      n_pairs: int, layers: Sequence[str] | None = None,
                      topk_frac: float = 0.1,
                      repaired: RepairedSettings | None = None) -> RandomisationResult:
    """Run the cascading and independent model-parameter randomisation test.

    Parameters
    ----------
    model : VerificationModel
        The trained model (never modified; randomised models are deep copies).
    methods : sequence of AttributionMethod
        The methods to test (method ids unique).
    batch : AttributionBatch
        The run's pairs on ``model``: probes (N, 3, H, W), partner embeddings ``f(x_b)``,
        pair ids, identity masks and the run's seed (methods key their streams by it).
    partner_images : torch.Tensor
        The partner images ``x_b`` (N, 3, H, W) in [0, 1], row for row with ``batch``: each
        randomised model explains its own score ``<f_r(x_a), f_r(x_b)>``.
    seed : int
        Seed of the layer re-initialisation streams.
    n_pairs : int
        Pairs compared: rows ``floor(i N / n_pairs)`` of the batch, evenly spread (so a batch
        listing genuine pairs before impostors contributes both). All pairs of a model are
        attributed in one call.
    layers : sequence of str or None
        The weight layers to randomise (``None``: every layer of
        :func:`~faceattr.randomisation.layers.randomisable_layers`); kept in forward order.
    topk_frac : float
        Fraction of pixels in the top sets of the ``topk`` metric (default 0.1).
    repaired : RepairedSettings or None
        Also run sMPRT and eMPRT (:mod:`faceattr.randomisation.repaired`) on these settings'
        methods, on the same pairs and layers (``None``: not run).

    Returns
    -------
    RandomisationResult
        Per method, the cascading and independent curves. A method that raises on any model is
        recorded with its error and no curves (a claim on it fails).

    Raises
    ------
    ValueError
        On an invalid ``n_pairs``, an unknown layer, repeated method ids, or partner images
        whose embeddings do not match the batch's partner embeddings.
    """
    n_total = batch.probes.shape[0]
    if partner_images.shape != batch.probes.shape:
        raise ValueError(f"partner_images must have the probes' shape "
                         f"{tuple(batch.probes.shape)}, got {tuple(partner_images.shape)}")
    ids = [m.method_id for m in methods]
    if len(set(ids)) != len(ids):
        raise ValueError(f"method ids repeat: {ids}")
    rows = _pair_rows(n_total, n_pairs)
    partners = partner_images[rows]
    original = _sub_batch(batch, model, rows, partners)
    if not torch.allclose(original.partner_embeddings, batch.partner_embeddings[rows],
                          rtol=0.0, atol=_PARTNER_ATOL):
        raise ValueError("partner_images do not match the batch's partner embeddings "
                         f"(max |diff| > {_PARTNER_ATOL:g}); pass the partner images row for "
                         "row with the batch")
    all_layers = randomisable_layers(model)
    if layers is None:
        chosen = all_layers
    else:
        unknown = sorted(set(layers) - set(all_layers))
        if unknown:
            raise ValueError(f"model {model.name!r} has no weight layer {unknown[0]!r}; weight "
                             f"layers: {', '.join(all_layers)}")
        chosen = tuple(name for name in all_layers if name in set(layers))
    cascade = cascading_steps(chosen)
    independent = tuple((step[-1],) for step in cascade)
    ordered = sorted(methods, key=lambda m: m.method_id)

    errors: dict[str, str] = {}
    originals: dict[str, NDArray[np.float64]] = {}
    for method in ordered:
        try:
            originals[method.method_id] = _maps(method, original)
        except Exception as exc:  # noqa: BLE001 — recorded on the method, never dropped
            errors[method.method_id] = f"{type(exc).__name__}: {exc} (original model)"

    steps: dict[tuple[str, ...], dict[str, RandomisationStep]] = {}
    for layer_set in (*cascade, *independent):
        if layer_set in steps:
            continue
        randomised = randomise_layers(model, layer_set, seed=seed)
        variant = _sub_batch(batch, randomised, rows, partners)
        steps[layer_set] = {}
        for method in ordered:
            if method.method_id in errors:
                continue
            try:
                maps = _maps(method, variant)
            except Exception as exc:  # noqa: BLE001 — recorded on the method, never dropped
                errors[method.method_id] = (f"{type(exc).__name__}: {exc} (randomised "
                                            f"{', '.join(layer_set)})")
                continue
            reference = originals[method.method_id]
            steps[layer_set][method.method_id] = RandomisationStep(
                layer=layer_set[-1], layers_randomised=layer_set,
                similarities=tuple(
                    StepSimilarity.of(metric, [map_similarity(metric, reference[i], maps[i],
                                                              topk_frac=topk_frac)
                                               for i in range(len(rows))])
                    for metric in METRICS))

    curves: list[MethodCurves] = []
    for method in ordered:
        method_id = method.method_id
        if method_id in originals:
            constant = tuple(is_constant_map(m) for m in originals[method_id])
        else:
            constant = (False,) * len(rows)
        if method_id in errors:
            curves.append(MethodCurves(method_id=method_id, method_name=method.info.name,
                                       original_constant=constant, cascading=(),
                                       independent=(), error=errors[method_id]))
            continue
        curves.append(MethodCurves(
            method_id=method_id, method_name=method.info.name, original_constant=constant,
            cascading=tuple(steps[s][method_id] for s in cascade),
            independent=tuple(steps[s][method_id] for s in independent), error=None))
    repaired_result = None
    if repaired is not None:
        repaired_result = _run_repaired(model, ordered, batch, original, rows, partners,
                                        chosen, repaired, seed=seed)
    return RandomisationResult(model=model.name, seed=seed, pair_ids=original.pair_ids,
                               layers=chosen, topk_frac=topk_frac, methods=tuple(curves),
                               repaired=repaired_result)


def _run_repaired(model: VerificationModel, methods: Sequence[AttributionMethod],
                  batch: AttributionBatch, original: AttributionBatch, rows: list[int],
                  partners: torch.Tensor, layers: tuple[str, ...], settings: RepairedSettings,
                  *, seed: int) -> RepairedResult:
    by_id = {m.method_id: m for m in methods}
    unknown = sorted(set(settings.methods) - set(by_id))
    if unknown:
        raise ValueError(f"repaired tests name unknown method ids {unknown}; the stage runs "
                         f"{sorted(by_id)}")
    steps = layer_steps(layers, settings.layer_order)
    states = [original, *(_sub_batch(batch, randomise_layers(model, step, seed=seed), rows,
                                     partners) for step in steps)]
    return RepairedResult(settings=settings, methods=tuple(
        run_repaired(by_id[m], states, settings, steps) for m in settings.methods))
