"""One method's records on a batch of pairs: attribute (fixed chunks, failures per pair),
rank, falsify, then the per-pair facts (completeness, target sanity, target identity).

The records stage (:mod:`faceattr.experiments.executor`), the metric-validity stage and
``faceattr calibrate`` all make records through :func:`method_records`, so a calibration split's
records and a run's are made the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from faceattr.attribution import AttributionBatch, AttributionMethod
from faceattr.attribution.base import AttributionDetails
from faceattr.attribution.explained import observe_explained
from faceattr.attribution.target import TARGET_ERROR_STATUS, TargetSanity
from faceattr.data.pairs import Pair
from faceattr.experiments.context import (
    ATTRIBUTION_CHUNK,
    attribution_batch,
    fixed_chunks,
    ranked_maps,
    real_rows,
    take_rows,
)
from faceattr.experiments.target_identity import apply_target_identity, identity_checks
from faceattr.falsification import FalsificationSettings, PairInputs, falsify_maps
from faceattr.falsification.engine import clean_scores, failed_record
from faceattr.models.base import VerificationModel
from faceattr.protocol import Protocol
from faceattr.records import PairRecord

__all__ = ["Attributed", "attribute_pairs", "method_records"]


@dataclass(frozen=True)
class Attributed:
    details: AttributionDetails
    failures: dict[int, tuple[str, str]]  # row -> (status, reason)


def _attribute_rows(method: AttributionMethod, batch: AttributionBatch, rows: list[int],
                    n_real: int) -> AttributionDetails:
    return real_rows(method.attribute_with_details(take_rows(batch, rows)), n_real)


def _error(exc: BaseException) -> tuple[str, str]:
    status = f"error:{type(exc).__name__}"
    return status, (str(exc).splitlines() or [status])[0] or status


def attribute_pairs(method: AttributionMethod, batch: AttributionBatch) -> Attributed:
    """Attribute in fixed chunks; a failing chunk is retried pair by pair, so an exception or a
    non-finite map marks only the pairs it affects (``error:<type>``, ``error:NonFiniteMap``)
    and never depends on how the run grouped its pairs."""
    n, shape = batch.probes.shape[0], tuple(batch.probes.shape[-2:])
    maps = np.zeros((n, *shape), dtype=np.float64)
    deltas: NDArray[np.float64] | None = None
    failures: dict[int, tuple[str, str]] = {}
    facts: AttributionDetails | None = None
    for rows, n_real in fixed_chunks(n):
        parts: list[tuple[int, AttributionDetails]] = []
        try:
            parts.append((rows[0], _attribute_rows(method, batch, rows, n_real)))
        except Exception:  # noqa: BLE001 — retried per pair below; failures become records
            for row in rows[:n_real]:
                try:
                    parts.append((row, _attribute_rows(method, batch,
                                                       [row] * ATTRIBUTION_CHUNK, 1)))
                except Exception as exc:  # noqa: BLE001 — recorded per pair as error:<type>
                    failures[row] = _error(exc)
        for start, part in parts:
            maps[start:start + part.maps.shape[0]] = part.maps
            if part.convergence_delta is not None:
                if deltas is None:
                    deltas = np.zeros(n, dtype=np.float64)
                deltas[start:start + part.maps.shape[0]] = part.convergence_delta
            facts = part
    for row in range(n):
        if row not in failures and not np.isfinite(maps[row]).all():
            bad = int((~np.isfinite(maps[row])).sum())
            failures[row] = ("error:NonFiniteMap",
                             f"{method.method_id} returned a map with {bad} non-finite values")
        elif row not in failures and deltas is not None and not np.isfinite(deltas[row]):
            failures[row] = ("error:NonFiniteMap",
                             f"{method.method_id} returned a non-finite completeness residual")
    for row in failures:
        maps[row] = 0.0  # a constant map: the engine spends no forwards on it
        if deltas is not None:
            deltas[row] = 0.0
    return Attributed(
        details=AttributionDetails(
            maps=maps, convergence_delta=deltas,
            layer=None if facts is None else facts.layer,
            native_resolution=None if facts is None else facts.native_resolution,
            upsampling=None if facts is None else facts.upsampling),
        failures=failures)


def _with_details(pairs: Sequence[Pair], records: list[PairRecord], details: AttributionDetails,
                  sanity: Sequence[TargetSanity] | None, verdict_rule: str) -> list[PairRecord]:
    """Add completeness and target-sanity facts; a pair whose target fails its sanity check
    becomes ``error:target`` (its map explains nothing)."""
    out: list[PairRecord] = []
    for i, record in enumerate(records):
        if record.status.startswith("error:"):
            out.append(record)
            continue
        delta = None if details.convergence_delta is None else float(details.convergence_delta[i])
        grad_norm = None if sanity is None else sanity[i].grad_norm
        record = replace(record, attribution_sum=float(details.maps[i].sum()),
                         convergence_delta=delta, target_grad_norm=grad_norm)
        if sanity is not None and not sanity[i].passed:
            failed = failed_record(
                pairs[i], record.model, record.method,
                TARGET_ERROR_STATUS, sanity[i].reason or "target sanity failed",
                record.score_clean, verdict_rule)
            record = replace(failed, target_grad_norm=grad_norm)
        out.append(record)
    return out


def _falsify(model: VerificationModel, inputs: PairInputs, maps: NDArray[np.float64], *,
             method_id: str, seed: int, settings: FalsificationSettings) -> list[PairRecord]:
    """The engine on the batch; if it raises, pair by pair (a failing pair is an error)."""
    try:
        return falsify_maps(model, inputs, maps, method_id=method_id, seed=seed,
                            settings=settings)
    except Exception:  # noqa: BLE001 — retried per pair; failures become records
        scores = clean_scores(inputs)
        out = []
        for i, pair in enumerate(inputs.pairs):
            one = inputs.subset([i])
            try:
                out += falsify_maps(model, one, maps[i:i + 1], method_id=method_id, seed=seed,
                                    settings=settings)
            except Exception as exc:  # noqa: BLE001 — recorded per pair as error:<type>
                status, reason = _error(exc)
                out.append(failed_record(pair, model.name, method_id, status, reason,
                                         float(scores[i]), settings.verdict))
        return out


def method_records(method: AttributionMethod, model: VerificationModel, inputs: PairInputs,
                   protocol: Protocol, settings: FalsificationSettings,
                   sanity: Sequence[TargetSanity]) -> list[PairRecord]:
    """One method's records on a batch of pairs, exactly as the records stage makes them
    (reused by ``faceattr calibrate`` on the calibration split)."""
    batch = attribution_batch(model, inputs, protocol.seed)
    with observe_explained(batch.probes, batch.partner_embeddings) as observed:
        attributed = attribute_pairs(method, batch)
    if len(attributed.failures) == len(inputs.pairs):  # nothing to test
        scores = clean_scores(inputs)
        return [failed_record(p, model.name, method.method_id, *attributed.failures[i],
                              float(scores[i]), settings.verdict)
                for i, p in enumerate(inputs.pairs)]
    ranked = ranked_maps(protocol, method.method_id, attributed.details.maps)
    records = _falsify(model, inputs, ranked, method_id=method.method_id, seed=protocol.seed,
                       settings=settings)
    checked = None if method.info.is_control else sanity
    records = _with_details(inputs.pairs, records, attributed.details, checked,
                            settings.verdict)
    if method.info.explains_score and not method.info.is_control:  # else no scalar explained
        records = apply_target_identity(inputs.pairs, records, identity_checks(
            method.method_id, observed, inputs), settings.verdict)
    for row, (status, reason) in sorted(attributed.failures.items()):
        records[row] = failed_record(inputs.pairs[row], model.name, method.method_id, status,
                                     reason, records[row].score_clean, settings.verdict)
    return records
