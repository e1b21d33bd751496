"""Typed, frozen results of ``faceattr compare``, their strict JSON, and a text renderer.

Every record validates itself on construction; ``to_json()`` is ``allow_nan=False``-safe (an
undefined value is ``None``). Fractions are in [0, 1] (never percents, PITFALLS.md #2).
Differences are always ``B - A``: A is the baseline (first path), B the candidate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

from faceattr.compare.planning import EquivalencePlan
from faceattr.errors import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_INPUT, EXIT_OK
from faceattr.stats import DifferenceInterval, EquivalenceResult, McNemarResult
from faceattr.stats.means import MeanInterval
from faceattr.stats.unpaired import UnpairedComparison

__all__ = [
    "ESTIMANDS",
    "EXIT_WORDS",
    "INTERVAL_METHODS",
    "ComparisonResult",
    "ContextDiff",
    "Figure",
    "FigureComparison",
    "Finding",
    "MetricDelta",
    "PairChange",
    "PairedComparison",
    "Severity",
    "SourceKind",
    "difference_shown",
    "interval_matches",
    "render_text",
]

Severity = Literal["note", "fault", "incomparable", "regression", "inconclusive"]
SourceKind = Literal["faceattr-run", "legacy-methods", "legacy-results_by_method"]
PairedVerdict = Literal["equivalent", "regression", "inconclusive", "incomparable"]

#: The verdict word of each exit code of ``faceattr compare``.
EXIT_WORDS: dict[int, str] = {EXIT_OK: "EQUIVALENT", EXIT_FAILED: "REGRESSION",
                              EXIT_INPUT: "NOT COMPARABLE", EXIT_INCONCLUSIVE: "INCONCLUSIVE"}

#: Estimand labels (explicit strings in every output) and what each one means.
ESTIMANDS: dict[str, str] = {
    "share_falsified_itt": "share of falsified pairs, intention-to-treat (trivial and error "
                           "pairs count as falsified)",
    "share_falsified_valid": "share of falsified pairs among the pairs that produced a result "
                             "(valid-only; attrition excluded)",
    "mean_per_pair_comparison_fraction": "mean of per-pair comparison fractions (each pair's "
                                         "share of K x K comparisons with d_high <= d_low)",
}

#: Interval method labels and what each one means.
INTERVAL_METHODS: dict[str, str] = {
    "wilson": "Wilson score interval on falsified/n (Wilson 1927)",
    "clopper-pearson": "Clopper-Pearson exact interval on falsified/n",
    "t": "Student t interval on the per-pair values",
    "wilson-pseudo-count": "Wilson interval on the pseudo-count mean*n: a binomial interval "
                           "applied to a mean of per-pair fractions, mismatched to the estimand "
                           "(PITFALLS.md #9)",
    "unidentified": "the reported interval is not reproduced by any known method",
}
# Which interval methods are valid for which estimands.
_MATCHED = {"share_falsified_itt": {"wilson", "clopper-pearson"},
            "share_falsified_valid": {"wilson", "clopper-pearson"},
            "mean_per_pair_comparison_fraction": {"t"}}


def interval_matches(estimand: str, interval_method: str) -> bool:
    """Whether ``interval_method`` is a valid interval for ``estimand``."""
    return interval_method in _MATCHED[estimand]


def _check_unit(name: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a fraction in [0, 1], got {value!r}")


def _check_choice(name: str, value: str, allowed: tuple[str, ...] | set[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} {value!r} is not one of {sorted(allowed)}")


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the comparison found.

    Attributes
    ----------
    kind : str
        Short machine label, e.g. ``"degenerate"``, ``"percent_out_of_range"``.
    severity : {"note", "fault", "incomparable", "regression", "inconclusive"}
        ``fault``: the figure itself is suspect; ``incomparable``: blocks a comparison;
        ``regression``: a change in the science between runs; ``inconclusive``: neither
        equivalence nor a difference shown (too few pairs).
    subject : str
        What it is about, e.g. ``"B FaceNet/Grad-CAM"``.
    message : str
        One line, for people.
    """

    kind: str
    severity: Severity
    subject: str
    message: str

    def __post_init__(self) -> None:
        _check_choice("severity", self.severity, get_args(Severity))
        if not self.kind or not self.message or "\n" in self.message:
            raise ValueError("a finding needs a kind and a one-line message")

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {"kind": self.kind, "severity": self.severity, "subject": self.subject,
                "message": self.message}


