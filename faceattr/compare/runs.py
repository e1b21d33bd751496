"""Compare two faceattr runs: context first, then a paired comparison joined on pair_id.

Order of the output (issue #9): what differs in protocol, manifest and package versions; then,
per (model, method), the join on ``pair_id``, the pairs whose verdict flipped, per-pair metric
deltas, the exact McNemar test, the paired risk difference ``B - A`` with Newcombe's interval,
and the paired TOST at the declared margin. A is the baseline, B the candidate.

Cross-machine float noise (:mod:`faceattr.stats.tolerance`): a shared pair whose primary
verdict lies within the float tolerance of its decision boundary in *both* runs is a boundary
pair. Its verdict is decided by the last float bits, so it is counted and listed (a flip of it
is a boundary flip) but left out of the tests, whichever way it went: two runs that differ only
in the last bits of their embeddings are never a regression.

Exit codes (:mod:`faceattr.errors`): ``EXIT_INPUT`` (2) when the runs cannot be compared (the
same ``pair_id`` names different images, an internally inconsistent run folder, no shared
pairs, different estimands); ``EXIT_FAILED`` (1) on a regression (a difference shown: the exact
McNemar test rejects, or the FR difference interval lies beyond the margin);
``EXIT_INCONCLUSIVE`` (4) when some (model, method) shows neither equivalence nor a difference
(too few pairs; the reasons give the pairs needed); ``EXIT_OK`` (0) when every compared
(model, method) is equivalent within the margin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from faceattr.compare.legacy import FigureEntry
from faceattr.compare.planning import plan_equivalence
from faceattr.compare.result import (
    ComparisonResult,
    ContextDiff,
    Figure,
    Finding,
    MetricDelta,
    PairChange,
    PairedComparison,
    difference_shown,
)
from faceattr.errors import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_INPUT, EXIT_OK, InputError
from faceattr.integrity import verify_artefacts
from faceattr.io import dumps_strict, read_json
from faceattr.records import PairRecord
from faceattr.runfolder.folder import RunFolder, load_records, load_summary
from faceattr.runfolder.summary import RunSummary
from faceattr.stats import (
    mean_interval,
    paired_mcnemar,
    paired_risk_difference,
    tost_paired,
)
from faceattr.stats.tolerance import RecordTolerance, TheoremSettings, record_tolerance

__all__ = ["LoadedRun", "compare_pair_sets", "compare_runs", "context_diffs", "load_run",
           "run_figures"]

_N_SHOWN = 5
_METRICS: dict[str, Callable[[PairRecord], float | None]] = {
    "margin_rad": lambda r: r.margin_rad,
    "pairwise_violation_frac": lambda r: r.pairwise_violation_frac,
    "d_high_rad": lambda r: r.d_high_rad,
    "d_low_rad": lambda r: r.d_low_rad,
}


@dataclass(frozen=True, slots=True, eq=False)
class LoadedRun:
    """A complete faceattr run folder, read and validated."""

    path: str
    protocol: Mapping[str, Any]
    manifest: Mapping[str, Any]
    provenance: Mapping[str, Any]
    summary: RunSummary
    records: tuple[PairRecord, ...]
    groups: Mapping[tuple[str, str], Mapping[str, PairRecord]] = field(repr=False)
    theorem: TheoremSettings | None = None


def _read(path: Path, what: str) -> Any:
    if not path.exists():
        raise InputError(f"{path.parent}: not a complete faceattr run folder (no {path.name}, "
                         f"the {what})")
    try:
        return read_json(path)
    except InputError:
        raise
    except ValueError as exc:  # corrupt JSON: the user's file, one line
        raise InputError(str(exc)) from None


def load_run(root: Path) -> LoadedRun:
    """Read a run folder's artefacts; any missing or malformed one is a one-line
    :class:`~faceattr.errors.InputError`."""
    folder = RunFolder(root)
    if not folder.summary.exists():
        raise InputError(f"{root}: not a complete faceattr run folder (no summary.json)")
    verify_artefacts(root, skip=("report.html",))  # an edited artefact is never compared
    protocol = _read(folder.protocol, "protocol")
    manifest = _read(folder.manifest, "pair manifest")
    provenance = _read(folder.provenance, "provenance")
    try:
        summary = load_summary(folder)
    except InputError:
        raise  # already one line naming the file (e.g. an artefact edited after the run)
    except (KeyError, TypeError, ValueError) as exc:
        message = str(exc) if isinstance(exc, ValueError) else repr(exc)
        if str(folder.summary) not in message:
            message = f"{folder.summary}: not a faceattr run summary ({message})"
        raise InputError(message) from None
    if not folder.records.exists():
        raise InputError(f"{root}: not a complete faceattr run folder (no records.jsonl)")
    try:
        records = tuple(load_records(folder))
    except InputError:
        raise
    except (TypeError, ValueError) as exc:
        message = str(exc)
        if str(folder.records) not in message:
            message = f"{folder.records}: {message}"
        raise InputError(message) from None
    groups: dict[tuple[str, str], dict[str, PairRecord]] = {}
    for r in records:
        group = groups.setdefault((r.model, r.method), {})
        if r.pair_id in group:
            raise InputError(f"{folder.records}: duplicate record for ({r.model}, {r.method}, "
                             f"{r.pair_id})")
        group[r.pair_id] = r
    for name, part in (("protocol.json", protocol), ("manifest.json", manifest),
                       ("provenance.json", provenance)):
        if not isinstance(part, dict):
            raise InputError(f"{root / name}: expected a JSON object")
    if "pairs" not in manifest or not isinstance(manifest["pairs"], list):
        raise InputError(f"{folder.manifest}: no 'pairs' list")
    try:
        theorem = TheoremSettings.from_protocol(protocol)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{folder.protocol}: unreadable Theorem 3.5 settings ({exc})") from None
    return LoadedRun(path=str(root), protocol=protocol, manifest=manifest,
                     provenance=provenance, summary=summary, records=records, groups=groups,
                     theorem=theorem)


def _flatten(node: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(node, dict):
        out: dict[str, str] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(node, list) and node and all(isinstance(v, dict) for v in node):
        out = {}
        for i, value in enumerate(node):
            out.update(_flatten(value, f"{prefix}[{i}]"))
        return out
    return {prefix: dumps_strict(node)}


def _or_absent(flat: Mapping[str, str], key: str) -> str:
    if key in flat:
        return flat[key]
    return "(absent)"  # a key present in one run only is itself the difference


def _group(run: LoadedRun, key: tuple[str, str]) -> Mapping[str, PairRecord]:
    if key in run.groups:
        return run.groups[key]
    return {}  # a summary method without records: reported as an inconsistency


def _dict_diffs(category: Literal["protocol", "provenance"], a: Any,
                b: Any) -> list[ContextDiff]:
    fa, fb = _flatten(a), _flatten(b)
    out = []
    for key in sorted(set(fa) | set(fb)):
        va, vb = _or_absent(fa, key), _or_absent(fb, key)
        if va != vb:
            out.append(ContextDiff(category=category, key=key, a=va, b=vb))
    return out


def _manifest_rows(run: LoadedRun) -> dict[str, str]:
    rows: dict[str, str] = {}
    for row in run.manifest["pairs"]:
        if not isinstance(row, dict) or "pair_id" not in row:
            raise InputError(f"{run.path}/manifest.json: a pair row without pair_id")
        rows[str(row["pair_id"])] = dumps_strict({k: v for k, v in row.items()
                                                  if k != "pair_id"})
    return rows


def context_diffs(a: LoadedRun, b: LoadedRun) -> tuple[list[ContextDiff], list[Finding]]:
    """Differences in protocol, manifest and provenance; conflicting pairs block comparison.

    A pair id present in both manifests with different images, identities, label or image
    SHA-256 means the two runs did not test the same pair: an ``incomparable`` finding.
    """
    diffs = _dict_diffs("protocol", a.protocol, b.protocol)
    findings: list[Finding] = []
    ma, mb = _manifest_rows(a), _manifest_rows(b)
    only_a, only_b = sorted(set(ma) - set(mb)), sorted(set(mb) - set(ma))
    conflicts = sorted(p for p in set(ma) & set(mb) if ma[p] != mb[p])
    if a.summary.manifest_sha256 != b.summary.manifest_sha256:
        diffs.append(ContextDiff(category="manifest", key="manifest_sha256",
                                 a=a.summary.manifest_sha256, b=b.summary.manifest_sha256))
    for key, ids in (("pairs only in A", only_a), ("pairs only in B", only_b)):
        if ids:
            diffs.append(ContextDiff(category="manifest", key=key, a=str(len(ids)),
                                     b=f"e.g. {ids[:_N_SHOWN]}"))
    if conflicts:
        findings.append(Finding(
            kind="manifest_conflict", severity="incomparable", subject="manifest",
            message=f"{len(conflicts)} pair id(s) name different images, identities or image "
                    f"hashes in A and B (e.g. {conflicts[:_N_SHOWN]}): not the same pairs"))
    diffs += _dict_diffs("provenance", a.provenance, b.provenance)
    return diffs, findings


def _consistency(run: LoadedRun, label: str) -> list[Finding]:
    """The summary must agree with the records it was built from."""
    out = []
    for method_id, ms in sorted(run.summary.methods.items()):
        key = (ms.model, ms.method)
        group = _group(run, key)
        n_falsified = sum(r.falsified for r in group.values())
        if len(group) != ms.n_pairs or n_falsified != ms.fr_itt.count:
            out.append(Finding(
                kind="inconsistent_run", severity="incomparable", subject=f"{label} {method_id}",
                message=f"summary.json says {ms.fr_itt.count}/{ms.n_pairs} falsified but "
                        f"records.jsonl has {n_falsified}/{len(group)}: the run folder was "
                        "edited or is from two runs"))
    return out


def _estimand(group: Mapping[str, PairRecord]) -> str:
    rules = sorted({r.verdict_rule for r in group.values()})
    return f"share_falsified_itt[verdict={'+'.join(rules)}]"


def _metric_deltas(shared: Sequence[str], ga: Mapping[str, PairRecord],
                   gb: Mapping[str, PairRecord], tol_a: Mapping[str, RecordTolerance],
                   tol_b: Mapping[str, RecordTolerance],
                   alpha: float) -> tuple[MetricDelta, ...]:
    out = []
    for name, get in _METRICS.items():
        deltas: list[tuple[str, float]] = []
        beyond = 0
        for pid in shared:
            va, vb = get(ga[pid]), get(gb[pid])
            if va is not None and vb is not None:
                deltas.append((pid, vb - va))
                # each run's tolerance bounds the same cross-machine difference: the larger
                tol = max(tol_a[pid].metric(name) or 0.0, tol_b[pid].metric(name) or 0.0)
                beyond += abs(vb - va) > tol
        if not deltas:
            out.append(MetricDelta(metric=name, n=0, mean_delta=None, max_abs_delta=None,
                                   max_abs_pair_id=None, interval=None, n_beyond_tolerance=0))
            continue
        values = [d for _, d in deltas]
        worst = max(deltas, key=lambda item: (abs(item[1]), item[0]))
        interval = (mean_interval(values, method="t", alpha=alpha, rng=None, n_resamples=None)
                    if len(values) >= 2 else None)
        out.append(MetricDelta(metric=name, n=len(values), mean_delta=math.fsum(values) /
                               len(values), max_abs_delta=abs(worst[1]),
                               max_abs_pair_id=worst[0], interval=interval,
                               n_beyond_tolerance=beyond))
    return tuple(out)


def _incomparable(model: str, method: str, ea: str, eb: str, n_shared: int, n_a: int, n_b: int,
                  reason: str, *, n_boundary: int = 0,
                  changes: tuple[PairChange, ...] = ()) -> PairedComparison:
    return PairedComparison(model=model, method=method, estimand_a=ea, estimand_b=eb,
                            n_shared=n_shared, n_only_a=n_a, n_only_b=n_b,
                            n_boundary=n_boundary, changes=changes, mcnemar=None,
                            risk_difference=None, equivalence=None, plan=None,
                            metric_deltas=(), verdict="incomparable", reason=reason)


def _boundary_pair(ra: PairRecord, rb: PairRecord, ta: RecordTolerance,
                   tb: RecordTolerance) -> bool:
    """Both runs' primary verdicts lie within the float tolerance of the decision boundary."""
    return ra.status == rb.status == "valid" and ta.boundary(ra.verdict_rule) and \
        tb.boundary(rb.verdict_rule)


