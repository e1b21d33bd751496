"""Exp 6.4 across models: the same pairs and methods on several networks, joined on pair_id.

``faceattr compare`` joins two runs per (model, method); runs of *different* models share no
(model, method) key. This joins them per method instead: for every pair of runs (A, B) and
every method id in both, :func:`faceattr.compare.runs.compare_pair_sets` on the shared pair
ids (exact McNemar, McNemar 1947; Newcombe's paired risk difference B - A, Newcombe 1998; paired
TOST at the declared margin, Schuirmann 1987), so "model-agnostic" can only be claimed as a
shown equivalence within the margin, and too few pairs is "inconclusive" with the pairs
needed. The runs must have been made on the same images: a ``pair_id`` naming other files in
another run is refused.

Also the per-method FR of each model with its interval, and the share of trivial (uniform)
maps per method with a Wilson interval (Wilson 1927), read from the run summaries and records.

Command line::

    python -m faceattr.compare.across_models RUN_DIR RUN_DIR [...] [--margin 0.1] [--alpha 0.05]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from faceattr.compare.result import PairedComparison
from faceattr.compare.runs import LoadedRun, compare_pair_sets, load_run
from faceattr.errors import EXIT_INPUT, EXIT_OK, InputError
from faceattr.stats.proportions import proportion_interval

__all__ = ["ModelRow", "across_models", "main", "model_rows", "render"]


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One (model, method): FR (intention-to-treat) and trivial-map share with intervals."""

    model: str
    method: str
    n_pairs: int
    fr: float
    fr_low: float
    fr_high: float
    n_trivial: int
    trivial: float
    trivial_low: float
    trivial_high: float


def _model(run: LoadedRun) -> str:
    models = {key[0] for key in run.groups}
    if len(models) != 1:
        raise InputError(f"{run.path}: expected a run of one model, found {sorted(models)}")
    return models.pop()


def _check_images(runs: Sequence[LoadedRun]) -> None:
    seen: dict[str, tuple[str, str, str]] = {}
    for run in runs:
        for row in run.manifest.get("pairs", []):
            pid = str(row["pair_id"])
            images = (str(row["sha256_a"]), str(row["sha256_b"]), run.path)
            if pid in seen and seen[pid][:2] != images[:2]:
                raise InputError(f"pair {pid} names other images in {run.path} than in "
                                 f"{seen[pid][2]}; compare runs on the same photos")
            seen.setdefault(pid, images)


def model_rows(run: LoadedRun, *, alpha: float) -> list[ModelRow]:
    """FR and trivial share per method of one run (Wilson intervals at ``1 - alpha``)."""
    rows = []
    for (model, method), group in sorted(run.groups.items()):
        n = len(group)
        falsified = sum(bool(r.falsified) for r in group.values())
        trivial = sum(r.status == "trivial" for r in group.values())
        fr = proportion_interval(falsified, n, method="wilson", alpha=alpha)
        tr = proportion_interval(trivial, n, method="wilson", alpha=alpha)
        rows.append(ModelRow(model=model, method=method, n_pairs=n, fr=fr.estimate,
                             fr_low=fr.low, fr_high=fr.high, n_trivial=trivial,
                             trivial=tr.estimate, trivial_low=tr.low, trivial_high=tr.high))
    return rows


def across_models(runs: Sequence[LoadedRun], *, margin: float, alpha: float
                  ) -> list[PairedComparison]:
    """Every pair of runs x every shared method id, compared on the shared pair ids.

    ``PairedComparison.model`` reads ``"<model A> vs <model B>"``; B - A differences.
    """
    _check_images(runs)
    out = []
    for a, b in itertools.combinations(runs, 2):
        label = f"{_model(a)} vs {_model(b)}"
        methods_a = {method: group for (_, method), group in a.groups.items()}
        methods_b = {method: group for (_, method), group in b.groups.items()}
        for method in sorted(set(methods_a) & set(methods_b)):
            out.append(compare_pair_sets(label, method, methods_a[method], methods_b[method],
                                         margin=margin, alpha=alpha, theorem_a=a.theorem,
                                         theorem_b=b.theorem))
    return out


_WORDS = {"regression": "different (difference shown)",
          "equivalent": "equivalent (TOST within the margin)",
          "inconclusive": "inconclusive (neither shown)"}


def render(runs: Sequence[LoadedRun], *, margin: float, alpha: float) -> str:
    """The tables as Markdown: FR and trivial share per model and method, then the pairwise
    model comparisons per method."""
    level = f"{1 - alpha:.0%}"
    lines = [f"| model | method | pairs | FR (ITT) [{level} Wilson] | trivial maps [{level}] |",
             "|---|---|---|---|---|"]
    for run in runs:
        for r in model_rows(run, alpha=alpha):
            lines.append(f"| {r.model} | {r.method} | {r.n_pairs} | {r.fr:.3f} "
                         f"[{r.fr_low:.3f}, {r.fr_high:.3f}] | {r.n_trivial}/{r.n_pairs} = "
                         f"{r.trivial:.3f} [{r.trivial_low:.3f}, {r.trivial_high:.3f}] |")
    lines += ["", f"| models (A vs B; B - A) | method | verdict (margin +-{margin:g}) | "
              "details |", "|---|---|---|---|"]
    for pc in across_models(runs, margin=margin, alpha=alpha):
        lines.append(f"| {pc.model} | {pc.method} | {_WORDS.get(pc.verdict, pc.verdict)} | "
                     f"{pc.reason} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print :func:`render` for the given run folders; exit 2 on unusable input."""
    parser = argparse.ArgumentParser(prog="python -m faceattr.compare.across_models",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders, one model each")
    parser.add_argument("--margin", type=float, default=0.10,
                        help="equivalence margin for FR differences, a fraction (default 0.10)")
    parser.add_argument("--alpha", type=float, default=0.05, help="test level (default 0.05)")
    args = parser.parse_args(argv)
    try:
        if len(args.runs) < 2:
            raise InputError("give at least two run folders")
        runs = [load_run(path) for path in args.runs]
        print(render(runs, margin=args.margin, alpha=args.alpha))
    except InputError as exc:
        print(f"faceattr: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