@dataclass(frozen=True, slots=True)
class ContextDiff:
    """A difference in what produced the two results (protocol, manifest, versions)."""

    category: Literal["protocol", "manifest", "provenance", "source"]
    key: str
    a: str
    b: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {"category": self.category, "key": self.key, "a": self.a, "b": self.b}


@dataclass(frozen=True, slots=True)
class Figure:
    """One reported falsification-rate figure, with its estimand and interval method.

    Attributes
    ----------
    source : {"A", "B"}
    model, method : str
    estimand : str
        A key of :data:`ESTIMANDS`.
    estimate, low, high : float or None
        Fractions in [0, 1]; ``None`` when the figure is unusable (see ``faults``).
    level : float
        Confidence level of the reported interval.
    interval_method : str
        A key of :data:`INTERVAL_METHODS`: identified by reproducing the reported interval.
    n : int
        Pairs the figure is over, as reported.
    std : float or None
        Reported SD of the per-pair values, fraction.
    has_pair_ids : bool
        Whether per-pair outcomes with pair ids exist behind the figure.
    degenerate : bool
        All per-pair values equal (std 0): the degenerate-distribution guard.
    """

    source: Literal["A", "B"]
    model: str
    method: str
    estimand: str
    estimate: float | None
    low: float | None
    high: float | None
    level: float
    interval_method: str
    n: int
    std: float | None
    has_pair_ids: bool
    degenerate: bool

    def __post_init__(self) -> None:
        _check_choice("estimand", self.estimand, set(ESTIMANDS))
        _check_choice("interval_method", self.interval_method, set(INTERVAL_METHODS))
        for name in ("estimate", "low", "high"):
            _check_unit(name, getattr(self, name))
        if self.std is not None and (not math.isfinite(self.std) or self.std < 0):
            raise ValueError(f"std must be finite and >= 0, got {self.std!r}")
        if (self.low is None) != (self.high is None):
            raise ValueError("low and high must both be present or both be None")
        if self.low is not None and self.high is not None and self.estimate is not None and \
                not self.low - 1e-12 <= self.estimate <= self.high + 1e-12:
            raise ValueError(f"interval [{self.low}, {self.high}] does not contain "
                             f"{self.estimate}")
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {self.level!r}")

    @property
    def interval_matches_estimand(self) -> bool:
        """Whether the interval method is valid for the estimand."""
        return interval_matches(self.estimand, self.interval_method)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {"source": self.source, "model": self.model, "method": self.method,
                "estimand": self.estimand, "estimand_description": ESTIMANDS[self.estimand],
                "estimate": self.estimate, "low": self.low, "high": self.high,
                "level": self.level, "interval_method": self.interval_method,
                "interval_method_description": INTERVAL_METHODS[self.interval_method],
                "interval_matches_estimand": self.interval_matches_estimand, "n": self.n,
                "std": self.std, "has_pair_ids": self.has_pair_ids,
                "degenerate": self.degenerate}