def compare_pair_sets(model: str, method: str, ga: Mapping[str, PairRecord],
                      gb: Mapping[str, PairRecord], *, margin: float, alpha: float,
                      theorem_a: TheoremSettings | None = None,
                      theorem_b: TheoremSettings | None = None) -> PairedComparison:
    """Paired comparison of one (model, method) on the pair ids both runs share.

    Boundary pairs (the primary verdict within the float tolerance of its decision boundary
    in both runs, :mod:`faceattr.stats.tolerance`; the Theorem 3.5 rule needs each run's
    ``theorem_*`` settings, else its verdicts count as determined) are listed and left out of
    the tests. On the other shared pairs: ``paired_mcnemar`` (McNemar 1947),
    ``paired_risk_difference`` (Newcombe 1998) and ``tost_paired`` (Schuirmann 1987; Tango
    1998) from :mod:`faceattr.stats`, arm a = B. The verdict is ``regression`` when a
    difference is shown (McNemar rejects at ``alpha``, or the difference interval lies beyond
    ``+-margin``), ``equivalent`` when the TOST shows ``|FR_B - FR_A| < margin``, otherwise
    ``inconclusive`` with the pairs needed (:func:`faceattr.compare.planning.plan_equivalence`).
    Non-significance alone is never read as equivalence (PITFALLS.md #11).
    """
    shared = sorted(set(ga) & set(gb))
    n_a, n_b = len(set(ga) - set(gb)), len(set(gb) - set(ga))
    ea, eb = _estimand(ga), _estimand(gb)
    if ea != eb:
        return _incomparable(model, method, ea, eb, len(shared), n_a, n_b,
                             f"different estimands: A {ea}, B {eb}")
    if not shared:
        return _incomparable(model, method, ea, eb, 0, n_a, n_b,
                             "no shared pair ids: nothing to pair")
    tol_a = {pid: record_tolerance(ga[pid], theorem_a) for pid in shared}
    tol_b = {pid: record_tolerance(gb[pid], theorem_b) for pid in shared}
    boundary = {pid for pid in shared
                if _boundary_pair(ga[pid], gb[pid], tol_a[pid], tol_b[pid])}
    changes = tuple(
        PairChange(pair_id=pid, status_a=ga[pid].status, status_b=gb[pid].status,
                   falsified_a=ga[pid].falsified, falsified_b=gb[pid].falsified,
                   margin_rad_a=ga[pid].margin_rad, margin_rad_b=gb[pid].margin_rad,
                   boundary=pid in boundary)
        for pid in shared
        if ga[pid].falsified != gb[pid].falsified or ga[pid].status != gb[pid].status)
    n_boundary_flips = sum(c.verdict_flip and c.boundary for c in changes)
    tested = [pid for pid in shared if pid not in boundary]
    if not tested:
        return _incomparable(model, method, ea, eb, len(shared), n_a, n_b,
                             f"all {len(shared)} shared pairs are boundary pairs (verdict within "
                             "the float tolerance of its decision boundary): nothing to test",
                             n_boundary=len(boundary), changes=changes)
    fa = {pid: ga[pid].falsified for pid in tested}
    fb = {pid: gb[pid].falsified for pid in tested}
    mcnemar = paired_mcnemar(fb, fa, alpha=alpha)
    rd = paired_risk_difference(fb, fa, alpha=alpha)
    eq = tost_paired(fb, fa, margin=margin, alpha=alpha)
    significant = bool(mcnemar.test.reject)
    if difference_shown(mcnemar, rd, margin):
        verdict: Literal["equivalent", "regression", "inconclusive"] = "regression"
    else:
        verdict = "equivalent" if eq.equivalent else "inconclusive"
    plan = plan_equivalence(mcnemar.table, margin=margin, alpha=alpha) \
        if verdict == "inconclusive" else None
    n_flips = sum(c.verdict_flip for c in changes)
    parts = [f"FR B-A {rd.estimate:+.4f} on {len(tested)} tested shared pairs",
             f"{n_flips - n_boundary_flips} verdict flip(s)"
             + (f" (+{n_boundary_flips} on boundary pairs, not tested)"
                if n_boundary_flips else ""),
             f"McNemar p = {mcnemar.test.p_value:.3g}"
             f"{' (significant)' if significant else ''}",
             f"TOST p = {eq.p_value:.3g}: "
             f"{'equivalent' if eq.equivalent else 'not shown equivalent'} within "
             f"+-{margin:g}"]
    if verdict == "regression" and not significant:
        parts.append(f"difference interval [{rd.low:+.4f}, {rd.high:+.4f}] beyond the margin")
    if plan is not None:
        parts.append("no sample size shows equivalence (observed difference at or beyond the "
                     "margin)" if plan.n_needed is None else
                     f"about {plan.n_needed} shared pairs needed to show equivalence "
                     f"({plan.power:.0%} power; {plan.assumption})")
    return PairedComparison(model=model, method=method, estimand_a=ea, estimand_b=eb,
                            n_shared=len(shared), n_only_a=n_a, n_only_b=n_b,
                            n_boundary=len(boundary), changes=changes, mcnemar=mcnemar,
                            risk_difference=rd, equivalence=eq, plan=plan,
                            metric_deltas=_metric_deltas(shared, ga, gb, tol_a, tol_b, alpha),
                            verdict=verdict, reason="; ".join(parts))


