"""The report's discriminative-validity section, from ``validity.json`` and ``artefacts.json``.

Shows, for each family of maps a ``truth_tracking`` claim declares, the dose-response plot
(ground-truth quality vs every falsification outcome), the rank correlations per outcome and
stratum, and the methods ranked by the outcome against their ranking by the truth; and the
artefact controls (Rong et al., "A Consistent and Efficient Evaluation Strategy for Attribution
Methods", ICML 2022): the share of passes explainable by the shape of S_high alone, per fill
and verdict, and the blurred random map's falsification rate; and, where the protocol declares
``[metric_validity]``, every evaluation metric (deletion / insertion AUC, ROAD, faithfulness
correlation, pixel flipping) and falsification outcome ranked by its correlation with the truth,
each beside its paired difference to deletion AUC (MetaQuantus' question, Hedström et al. 2023,
answered with a ground truth).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from scipy.stats import rankdata

from faceattr.io import read_json
from faceattr.report.figures import png_base64

__all__ = ["OUTCOME_LABELS", "validity_context"]

OUTCOME_LABELS: Mapping[str, str] = {
    "pass_rate": "1 - FR, primary verdict (ITT)",
    "pass_rate_simple": "1 - FR, simple verdict (ITT)",
    "pass_rate_theorem": "1 - FR, Theorem 3.5 verdict (ITT)",
    "margin": "mean margin d_high - d_low (rad)",
    "concordance": "mean 1 - pairwise violation fraction",
}


def _dose_response_png(family: Mapping[str, Any]) -> str:
    """Mean quality vs mean outcome per method, one panel per outcome (all pairs)."""
    rows = [t for t in family["tracking"] if t["stratum"] == "all"]
    n_cols = 3
    n_rows = -(-len(rows) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(12, 3.8 * n_rows), dpi=100,
                             squeeze=False)
    for ax in axes.flat[len(rows):]:
        ax.set_axis_off()
    for ax, row in zip(axes.flat, rows, strict=False):
        points = [(m, q, o) for m, q, o in zip(row["methods"], row["mean_quality"],
                                                row["mean_outcome"], strict=True)
                  if q is not None and o is not None]
        ax.scatter([q for _, q, _ in points], [o for _, _, o in points], s=18,
                   color="#c55a11" if row["outcome"] == family["primary_outcome"] else "#1f4e79")
        for name, q, o in points:
            ax.annotate(name, (q, o), fontsize=7, xytext=(2, 2), textcoords="offset points")
        rho = row["spearman"]
        title = "undefined" if rho is None else f"rho = {rho:.3f}"
        if row["low"] is not None:
            title += f" [{row['low']:.2f}, {row['high']:.2f}]"
        ax.set_title(f"{OUTCOME_LABELS[row['outcome']]}\n{title}", fontsize=9)
        ax.set_xlabel(f"ground truth: {family['quality']}", fontsize=8)
        ax.grid(alpha=0.3)
    return png_base64(fig)


def _correlation_rows(family: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per outcome with a cell per stratum."""
    by_key = {(t["outcome"], t["stratum"]): t for t in family["tracking"]}
    strata = [s for s in ("all", "genuine", "impostor") if s not in family["empty_strata"]]
    return [{"outcome": outcome, "label": OUTCOME_LABELS[outcome],
             "primary": outcome == family["primary_outcome"],
             "cells": [by_key[(outcome, s)] for s in strata]}
            for outcome in OUTCOME_LABELS if (outcome, strata[0]) in by_key]