@dataclass(frozen=True, slots=True)
class FigureComparison:
    """Two figures for one (model, method) compared as reported numbers (no per-pair data).

    Attributes
    ----------
    a, b : Figure or None
        ``None`` when the (model, method) is in one source only.
    same_estimand : bool or None
    intervals_overlap : bool or None
        Whether the two reported intervals overlap; ``None`` when either is missing.
    disagreement : bool
        The reported intervals do not overlap.
    paired_possible : bool
        Both sides have pair ids (else no paired comparison is possible).
    unpaired : UnpairedComparison or None
        Descriptive unpaired score test and Newcombe interval, only for two shares of
        falsified pairs with integer counts; it assumes independent pair samples, which
        without pair ids cannot be checked.
    notes : tuple of str
    """

    model: str
    method: str
    a: Figure | None
    b: Figure | None
    same_estimand: bool | None
    intervals_overlap: bool | None
    disagreement: bool
    paired_possible: bool
    unpaired: UnpairedComparison | None
    notes: tuple[str, ...]

    def __post_init__(self) -> None:
        both = self.a is not None and self.b is not None
        if both != (self.same_estimand is not None):
            raise ValueError("same_estimand is defined exactly when both figures exist")
        if self.disagreement and self.intervals_overlap is not False:
            raise ValueError("a disagreement needs non-overlapping intervals")

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {"model": self.model, "method": self.method,
                "a": None if self.a is None else self.a.to_json(),
                "b": None if self.b is None else self.b.to_json(),
                "same_estimand": self.same_estimand, "intervals_overlap": self.intervals_overlap,
                "disagreement": self.disagreement, "paired_possible": self.paired_possible,
                "unpaired": None if self.unpaired is None else self.unpaired.to_json(),
                "notes": list(self.notes)}


@dataclass(frozen=True, slots=True)
class PairChange:
    """A pair whose verdict (or status) differs between the runs.

    ``boundary``: in both runs the primary verdict lies within the cross-machine float
    tolerance of its decision boundary (:mod:`faceattr.stats.tolerance`), so a flip of it can
    come from the last float bits alone; such a pair is left out of the paired tests.
    """

    pair_id: str
    status_a: str
    status_b: str
    falsified_a: bool
    falsified_b: bool
    margin_rad_a: float | None
    margin_rad_b: float | None
    boundary: bool

    def __post_init__(self) -> None:
        if self.boundary and self.status_a != self.status_b:
            raise ValueError("a status change is never a boundary change")

    @property
    def verdict_flip(self) -> bool:
        """True when the verdict itself changed (not only the status)."""
        return self.falsified_a != self.falsified_b

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {"pair_id": self.pair_id, "status_a": self.status_a, "status_b": self.status_b,
                "falsified_a": self.falsified_a, "falsified_b": self.falsified_b,
                "margin_rad_a": self.margin_rad_a, "margin_rad_b": self.margin_rad_b,
                "verdict_flip": self.verdict_flip, "boundary": self.boundary}


@dataclass(frozen=True, slots=True)
class MetricDelta:
    """Per-pair differences ``B - A`` of one metric over pairs valid in both runs.

    ``n_beyond_tolerance``: pairs whose difference exceeds the cross-machine float tolerance
    (:mod:`faceattr.stats.tolerance`): 0 means the runs differ in this metric by float noise at
    most.
    """

    metric: str
    n: int
    mean_delta: float | None
    max_abs_delta: float | None
    max_abs_pair_id: str | None
    interval: MeanInterval | None
    n_beyond_tolerance: int

    def __post_init__(self) -> None:
        if (self.n == 0) != (self.mean_delta is None):
            raise ValueError("mean_delta is None exactly when no pair is valid in both runs")
        if not 0 <= self.n_beyond_tolerance <= self.n:
            raise ValueError(f"n_beyond_tolerance {self.n_beyond_tolerance} outside "
                             f"[0, {self.n}]")

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {"metric": self.metric, "n": self.n, "mean_delta": self.mean_delta,
                "max_abs_delta": self.max_abs_delta, "max_abs_pair_id": self.max_abs_pair_id,
                "interval": None if self.interval is None else self.interval.to_json(),
                "n_beyond_tolerance": self.n_beyond_tolerance}


def difference_shown(mcnemar: McNemarResult, risk_difference: DifferenceInterval,
                     margin: float) -> bool:
    """Evidence of a difference between the runs: the exact McNemar test rejects, or the
    ``1 - alpha`` interval of the FR difference lies wholly beyond ``+-margin``."""
    return bool(mcnemar.test.reject) or risk_difference.low >= margin or \
        risk_difference.high <= -margin


