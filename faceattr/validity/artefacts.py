"""Artefact controls of the removal test: is a verdict explained by the removed region's shape?

Rong et al. (ROAD, ICML 2022) showed that the *shape* of the removed pixels leaks information:
a model can react to a mask's outline whatever was under it. Removal benchmarks can also favour
blurry maps. Two controls, run under every declared fill strategy on the first pairs of a run:

- **shape control**: ``S_high``'s exact shape is moved to a random admissible position (inside
  the image, overlapping the original ``S_high`` by at most ``max_overlap_frac``) and the test
  is re-run against the same ``S_low``. When the moved shape also *passes*, the method's pass
  is explainable by shape alone (a compact blob anywhere on the face outweighs the least
  relevant pixels); the rate of that among the method's passes is reported with its interval,
  for both verdicts, beside the mean margins of the map and of its moved shape;
- **blur control**: a smoothed random map (declared as a method) must stay at chance.

The shift of each pair comes from the stream ``(seed, pair_id, model, method, "shape_shift")``
and is the same for every fill, so fills are compared on identical controls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.signal import fftconvolve

from faceattr.falsification.regions import Regions, TrivialMap
from faceattr.records import PairRecord
from faceattr.stats.proportions import ProportionInterval, ProportionMethod, proportion_interval

__all__ = ["ArtefactCell", "ArtefactResult", "ShapeControl", "artefact_cell", "shape_shifted"]


def _offsets_map(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """``out[dy + H - 1, dx + W - 1] = |shift(a, dy, dx) & b|`` for every offset (rounded):
    the cross-correlation of two binary masks, by FFT."""
    corr: NDArray[np.float64] = np.rint(fftconvolve(b, a[::-1, ::-1], mode="full"))
    return corr


def shape_shifted(regions: Regions, shape_hw: tuple[int, int], rng: np.random.Generator, *,
                  max_overlap_frac: float) -> Regions | TrivialMap:
    """Move ``S_high`` rigidly to a uniformly drawn admissible offset.

    Admissible: the moved region lies inside the image and shares at most
    ``max_overlap_frac * |S_high|`` pixels with the original ``S_high`` (it may overlap
    ``S_low``: the two regions are filled in separate counterfactuals).

    Returns
    -------
    Regions or TrivialMap
        The moved ``S_high`` with the original ``S_low``; trivial when no offset is admissible.
    """
    height, width = shape_hw
    high = np.zeros((height, width))
    high.flat[regions.high_idx] = 1.0
    ys, xs = np.divmod(regions.high_idx, width)
    dys = np.arange(-height + 1, height)[:, None]
    dxs = np.arange(-width + 1, width)[None, :]
    inside = ((dys >= -ys.min()) & (dys <= height - 1 - ys.max())
              & (dxs >= -xs.min()) & (dxs <= width - 1 - xs.max()))
    overlap_self = _offsets_map(high, high)
    admissible = inside & (overlap_self <= max_overlap_frac * regions.high_idx.size)
    candidates = np.argwhere(admissible)
    if candidates.size == 0:
        return TrivialMap("no admissible position for the moved S_high (inside the image, "
                          f"overlap with itself <= {max_overlap_frac:g})")
    row, col = candidates[int(rng.integers(0, len(candidates)))]
    dy, dx = int(row) - (height - 1), int(col) - (width - 1)
    moved = np.sort((ys + dy) * width + (xs + dx))
    return Regions(high_idx=moved.astype(np.intp), low_idx=regions.low_idx,
                   n_boundary_ties=regions.n_boundary_ties)


@dataclass(frozen=True, slots=True)
class ShapeControl:
    """The shape control of one cell under one verdict rule.

    Attributes
    ----------
    verdict : {"simple", "theorem"}
    control_pass : ProportionInterval
        Share of pairs where the moved shape passes (a control without an admissible position
        counts as passing: the conservative direction for a claim that shape explains little;
        pairs whose own map is untestable cannot pass).
    explained : ProportionInterval or None
        Among the method's passing pairs (same verdict), the share whose shape control also
        passes — the share of verdicts explainable by shape alone.
    explained_undefined_reason : str or None
        Why ``explained`` is None (the method passed on no pair).
    """

    verdict: str
    control_pass: ProportionInterval
    explained: ProportionInterval | None
    explained_undefined_reason: str | None

    def __post_init__(self) -> None:
        if self.verdict not in ("simple", "theorem"):
            raise ValueError(f"verdict {self.verdict!r} is not simple|theorem")
        if (self.explained is None) == (self.explained_undefined_reason is None):
            raise ValueError("explained needs a value or a reason, not both")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"verdict": self.verdict, "control_pass": self.control_pass.to_json(),
                "explained": None if self.explained is None else self.explained.to_json(),
                "explained_undefined_reason": self.explained_undefined_reason}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> ShapeControl:
        """Rebuild from JSON (exact keys)."""
        explained = row["explained"]
        return cls(verdict=row["verdict"],
                   control_pass=ProportionInterval(**row["control_pass"]),
                   explained=None if explained is None else ProportionInterval(**explained),
                   explained_undefined_reason=row["explained_undefined_reason"])


@dataclass(frozen=True, slots=True)
class ArtefactCell:
    """One (method, fill) cell of the artefact controls.

    Attributes
    ----------
    method, fill : str
    n_pairs : int
    fr : ProportionInterval
        The method's FR (primary verdict, intention-to-treat) under this fill.
    shape : tuple of ShapeControl
        The shape control under the simple and the Theorem 3.5 verdict.
    mean_margin_rad, mean_margin_control_rad : float or None
        Mean ``d_high - d_low`` of the map and of its moved shape over pairs where both are
        valid (None when there is none).
    n_control_trivial : int
        Testable pairs where no admissible position existed.
    """

    method: str
    fill: str
    n_pairs: int
    fr: ProportionInterval
    shape: tuple[ShapeControl, ...]
    mean_margin_rad: float | None
    mean_margin_control_rad: float | None
    n_control_trivial: int

    def __post_init__(self) -> None:
        if self.fr.n != self.n_pairs or any(c.control_pass.n != self.n_pairs
                                            for c in self.shape):
            raise ValueError("artefact intervals must be over all pairs of the cell")
        if sorted(c.verdict for c in self.shape) != ["simple", "theorem"]:
            raise ValueError("a cell holds the shape control under both verdicts")
        if not 0 <= self.n_control_trivial <= self.n_pairs:
            raise ValueError("n_control_trivial outside [0, n_pairs]")
        if (self.mean_margin_rad is None) != (self.mean_margin_control_rad is None):
            raise ValueError("the two mean margins are both present or both absent")

    def shape_control(self, verdict: str) -> ShapeControl:
        """The shape control under one verdict."""
        (control,) = [c for c in self.shape if c.verdict == verdict]
        return control

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"method": self.method, "fill": self.fill, "n_pairs": self.n_pairs,
                "fr": self.fr.to_json(), "shape": [c.to_json() for c in self.shape],
                "mean_margin_rad": self.mean_margin_rad,
                "mean_margin_control_rad": self.mean_margin_control_rad,
                "n_control_trivial": self.n_control_trivial}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> ArtefactCell:
        """Rebuild from JSON (exact keys)."""
        return cls(method=row["method"], fill=row["fill"], n_pairs=row["n_pairs"],
                   fr=ProportionInterval(**row["fr"]),
                   shape=tuple(ShapeControl.from_json(c) for c in row["shape"]),
                   mean_margin_rad=row["mean_margin_rad"],
                   mean_margin_control_rad=row["mean_margin_control_rad"],
                   n_control_trivial=row["n_control_trivial"])


@dataclass(frozen=True, slots=True)
class ArtefactResult:
    """All cells of the artefact controls of one run (``artefacts.json``)."""

    n_pairs: int
    max_overlap_frac: float
    cells: tuple[ArtefactCell, ...]

    def cell(self, method: str, fill: str) -> ArtefactCell:
        """The cell of one method and fill (an unknown one raises)."""
        for cell in self.cells:
            if cell.method == method and cell.fill == fill:
                return cell
        raise KeyError(f"no artefact-control cell for method {method!r}, fill {fill!r}")

    @property
    def fills(self) -> tuple[str, ...]:
        """The fills run, in run order."""
        return tuple(dict.fromkeys(c.fill for c in self.cells))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"n_pairs": self.n_pairs, "max_overlap_frac": self.max_overlap_frac,
                "cells": [c.to_json() for c in self.cells]}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> ArtefactResult:
        """Rebuild from JSON (exact keys)."""
        if set(row) != {"n_pairs", "max_overlap_frac", "cells"}:
            raise ValueError(f"artefacts.json keys mismatch: {sorted(row)}")
        return cls(n_pairs=row["n_pairs"], max_overlap_frac=row["max_overlap_frac"],
                   cells=tuple(ArtefactCell.from_json(c) for c in row["cells"]))


def _falsified(record: PairRecord, verdict: str) -> bool:
    return record.falsified_simple if verdict == "simple" else record.falsified_theorem


def _shape_control(tested: Sequence[PairRecord], control: Sequence[PairRecord], verdict: str,
                   interval: Callable[[int, int], ProportionInterval]) -> ShapeControl:
    # a control without an admissible position counts as passing (conservative); a control of
    # an untestable map (the tested record is not valid) cannot pass
    control_passes = [t.status == "valid" and (c.status != "valid" or not _falsified(c, verdict))
                      for t, c in zip(tested, control, strict=True)]
    passes = [not _falsified(t, verdict) for t in tested]
    n_passes = sum(passes)
    n_explained = sum(c for c, p in zip(control_passes, passes, strict=True) if p)
    return ShapeControl(
        verdict=verdict, control_pass=interval(sum(control_passes), len(tested)),
        explained=interval(n_explained, n_passes) if n_passes else None,
        explained_undefined_reason=None if n_passes else "the method passed on no pair")


def artefact_cell(method: str, fill: str, tested: Sequence[PairRecord],
                  control: Sequence[PairRecord], *, alpha: float,
                  interval_method: ProportionMethod) -> ArtefactCell:
    """Summarise one method's records and its shape-control records under one fill."""
    if [r.pair_id for r in tested] != [r.pair_id for r in control]:
        raise ValueError("shape-control records must follow the tested records pair by pair")

    def interval(count: int, total: int) -> ProportionInterval:
        return proportion_interval(count, total, method=interval_method, alpha=alpha)

    both = [(t.margin_rad, c.margin_rad) for t, c in zip(tested, control, strict=True)
            if t.margin_rad is not None and c.margin_rad is not None]
    return ArtefactCell(
        method=method, fill=fill, n_pairs=len(tested),
        fr=interval(sum(r.falsified for r in tested), len(tested)),
        shape=tuple(_shape_control(tested, control, v, interval) for v in ("simple", "theorem")),
        mean_margin_rad=float(np.mean([t for t, _ in both])) if both else None,
        mean_margin_control_rad=float(np.mean([c for _, c in both])) if both else None,
        n_control_trivial=sum(t.status == "valid" and c.status != "valid"
                              for t, c in zip(tested, control, strict=True)))
