"""Partner sensitivity: a map of ``s(x_a, x_b)`` must change when the partner ``x_b`` changes.

The verification analogue of the Random Logit test (Sixt et al. 2020; Quantus'
``RandomLogit``): there, a class-discriminative explanation must change when the explained
class is replaced by a random other class; here, the explained pair score's partner is
replaced by a random impostor. For a sample of genuine pairs, every method explains the probe
twice — against its genuine partner and against a random impostor partner (an image of the
run of another identity, drawn from a keyed stream) — and the two maps of each pair are
compared by a similarity of :mod:`faceattr.randomisation.similarity`. A method whose maps are
the same whatever the partner explains the probe alone (the research code's Exp 6.2 explained
the similarity to a black image: its maps could not depend on the partner), and a
``partner_sensitivity`` claim on it fails. Methods partner-free by design (the ground-truth
oracle, its inversion, the random and constant maps) are declared ``expected_insensitive``.

Both explanations of a pair use the same pair id, so a stochastic method draws the same
stream twice and only the partner differs. The result is one frozen, validated record, written
as ``partner_sensitivity.json`` in the run folder.

References
----------
L. Sixt, M. Granz, T. Landgraf, "When Explanations Lie: Why Many Modified BP Attributions
Fail", ICML 2020 (the random-logit test).

A. Hedström et al., "Quantus: An Explainable AI Toolkit for Responsible Evaluation of Neural
Network Explanations and Beyond", JMLR 24(34), 2023 (``RandomLogit``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from numpy.typing import NDArray

from faceattr.attribution.base import AttributionBatch, AttributionMethod
from faceattr.data.pairs import Pair
from faceattr.io import read_json, write_json
from faceattr.randomisation.similarity import METRICS, Metric, is_constant_map, map_similarity
from faceattr.rng import numpy_generator

__all__ = ["PARTNER_FILE", "MethodPartnerSensitivity", "PartnerSensitivityResult",
           "PartnerSwap", "choose_swaps", "load_partner_sensitivity",
           "run_partner_sensitivity", "write_partner_sensitivity"]

PARTNER_FILE: Final = "partner_sensitivity.json"
"""The stage's artefact in a run folder."""

FORMAT_VERSION: Final = 1

_STREAM: Final = "partner_sensitivity"
"""Key of the impostor-choice streams: ``(seed, _STREAM, pair_id)``."""


def _bounds(metric: str) -> tuple[float, float]:
    return (0.0, 1.0) if metric == "topk" else (-1.0, 1.0)


def _exact_keys(row: Any, expected: set[str], where: str) -> None:
    if not isinstance(row, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(row).__name__}")
    if set(row) != expected:
        missing, extra = sorted(expected - set(row)), sorted(set(row) - expected)
        raise ValueError(f"{where}: keys differ (missing {missing}, unexpected {extra})")


def _score(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not (math.isfinite(value) and -1.0 - 1e-5 <= value <= 1.0 + 1e-5):
        raise ValueError(f"{where}: score {value!r} is not a cosine in [-1, 1]")
    return float(value)


@dataclass(frozen=True, slots=True)
class PartnerSwap:
    """One genuine pair and the impostor partner it is re-explained against.

    Attributes
    ----------
    pair_id, probe_image, probe_identity, partner_image : str
        The genuine pair (its partner has the probe's identity).
    impostor_image, impostor_identity : str
        The random impostor partner (another identity).
    score_genuine, score_impostor : float
        ``s(x_a, x_b)`` and ``s(x_a, x_impostor)``.
    """

    pair_id: str
    probe_image: str
    probe_identity: str
    partner_image: str
    impostor_image: str
    impostor_identity: str
    score_genuine: float
    score_impostor: float

    def __post_init__(self) -> None:
        if self.impostor_identity == self.probe_identity:
            raise ValueError(f"pair {self.pair_id}: the impostor {self.impostor_image!r} has the "
                             f"probe's identity {self.probe_identity!r}")
        _score(self.score_genuine, f"pair {self.pair_id}")
        _score(self.score_impostor, f"pair {self.pair_id}")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"pair_id": self.pair_id, "probe_image": self.probe_image,
                "probe_identity": self.probe_identity, "partner_image": self.partner_image,
                "impostor_image": self.impostor_image,
                "impostor_identity": self.impostor_identity,
                "score_genuine": self.score_genuine, "score_impostor": self.score_impostor}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> PartnerSwap:
        """Rebuild from :meth:`to_json` output (exact keys)."""
        _exact_keys(row, set(cls.__slots__), "partner swap")
        return cls(**row)


