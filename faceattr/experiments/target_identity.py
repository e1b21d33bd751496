"""Target identity: the scalar a method explained at the probe is the pair's verification score.

Target sanity (``error:target``) only checks that the explained scalar moves. The research
code's Exp 6.2 explained each probe's similarity to a black image — a moving scalar with a
large gradient — and every check passed. Here, per pair, the scalar the method actually
evaluated (:mod:`faceattr.attribution.explained`: the target object it called, with the partner
rows it passed, evaluated at the clean probe) must equal the record's ``score_clean``,
``<f(x_a), f(x_b)>`` from the two images' clean embeddings (float64 product of the run's float32
embeddings), within :func:`identity_tolerance`; otherwise the pair's status is
:data:`TARGET_IDENTITY_STATUS` with both values in the reason. Controls (``info.is_control``:
oracle, inverted, random, constant maps) explain no scalar and are exempt, as are
target-independent methods (``info.explains_score`` false: attention rollout).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from faceattr.attribution.explained import ExplainedScalars, ExplainedValue
from faceattr.data.pairs import Pair
from faceattr.falsification import PairInputs
from faceattr.falsification.engine import clean_scores, failed_record
from faceattr.records import TARGET_IDENTITY_STATUS, PairRecord
from faceattr.stats.tolerance import UNIT_ROUNDOFF_F32, cosine_tolerance

__all__ = ["TARGET_IDENTITY_STATUS", "IdentityCheck", "apply_target_identity",
           "check_target_identity", "identity_checks", "identity_tolerance"]



def identity_tolerance(score_clean: float, embedding_dim: int, score_atol: float) -> float:
    """Largest ``|explained score - score_clean|`` that float32 rounding explains.

    Both sides are the cosine of the same two float32 embeddings on the same machine and build;
    they differ only in how they were computed:

    1. The probe's embedding: the method's target embeds the probe in its own batch (one chunk
       of the engine, possibly one row), the run in ``forward_chunk`` batches. Another batch
       size is another kernel blocking; the cross-machine bound of
       :func:`faceattr.stats.tolerance.cosine_tolerance` (``4 (eta |c| + eps sqrt(1 - c^2))``,
       at most 3.9e-6, 1.2e-6 near ``c = 1``) covers any blocking, so it covers this one. The
       partner rows are the run's own embeddings (exactly equal).
    2. The inner product: the target sums ``D`` float32 products, ``score_clean`` sums them in
       float64. ``|fl32(<a, b>) - <a, b>| <= gamma_D sum |a_i b_i| <= D u`` for unit vectors
       (Higham 2002, eq. 3.5, with Cauchy-Schwarz), ``u = 2^-24``: 7.6e-6 for ``D = 128``
       (dlib), 3.1e-5 for ``D = 512``. The worst case, not the typical ``sqrt(D) u``: a
       wrong scalar moves the score by far more (a black-image partner: > 0.05 on every
       synthetic pair).
    3. ``score_atol``: what the target's inverse adds (:attr:`AngularSimilarityModule.score_atol
       <faceattr.attribution.base.AngularSimilarityModule.score_atol>`: its clamp, 1e-6).

    Parameters
    ----------
    score_clean : float
        The pair's clean score.
    embedding_dim : int
        ``D``.
    score_atol : float
        The target's own inverse rounding (>= 0).
    """
    if embedding_dim < 1 or not score_atol >= 0.0:
        raise ValueError(f"need embedding_dim >= 1 and score_atol >= 0, got {embedding_dim}, "
                         f"{score_atol}")
    return cosine_tolerance(score_clean) + embedding_dim * UNIT_ROUNDOFF_F32 + score_atol


@dataclass(frozen=True, slots=True)
class IdentityCheck:
    """One pair's target identity.

    Attributes
    ----------
    explained : float or None
        The explained scalar at the probe, as a verification score; ``None`` when the method
        evaluated no target.
    score_clean : float
    tolerance : float
    passed : bool
    reason : str or None
        Why it failed (both values); ``None`` when it passed.
    """

    explained: float | None
    score_clean: float
    tolerance: float
    passed: bool
    reason: str | None


_UNOBSERVED = ("no explained scalar was observed: the method evaluated no "
               "VerificationScoreModule and reported none (faceattr.attribution.explained."
               "report_values); its maps cannot be shown to explain s(x_a, x_b)")


def check_target_identity(method_id: str, explained: Sequence[ExplainedValue | None],
                          scores_clean: Sequence[float],
                          embedding_dim: int) -> list[IdentityCheck]:
    """Compare, per pair, the explained scalar at the probe with ``score_clean``."""
    out = []
    for value, clean in zip(explained, scores_clean, strict=True):
        if value is None:
            out.append(IdentityCheck(explained=None, score_clean=float(clean),
                                     tolerance=0.0, passed=False,
                                     reason=f"{method_id}: {_UNOBSERVED}"))
            continue
        tol = identity_tolerance(float(clean), embedding_dim, value.score_atol)
        gap = abs(value.score - float(clean))
        passed = gap <= tol  # NaN fails
        reason = None if passed else (
            f"{method_id} explains another scalar than the verification score: at the probe "
            f"it explains {value.score:.6f} (target value {value.value:.6f}) but score_clean "
            f"= {float(clean):.6f} (|diff| {gap:.3g} > tolerance {tol:.3g})")
        out.append(IdentityCheck(explained=value.score, score_clean=float(clean),
                                 tolerance=tol, passed=passed, reason=reason))
    return out


def apply_target_identity(pairs: Sequence[Pair], records: list[PairRecord],
                          checks: Sequence[IdentityCheck], verdict_rule: str) -> list[PairRecord]:
    """Turn each pair whose check failed into :data:`TARGET_IDENTITY_STATUS` (an error record:
    falsified, intention-to-treat); records already in an error status are kept."""
    out = []
    for pair, record, check in zip(pairs, records, checks, strict=True):
        if check.passed or record.status.startswith("error:"):
            out.append(record)
            continue
        failed = failed_record(pair, record.model, record.method, TARGET_IDENTITY_STATUS,
                               check.reason or "target identity failed", record.score_clean,
                               verdict_rule)
        out.append(replace(failed, target_grad_norm=record.target_grad_norm))
    return out


def identity_checks(method_id: str, observed: ExplainedScalars,
                    inputs: PairInputs) -> list[IdentityCheck]:
    """The checks of one method on one batch: what ``observed`` saw it explain, against the
    batch's clean scores (:func:`faceattr.falsification.engine.clean_scores`)."""
    return check_target_identity(method_id, observed.at_probes(),
                                 clean_scores(inputs).tolist(),
                                 int(inputs.partner_embeddings.shape[1]))