def _ranking_rows(family: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Methods by ground-truth quality (rank 1 = best) beside their rank by the primary outcome."""
    row = next(t for t in family["tracking"]
               if t["stratum"] == "all" and t["outcome"] == family["primary_outcome"])
    known = [(m, q, o) for m, q, o in zip(row["methods"], row["mean_quality"],
                                           row["mean_outcome"], strict=True)
             if q is not None and o is not None]
    if not known:
        return []
    rank_q = rankdata([-q for _, q, _ in known])
    rank_o = rankdata([-o for _, _, o in known])
    rows = [{"method": m, "quality": q, "outcome": o, "rank_quality": float(rq),
             "rank_outcome": float(ro)}
            for (m, q, o), rq, ro in zip(known, rank_q, rank_o, strict=True)]
    return sorted(rows, key=lambda r: (r["rank_quality"], r["method"]))


def _artefact_rows(artefacts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per (method, fill) with the shape controls of both verdicts."""
    rows = []
    for cell in sorted(artefacts["cells"], key=lambda c: (c["method"], c["fill"])):
        shape = {s["verdict"]: s for s in cell["shape"]}
        rows.append({"method": cell["method"], "fill": cell["fill"], "n": cell["n_pairs"],
                     "fr": cell["fr"], "simple": shape["simple"], "theorem": shape["theorem"],
                     "margin": cell["mean_margin_rad"],
                     "margin_control": cell["mean_margin_control_rad"],
                     "control_trivial": cell["n_control_trivial"]})
    return rows


def _metric_family(section: Mapping[str, Any], family: Mapping[str, Any]) -> dict[str, Any]:
    """One family's table: a row per measure, a cell per stratum (the family's quality), with
    the paired difference to the reference metric beside each cell."""
    name, quality = family["family"], family["quality"]
    rows = [r for r in section["rows"] if r["family"] == name and r["quality"] == quality]
    strata = [s for s in ("all", "genuine", "impostor") if any(r["stratum"] == s for r in rows)]
    versus = {(c["measure"], c["stratum"]): c for c in section["comparisons"]
              if c["family"] == name}
    table = []
    for measure in dict.fromkeys(r["measure"] for r in rows):
        mine = {r["stratum"]: r for r in rows if r["measure"] == measure}
        first = next(iter(mine.values()))
        table.append({"measure": measure, "source": first["source"],
                      "orientation": first["orientation"],
                      "reference": measure == section["reference"],
                      "cells": [{"row": mine[s], "versus": versus.get((measure, s))}
                                for s in strata if s in mine]})
    return {"family": name, "quality": quality, "n_methods": len(family["methods"]),
            "alpha": family["alpha"], "n_resamples": family["n_resamples"], "strata": strata,
            "rows": table}


def _metric_validity(section: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The ``metric_validity`` section of ``validity.json`` for the template (None: not
    declared)."""
    if section is None:
        return None
    return {"n_pairs": section["n_pairs"], "metrics": section["metrics"],
            "reference": section["reference"], "settings": section["settings"],
            "mismatches": section["map_mismatches"], "empty": section["empty"],
            "families": [_metric_family(section, f) for f in section["families"]]}


def validity_context(run_dir: Path) -> dict[str, Any] | None:
    """Template variables of the validity section, or None when the run has neither
    ``validity.json`` nor ``artefacts.json``."""
    validity_path, artefacts_path = run_dir / "validity.json", run_dir / "artefacts.json"
    if not validity_path.exists() and not artefacts_path.exists():
        return None
    document = read_json(validity_path) if validity_path.exists() else None
    families: Sequence[Mapping[str, Any]] = [] if document is None else document["families"]
    artefacts = read_json(artefacts_path) if artefacts_path.exists() else None
    return {
        "families": [{"claim_id": f["claim_id"], "quality": f["quality"],
                      "primary_outcome": f["primary_outcome"],
                      "primary_label": OUTCOME_LABELS[f["primary_outcome"]],
                      "n_methods": len(f["methods"]), "alpha": f["alpha"],
                      "n_resamples": f["n_resamples"],
                      "png": _dose_response_png(f), "correlations": _correlation_rows(f),
                      "strata": [s for s in ("all", "genuine", "impostor")
                                 if s not in f["empty_strata"]],
                      "ranking": _ranking_rows(f)} for f in families],
        "metric_validity": None if document is None else _metric_validity(
            document["metric_validity"]),
        "artefacts": None if artefacts is None else {
            "n_pairs": artefacts["n_pairs"], "max_overlap_frac": artefacts["max_overlap_frac"],
            "rows": _artefact_rows(artefacts)},
    }
