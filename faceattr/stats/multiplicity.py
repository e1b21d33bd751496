"""Multiplicity adjustment over a declared family of claims."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from statsmodels.stats.multitest import multipletests

from faceattr.stats.proportions import check_alpha

__all__ = ["AdjustedFamily", "MultiplicityMethod", "adjust_family"]

MultiplicityMethod = Literal["holm", "benjamini-hochberg"]
_SM = {"holm": "holm", "benjamini-hochberg": "fdr_bh"}


@dataclass(frozen=True, slots=True)
class AdjustedFamily:
    """Adjusted p-values and decisions for a family of claims, in declaration order."""

    claim_ids: tuple[str, ...]
    p_values: tuple[float, ...]
    adjusted: tuple[float, ...]
    reject: tuple[bool, ...]
    method: str
    alpha: float

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        if self.method not in _SM:
            raise ValueError(f"method must be one of {tuple(_SM)}, got {self.method!r}")
        k = len(self.claim_ids)
        if k == 0 or not len(self.p_values) == len(self.adjusted) == len(self.reject) == k:
            raise ValueError("a non-empty family with one p-value, adjusted p and decision each")
        for p in (*self.p_values, *self.adjusted):
            if not (math.isfinite(p) and 0.0 <= p <= 1.0):
                raise ValueError(f"p-values must be finite and in [0, 1], got {p!r}")
        for p, q in zip(self.p_values, self.adjusted, strict=True):
            if q < p:
                raise ValueError(f"adjusted p {q!r} < raw p {p!r}")

    def decision(self, claim_id: str) -> bool:
        """Whether the named claim's null is rejected after adjustment."""
        return self.reject[self.claim_ids.index(claim_id)]

    def to_json(self) -> dict[str, object]:
        """A JSON-safe dict."""
        return {
            "claims": [
                {"claim_id": c, "p_value": p, "adjusted_p_value": q, "reject": r}
                for c, p, q, r in zip(
                    self.claim_ids, self.p_values, self.adjusted, self.reject, strict=True
                )
            ],
            "method": self.method,
            "alpha": self.alpha,
        }


def adjust_family(
    p_values: Mapping[str, float | None], *, method: MultiplicityMethod, alpha: float
) -> AdjustedFamily:
    """Holm (FWER) or Benjamini-Hochberg (FDR) adjustment over a declared family of claims.

    ``statsmodels.stats.multitest.multipletests`` with ``method="holm"`` or ``"fdr_bh"`` passed
    explicitly (its default is Holm-Sidak). The family is every claim declared, in declaration
    order; an undefined (``None``) or invalid p-value raises rather than being dropped, since
    dropping a claim shrinks the family.

    References
    ----------
    .. [1] S. Holm, "A simple sequentially rejective multiple test procedure", Scandinavian
       Journal of Statistics 6(2):65-70, 1979.
    .. [2] Y. Benjamini and Y. Hochberg, "Controlling the false discovery rate: a practical and
       powerful approach to multiple testing", JRSS B 57(1):289-300, 1995.
    """
    a_ = check_alpha(alpha)
    if method not in get_args(MultiplicityMethod):
        raise ValueError(f"method must be one of {get_args(MultiplicityMethod)}, got {method!r}")
    if not p_values:
        raise ValueError("empty family: declare at least one claim")
    ids = list(p_values)
    raw: list[float] = []
    for cid in ids:
        p = p_values[cid]
        if p is None:
            raise ValueError(
                f"claim {cid!r} has an undefined p-value: resolve it before adjusting the family "
                "(dropping it would shrink the family)"
            )
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) \
                or not 0.0 <= p <= 1.0:
            raise ValueError(f"claim {cid!r}: p-value must be finite and in [0, 1], got {p!r}")
        raw.append(float(p))
    reject, adj, _, _ = multipletests(
        np.asarray(raw, dtype=np.float64), alpha=a_, method=_SM[method], is_sorted=False,
        returnsorted=False,
    )
    adjusted = tuple(min(1.0, max(float(q), p)) for q, p in zip(adj, raw, strict=True))
    return AdjustedFamily(
        claim_ids=tuple(ids), p_values=tuple(raw), adjusted=adjusted,
        reject=tuple(bool(r) for r in reject), method=method, alpha=a_,
    )
