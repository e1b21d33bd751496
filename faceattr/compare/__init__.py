"""``faceattr compare``: regression detection between runs, and legacy-results import.

Entry point for the CLI::

    code, text = compare_main(path_a, path_b, margin=0.05, alpha=0.05, format="text")

Each path is a faceattr run folder (it has ``summary.json``) or a legacy results JSON file
(layout auto-detected). A is the baseline, B the candidate; differences are ``B - A``.

Exit codes (names from :mod:`faceattr.errors`), each with its reasons:

- 0 ``EXIT_OK``: every compared (model, method) is equivalent within the margin (paired TOST)
  with no difference shown;
- 1 ``EXIT_FAILED``: a regression, i.e. a difference shown (exact McNemar significant, or the
  FR difference interval beyond the margin);
- 2 ``EXIT_INPUT``: the inputs cannot be compared (no shared pair ids, different estimands,
  conflicting manifests, a legacy file without pair ids);
- 4 ``EXIT_INCONCLUSIVE``: neither equivalence nor a difference shown (too few pairs), with the
  number of shared pairs that would show equivalence at the declared margin.

Verdicts within the cross-machine float tolerance of their decision boundary in both runs
(:mod:`faceattr.stats.tolerance`) are *boundary pairs*: listed, never tested, never a
regression. Bad input (missing file, corrupt JSON, unknown layout, a margin or level out of
range) raises a one-line :class:`~faceattr.errors.InputError` (a ``ValueError``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from faceattr.compare.legacy import FigureEntry, LegacyFile, compare_figures, load_legacy
from faceattr.compare.result import (
    EXIT_WORDS,
    ComparisonResult,
    Finding,
    SourceKind,
    render_text,
)
from faceattr.compare.runs import LoadedRun, compare_runs, load_run, run_figures
from faceattr.errors import EXIT_INPUT, InputError
from faceattr.io import dumps_strict
from faceattr.stats.equivalence import check_margin
from faceattr.stats.proportions import check_alpha

__all__ = ["EXIT_WORDS", "ComparisonResult", "compare_main", "compare_paths",
           "render_html_section", "render_text"]

Source = LoadedRun | LegacyFile


def _load(path: Path, label: Literal["A", "B"]) -> Source:
    if path.is_dir():
        return load_run(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    return load_legacy(path, label)


def _figures_of(source: Source, label: Literal["A", "B"]) -> tuple[FigureEntry, ...]:
    return run_figures(source, label) if isinstance(source, LoadedRun) else source.entries


def _kind(source: Source) -> SourceKind:
    return "faceattr-run" if isinstance(source, LoadedRun) else source.layout


def _compare_figures_only(a: Source, b: Source, *, margin: float,
                          alpha: float) -> ComparisonResult:
    """At least one side is a legacy file: compare reported figures; always ``EXIT_INPUT``."""
    findings: list[Finding] = []
    for source in (a, b):
        if isinstance(source, LegacyFile):
            findings.extend(source.findings)
    figures, more = compare_figures(_figures_of(a, "A"), _figures_of(b, "B"), alpha=alpha)
    findings.extend(more)
    reasons = []
    no_ids = [lbl for lbl, s in (("A", a), ("B", b)) if isinstance(s, LegacyFile)]
    reasons.append(f"cannot compare paired: {' and '.join(no_ids)} "
                   f"{'has' if len(no_ids) == 1 else 'have'} no pair ids, so no paired "
                   "comparison (and no regression test) is possible")
    both = [f for f in figures if f.a is not None and f.b is not None]
    for fc in both:
        assert fc.a is not None
        assert fc.b is not None
        if not fc.same_estimand:
            reasons.append(f"different estimands for {fc.model}/{fc.method}: A is "
                           f"{fc.a.estimand}, B is {fc.b.estimand}")
        for fig in (fc.a, fc.b):
            if fig.degenerate:
                reasons.append(f"degenerate: {fig.source} {fc.model}/{fc.method} has std 0 "
                               f"(FR {fig.estimate}): every per-pair value is equal")
        if fc.disagreement:
            reasons.append(f"disagreement on {fc.model}/{fc.method}: A {fc.a.estimate:.4f} "
                           f"[{fc.a.low:.4f}, {fc.a.high:.4f}] vs B {fc.b.estimate:.4f} "
                           f"[{fc.b.low:.4f}, {fc.b.high:.4f}] (reported intervals do not "
                           "overlap)")
    if not both:
        reasons.append("no (model, method) is present in both")
    return ComparisonResult(path_a=_path(a), path_b=_path(b), kind_a=_kind(a), kind_b=_kind(b),
                            margin=margin, alpha=alpha, exit_code=EXIT_INPUT,
                            exit_reasons=tuple(reasons), context=(), findings=tuple(findings),
                            figures=figures, paired=())


def _path(source: Source) -> str:
    return source.path


def compare_paths(path_a: Path, path_b: Path, *, margin: float,
                  alpha: float) -> ComparisonResult:
    """Compare two results (run folders or legacy files) and return the typed result.

    Parameters
    ----------
    path_a, path_b : Path
        Baseline and candidate: a faceattr run folder or a legacy results JSON file.
    margin : float
        Declared equivalence margin on the FR difference, a fraction in (0, 1).
    alpha : float
        Level of the McNemar test and of each one-sided TOST test, in (0, 0.5).

    Returns
    -------
    ComparisonResult
        With ``exit_code`` 0, 1, 2 or 4 (module docstring) and its reasons.

    Raises
    ------
    InputError
        A missing or unreadable input, or a margin or level out of range.
    """
    try:
        m = check_margin(margin)
        a_ = check_alpha(alpha)
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc)) from None
    if a_ >= 0.5:
        raise InputError(f"alpha must be < 0.5 (TOST uses a 1 - 2 alpha interval), got {alpha}")
    a, b = _load(Path(path_a), "A"), _load(Path(path_b), "B")
    if isinstance(a, LoadedRun) and isinstance(b, LoadedRun):
        return compare_runs(a, b, margin=m, alpha=a_)
    return _compare_figures_only(a, b, margin=m, alpha=a_)


def compare_main(path_a: str | Path, path_b: str | Path, *, margin: float, alpha: float,
                 format: Literal["text", "json"]) -> tuple[int, str]:
    """What ``faceattr compare A B [--margin M] [--alpha A] [--format json]`` runs.

    Returns the exit code and the text to print (strict JSON for ``format="json"``).
    Bad input raises a one-line :class:`~faceattr.errors.InputError` (the CLI prints it and
    exits ``EXIT_INPUT``, 2).
    """
    if format not in ("text", "json"):
        raise InputError(f"format must be 'text' or 'json', got {format!r}")
    result = compare_paths(Path(path_a), Path(path_b), margin=margin, alpha=alpha)
    text = dumps_strict(result.to_json(), indent=2) + "\n" if format == "json" else \
        render_text(result)
    return result.exit_code, text


def render_html_section(result: ComparisonResult) -> str:
    """The comparison as an escaped HTML fragment (``<section>``) for the report."""
    import html

    body = html.escape(render_text(result))
    verdict = EXIT_WORDS[result.exit_code]
    return (f'<section class="comparison"><h2>Comparison: {verdict} (exit '
            f"{result.exit_code})</h2><pre>{body}</pre></section>")