def _exit(blocking: Sequence[Finding], paired: Sequence[PairedComparison],
          margin: float) -> tuple[int, tuple[str, ...]]:
    if blocking:
        return EXIT_INPUT, tuple(f"cannot compare: {f.subject}: {f.message}" for f in blocking)
    regressions = [p for p in paired if p.verdict == "regression"]
    if regressions:
        return EXIT_FAILED, tuple(f"regression: {p.model}/{p.method}: {p.reason}"
                                  for p in regressions)
    compared = [p for p in paired if p.verdict in ("equivalent", "inconclusive")]
    stuck = [p for p in paired if p.verdict == "incomparable"]
    if stuck or not compared:
        reasons = tuple(f"cannot compare: {p.model}/{p.method}: {p.reason}" for p in stuck)
        return EXIT_INPUT, reasons or ("cannot compare: no (model, method) is present in both "
                                       "runs",)
    open_ = [p for p in paired if p.verdict == "inconclusive"]
    if open_:
        return EXIT_INCONCLUSIVE, tuple(
            f"inconclusive: {p.model}/{p.method}: neither equivalence within +-{margin:g} nor "
            f"a difference shown: {p.reason}" for p in open_)
    return EXIT_OK, (f"equivalent: all {len(compared)} compared (model, method) are equivalent "
                     f"within +-{margin:g} (paired TOST) with no significant difference",)