@dataclass(frozen=True, slots=True)
class PairedComparison:
    """One (model, method) of two faceattr runs, joined on pair_id.

    Attributes
    ----------
    estimand_a, estimand_b : str
        E.g. ``"share_falsified_itt[verdict=simple]"``.
    n_shared, n_only_a, n_only_b : int
        Pairs in both runs / in one only.
    n_boundary : int
        Shared pairs whose primary verdict lies within the float tolerance of its decision
        boundary in both runs (:mod:`faceattr.stats.tolerance`): decided by the last float
        bits, not by the science, so left out of the tests (flipped or not; the tests use the
        other ``n_shared - n_boundary`` pairs).
    changes : tuple of PairChange
        Pairs whose verdict or status differ (boundary ones flagged).
    mcnemar, risk_difference, equivalence
        Exact McNemar (McNemar 1947), Newcombe paired risk difference B - A (Newcombe 1998)
        and paired TOST (Schuirmann 1987; Tango 1998) at the declared margin; ``None`` when
        incomparable.
    plan : EquivalencePlan or None
        For an inconclusive comparison, the shared pairs that would show equivalence.
    verdict : {"equivalent", "regression", "inconclusive", "incomparable"}
        ``regression`` when a difference is shown (:func:`difference_shown`); else
        ``equivalent`` when the TOST shows ``|FR_B - FR_A| < margin``; else ``inconclusive``
        (neither shown: too few pairs). Non-significance is never read as equivalence.
    """

    model: str
    method: str
    estimand_a: str
    estimand_b: str
    n_shared: int
    n_only_a: int
    n_only_b: int
    n_boundary: int
    changes: tuple[PairChange, ...]
    mcnemar: McNemarResult | None
    risk_difference: DifferenceInterval | None
    equivalence: EquivalenceResult | None
    plan: EquivalencePlan | None
    metric_deltas: tuple[MetricDelta, ...]
    verdict: PairedVerdict
    reason: str

    def __post_init__(self) -> None:
        _check_choice("verdict", self.verdict, get_args(PairedVerdict))
        tested = (self.mcnemar, self.risk_difference, self.equivalence)
        if (self.verdict == "incomparable") != any(t is None for t in tested):
            raise ValueError("an incomparable comparison has no tests; a comparable one has all")
        if not 0 <= self.n_boundary <= self.n_shared:
            raise ValueError(f"n_boundary {self.n_boundary} outside [0, {self.n_shared}]")
        if sum(c.boundary for c in self.changes) > self.n_boundary:
            raise ValueError("more boundary changes than boundary pairs")
        if (self.plan is not None) != (self.verdict == "inconclusive"):
            raise ValueError("a plan comes with an inconclusive verdict, and only with one")
        if self.mcnemar is not None and self.risk_difference is not None and \
                self.equivalence is not None:
            if self.mcnemar.table.n != self.n_tested:
                raise ValueError(f"the tests ran on {self.mcnemar.table.n} pairs, expected "
                                 f"{self.n_tested} (shared minus boundary)")
            if difference_shown(self.mcnemar, self.risk_difference, self.equivalence.margin):
                expected = "regression"
            else:
                expected = "equivalent" if self.equivalence.equivalent else "inconclusive"
            if self.verdict != expected:
                raise ValueError(f"verdict {self.verdict!r} disagrees with its tests "
                                 f"({expected!r})")

    @property
    def n_tested(self) -> int:
        """Shared pairs the tests ran on (boundary pairs left out)."""
        return self.n_shared - self.n_boundary

    @property
    def n_flips(self) -> int:
        """Pairs whose verdict flipped (boundary ones included)."""
        return sum(c.verdict_flip for c in self.changes)

    @property
    def n_boundary_flips(self) -> int:
        """Flips on boundary pairs: within the float tolerance, not a change of the science."""
        return sum(c.verdict_flip and c.boundary for c in self.changes)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {"model": self.model, "method": self.method, "estimand_a": self.estimand_a,
                "estimand_b": self.estimand_b, "n_shared": self.n_shared,
                "n_only_a": self.n_only_a, "n_only_b": self.n_only_b,
                "n_boundary": self.n_boundary, "n_tested": self.n_tested,
                "n_flips": self.n_flips, "n_boundary_flips": self.n_boundary_flips,
                "changes": [c.to_json() for c in self.changes],
                "mcnemar": None if self.mcnemar is None else self.mcnemar.to_json(),
                "risk_difference": (None if self.risk_difference is None
                                    else self.risk_difference.to_json()),
                "equivalence": None if self.equivalence is None else self.equivalence.to_json(),
                "plan": None if self.plan is None else self.plan.to_json(),
                "metric_deltas": [m.to_json() for m in self.metric_deltas],
                "verdict": self.verdict, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ComparisonResult:
    """Everything ``faceattr compare A B`` found, and its exit code.

    Exit codes (:mod:`faceattr.errors`): 0 ``EXIT_OK`` every compared (model, method) is
    equivalent within the margin; 1 ``EXIT_FAILED`` a regression (a difference shown: McNemar
    significant, or the FR difference interval beyond the margin); 2 ``EXIT_INPUT`` the inputs
    cannot be compared (no shared pair ids, different estimands, conflicting manifests);
    4 ``EXIT_INCONCLUSIVE`` neither equivalence nor a difference shown (too few pairs), with
    the pairs that would be needed. Each comes with its reasons.
    """

    path_a: str
    path_b: str
    kind_a: SourceKind
    kind_b: SourceKind
    margin: float
    alpha: float
    exit_code: int
    exit_reasons: tuple[str, ...]
    context: tuple[ContextDiff, ...]
    findings: tuple[Finding, ...]
    figures: tuple[FigureComparison, ...]
    paired: tuple[PairedComparison, ...]

    def __post_init__(self) -> None:
        if self.exit_code not in EXIT_WORDS:
            raise ValueError(f"exit code must be one of {sorted(EXIT_WORDS)}, got "
                             f"{self.exit_code}")
        if self.exit_code == EXIT_INCONCLUSIVE and \
                not any(p.verdict == "inconclusive" for p in self.paired):
            raise ValueError("an inconclusive exit needs an inconclusive paired comparison")
        if not self.exit_reasons:
            raise ValueError("an exit code needs at least one reason")
        for kind in (self.kind_a, self.kind_b):
            _check_choice("source kind", kind, get_args(SourceKind))

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (strict: no NaN anywhere)."""
        return {"path_a": self.path_a, "path_b": self.path_b, "kind_a": self.kind_a,
                "kind_b": self.kind_b, "margin": self.margin, "alpha": self.alpha,
                "exit_code": self.exit_code, "exit_verdict": EXIT_WORDS[self.exit_code],
                "exit_reasons": list(self.exit_reasons),
                "context": [c.to_json() for c in self.context],
                "findings": [f.to_json() for f in self.findings],
                "figures": [f.to_json() for f in self.figures],
                "paired": [p.to_json() for p in self.paired],
                "estimands": dict(ESTIMANDS), "interval_methods": dict(INTERVAL_METHODS)}


# ---------------------------------------------------------------------------------------------
# text rendering

def _f(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3g}"


def _figure_lines(fig: Figure) -> list[str]:
    matched = "matched to the estimand" if fig.interval_matches_estimand else \
        "MISMATCHED to the estimand"
    std = "n/a" if fig.std is None else _f(fig.std)
    lines = [f"    {fig.source}: {_f(fig.estimate)}  [{_f(fig.low)}, {_f(fig.high)}] "
             f"({fig.level:.0%})  n={fig.n}  std={std}"
             f"{'  DEGENERATE (all per-pair values equal)' if fig.degenerate else ''}",
             f"       estimand: {fig.estimand} = {ESTIMANDS[fig.estimand]}",
             f"       interval: {fig.interval_method} ({matched})",
             f"       pair ids: {'yes' if fig.has_pair_ids else 'none'}"]
    return lines


def _paired_lines(pc: PairedComparison, margin: float) -> list[str]:
    lines = [f"  {pc.model} / {pc.method}: {pc.verdict.upper()} - {pc.reason}",
             f"    estimand: A {pc.estimand_a}; B {pc.estimand_b}",
             f"    pairs: {pc.n_shared} shared, {pc.n_only_a} only in A, {pc.n_only_b} only in B"]
    if pc.n_boundary:
        lines.append(f"    boundary pairs: {pc.n_boundary} (verdict within the float tolerance "
                     f"of its decision boundary in both runs; {pc.n_boundary_flips} flipped), "
                     f"left out of the tests: {pc.n_tested} tested")
    if pc.mcnemar is not None and pc.risk_difference is not None and pc.equivalence is not None:
        t, rd, eq = pc.mcnemar.table, pc.risk_difference, pc.equivalence
        lines += [
            f"    FR A {_f(rd.rate_b)}  FR B {_f(rd.rate_a)}  difference B-A {rd.estimate:+.4f} "
            f"[{rd.low:+.4f}, {rd.high:+.4f}] ({1 - rd.alpha:.0%}, {rd.method})",
            f"    McNemar exact: {t.n_a_only} pairs falsified only in B, {t.n_b_only} only in A; "
            f"p = {_p(pc.mcnemar.test.p_value)}",
            f"    TOST paired, margin {margin:g}: p = {_p(eq.p_value)} "
            f"({1 - 2 * eq.alpha:.0%} interval [{eq.low:+.4f}, {eq.high:+.4f}]) -> "
            f"{'equivalent' if eq.equivalent else 'not shown equivalent'}"]
    if pc.plan is not None:
        needed = "no sample size shows equivalence" if pc.plan.n_needed is None else \
            f"about {pc.plan.n_needed} pairs needed"
        lines.append(f"    to show equivalence within +-{pc.plan.margin:g} with "
                     f"{pc.plan.power:.0%} power: {needed} ({pc.plan.assumption})")
    for md in pc.metric_deltas:
        if md.n:
            lines.append(f"    {md.metric}: mean B-A {md.mean_delta:+.3g}, max |B-A| "
                         f"{md.max_abs_delta:.3g} (pair {md.max_abs_pair_id}), n={md.n}, "
                         f"{md.n_beyond_tolerance} beyond the float tolerance")
    flips = [c for c in pc.changes if c.verdict_flip]
    for c in flips[:20]:
        lines.append(f"    flip {c.pair_id}: {'falsified' if c.falsified_a else 'survived'} "
                     f"({c.status_a}) -> {'falsified' if c.falsified_b else 'survived'} "
                     f"({c.status_b}){' [boundary]' if c.boundary else ''}")
    if len(flips) > 20:
        lines.append(f"    ... and {len(flips) - 20} more flips (see --format json)")
    return lines


def render_text(result: ComparisonResult) -> str:
    """Human-readable report of a comparison (the default ``faceattr compare`` output)."""
    out = ["faceattr compare (differences are B - A; fractions, not percents)",
           f"  A: {result.path_a}  [{result.kind_a}]",
           f"  B: {result.path_b}  [{result.kind_b}]",
           f"  margin {result.margin:g}, alpha {result.alpha:g}",
           "", f"EXIT {result.exit_code} ({EXIT_WORDS[result.exit_code]}):"]
    out += [f"  - {r}" for r in result.exit_reasons]
    if result.context:
        out += ["", "What differs between A and B (protocol, manifest, versions):"]
        out += [f"  [{c.category}] {c.key}: A {c.a} | B {c.b}" for c in result.context]
    if result.figures:
        out += ["", "Reported figures (model / method):"]
        for fc in result.figures:
            verdict = "DISAGREEMENT (reported intervals do not overlap)" if fc.disagreement \
                else ""
            out.append(f"  {fc.model} / {fc.method} {verdict}".rstrip())
            for fig in (fc.a, fc.b):
                if fig is not None:
                    out += _figure_lines(fig)
            if fc.unpaired is not None:
                d = fc.unpaired.difference
                out.append(f"    unpaired B-A {d.estimate:+.4f} [{d.low:+.4f}, {d.high:+.4f}] "
                           f"({d.method}), score test p = {_p(fc.unpaired.test.p_value)}")
            out += [f"    note: {n}" for n in fc.notes]
    if result.paired:
        out += ["", "Paired comparisons on shared pair ids (model / method):"]
        for pc in result.paired:
            out += _paired_lines(pc, result.margin)
    if result.findings:
        out += ["", "Findings:"]
        out += [f"  [{f.severity}] {f.subject}: {f.kind}: {f.message}" for f in result.findings]
    return "\n".join(out) + "\n"
