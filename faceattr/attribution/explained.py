"""Which scalar a method explained: observed while it runs, evaluated at the probe.

Target sanity (:mod:`faceattr.attribution.target`) checks that the explained scalar *moves*;
it cannot tell the pair's verification score ``s(x_a, x_b)`` from another moving scalar. The
research code's Exp 6.2 explained each probe's similarity to a black image instead of to its
partner: non-constant, large gradient, distinct maps — every check passed. This module lets the
engine check *identity*: while a method attributes a batch, every evaluation of a
:class:`~faceattr.attribution.base.VerificationScoreModule` (a forward hook the module installs
on itself) and every scalar a method reports through :func:`report_values` is seen by an
:class:`ExplainedScalars` observer. Afterwards, per pair, the observer takes the target the
method actually evaluated nearest to that pair's probe — preferring evaluations made with
gradients enabled (what a gradient method differentiates) over ``no_grad`` ones (a completeness
end point, a perturbation method's forwards) — and evaluates that very target (the same module
object, with the partner rows the method passed it) at the clean probe. The engine compares the
value with the record's ``score_clean``, computed independently from the two images' clean
embeddings.

Each evaluated row is first assigned to a pair: a row at a probe itself to that probe's pair
(among pairs sharing the image, the one whose partner is nearest to the row's), any other row
(SmoothGrad's noisy copies, IG's nodes, LIME's masked samples — possibly nearer to another
face than to their own) to the pair whose partner it was evaluated against (nearest probe
among those; a row against no pair's partner, a wrong partner, to the nearest probe). A wrong
partner (a black image, a constant, the probe alone) is always caught, and so is a row
misalignment (pair ``j``'s partner paired with probe ``i``) for every method that evaluates its
target at the probe; for one that never does (Gauss-Legendre IG, SmoothGrad) a misalignment
that consistently swaps whole pairs' partners is not.

This module imports nothing of faceattr: :mod:`faceattr.attribution.base` imports it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["ExplainedScalars", "ExplainedValue", "ScoreOf", "observe_explained",
           "observe_module_call", "report_values"]

ScoreOf = Callable[[torch.Tensor], torch.Tensor]
"""Maps explained values (float64) to the verification score they stand for (a monotone
target such as the angular similarity ``1 - d_g / pi`` is compared as ``cos(pi (1 - v))``)."""

Target = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_ACTIVE: ContextVar[ExplainedScalars | None] = ContextVar("faceattr_explained", default=None)

_TIE_ATOL = 1e-6
"""Input distances (L2 over all pixels, [0, 1] units) closer than this are ties: the rows are
one image (float32 rounding of ``b + 1 * (x - b)`` is ~1e-7 per pixel)."""


_PARTNER_ATOL = 1e-6
"""Partner rows closer than this (L2) to a pair's partner embedding are that partner (the
method passes the batch's own embeddings on: they are equal, or rounded to float32)."""


@dataclass(frozen=True, slots=True)
class ExplainedValue:
    """The scalar a method explained, at one pair's probe.

    Attributes
    ----------
    value : float
        The explained target evaluated at the clean probe.
    score : float
        ``value`` as a verification score (``score_of(value)``); what ``score_clean`` must equal.
    score_atol : float
        Rounding that ``score_of`` adds (e.g. the angular target's clamp), for the tolerance.
    input_distance : float
        L2 distance from the probe of the nearest input the method evaluated the target at (0
        when it evaluated the probe itself; > 0 for SmoothGrad's noisy copies, IG's nodes).
    differentiated : bool
        Whether that evaluation ran with gradients enabled.
    """

    value: float
    score: float
    score_atol: float
    input_distance: float
    differentiated: bool


@dataclass(slots=True)
class _Nearest:
    distance: float
    partner_distance: float
    target: Target | None  # None: a reported value (no function to evaluate)
    score_of: ScoreOf
    score_atol: float
    partner: torch.Tensor  # (D,)
    value: float | None  # the reported value (target is None)
    differentiated: bool


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # exact differences, not the |a|^2 + |b|^2 - 2ab expansion (its cancellation, ~1e-6 for
    # 64 x 64 images, would reach the tie tolerance)
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _identity(values: torch.Tensor) -> torch.Tensor:
    return values