def compare_runs(a: LoadedRun, b: LoadedRun, *, margin: float, alpha: float) -> ComparisonResult:
    """Compare two loaded faceattr runs (A baseline, B candidate); see the module docstring."""
    diffs, findings = context_diffs(a, b)
    findings += _consistency(a, "A") + _consistency(b, "B")
    paired = []
    for key in sorted(set(a.groups) | set(b.groups)):
        if key not in a.groups or key not in b.groups:
            side = "A" if key in a.groups else "B"
            findings.append(Finding(kind=f"only_in_{side.lower()}", severity="note",
                                    subject=f"{key[0]}/{key[1]}",
                                    message=f"present in {side} only: not compared"))
            continue
        pc = compare_pair_sets(key[0], key[1], a.groups[key], b.groups[key], margin=margin,
                               alpha=alpha, theorem_a=a.theorem, theorem_b=b.theorem)
        paired.append(pc)
        if pc.verdict != "equivalent":
            findings.append(Finding(kind=pc.verdict, severity=pc.verdict,
                                    subject=f"{pc.model}/{pc.method}", message=pc.reason))
    blocking = [f for f in findings if f.severity == "incomparable"
                and f.kind in ("manifest_conflict", "inconsistent_run")]
    code, reasons = _exit(blocking, paired, margin)
    return ComparisonResult(path_a=a.path, path_b=b.path, kind_a="faceattr-run",
                            kind_b="faceattr-run", margin=margin, alpha=alpha, exit_code=code,
                            exit_reasons=reasons, context=tuple(diffs),
                            findings=tuple(findings), figures=(), paired=tuple(paired))


