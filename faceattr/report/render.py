"""The HTML report, rendered only from a run's artefacts (PITFALLS.md #18).

Reads ``summary.json``, ``claims.json``, ``records.jsonl``, ``manifest.json`` and
``provenance.json``; prints the SHA-256 of each, so every number can be traced to a file.
Never imports models, attribution or falsification.
"""

from __future__ import annotations

import base64
import hashlib
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from faceattr.integrity import record_artefacts, recorded_artefacts, verify_artefacts
from faceattr.io import atomic_write_text, read_json, read_jsonl
from faceattr.report.figures import png_base64 as _png
from faceattr.report.strata import strata_context
from faceattr.report.validity import validity_context
from faceattr.stats.proportions import proportion_interval

__all__ = ["ARTEFACTS", "render_report"]

ARTEFACTS = ("protocol.json", "manifest.json", "records.jsonl", "summary.json",
             "provenance.json", "claims.json")


def _forest_plot_png(methods: Sequence[dict[str, Any]]) -> str:
    """FR per method with intervals, ITT and valid-only side by side; base64 PNG."""
    fig, ax = plt.subplots(figsize=(6.5, 0.55 * len(methods) + 1.2), dpi=100)
    labelled: set[str] = set()
    for row, entry in enumerate(methods):
        for offset, key, colour in ((-0.12, "fr_itt", "#1f4e79"), (0.12, "fr_valid", "#c55a11")):
            interval = entry[key]
            if interval is None:
                continue
            ax.errorbar(interval["estimate"], row + offset, fmt="o", color=colour,
                        xerr=[[interval["estimate"] - interval["low"]],
                              [interval["high"] - interval["estimate"]]], capsize=3,
                        label=None if key in labelled else
                        {"fr_itt": "intention-to-treat", "fr_valid": "valid pairs only"}[key])
            labelled.add(key)
    ax.set_yticks(range(len(methods)), [m["method"] for m in methods])
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("falsification rate (fraction of pairs)")
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def _distributions_png(records: Sequence[dict[str, Any]], methods: Sequence[str]) -> str:
    """Per-pair margin and pairwise violation fraction per method (valid pairs)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(methods) + 1.5), dpi=100)
    for ax, key, label in ((axes[0], "margin_rad", "margin d_high - d_low (rad)"),
                           (axes[1], "pairwise_violation_frac",
                            "pairwise violation fraction")):
        data = [[r[key] for r in records if r["method"] == m and r[key] is not None]
                for m in methods]
        shown = [d if d else [float("nan")] for d in data]
        ax.boxplot(shown, orientation="horizontal", tick_labels=list(methods), showfliers=True)
        ax.set_xlabel(label)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _repaired_rows(randomisation: dict[str, Any] | None) -> dict[str, Any] | None:
    """The sMPRT / eMPRT table (Hedstrom et al. 2023) of ``randomisation.json``: per method the
    classic full-cascade Spearman beside the smoothed one and the complexity ratio."""
    if randomisation is None or randomisation.get("repaired") is None:
        return None
    repaired = randomisation["repaired"]
    classic = {m["method_id"]: m for m in randomisation["methods"]}
    rows = []
    for entry in repaired["methods"]:
        row: dict[str, Any] = {"method": entry["method_id"], "error": entry["error"]}
        if entry["error"] is None:
            curves = classic[entry["method_id"]]
            ratios = [r for r in entry["complexity_ratio"] if r is not None]
            row |= {
                "classic": None if curves["error"] is not None else
                curves["cascading"][-1]["similarity"]["spearman_abs"]["mean"],
                "smprt": entry["smprt"][-1]["mean"],
                "smprt_steps": [s["mean"] for s in entry["smprt"]],
                "emprt": sum(ratios) / len(ratios) if ratios else None,
                "n_undefined": len(entry["complexity_ratio"]) - len(ratios)}
        rows.append(row)
    return {"settings": repaired["settings"], "rows": rows}


def _randomisation_png(randomisation: dict[str, Any]) -> str:
    """Similarity (Spearman of |maps|) vs layers randomised, cascading, per method."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for curves in randomisation["methods"]:
        steps = curves["cascading"]
        if not steps:
            continue
        xs = [0] + [s["n_layers_randomised"] for s in steps]
        ys = [1.0] + [s["similarity"]["spearman_abs"]["mean"] for s in steps]
        ax.plot(xs, ys, marker="o", label=curves["method_id"])
    ax.set_xlabel("layers randomised (cascading, top layer first)")
    ax.set_ylabel("Spearman rank correlation of |maps|")
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _png(fig)