class ExplainedScalars:
    """Observer of the targets a method evaluates on a batch (see the module docstring).

    Parameters
    ----------
    probes : torch.Tensor
        The batch's probes (N, 3, H, W).
    partner_embeddings : torch.Tensor
        Their partners' embeddings (N, D); only used to tell apart pairs with identical probes.
    """

    def __init__(self, probes: torch.Tensor, partner_embeddings: torch.Tensor) -> None:
        self._probes = probes.detach()
        self._flat = probes.detach().flatten(1).to(torch.float64)
        self._partners = partner_embeddings.detach().to(torch.float64)
        n = probes.shape[0]
        # pairs with one probe image share a class (its first pair): an evaluation that a
        # wrong partner assigned to another pair of the class still speaks for the class
        between = _distances(self._flat, self._flat)
        self._class = [int(torch.nonzero(between[i] <= _TIE_ATOL).flatten()[0])
                       for i in range(n)]
        # per pair (then per class, at index n + class): nearest among differentiated
        # evaluations, and among all evaluations
        self._grad: list[_Nearest | None] = [None] * (2 * n)
        self._any: list[_Nearest | None] = [None] * (2 * n)
        self.n_calls = 0

    def observe(self, *, target: Target | None, score_of: ScoreOf, score_atol: float,
                inputs: torch.Tensor, partner: torch.Tensor,
                values: torch.Tensor | None = None) -> None:
        """Record one evaluation: ``inputs`` (R, 3, H, W) with partner rows (R, D) (one row is
        broadcast); ``values`` (R,) only for a reported value without a function."""
        if inputs.ndim != 4 or tuple(inputs.shape[1:]) != tuple(self._probes.shape[1:]):
            return  # not this batch's images
        rows = inputs.shape[0]
        partner = partner.detach().to(torch.float64)
        if partner.ndim != 2 or partner.shape[0] not in (1, rows) \
                or partner.shape[1] != self._partners.shape[1]:
            return  # the forward itself cannot pair these rows
        partner = partner.expand(rows, -1)
        self.n_calls += 1
        differentiated = torch.is_grad_enabled()
        dist = _distances(inputs.detach().flatten(1).to(torch.float64), self._flat)
        partner_dist = _distances(partner, self._partners)
        # a row at a probe itself belongs to that probe's pair (among pairs sharing the
        # image: the one with the nearest partner); any other row to the pair with the nearest
        # probe among the pairs whose partner it was evaluated against, or, against no pair's
        # partner (a wrong partner), to the pair with the nearest probe
        matched = partner_dist <= _PARTNER_ATOL
        inf = torch.full_like(dist, math.inf)
        by_partner = torch.where(matched, dist, inf).argmin(dim=1)
        nearest = dist.min(dim=1, keepdim=True).values
        tied = dist <= nearest + _TIE_ATOL
        by_probe = torch.where(tied, partner_dist, inf).argmin(dim=1)
        owner = torch.where(matched.any(dim=1) & (nearest[:, 0] > _TIE_ATOL), by_partner,
                            by_probe)
        n = self._flat.shape[0]
        owned = owner[:, None] == torch.arange(n)[None, :]
        best, best_rows = torch.where(owned, dist, inf).min(dim=0)
        for i in torch.nonzero(torch.isfinite(best)).flatten().tolist():
            row = int(best_rows[i])
            found = _Nearest(distance=float(dist[row, i]),
                             partner_distance=float(partner_dist[row, i]),
                             target=target, score_of=score_of, score_atol=score_atol,
                             partner=partner[row].clone(),
                             value=None if values is None else float(values[row]),
                             differentiated=differentiated)
            slots = (self._grad, self._any) if differentiated else (self._any,)
            for slot in slots:
                for j in (i, n + self._class[i]):  # the pair, and its probe's class
                    if _better(found, slot[j]):
                        slot[j] = found

    def at_probes(self) -> list[ExplainedValue | None]:
        """Per pair, the explained scalar at its probe; ``None`` where the method evaluated no
        target (nor reported a value at the probe itself)."""
        n = self._flat.shape[0]

        def pick(i: int) -> _Nearest | None:
            # the pair's own evaluations, else its probe class's; differentiated ones first
            for slots in ((self._grad[i], self._any[i]),
                          (self._grad[n + self._class[i]], self._any[n + self._class[i]])):
                for nearest in slots:
                    if nearest is not None:
                        return nearest
            return None

        chosen = [pick(i) for i in range(n)]
        out: list[ExplainedValue | None] = [None] * len(chosen)
        groups: dict[int, list[int]] = {}
        for i, nearest in enumerate(chosen):
            if nearest is None:
                continue
            if nearest.target is None:
                if nearest.distance <= _TIE_ATOL and nearest.value is not None:
                    out[i] = _value(nearest, nearest.value)
                continue
            groups.setdefault(id(nearest.target), []).append(i)
        for rows in groups.values():
            members = [chosen[i] for i in rows]
            first = members[0]
            assert first is not None
            assert first.target is not None
            partners = torch.stack([m.partner for m in members if m is not None])
            token = _ACTIVE.set(None)  # evaluating is not an observation
            try:
                with torch.no_grad():
                    values = first.target(self._probes[rows],
                                          partners.to(self._probes.dtype))
            finally:
                _ACTIVE.reset(token)
            for i, value in zip(rows, values.detach().to(torch.float64).flatten().tolist(),
                                strict=True):
                nearest = chosen[i]
                assert nearest is not None
                out[i] = _value(nearest, float(value))
        return out


