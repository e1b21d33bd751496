"""Import the research code's two legacy results layouts and compare reported figures.

Layouts (see ``shared/design/legacy/README.md``):

- ``legacy-methods`` (Exp 6.1): ``methods.<method>.{falsification_rate_mean,
  falsification_rate_std, confidence_interval, n_samples, raw_falsification_rates}``, one model
  named in ``parameters.model``; the FR is the mean of per-pair comparison percentages.
- ``legacy-results_by_method`` (Exp 6.4): ``results_by_method.<method>.<model>.{
  falsification_rate, falsification_rate_std, confidence_interval, n_pairs}``; the FR is the
  share of falsified pairs among those that produced a result.

Both are percents (converted to fractions here) and have no pair ids. Bare ``NaN`` tokens are
tolerated and reported. Every entry's keys are read exactly (no defaulted lookups,
PITFALLS.md #1); the importer checks each figure against itself (raw list vs n and mean,
percent range, std 0, which interval method reproduces the reported interval) and records
every inconsistency as a :class:`~faceattr.compare.result.Finding`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from statsmodels.stats.proportion import proportion_confint

from faceattr.compare.result import (
    Figure,
    FigureComparison,
    Finding,
    SourceKind,
    interval_matches,
)
from faceattr.errors import InputError
from faceattr.stats import (
    ProportionMethod,
    mean_interval,
    proportion_interval,
    unpaired_comparison_counts,
)
from faceattr.stats.means import MeanInterval

__all__ = ["FigureEntry", "LegacyFile", "compare_figures", "detect_layout", "load_legacy",
           "read_legacy_json"]

_TOL = 1e-6  # fraction units: the legacy files store full-precision floats
_METHODS_KEYS = {"falsification_rate_mean", "falsification_rate_std", "confidence_interval",
                 "n_samples", "raw_falsification_rates"}
_BY_METHOD_KEYS = {"falsification_rate", "falsification_rate_std", "confidence_interval",
                   "n_pairs"}
_CI_KEYS = {"lower", "upper", "level"}


class LegacyFormatError(InputError):
    """A legacy file cannot be read; the message is one line naming the file and the key."""


@dataclass(frozen=True, slots=True)
class FigureEntry:
    """One reported figure with what supports it: the raw per-pair values (fractions) when
    the source has them, the t interval on them, and the whole count behind a share."""

    figure: Figure
    raw: tuple[float, ...] | None
    t_interval: MeanInterval | None
    count: int | None


@dataclass(frozen=True, slots=True)
class LegacyFile:
    """A parsed legacy results file."""

    path: str
    layout: SourceKind
    experiment: str
    entries: tuple[FigureEntry, ...]
    findings: tuple[Finding, ...]
    nan_paths: tuple[str, ...]


def read_legacy_json(path: Path) -> tuple[Any, tuple[str, ...]]:
    """Parse a legacy file, tolerating bare ``NaN``/``Infinity`` tokens.

    Returns the document and the dotted paths of every non-finite number in it.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LegacyFormatError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise LegacyFormatError(f"{path}: a directory without summary.json is neither a "
                                "faceattr run folder nor a legacy results file") from None
    except UnicodeDecodeError:
        raise LegacyFormatError(f"{path}: not UTF-8 text; not a results file") from None
    try:
        doc = json.loads(text, parse_constant=float)
    except json.JSONDecodeError as exc:
        raise LegacyFormatError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} "
                                f"column {exc.colno})") from None
    found: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, float) and not math.isfinite(node):
            found.append(where)
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{where}.{key}" if where else str(key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(doc, "")
    return doc, tuple(found)


def detect_layout(doc: Any, path: Path) -> Literal["legacy-methods", "legacy-results_by_method"]:
    """Which legacy layout ``doc`` has; anything else is a one-line error."""
    if not isinstance(doc, dict):
        raise LegacyFormatError(f"{path}: unknown layout (top level is a "
                                f"{type(doc).__name__}, expected an object)")
    has_methods, has_by_method = "methods" in doc, "results_by_method" in doc
    if has_methods and has_by_method:
        raise LegacyFormatError(f"{path}: ambiguous layout: both 'methods' and "
                                "'results_by_method' present")
    if has_methods:
        return "legacy-methods"
    if has_by_method:
        return "legacy-results_by_method"
    raise LegacyFormatError(f"{path}: unknown layout: no 'methods' (Exp 6.1) or "
                            f"'results_by_method' (Exp 6.4) key; top-level keys "
                            f"{sorted(doc)[:8]}")


