"""Target sanity: the explained scalar must depend on the probe, per pair (PITFALLS.md #5).

The research code explained the norm of an L2-normalised embedding — a constant. Its gradients
were ~1e-11 and every map was zero, and nothing flagged it. Before a pair's maps are trusted,
this module records the target's value, the L2 norm of its gradient w.r.t. the probe and how
much it moves under a small deterministic input change; a pair failing either check gets the
status :data:`TARGET_ERROR_STATUS` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from faceattr.attribution.base import VerificationScoreModule
from faceattr.models.base import VerificationModel

__all__ = ["TARGET_ERROR_STATUS", "TargetFn", "TargetSanity", "target_sanity"]

TARGET_ERROR_STATUS = "error:target"
"""Per-pair status of a pair whose target fails :func:`target_sanity`."""

TargetFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(probes (N, 3, H, W), partner_embeddings (N, D)) -> (N,)`` explained scalars."""


@dataclass(frozen=True, slots=True)
class TargetSanity:
    """One pair's target check.

    Attributes
    ----------
    score : float
        The target's value at the probe.
    grad_norm : float
        L2 norm of its gradient w.r.t. the probe (all channels and pixels).
    max_change : float
        Largest ``|t(x') - t(x)|`` over the deterministic input changes (see
        :func:`target_sanity`).
    passed : bool
        ``grad_norm >= grad_norm_min`` and ``max_change >= min_change``.
    reason : str or None
        Why it failed; ``None`` when it passed.
    """

    score: float
    grad_norm: float
    max_change: float
    passed: bool
    reason: str | None


def _checkerboard(shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
    height, width = shape[-2:]
    rows = torch.arange(height)[:, None]
    cols = torch.arange(width)[None, :]
    return (((rows + cols) % 2) * 2 - 1).to(dtype).expand(shape)


def target_sanity(model: VerificationModel, probes: torch.Tensor,
                  partner_embeddings: torch.Tensor, *, grad_norm_min: float,
                  min_change: float = 1e-6, step: float = 0.02,
                  target: TargetFn | None = None) -> list[TargetSanity]:
    """Check, per pair, that the explained scalar varies with the probe.

    Parameters
    ----------
    model : VerificationModel
    probes : torch.Tensor
        (N, 3, H, W) probes in [0, 1].
    partner_embeddings : torch.Tensor
        (N, D) unit partner embeddings.
    grad_norm_min : float
        Smallest acceptable gradient L2 norm. The research code's constant target had norms near
        1e-11 (float32 rounding of a constant); a real cosine score of a trained model has norms
        many orders larger, so a threshold such as 1e-6 separates them.
    min_change : float
        Smallest acceptable change of the target under the input changes (default 1e-6, about
        ten times float32 rounding of a value near 1; a real face model can be nearly
        invariant to a faint checkerboard — dlib's score moved by 4e-5 on one demo pair — so
        the gradient norm is the main check and this one only catches a frozen output).
    step : float
        Size of the input changes in [0, 1]-image units (default 0.02, about 5 grey levels).
    target : callable or None
        The explained scalar; ``None`` means the verification score
        (:class:`~faceattr.attribution.base.VerificationScoreModule`). Tests plant defects here.

    Returns
    -------
    list of TargetSanity
        One per pair, in order. The input changes are deterministic: the probe plus a
        ``+-step`` pixel checkerboard, and the probe brightened by ``step`` (both clipped to
        [0, 1]); ``max_change`` is the larger of the two target changes.
    """
    fn: TargetFn = VerificationScoreModule(model, partner_embeddings) if target is None \
        else target
    partner = partner_embeddings.detach()
    inputs = probes.detach().clone().requires_grad_(True)
    values = fn(inputs, partner)
    (grad,) = torch.autograd.grad(values.sum(), inputs)
    grad_norms = grad.flatten(1).norm(dim=1)
    with torch.no_grad():
        changed = [torch.clamp(probes + step * _checkerboard(probes.shape, probes.dtype), 0, 1),
                   torch.clamp(probes + step, 0, 1)]
        changes = torch.stack([(fn(x, partner) - values).abs() for x in changed]).amax(dim=0)
    out = []
    for value, norm, change in zip(values.tolist(), grad_norms.tolist(), changes.tolist(),
                                   strict=True):
        reasons = []
        if not norm >= grad_norm_min:
            reasons.append(f"gradient norm {norm:.3g} < {grad_norm_min:.3g}")
        if not change >= min_change:
            reasons.append(f"target changes by {change:.3g} < {min_change:.3g} under "
                           f"+-{step} input changes (constant target?)")
        out.append(TargetSanity(score=value, grad_norm=norm, max_change=change,
                                passed=not reasons, reason="; ".join(reasons) or None))
    return out