def _better(found: _Nearest, current: _Nearest | None) -> bool:
    if current is None:
        return True
    if found.distance < current.distance - _TIE_ATOL:
        return True
    return abs(found.distance - current.distance) <= _TIE_ATOL \
        and found.partner_distance < current.partner_distance


def _value(nearest: _Nearest, value: float) -> ExplainedValue:
    score = float(nearest.score_of(torch.tensor([value], dtype=torch.float64))[0]) \
        if math.isfinite(value) else value
    return ExplainedValue(value=value, score=score, score_atol=nearest.score_atol,
                          input_distance=nearest.distance,
                          differentiated=nearest.differentiated)


@contextlib.contextmanager
def observe_explained(probes: torch.Tensor,
                      partner_embeddings: torch.Tensor) -> Iterator[ExplainedScalars]:
    """Observe every target evaluated inside the block (not re-entrant: an inner block
    replaces the outer observer until it exits)."""
    observer = ExplainedScalars(probes, partner_embeddings)
    token = _ACTIVE.set(observer)
    try:
        yield observer
    finally:
        _ACTIVE.reset(token)


def observe_module_call(module: Any, args: Sequence[Any], kwargs: dict[str, Any],
                        output: Any) -> None:
    """Forward hook of :class:`~faceattr.attribution.base.VerificationScoreModule` (installed
    by its constructor): report the call to the active observer, if any."""
    del output
    observer = _ACTIVE.get()
    if observer is None:
        return
    inputs = args[0] if args else kwargs.get("probes")
    partner = args[1] if len(args) > 1 else kwargs.get("partner")
    if partner is None:
        partner = module.partner
    if not isinstance(inputs, torch.Tensor) or not isinstance(partner, torch.Tensor):
        return
    observer.observe(target=module, score_of=module.score_of, score_atol=module.score_atol,
                     inputs=inputs, partner=partner)


def report_values(inputs: torch.Tensor, partner: torch.Tensor, values: torch.Tensor, *,
                  score_of: ScoreOf = _identity, score_atol: float = 0.0) -> None:
    """Report the scalar a method explains without a ``VerificationScoreModule`` (e.g. LRP
    seeds its backward pass itself): ``values`` (R,) at ``inputs`` (R, 3, H, W) against
    ``partner`` (R, D). Only a value at the probe itself counts for the identity check.
    Does nothing outside :func:`observe_explained`."""
    observer = _ACTIVE.get()
    if observer is not None:
        observer.observe(target=None, score_of=score_of, score_atol=score_atol,
                         inputs=inputs, partner=partner,
                         values=values.detach().to(torch.float64))