def _roc_png(records: Sequence[dict[str, Any]]) -> str:
    """The model gate's ROC from the clean scores of the run's pairs (one per pair)."""
    seen: dict[str, tuple[float, bool]] = {}
    for r in records:
        if r["score_clean"] is not None:
            seen.setdefault(r["pair_id"], (r["score_clean"], r["is_genuine"]))
    scores = np.array([s for s, _ in seen.values()])
    genuine = np.array([g for _, g in seen.values()])
    thresholds = np.concatenate([[np.inf], np.sort(np.unique(scores))[::-1]])
    tar = [(scores[genuine] >= t).mean() if genuine.any() else 0.0 for t in thresholds]
    far = [(scores[~genuine] >= t).mean() if (~genuine).any() else 0.0 for t in thresholds]
    fig, ax = plt.subplots(figsize=(4.5, 4), dpi=100)
    ax.plot(far, tar, drawstyle="steps-post")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.5, ls="--")
    ax.set_xlabel("false-accept rate")
    ax.set_ylabel("true-accept rate")
    ax.set_title(f"{genuine.sum()} genuine, {(~genuine).sum()} impostor pairs", fontsize=9)
    return _png(fig)


def _map_histograms_png(records: Sequence[dict[str, Any]], methods: Sequence[str]) -> str:
    """Distributions of normalised entropy and Gini of the maps, per method."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(methods) + 1.5), dpi=100)
    for ax, key, label in ((axes[0], "map_entropy_norm", "normalised entropy of |map|"),
                           (axes[1], "map_gini", "Gini index of |map|")):
        data = [[r[key] for r in records if r["method"] == m and r[key] is not None] or
                [float("nan")] for m in methods]
        ax.boxplot(data, orientation="horizontal", tick_labels=list(methods))
        ax.set_xlabel(label)
        ax.set_xlim(-0.02, 1.02)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _k_sufficiency_png(records: Sequence[dict[str, Any]], methods: Sequence[str]) -> str:
    """How the mean high-region drift settles as K grows: median over pairs of
    ``|mean of the first k draws - mean of all K|``, per method."""
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=100)
    for method in methods:
        rows = [np.asarray(r["drift_high_rad"]) for r in records
                if r["method"] == method and r["status"] == "valid"]
        if not rows:
            continue
        draws = np.stack(rows)
        ks = np.arange(1, draws.shape[1] + 1)
        running = np.cumsum(draws, axis=1) / ks
        ax.plot(ks, np.median(np.abs(running - running[:, -1:]), axis=0), label=method)
    ax.set_xlabel("K (draws per region)")
    ax.set_ylabel("median |running mean - final mean| (rad)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _png(fig)


def _map_statistics(records: Sequence[dict[str, Any]], methods: Sequence[str]
                    ) -> list[dict[str, Any]]:
    rows = []
    for method in methods:
        mine = [r for r in records if r["method"] == method and r["map_range"] is not None]
        deltas = [abs(r["convergence_delta"]) for r in records
                  if r["method"] == method and r["convergence_delta"] is not None]
        rows.append({
            "method": method, "n": len(mine),
            "entropy": statistics.fmean(r["map_entropy_norm"] for r in mine) if mine else None,
            "gini": statistics.fmean(r["map_gini"] for r in mine) if mine else None,
            "zero_range": sum(r["map_range"] == 0 for r in mine),
            "residual_median": statistics.median(deltas) if deltas else None,
            "residual_max": max(deltas) if deltas else None})
    return rows


def _trivial_maps(records: Sequence[dict[str, Any]], protocol: dict[str, Any], *,
                  alpha: float) -> list[dict[str, Any]]:
    """Per method: the share of trivial (uniform or unrankable) maps with its Wilson interval,
    and the layer a layer method explains (the seed's "Grad-CAM is 84% uniform" headline was
    a share of this kind; PITFALLS.md #1)."""
    layers = {m["id"]: m["params"].get("layer") for m in protocol["methods"]}
    rows = []
    for method in sorted({r["method"] for r in records}):
        mine = [r for r in records if r["method"] == method]
        n_trivial = sum(r["status"] == "trivial" for r in mine)
        interval = proportion_interval(n_trivial, len(mine), method="wilson", alpha=alpha)
        rows.append({"method": method, "layer": layers.get(method), "n": len(mine),
                     "n_trivial": n_trivial, "share": interval})
    return rows


def _ledger(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Status counts per (model, method) from the raw records."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for row in records:
        key = (row["model"], row["method"])
        bucket = counts.setdefault(key, {})
        bucket[row["status"]] = bucket.get(row["status"], 0) + 1
    return [{"model": m, "method": k, "statuses": sorted(v.items())}
            for (m, k), v in sorted(counts.items())]


def _environment() -> Environment:
    return Environment(loader=PackageLoader("faceattr", "report/templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _ledger_rows(run_dir: Path) -> list[tuple[str, str]]:
    """The artefacts and the SHA-256 recorded when each was written (verified before)."""
    return [(name, str(entry["sha256"]))
            for name, entry in sorted(recorded_artefacts(run_dir).items())
            if name != "report.html"]


def _context_common(run_dir: Path) -> dict[str, Any]:
    lineage_path = run_dir / "lineage.json"
    return {"provenance": {k: v for k, v in read_json(run_dir / "provenance.json").items()
                           if k != "artefacts"},
            "artefacts": _ledger_rows(run_dir),
            "lineage": read_json(lineage_path) if lineage_path.exists() else None,
            "run_name": run_dir.name}


def _write(run_dir: Path, html: str) -> Path:
    out = run_dir / "report.html"
    atomic_write_text(out, html)
    record_artefacts(run_dir, "report.html")
    return out


def _render_gate_failed(run_dir: Path) -> Path:
    """The report of a run stopped by its model gate: the banner, the gate, the claims (not
    evaluated) and the provenance."""
    html = _environment().get_template("gate_failed.html.j2").render(
        gate=read_json(run_dir / "gate.json"), claims=read_json(run_dir / "claims.json"),
        **_context_common(run_dir))
    return _write(run_dir, html)


def render_report(run_dir: Path) -> Path:
    """Render ``report.html`` in ``run_dir`` from its artefacts and return its path.

    Every artefact is first verified against the SHA-256 recorded in ``provenance.json`` when
    it was written (an edited file is a one-line ``IntegrityError``); the report prints those
    recorded hashes.
    """
    verify_artefacts(run_dir, skip=("report.html",))
    if (run_dir / "gate.json").exists() and not (run_dir / "summary.json").exists():
        return _render_gate_failed(run_dir)
    missing = [name for name in ARTEFACTS if not (run_dir / name).exists()]
    if missing:
        raise ValueError(f"{run_dir}: cannot render a report without {', '.join(missing)}; "
                         "run the protocol and the validation suite first")
    summary = read_json(run_dir / "summary.json")
    claims = read_json(run_dir / "claims.json")
    records = read_jsonl(run_dir / "records.jsonl")
    methods = [summary["methods"][k] for k in sorted(summary["methods"])]
    method_ids = [m["method"] for m in methods]
    randomisation_path = run_dir / "randomisation.json"
    randomisation = read_json(randomisation_path) if randomisation_path.exists() else None
    gallery = []
    if (run_dir / "gallery.json").exists():
        for entry in read_json(run_dir / "gallery.json")["entries"]:
            if "file" in entry:
                data = (run_dir / entry["file"]).read_bytes()
                if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                    raise ValueError(f"{run_dir / entry['file']}: hash differs from gallery.json")
                gallery.append(entry | {"png": base64.b64encode(data).decode("ascii")})
            else:
                gallery.append(entry | {"png": None})
    trend_path = run_dir / "completeness_trend.json"
    trend = read_json(trend_path) if trend_path.exists() else None
    html = _environment().get_template("report.html.j2").render(
        summary=summary, claims=claims, methods=methods, ledger=_ledger(records),
        forest_png=_forest_plot_png(methods),
        distributions_png=_distributions_png(records, method_ids),
        roc_png=_roc_png(records), map_histograms_png=_map_histograms_png(records, method_ids),
        k_sufficiency_png=_k_sufficiency_png(records, method_ids),
        map_statistics=_map_statistics(records, method_ids),
        trivial_maps=_trivial_maps(records, read_json(run_dir / "protocol.json"),
                                   alpha=methods[0]["fr_itt"]["alpha"]),
        randomisation_png=None if randomisation is None else _randomisation_png(randomisation),
        repaired_mprt=_repaired_rows(randomisation),
        partner_sensitivity=read_json(run_dir / "partner_sensitivity.json")
        if (run_dir / "partner_sensitivity.json").exists() else None,
        completeness_trend=trend, gallery=gallery, validity=validity_context(run_dir),
        strata=strata_context(run_dir),
        comparison_text=(run_dir / "comparison.txt").read_text(encoding="utf-8")
        if (run_dir / "comparison.txt").exists() else None,
        **_context_common(run_dir))
    return _write(run_dir, html)
