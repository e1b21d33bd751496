"""The report's "Where maps fail" section, from ``strata.json`` (the stratified analysis).

Per method: one figure (each covariate's strata with the falsification rate and the
trivial-map share, Wilson intervals), a table of the heterogeneity tests (Holm-corrected), the
flagged strata (a stratum's rate against the rest, Fisher exact, Holm over every contrast), and
the method x stratum interactions (GEE with pair clusters). Rendered only from the artefact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from faceattr.io import read_json
from faceattr.report.figures import png_base64
from faceattr.stats.strata import Heterogeneity, StrataResult

__all__ = ["strata_context"]

_COLOURS = {"falsified": "#1f4e79", "trivial": "#c55a11"}
_LABELS = {"falsified": "falsification rate (ITT)", "trivial": "trivial-map share"}


def _rows(result: StrataResult, method: str) -> list[tuple[str, dict[str, Heterogeneity]]]:
    by_cov: dict[str, dict[str, Heterogeneity]] = {}
    for h in result.analysis.heterogeneity:
        if h.method == method:
            by_cov.setdefault(h.covariate, {})[h.outcome] = h
    return list(by_cov.items())


def _method_png(result: StrataResult, method: str) -> str:
    """Every stratum of every covariate: rate and interval per outcome; flagged strata bold."""
    flagged = {(c.outcome, c.covariate, c.stratum) for c in result.analysis.flagged()
               if c.method == method}
    labels, points = [], []
    for covariate, outcomes in _rows(result, method):
        first = next(iter(outcomes.values()))
        for k, cell in enumerate(first.cells):
            labels.append(f"{covariate}: {cell.stratum}" if k == 0 else cell.stratum)
            points.append({o: (h.cells[k], (o, covariate, cell.stratum) in flagged)
                           for o, h in outcomes.items()})
    fig, ax = plt.subplots(figsize=(7.5, 0.26 * len(labels) + 1.3), dpi=100)
    seen: set[str] = set()
    for row, entry in enumerate(points):
        for offset, outcome in ((-0.15, "falsified"), (0.15, "trivial")):
            if outcome not in entry or entry[outcome][0].rate is None:
                continue
            cell, flag = entry[outcome]
            rate = cell.rate
            assert rate is not None
            ax.errorbar(rate.estimate, row + offset,
                        xerr=[[rate.estimate - rate.low], [rate.high - rate.estimate]],
                        fmt="D" if flag else "o", ms=6 if flag else 3.5, capsize=2,
                        color=_COLOURS[outcome], alpha=1.0 if cell.tested else 0.35,
                        label=None if outcome in seen else _LABELS[outcome])
            seen.add(outcome)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlim(-0.02, 1.02)
    ax.invert_yaxis()
    ax.set_xlabel("share of the stratum's pairs (Wilson interval); diamond: flagged (Holm)")
    ax.set_title(method, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    if seen:
        ax.legend(loc="lower right", fontsize=7)
    return png_base64(fig)


def _heterogeneity_rows(result: StrataResult, method: str) -> list[dict[str, Any]]:
    rows = []
    for covariate, outcomes in _rows(result, method):
        for outcome, h in sorted(outcomes.items()):
            rows.append({
                "covariate": covariate, "outcome": outcome, "test": h.test.method,
                "p": h.test.p_value, "p_holm": h.p_holm, "reject": h.reject,
                "reason": h.test.undefined_reason, "n_undefined": h.n_undefined,
                "cells": [{"stratum": c.stratum, "n": c.n, "tested": c.tested,
                           "rate": None if c.rate is None else c.rate.to_json()}
                          for c in h.cells]})
    return rows


def strata_context(run_dir: Path) -> dict[str, Any] | None:
    """Template variables of the section, or None when the run has no ``strata.json``."""
    path = run_dir / "strata.json"
    if not path.exists():
        return None
    result = StrataResult.from_json(read_json(path))
    methods = sorted({h.method for h in result.analysis.heterogeneity})
    return {
        "verdict": result.verdict, "verdict_rule": result.verdict_rule,
        "alpha": result.analysis.alpha, "n_pairs": len(result.pairs),
        "covariates": [c.to_json() for c in result.covariates],
        "flagged": [c.to_json() for c in result.analysis.flagged()],
        "n_contrasts": len(result.analysis.contrasts),
        "interactions": [i.to_json() for i in result.analysis.interactions
                         if i.test.p_value is not None],
        "methods": [{"method": m, "png": _method_png(result, m),
                     "heterogeneity": _heterogeneity_rows(result, m)} for m in methods],
    }