@dataclass(frozen=True, slots=True)
class MethodPartnerSensitivity:
    """One method's maps against the genuine and the impostor partner, compared per pair.

    Attributes
    ----------
    method_id, method_name : str
        The protocol's method id and its registry name.
    is_control : bool
        The method is a control (``info.is_control``).
    original_constant : tuple of bool
        Per pair: the map against the genuine partner is constant. It ranks no pixel, so its
        similarity is a chance value; a claim counts such a pair against the method.
    similarity : tuple of float
        Per pair, the similarity of the two maps (the result's ``metric``); empty on error.
    error : str or None
        ``"<ExceptionType>: <message>"`` when the method failed (a claim on it fails).
    """

    method_id: str
    method_name: str
    is_control: bool
    original_constant: tuple[bool, ...]
    similarity: tuple[float, ...]
    error: str | None

    def __post_init__(self) -> None:
        if self.error is not None and self.similarity:
            raise ValueError(f"method {self.method_id}: a failed method has no similarities")
        if self.error is None and len(self.similarity) != len(self.original_constant):
            raise ValueError(f"method {self.method_id}: {len(self.similarity)} similarities for "
                             f"{len(self.original_constant)} pairs")

    @property
    def mean(self) -> float | None:
        """Mean similarity over pairs (``None`` on error)."""
        return float(np.mean(self.similarity)) if self.similarity else None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (the mean is derived, stored for readers)."""
        return {"method_id": self.method_id, "method_name": self.method_name,
                "is_control": self.is_control,
                "original_constant": list(self.original_constant),
                "similarity": list(self.similarity), "mean": self.mean, "error": self.error}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> MethodPartnerSensitivity:
        """Rebuild from :meth:`to_json` output (exact keys; the mean re-derived and checked)."""
        _exact_keys(row, {"method_id", "method_name", "is_control", "original_constant",
                          "similarity", "mean", "error"}, "partner-sensitivity method")
        out = cls(method_id=row["method_id"], method_name=row["method_name"],
                  is_control=bool(row["is_control"]),
                  original_constant=tuple(bool(v) for v in row["original_constant"]),
                  similarity=tuple(row["similarity"]), error=row["error"])
        mean = out.mean
        if (mean is None) != (row["mean"] is None) or (
                mean is not None and not math.isclose(mean, row["mean"], rel_tol=1e-12,
                                                      abs_tol=1e-12)):
            raise ValueError(f"method {out.method_id}: mean {row['mean']!r} does not match its "
                             f"similarities (mean {mean!r})")
        return out


@dataclass(frozen=True, slots=True)
class PartnerSensitivityResult:
    """The partner-sensitivity stage of one run.

    Attributes
    ----------
    model : str
    seed : int
        Seed of the impostor-choice streams.
    metric : {"spearman_abs", "ssim", "topk"}
        The map similarity.
    topk_frac : float
        Fraction of pixels of the ``topk`` metric's top sets.
    swaps : tuple of PartnerSwap
        The genuine pairs and their impostors, in the order of every ``similarity`` tuple.
    methods : tuple of MethodPartnerSensitivity
        One per method, in method-id order.
    """

    model: str
    seed: int
    metric: Metric
    topk_frac: float
    swaps: tuple[PartnerSwap, ...]
    methods: tuple[MethodPartnerSensitivity, ...]

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; known: {', '.join(METRICS)}")
        if not 0.0 < self.topk_frac < 1.0:
            raise ValueError(f"topk_frac must be in (0, 1), got {self.topk_frac!r}")
        pair_ids = [s.pair_id for s in self.swaps]
        if not pair_ids or len(set(pair_ids)) != len(pair_ids):
            raise ValueError(f"swaps must be non-empty with unique pair ids, got {pair_ids}")
        ids = [m.method_id for m in self.methods]
        if ids != sorted(set(ids)):
            raise ValueError(f"methods must be unique and sorted by id, got {ids}")
        low, high = _bounds(self.metric)
        for method in self.methods:
            if len(method.original_constant) != len(self.swaps):
                raise ValueError(f"method {method.method_id}: {len(method.original_constant)} "
                                 f"entries for {len(self.swaps)} pairs")
            for value in method.similarity:
                if isinstance(value, bool) or not isinstance(value, (int, float)) \
                        or not (math.isfinite(value) and low <= value <= high):
                    raise ValueError(f"method {method.method_id}: similarity {value!r} is not "
                                     f"a number in [{low}, {high}]")

    @property
    def n_pairs(self) -> int:
        """Pairs compared."""
        return len(self.swaps)

    def method(self, method_id: str) -> MethodPartnerSensitivity:
        """One method's result (an unknown id raises)."""
        for entry in self.methods:
            if entry.method_id == method_id:
                return entry
        raise KeyError(f"the partner-sensitivity stage has no method {method_id!r}; it has "
                       f"{[m.method_id for m in self.methods]}")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (strict JSON: every number finite)."""
        return {"version": FORMAT_VERSION, "model": self.model, "seed": self.seed,
                "metric": self.metric, "topk_frac": self.topk_frac,
                "swaps": [s.to_json() for s in self.swaps],
                "methods": [m.to_json() for m in self.methods]}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> PartnerSensitivityResult:
        """Rebuild from :meth:`to_json` output (exact keys, same format version)."""
        _exact_keys(row, {"version", "model", "seed", "metric", "topk_frac", "swaps",
                          "methods"}, "partner-sensitivity result")
        if row["version"] != FORMAT_VERSION:
            raise ValueError(f"partner-sensitivity result: version {row['version']!r} is not "
                             f"{FORMAT_VERSION}")
        return cls(model=row["model"], seed=row["seed"], metric=row["metric"],
                   topk_frac=row["topk_frac"],
                   swaps=tuple(PartnerSwap.from_json(s) for s in row["swaps"]),
                   methods=tuple(MethodPartnerSensitivity.from_json(m) for m in row["methods"]))


def write_partner_sensitivity(folder_root: Path, result: PartnerSensitivityResult) -> Path:
    """Write ``partner_sensitivity.json`` (atomic, strict JSON); return its path."""
    path = folder_root / PARTNER_FILE
    write_json(path, result.to_json())
    return path


def load_partner_sensitivity(run_root: Path) -> PartnerSensitivityResult | None:
    """Read a run's ``partner_sensitivity.json``; ``None`` when the run has no such stage.

    Raises
    ------
    ValueError
        If the file exists but is corrupt or does not validate.
    """
    path = run_root / PARTNER_FILE
    if not path.exists():
        return None
    try:
        return PartnerSensitivityResult.from_json(read_json(path))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a partner-sensitivity result ({exc})") from None


def choose_swaps(pairs: Sequence[Pair], n_pairs: int, seed: int) -> list[tuple[int, str, str]]:
    """The genuine pairs to re-explain and each one's random impostor partner.

    The genuine pairs are ``floor(i G / n)`` of the ``G`` genuine pairs (in run order), evenly
    spread; each impostor is drawn uniformly from the run's images (probes and partners, by
    sorted image id) of another identity than the probe's, by the keyed stream
    ``(seed, "partner_sensitivity", pair_id)`` — independent of every other stream and of
    ``n_pairs``.

    Returns
    -------
    list of (int, str, str)
        ``(row in pairs, impostor image id, impostor identity)``.

    Raises
    ------
    ValueError
        If the run has fewer than ``n_pairs`` genuine pairs or a probe has no impostor image.
    """
    genuine = [i for i, p in enumerate(pairs) if p.is_genuine]
    if not 1 <= n_pairs <= len(genuine):
        raise ValueError(f"partner sensitivity needs n_pairs in [1, {len(genuine)}] (the run's "
                         f"genuine pairs), got {n_pairs}")
    identities: dict[str, str] = {}
    for pair in pairs:
        identities[pair.image_a] = pair.identity_a
        identities[pair.image_b] = pair.identity_b
    images = sorted(identities)
    out = []
    for j in range(n_pairs):
        row = genuine[(j * len(genuine)) // n_pairs]
        pair = pairs[row]
        candidates = [image for image in images if identities[image] != pair.identity_a]
        if not candidates:
            raise ValueError(f"pair {pair.pair_id}: the run has no image of another identity "
                             "than its probe's to serve as impostor partner")
        pick = int(numpy_generator(seed, _STREAM, pair.pair_id).integers(len(candidates)))
        out.append((row, candidates[pick], identities[candidates[pick]]))
    return out


def _maps(method: AttributionMethod, batch: AttributionBatch) -> NDArray[np.float64]:
    maps = np.asarray(method.attribute(batch), dtype=np.float64)
    expected = (batch.probes.shape[0], *batch.probes.shape[-2:])
    if maps.shape != expected:
        raise ValueError(f"maps of shape {maps.shape}, expected {expected}")
    if not np.all(np.isfinite(maps)):
        raise ValueError("maps are not finite")
    return maps


def _method_result(method: AttributionMethod, genuine: AttributionBatch,
                   impostor: AttributionBatch, metric: Metric,
                   topk_frac: float) -> MethodPartnerSensitivity:
    n = genuine.probes.shape[0]
    try:
        original = _maps(method, genuine)
        swapped = _maps(method, impostor)
    except Exception as exc:  # noqa: BLE001 — recorded on the method, never dropped
        return MethodPartnerSensitivity(
            method_id=method.method_id, method_name=method.info.name,
            is_control=method.info.is_control, original_constant=(False,) * n, similarity=(),
            error=f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
    return MethodPartnerSensitivity(
        method_id=method.method_id, method_name=method.info.name,
        is_control=method.info.is_control,
        original_constant=tuple(is_constant_map(m) for m in original),
        similarity=tuple(map_similarity(metric, original[i], swapped[i], topk_frac=topk_frac)
                         for i in range(n)),
        error=None)


def run_partner_sensitivity(methods: Sequence[AttributionMethod], batch: AttributionBatch, *,
                            swaps: Sequence[PartnerSwap], impostor_embeddings: torch.Tensor,
                            seed: int, metric: Metric,
                            topk_frac: float = 0.1) -> PartnerSensitivityResult:
    """Re-explain each genuine pair against its impostor and compare the maps.

    Parameters
    ----------
    methods : sequence of AttributionMethod
        The methods to test (method ids unique).
    batch : AttributionBatch
        The chosen genuine pairs with their genuine partner embeddings, row for row with
        ``swaps``.
    swaps : sequence of PartnerSwap
        The pairs and impostors (:func:`choose_swaps`).
    impostor_embeddings : torch.Tensor
        ``f(x_impostor)`` (N, D), unit rows, row for row with ``swaps``.
    seed : int
        The stage's seed (recorded; the impostors were drawn with it).
    metric : {"spearman_abs", "ssim", "topk"}
        The map similarity.
    topk_frac : float
        Top-set fraction of the ``topk`` metric.

    Returns
    -------
    PartnerSensitivityResult
        Per method, the similarity of each pair's two maps. All pairs of one partner are
        attributed in one call, so the two calls differ in the partner only.
    """
    if impostor_embeddings.shape != batch.partner_embeddings.shape \
            or len(swaps) != batch.probes.shape[0] \
            or tuple(s.pair_id for s in swaps) != batch.pair_ids:
        raise ValueError("swaps, impostor_embeddings and the batch must list the same pairs, "
                         "row for row")
    ids = [m.method_id for m in methods]
    if len(set(ids)) != len(ids):
        raise ValueError(f"method ids repeat: {ids}")
    impostor = AttributionBatch(model=batch.model, probes=batch.probes,
                                partner_embeddings=impostor_embeddings.detach(),
                                pair_ids=batch.pair_ids, identity_masks=batch.identity_masks,
                                seed=batch.seed)
    results = tuple(_method_result(m, batch, impostor, metric, topk_frac)
                    for m in sorted(methods, key=lambda m: m.method_id))
    return PartnerSensitivityResult(model=batch.model.name, seed=seed, metric=metric,
                                    topk_frac=topk_frac, swaps=tuple(swaps), methods=results)
