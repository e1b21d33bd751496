"""``faceattr plan``: the work a protocol implies, and its expected time from a calibration.

Cost model (Theorem 3.7): a run costs, per pair and method, one attribution plus ``2K``
counterfactual forwards. Both unit costs are calibrated on the protocol's first pairs with the
protocol's own settings: the attribution by running each method, the counterfactual by running
the falsification engine itself (building the counterfactuals — fill, per-draw noise — and the
batched forward), so the estimate carries the engine's overheads, not only the bare forward;
plus each record's schema validation (on write and on the two reads of a run).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from faceattr.experiments.context import (
    ATTRIBUTION_CHUNK,
    attribution_batch,
    build_methods,
    build_model,
    build_source,
    falsification_settings,
    load_pair_inputs,
    ranked_maps,
)
from faceattr.falsification import FalsificationSettings, PairInputs, falsify_maps
from faceattr.falsification.regions import TrivialMap
from faceattr.io import dumps_strict
from faceattr.models.base import VerificationModel
from faceattr.protocol import Protocol
from faceattr.records import PairRecord
from faceattr.rng import numpy_generator
from faceattr.runfolder.schema import validate_artefact

__all__ = ["MethodPlan", "RunPlan", "plan_run"]


@dataclass(frozen=True, slots=True)
class MethodPlan:
    """Cost of one method over the run: attribution calls and counterfactual forwards."""

    method: str
    attribution_s_per_pair: float
    counterfactual_forwards: int
    expected_s: float


@dataclass(frozen=True, slots=True)
class RunPlan:
    """The work a protocol implies."""

    protocol: str
    n_pairs: int
    n_methods: int
    k_per_region: int
    counterfactual_s: float
    methods: tuple[MethodPlan, ...]

    @property
    def expected_s(self) -> float:
        """Expected wall time, seconds (one process, this machine)."""
        return sum(m.expected_s for m in self.methods)

    def render(self) -> str:
        """A table for the terminal."""
        lines = [f"protocol {self.protocol}: {self.n_pairs} pairs x {self.n_methods} methods, "
                 f"K = {self.k_per_region} per region -> {2 * self.k_per_region} counterfactual "
                 f"forwards per pair per method; {1e3 * self.counterfactual_s:.2f} ms per "
                 "counterfactual (calibrated through the engine)",
                 f"{'method':<24}{'attr s/pair':>12}{'cf forwards':>14}{'expected s':>12}"]
        lines += [f"{m.method:<24}{m.attribution_s_per_pair:>12.4f}"
                  f"{m.counterfactual_forwards:>14}{m.expected_s:>12.1f}" for m in self.methods]
        lines.append(f"{'total':<24}{'':>12}{'':>14}{self.expected_s:>12.1f}")
        lines.append("(counterfactual forwards scaled by the share of calibration maps that are "
                     "testable: trivial maps need none)")
        return "\n".join(lines)


def _counterfactual_s(model: VerificationModel, inputs: PairInputs,
                      settings: FalsificationSettings, seed: int
                      ) -> tuple[float, list[PairRecord]]:
    """Seconds per counterfactual through the engine, on seeded random maps (after a warm-up),
    and the calibration's records."""
    n, height, width = len(inputs.pairs), inputs.probes.shape[-2], inputs.probes.shape[-1]
    maps = numpy_generator(seed, "plan", "calibration_maps").random((n, height, width))
    falsify_maps(model, inputs, maps, method_id="plan", seed=seed, settings=settings)
    timings = []
    for _ in range(3):  # the median of three: one calibration is a fraction of a second
        started = time.perf_counter()
        records = falsify_maps(model, inputs, maps, method_id="plan", seed=seed,
                               settings=settings)
        timings.append(time.perf_counter() - started)
    tested = sum(r.status == "valid" for r in records)
    return float(np.median(timings)) / max(1, tested * 2 * settings.k_per_region), records


def _testable_frac(maps: NDArray[np.float64], settings: FalsificationSettings) -> float:
    """Share of calibration maps the test can split (trivial and non-finite maps need no
    counterfactual forwards)."""
    def testable(relevance: NDArray[np.float64]) -> bool:
        if not np.isfinite(relevance).all():
            return False
        return not isinstance(settings.split(relevance), TrivialMap)

    return sum(testable(m) for m in maps) / len(maps)


def _record_s(records: list[PairRecord]) -> float:
    """Seconds to validate and serialise one record (written once, read back twice)."""
    validate_artefact("record", records[0].to_json(), "plan")  # builds the cached validator
    started = time.perf_counter()
    for record in records:
        row = record.to_json()
        validate_artefact("record", row, "plan")
        dumps_strict(row)
    return 3 * (time.perf_counter() - started) / len(records)


def plan_run(protocol: Protocol) -> RunPlan:
    """Calibrate on the first pairs and extrapolate to the whole protocol."""
    source = build_source(protocol)
    all_pairs = source.pairs()
    pairs = all_pairs[:ATTRIBUTION_CHUNK]
    model = build_model(protocol)
    inputs = load_pair_inputs(source, pairs, model, protocol.execution.forward_chunk)
    settings = falsification_settings(protocol)
    counterfactual_s, records = _counterfactual_s(model, inputs, settings, protocol.seed)
    record_s = _record_s(records)
    batch = attribution_batch(model, inputs, protocol.seed)
    k = settings.k_per_region
    n_pairs = len(all_pairs)
    plans = []
    for method in build_methods(protocol):
        started = time.perf_counter()
        maps = method.attribute(batch)
        attr_s = (time.perf_counter() - started) / len(pairs)
        testable = _testable_frac(ranked_maps(protocol, method.method_id, maps), settings)
        forwards = round(n_pairs * testable) * 2 * k
        plans.append(MethodPlan(method=method.method_id, attribution_s_per_pair=attr_s,
                                counterfactual_forwards=forwards,
                                expected_s=n_pairs * (attr_s + record_s)
                                + forwards * counterfactual_s))
    return RunPlan(protocol=protocol.name, n_pairs=n_pairs, n_methods=len(plans),
                   k_per_region=k, counterfactual_s=counterfactual_s, methods=tuple(plans))