def run_figures(run: LoadedRun, label: Literal["A", "B"]) -> tuple[FigureEntry, ...]:
    """A run's figures for a summary-level comparison with a legacy file.

    Per (model, method): the primary share of falsified pairs (ITT), the valid-only share,
    and the mean of per-pair comparison fractions over valid pairs (t interval), so that a
    legacy figure meets the faceattr figure of the same estimand where one exists.
    """
    out: list[FigureEntry] = []
    for _, ms in sorted(run.summary.methods.items()):
        itt = ms.fr_itt
        shares = [("share_falsified_itt", itt)]
        if ms.fr_valid is not None:
            shares.append(("share_falsified_valid", ms.fr_valid))
        for estimand, pi in shares:
            out.append(FigureEntry(figure=Figure(
                source=label, model=ms.model, method=ms.method, estimand=estimand,
                estimate=pi.estimate, low=pi.low, high=pi.high, level=1 - pi.alpha,
                interval_method=pi.method, n=pi.n,
                std=math.sqrt(pi.estimate * (1 - pi.estimate)), has_pair_ids=True,
                degenerate=pi.count in (0, pi.n)), raw=None, t_interval=None, count=pi.count))
        group = _group(run, (ms.model, ms.method))
        fracs = [r.pairwise_violation_frac for r in group.values()
                 if r.status == "valid" and r.pairwise_violation_frac is not None]
        if len(fracs) >= 2:
            t = mean_interval(fracs, method="t", alpha=itt.alpha, rng=None, n_resamples=None)
            if t.low is not None and t.high is not None:
                out.append(FigureEntry(figure=Figure(
                    source=label, model=ms.model, method=ms.method,
                    estimand="mean_per_pair_comparison_fraction", estimate=t.estimate,
                    low=max(0.0, t.low), high=min(1.0, t.high), level=1 - t.alpha,
                    interval_method="t", n=len(fracs), std=None, has_pair_ids=True,
                    degenerate=t.degenerate), raw=tuple(fracs), t_interval=t, count=None))
    return tuple(out)
