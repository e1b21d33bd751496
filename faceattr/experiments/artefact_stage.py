"""The artefact-control stage (``[artefacts]``): shape and blur controls under every fill.

Runs on ``n_pairs`` pairs spread evenly over the run (genuine and impostor alike), writes
``artefacts.json`` (:class:`~faceattr.validity.artefacts.ArtefactResult`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from faceattr.falsification import FalsificationSettings, Regions, falsify_maps
from faceattr.falsification.counterfactuals import FillStrategy
from faceattr.falsification.regions import TrivialMap
from faceattr.io import read_json, write_json
from faceattr.rng import numpy_generator
from faceattr.validity.artefacts import ArtefactCell, ArtefactResult, artefact_cell, shape_shifted

if TYPE_CHECKING:
    from faceattr.experiments.context import RunContext

__all__ = ["ARTEFACTS_FILE", "load_artefacts", "run_artefact_stage", "spread_rows"]

ARTEFACTS_FILE = "artefacts.json"


def spread_rows(n_total: int, n_wanted: int) -> list[int]:
    """``n_wanted`` row indices spread evenly over ``0 .. n_total - 1`` (first and last in)."""
    if n_wanted >= n_total:
        return list(range(n_total))
    return sorted({int(v) for v in np.rint(np.linspace(0, n_total - 1, n_wanted))})


def _fill_settings(settings: FalsificationSettings, fill: str,
                   blur_sigma_px: float) -> FalsificationSettings:
    sigma = blur_sigma_px if fill == "blur" else settings.blur_sigma_px
    return replace(settings, fill=fill_strategy(fill), blur_sigma_px=sigma)


def fill_strategy(fill: str) -> FillStrategy:
    """A validated fill name (any registered or importable :class:`Fill`)."""
    from faceattr.falsification.counterfactuals import fill_of

    fill_of(fill)
    return fill


def run_artefact_stage(ctx: RunContext) -> None:
    """Run the declared artefact controls (``[artefacts]``) on the run's shared inputs."""
    from faceattr.experiments.context import (
        attribute_in_fixed_chunks,
        falsification_settings,
        ranked_maps,
    )

    protocol, model = ctx.protocol, ctx.model
    spec = protocol.artefacts
    assert spec is not None  # the pipeline runs a stage only when it is declared
    every = ctx.pairs
    pairs = [every[i] for i in spread_rows(len(every), spec.n_pairs)]
    inputs, batch = ctx.batch(pairs)
    settings = falsification_settings(protocol)
    shape_hw = (inputs.probes.shape[-2], inputs.probes.shape[-1])
    cells: list[ArtefactCell] = []
    for method in ctx.methods():
        if method.method_id not in spec.methods:
            continue
        maps: NDArray[np.float64] = ranked_maps(protocol, method.method_id,
                                                attribute_in_fixed_chunks(method, batch).maps)

        def move(row: int, regions: Regions, method_id: str = method.method_id
                 ) -> Regions | TrivialMap:
            rng = numpy_generator(protocol.seed, pairs[row].pair_id, model.name, method_id,
                                  "shape_shift")
            return shape_shifted(regions, shape_hw, rng, max_overlap_frac=spec.max_overlap_frac)

        for fill in spec.fills:
            fill_settings = _fill_settings(settings, fill, spec.blur_sigma_px)
            tested = falsify_maps(model, inputs, maps, method_id=method.method_id,
                                  seed=protocol.seed, settings=fill_settings)
            control = falsify_maps(model, inputs, maps, method_id=f"{method.method_id}@shape",
                                   seed=protocol.seed, settings=fill_settings, transform=move)
            cells.append(artefact_cell(method.method_id, fill, tested, control,
                                       alpha=protocol.alpha,
                                       interval_method=protocol.interval_method))
    result = ArtefactResult(n_pairs=len(pairs), max_overlap_frac=spec.max_overlap_frac,
                            cells=tuple(cells))
    write_json(ctx.folder.root / ARTEFACTS_FILE, result.to_json())


def load_artefacts(run_root: Path) -> ArtefactResult | None:
    """The run's artefact controls, or None when the protocol declared none."""
    path = run_root / ARTEFACTS_FILE
    return ArtefactResult.from_json(read_json(path)) if path.exists() else None