def _exact_keys(node: Any, expected: set[str], where: str, path: Path) -> Mapping[str, Any]:
    if not isinstance(node, dict):
        raise LegacyFormatError(f"{path}: {where} is a {type(node).__name__}, expected an object")
    if set(node) != expected:
        missing, extra = sorted(expected - set(node)), sorted(set(node) - expected)
        raise LegacyFormatError(f"{path}: {where}: keys mismatch: missing {missing}, "
                                f"unexpected {extra}")
    return node


def _number(value: Any, where: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LegacyFormatError(f"{path}: {where} = {value!r} is not a number")
    return float(value)


def _count(value: Any, where: str, path: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LegacyFormatError(f"{path}: {where} = {value!r} is not a positive integer")
    return value


class _Checker:
    """Collects findings for one entry and converts percents to fractions."""

    def __init__(self, label: str, subject: str) -> None:
        self.subject = f"{label} {subject}"
        self.findings: list[Finding] = []
        self.usable = True

    def add(self, kind: str, severity: Literal["note", "fault"], message: str) -> None:
        self.findings.append(Finding(kind=kind, severity=severity, subject=self.subject,
                                     message=message))

    def fraction(self, percent: float, name: str) -> float | None:
        if not math.isfinite(percent):
            self.add("non_finite_value", "fault", f"{name} is {percent!r} (a bare NaN/Infinity "
                     "token): the figure is undefined (PITFALLS.md #7)")
            self.usable = False
            return None
        if not 0.0 <= percent <= 100.0:
            self.add("percent_out_of_range", "fault",
                     f"{name} = {percent:g}% is outside [0, 100]: a percent multiplied by 100 "
                     "twice, or not a rate at all (PITFALLS.md #2)")
            self.usable = False
            return None
        return percent / 100.0


def _identify_interval(estimate: float, low: float, high: float, n: int, level: float,
                       raw: tuple[float, ...] | None) -> tuple[str, MeanInterval | None]:
    """Which method reproduces the reported interval (bounds within 1e-6)."""
    alpha = 1.0 - level
    t_interval = None
    if raw is not None and len(raw) >= 2:
        t_interval = mean_interval(list(raw), method="t", alpha=alpha, rng=None,
                                   n_resamples=None)
    candidates: list[tuple[str, float, float]] = []
    count = estimate * n
    if abs(count - round(count)) <= _TOL * n:
        methods: tuple[ProportionMethod, ...] = ("wilson", "clopper-pearson")
        for kind in methods:
            ci = proportion_interval(round(count), n, method=kind, alpha=alpha)
            candidates.append((kind, ci.low, ci.high))
    else:
        # Only to recognise the legacy mistake: statsmodels' Wilson formula accepts a
        # non-integer pseudo-count; faceattr.stats refuses one on purpose.
        lo, hi = proportion_confint(count, n, alpha=alpha, method="wilson")
        candidates.append(("wilson-pseudo-count", float(lo), float(hi)))
    if t_interval is not None and t_interval.low is not None and t_interval.high is not None:
        candidates.append(("t", t_interval.low, t_interval.high))
    for label, lo_c, hi_c in candidates:
        if abs(lo_c - low) <= _TOL and abs(hi_c - high) <= _TOL:
            return label, t_interval
    return "unidentified", t_interval


def _interval(node: Any, where: str, path: Path,
              check: _Checker) -> tuple[float | None, float | None, float]:
    ci = _exact_keys(node, _CI_KEYS, f"{where}.confidence_interval", path)
    level = _number(ci["level"], f"{where}.confidence_interval.level", path)
    if not 0.0 < level < 1.0:
        raise LegacyFormatError(f"{path}: {where}.confidence_interval.level = {level!r} is "
                                "not in (0, 1)")
    low = check.fraction(_number(ci["lower"], f"{where}.confidence_interval.lower", path),
                         "confidence_interval.lower")
    high = check.fraction(_number(ci["upper"], f"{where}.confidence_interval.upper", path),
                          "confidence_interval.upper")
    if low is not None and high is not None and low > high:
        check.add("interval_reversed", "fault", f"interval lower {low:.4f} > upper {high:.4f}")
        check.usable = False
    return low, high, level


def _finish(label: Literal["A", "B"], model: str, method: str, estimand: str,
            check: _Checker, estimate: float | None, std: float | None, low: float | None,
            high: float | None, level: float, n: int,
            raw: tuple[float, ...] | None) -> FigureEntry:
    interval_method, t_interval, count = "unidentified", None, None
    if check.usable and estimate is not None and low is not None and high is not None:
        interval_method, t_interval = _identify_interval(estimate, low, high, n, level, raw)
        if not low - _TOL <= estimate <= high + _TOL:
            check.add("interval_excludes_estimate", "fault",
                      f"the interval [{low:.4f}, {high:.4f}] does not contain {estimate:.4f}")
            check.usable = False
        elif interval_method == "unidentified":
            check.add("interval_unexplained", "fault",
                      f"the reported interval [{low:.4f}, {high:.4f}] at n={n} is not reproduced "
                      "by Wilson, Clopper-Pearson, a pseudo-count Wilson or a t interval: n or "
                      "the interval is wrong")
        elif interval_method == "wilson-pseudo-count":
            check.add("interval_mismatched", "fault",
                      f"the interval is a Wilson (binomial) interval on the pseudo-count "
                      f"{estimate:.4f} * {n}: a binomial interval on a mean of per-pair "
                      "fractions (PITFALLS.md #9)")
        elif not interval_matches(estimand, interval_method):
            check.add("interval_mismatched", "fault",
                      f"the interval is {interval_method}, which is not valid for the "
                      f"estimand {estimand} (PITFALLS.md #9)")
        c = estimate * n
        if abs(c - round(c)) <= _TOL * n:
            count = round(c)
        elif estimand.startswith("share"):
            check.add("not_a_share", "fault", f"FR * n = {c:.3f} is not a whole number of "
                      f"pairs: {estimate:.4f} cannot be a share of n={n} pairs")
    degenerate = std == 0.0 or (raw is not None and len(raw) > 1 and len(set(raw)) == 1)
    if degenerate:
        value = "n/a" if estimate is None else f"{estimate:.4f}"
        check.add("degenerate", "fault",
                  f"std = 0: every per-pair value is equal (FR {value}); an all-equal per-pair "
                  "metric is the signature of a defaulted lookup or of a construction artefact "
                  "(PITFALLS.md #1, #12), and its interval and tests are meaningless")
    usable = check.usable
    figure = Figure(source=label, model=model, method=method, estimand=estimand,
                    estimate=estimate if usable else None, low=low if usable else None,
                    high=high if usable else None, level=level,
                    interval_method=interval_method if usable else "unidentified", n=n,
                    std=std, has_pair_ids=False, degenerate=degenerate)
    return FigureEntry(figure=figure, raw=raw, t_interval=t_interval, count=count)


def _check_raw(check: _Checker, raw: tuple[float, ...], n: int, mean: float | None,
               std: float | None) -> None:
    if len(raw) == 0:
        check.add("empty_raw_list", "fault", f"raw_falsification_rates is empty for n={n}")
        return
    raw_mean = float(np.mean(raw))
    mean_ok = mean is None or abs(raw_mean - mean) <= _TOL
    if len(raw) < n and not mean_ok:
        check.add("truncated_list", "fault",
                  f"raw_falsification_rates has {len(raw)} values for n_samples={n} and its "
                  f"mean {raw_mean:.4f} differs from the reported {mean:.4f}: the list was "
                  "truncated (or the figure computed from other data)")
        return
    if len(raw) != n:
        what = "matches" if mean_ok else f"({raw_mean:.4f}) differs from"
        check.add("n_mismatch", "fault",
                  f"n_samples={n} disagrees with the {len(raw)} raw values, whose mean {what} "
                  "the reported mean: the stated n is wrong, and so is any interval built on it")
    if not mean_ok and mean is not None:
        check.add("mean_mismatch", "fault", f"the raw list's mean {raw_mean:.4f} differs from "
                  f"the reported falsification_rate_mean {mean:.4f}")
    if std is not None and len(raw) >= 2 and mean_ok:
        sds = (float(np.std(raw, ddof=0)), float(np.std(raw, ddof=1)))
        if min(abs(s - std) for s in sds) > _TOL:
            check.add("std_mismatch", "note", f"reported std {std:.4f} is neither the "
                      f"population ({sds[0]:.4f}) nor the sample ({sds[1]:.4f}) SD of the raw "
                      "list")


def _load_methods(doc: Mapping[str, Any], path: Path, label: Literal["A", "B"],
                  findings: list[Finding]) -> list[FigureEntry]:
    if "parameters" not in doc or not isinstance(doc["parameters"], dict) or \
            "model" not in doc["parameters"] or not isinstance(doc["parameters"]["model"], str):
        raise LegacyFormatError(f"{path}: layout 'methods' needs parameters.model (a string) "
                                "to name the model")
    # "FaceNet (Inception-ResNet-V1 ...)" -> "FaceNet", the name Exp 6.4 uses
    model = doc["parameters"]["model"].split(" (")[0].strip()
    methods = doc["methods"]
    if not isinstance(methods, dict):
        raise LegacyFormatError(f"{path}: 'methods' is not an object")
    entries = []
    for method, node in methods.items():
        where = f"methods.{method}"
        if node == {}:
            findings.append(Finding(kind="method_without_results", severity="fault",
                                    subject=f"{label} {model}/{method}",
                                    message="listed with no results: silently absent "
                                            "(PITFALLS.md #3, #6)"))
            continue
        entry = _exact_keys(node, _METHODS_KEYS, where, path)
        check = _Checker(label, f"{model}/{method}")
        n = _count(entry["n_samples"], f"{where}.n_samples", path)
        mean = check.fraction(_number(entry["falsification_rate_mean"],
                                      f"{where}.falsification_rate_mean", path),
                              "falsification_rate_mean")
        std_pct = _number(entry["falsification_rate_std"], f"{where}.falsification_rate_std",
                          path)
        std = std_pct / 100.0 if math.isfinite(std_pct) and std_pct >= 0 else None
        low, high, level = _interval(entry["confidence_interval"], where, path, check)
        raw_node = entry["raw_falsification_rates"]
        if not isinstance(raw_node, list):
            raise LegacyFormatError(f"{path}: {where}.raw_falsification_rates is not a list")
        values = [_number(v, f"{where}.raw_falsification_rates[{i}]", path)
                  for i, v in enumerate(raw_node)]
        bad = [v for v in values if not (math.isfinite(v) and 0.0 <= v <= 100.0)]
        raw: tuple[float, ...] | None
        if bad:
            check.add("percent_out_of_range", "fault",
                      f"{len(bad)} raw per-pair values outside [0, 100]% (e.g. {bad[0]:g}): "
                      "not percents (PITFALLS.md #2)")
            raw = None
        else:
            raw = tuple(v / 100.0 for v in values)
            _check_raw(check, raw, n, mean, std)
        entries.append(_finish(label, model, method, "mean_per_pair_comparison_fraction",
                               check, mean, std, low, high, level, n, raw))
        findings.extend(check.findings)
    return entries


def _load_by_method(doc: Mapping[str, Any], path: Path, label: Literal["A", "B"],
                    findings: list[Finding]) -> list[FigureEntry]:
    by_method = doc["results_by_method"]
    if not isinstance(by_method, dict):
        raise LegacyFormatError(f"{path}: 'results_by_method' is not an object")
    entries = []
    for method, models in by_method.items():
        if not isinstance(models, dict):
            raise LegacyFormatError(f"{path}: results_by_method.{method} is not an object")
        if not models:
            findings.append(Finding(kind="method_without_results", severity="fault",
                                    subject=f"{label} {method}",
                                    message="listed with no results for any model: silently "
                                            "absent (PITFALLS.md #3, #6)"))
        for model, node in models.items():
            where = f"results_by_method.{method}.{model}"
            entry = _exact_keys(node, _BY_METHOD_KEYS, where, path)
            check = _Checker(label, f"{model}/{method}")
            n = _count(entry["n_pairs"], f"{where}.n_pairs", path)
            rate = check.fraction(_number(entry["falsification_rate"],
                                          f"{where}.falsification_rate", path),
                                  "falsification_rate")
            std_pct = _number(entry["falsification_rate_std"],
                              f"{where}.falsification_rate_std", path)
            std = std_pct / 100.0 if math.isfinite(std_pct) and std_pct >= 0 else None
            low, high, level = _interval(entry["confidence_interval"], where, path, check)
            entries.append(_finish(label, model, method, "share_falsified_valid", check, rate,
                                   std, low, high, level, n, None))
            findings.extend(check.findings)
    return entries


def _test_findings(doc: Mapping[str, Any], layout: str, label: str) -> list[Finding]:
    """Findings about the file's own statistical tests (reported, never reused)."""
    out: list[Finding] = []
    if "statistical_tests" not in doc or not isinstance(doc["statistical_tests"], dict):
        return out
    tests = doc["statistical_tests"]
    for name, test in tests.items():
        if not isinstance(test, dict) or "p_value" not in test:
            continue
        p = test["p_value"]
        subject = f"{label} statistical_tests.{name}"
        if isinstance(p, float) and not math.isfinite(p):
            said = f" yet interpreted as {test['interpretation']!r}" \
                if "interpretation" in test else ""
            out.append(Finding(kind="nan_p_value", severity="fault", subject=subject,
                               message=f"p = NaN (an undefined test){said}: non-significance "
                                       "of an undefined test read as equivalence "
                                       "(PITFALLS.md #7, #11)"))
        elif layout == "legacy-methods" and "test_name" in test:
            out.append(Finding(kind="test_mismatched", severity="fault", subject=subject,
                               message=f"{test['test_name']} (p = {p:.3g}) on means of per-pair "
                                       "percentages: a count-based test of a non-binomial "
                                       "estimand (PITFALLS.md #9); not reused"))
    return out


def load_legacy(path: Path, label: Literal["A", "B"]) -> LegacyFile:
    """Read a legacy results file of either layout (auto-detected).

    Parameters
    ----------
    path : Path
        The JSON file (bare ``NaN`` tokens allowed).
    label : {"A", "B"}
        Which side of the comparison it is (used in finding subjects).

    Returns
    -------
    LegacyFile
        Entries as fraction-valued :class:`Figure` records with estimand and identified
        interval method, and the findings of the import.

    Raises
    ------
    LegacyFormatError
        One line: missing file, corrupt JSON, unknown layout, or an entry whose keys differ
        from the layout's.
    """
    doc, nan_paths = read_legacy_json(path)
    layout = detect_layout(doc, path)
    experiment = doc["experiment"] if "experiment" in doc and \
        isinstance(doc["experiment"], str) else path.stem
    findings: list[Finding] = []
    if nan_paths:
        findings.append(Finding(kind="bare_nan", severity="note", subject=f"{label} file",
                                message=f"not strict JSON: {len(nan_paths)} bare NaN/Infinity "
                                        f"token(s) at {', '.join(nan_paths[:4])}"))
    loader = _load_methods if layout == "legacy-methods" else _load_by_method
    entries = loader(doc, path, label, findings)
    findings += _test_findings(doc, layout, label)
    findings.append(Finding(kind="no_pair_ids", severity="note", subject=f"{label} file",
                            message="no pair ids: per-pair outcomes cannot be joined, so no "
                                    "paired comparison is possible"))
    return LegacyFile(path=str(path), layout=layout, experiment=experiment,
                      entries=tuple(entries), findings=tuple(findings),
                      nan_paths=nan_paths)


def _overlap(a: Figure, b: Figure) -> bool | None:
    if a.low is None or a.high is None or b.low is None or b.high is None:
        return None
    return a.low <= b.high and b.low <= a.high


def _by_key(entries: tuple[FigureEntry, ...]) -> dict[tuple[str, str], list[FigureEntry]]:
    out: dict[tuple[str, str], list[FigureEntry]] = {}
    for e in entries:
        out.setdefault((e.figure.model, e.figure.method), []).append(e)
    return out


def _side(by: dict[tuple[str, str], list[FigureEntry]],
          key: tuple[str, str]) -> list[FigureEntry]:
    if key in by:
        return by[key]
    return []  # absent on this side: the join reports it


def _choose(a: list[FigureEntry],
            b: list[FigureEntry]) -> tuple[FigureEntry | None, FigureEntry | None]:
    """One figure per side: the same estimand where both sides have it, else the first
    (a faceattr run lists its primary estimand first)."""
    for ea in a:
        for eb in b:
            if ea.figure.estimand == eb.figure.estimand:
                return ea, eb
    return (a[0] if a else None), (b[0] if b else None)


def compare_figures(a: tuple[FigureEntry, ...], b: tuple[FigureEntry, ...], *,
                    alpha: float) -> tuple[tuple[FigureComparison, ...], tuple[Finding, ...]]:
    """Join two sets of figures on (model, method) and compare them as reported numbers.

    A disagreement is a pair of reported intervals that do not overlap. Figures of
    different estimands are never tested against each other. Two shares of falsified pairs
    with whole counts get a descriptive unpaired comparison (Newcombe 1998 interval, score
    test), labelled as assuming independent pair samples.
    """
    by_a = _by_key(a)
    by_b = _by_key(b)
    comparisons: list[FigureComparison] = []
    findings: list[Finding] = []
    for key in sorted(set(by_a) | set(by_b)):
        model, method = key
        ea, eb = _choose(_side(by_a, key), _side(by_b, key))
        if ea is None or eb is None:
            side = "A" if eb is None else "B"
            findings.append(Finding(kind=f"only_in_{side.lower()}", severity="note",
                                    subject=f"{model}/{method}",
                                    message=f"present in {side} only: nothing to compare it "
                                            "with"))
            comparisons.append(FigureComparison(
                model=model, method=method, a=None if ea is None else ea.figure,
                b=None if eb is None else eb.figure, same_estimand=None,
                intervals_overlap=None, disagreement=False, paired_possible=False,
                unpaired=None, notes=(f"present in {side} only",)))
            continue
        fa, fb = ea.figure, eb.figure
        same = fa.estimand == fb.estimand
        overlap = _overlap(fa, fb)
        notes: list[str] = []
        if overlap is False:
            lo_side, hi_side = (fa, fb) if fa.high is not None and fb.low is not None and \
                fa.high < fb.low else (fb, fa)
            notes.append(f"reported intervals do not overlap: {hi_side.source} low "
                         f"{hi_side.low:.4f} > {lo_side.source} high {lo_side.high:.4f}")
            findings.append(Finding(
                kind="disagreement", severity="fault", subject=f"{model}/{method}",
                message=f"A {fa.estimate:.4f} [{fa.low:.4f}, {fa.high:.4f}] vs B "
                        f"{fb.estimate:.4f} [{fb.low:.4f}, {fb.high:.4f}]: the reported "
                        "intervals do not overlap"))
        if not same:
            notes.append(f"different estimands: A is {fa.estimand}, B is {fb.estimand}; "
                         "the two figures measure different things and are not tested "
                         "against each other")
            findings.append(Finding(kind="different_estimands", severity="incomparable",
                                    subject=f"{model}/{method}",
                                    message=f"A {fa.estimand} vs B {fb.estimand}"))
        paired = fa.has_pair_ids and fb.has_pair_ids
        if not paired:
            missing = "neither side has" if not (fa.has_pair_ids or fb.has_pair_ids) else \
                f"{'A' if not fa.has_pair_ids else 'B'} has no"
            notes.append(f"no paired comparison possible: {missing} pair ids")
        for fig, entry in ((fa, ea), (fb, eb)):
            t = entry.t_interval
            if fig.estimand == "mean_per_pair_comparison_fraction" and t is not None and \
                    t.low is not None and t.high is not None and fig.interval_method != "t":
                notes.append(f"{fig.source}: interval matched to its estimand, t on the "
                             f"{t.n} raw per-pair values: [{t.low:.4f}, {t.high:.4f}]")
            if fig.degenerate:
                notes.append(f"{fig.source} is degenerate (std 0: all per-pair values equal)")
            if fig.estimate is not None and not fig.interval_matches_estimand:
                notes.append(f"{fig.source}'s interval ({fig.interval_method}) is not valid "
                             f"for its estimand ({fig.estimand})")
        unpaired = None
        if same and fa.estimand.startswith("share") and ea.count is not None and \
                eb.count is not None and fa.estimate is not None and fb.estimate is not None:
            unpaired = unpaired_comparison_counts(eb.count, fb.n, ea.count, fa.n, alpha=alpha)
            notes.append("unpaired comparison B - A assumes independent pair samples; "
                         "without pair ids that cannot be checked (descriptive only)")
        comparisons.append(FigureComparison(
            model=model, method=method, a=fa, b=fb, same_estimand=same,
            intervals_overlap=overlap, disagreement=overlap is False, paired_possible=paired,
            unpaired=unpaired, notes=tuple(notes)))
    return tuple(comparisons), tuple(findings)
