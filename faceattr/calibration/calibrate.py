"""``faceattr calibrate PROTOCOL``: Theorem 3.5's thresholds for the protocol's model, from a
calibration split that the test split never uses, written into the protocol as its
pre-registration (``[calibration.result]``); and the check that refuses a run whose
thresholds were not produced that way.

The calibration split runs through the records stage's own code (the protocol's methods, fill,
K, noise and seeded streams) plus one *blind* removal (the ``random`` control's regions,
:data:`BLIND_ID`). Drifts do not depend on the thresholds, so one pass gives the rule its
inputs (:mod:`faceattr.calibration.rule`) and every method's falsified count on the
calibration split under the calibrated thresholds: the numbers the controls' and separations'
claim thresholds are derived from, never from the test pairs.
"""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from faceattr.calibration.block import rewrite_protocol_text
from faceattr.calibration.rule import Thresholds, genuine_angle_quantiles
from faceattr.calibration.spec import CalibrationSpec, MethodFr, calibration_inputs_sha256
from faceattr.calibration.split import CalibrationSplit, check_disjoint, load_split
from faceattr.data.pairs import Pair
from faceattr.errors import InputError
from faceattr.falsification.verdicts import theorem_verdict
from faceattr.io import atomic_write_text, read_user_text
from faceattr.protocol import MethodSpec, Protocol, load_protocol
from faceattr.records import PairRecord

__all__ = ["BLIND_ID", "Calibration", "calibrate_file", "check_calibrated", "measure",
           "theorem_decides"]

#: Method id of the blind removal (the ``random`` control) on the calibration split.
BLIND_ID = "calibration-blind"


@dataclass(frozen=True)
class Calibration:
    """What ``faceattr calibrate`` measured and writes."""

    thresholds: Thresholds
    methods: dict[str, MethodFr]
    verdicts: dict[str, dict[str, bool]]  # method -> pair_id -> Theorem 3.5 falsified
    gate_auc: float
    n_pairs: int
    n_genuine: int
    manifest_sha256: str
    weights_sha256: str
    wall_s: float


def theorem_decides(protocol: Protocol) -> bool:
    """Whether Theorem 3.5's thresholds decide anything the gate judges: the primary verdict,
    a claim that reads the Theorem 3.5 verdict (``verdict = "theorem"``), or a stratified
    analysis of it (``[strata] verdict = "theorem"`` with the ``falsified`` outcome)."""
    if protocol.falsification.settings.verdict == "theorem":
        return True
    strata = protocol.strata
    if strata is not None and strata.verdict == "theorem" and "falsified" in strata.outcomes:
        return True
    return any(c.params_dict().get("verdict") == "theorem" for c in protocol.claims)


def _spec(protocol: Protocol) -> CalibrationSpec:
    where = Path(protocol.source_path).name
    if protocol.falsification.thresholds == "fixed":
        raise InputError(f"{where}: [falsification] declares thresholds = \"fixed\"; remove "
                         "thresholds and thresholds_reason to calibrate them")
    if protocol.calibration is None:
        raise InputError(f"{where}: no [calibration] table; declare [calibration] rule = "
                         "\"genuine_angle_quantiles\" and a disjoint split in [calibration.data]"
                         " (e.g. first_identity = 2000, n_pairs = 100)")
    if protocol.falsification.settings.distance != "geodesic":
        raise InputError(f"{where}: rule genuine_angle_quantiles calibrates geodesic thresholds "
                         "(radians); set [falsification] distance = \"geodesic\" or declare "
                         "thresholds = \"fixed\"")
    return protocol.calibration


def _split(protocol: Protocol, spec: CalibrationSpec,
           test_pairs: Sequence[Pair]) -> CalibrationSplit:
    from faceattr.data.sources import build_source

    where = f"{Path(protocol.source_path).name} [calibration.data]"
    calibration_pairs = build_source(spec.data, seed=protocol.seed).pairs()
    check_disjoint(test_pairs, calibration_pairs, where)  # before any image is loaded
    return load_split(spec.data, protocol.seed)


def _with_blind(protocol: Protocol) -> Protocol:
    blind = MethodSpec(id=BLIND_ID, method="random", relevance="signed", params=())
    return replace(protocol, methods=(*protocol.methods, blind))


def _records(protocol: Protocol, split: CalibrationSplit, model: Any,
             progress: bool) -> tuple[dict[str, list[PairRecord]], NDArray[np.float64]]:
    from faceattr.experiments.context import (
        build_methods,
        embed_images,
        pair_inputs,
        target_sanity_fixed_chunks,
    )
    from faceattr.experiments.method_records import method_records
    from faceattr.falsification.engine import clean_scores

    extended = _with_blind(protocol)
    methods = build_methods(extended)
    settings = protocol.falsification.settings
    embeddings = embed_images(model, split.images, protocol.execution.forward_chunk)
    out: dict[str, list[PairRecord]] = {m.method_id: [] for m in methods}
    scores: list[NDArray[np.float64]] = []
    step = protocol.execution.pairs_per_batch
    for start in tqdm(range(0, len(split.pairs), step), desc=f"calibrate {protocol.name}",
                      unit="batch", disable=not progress):
        inputs = pair_inputs(split.pairs[start:start + step], split.images, embeddings)
        scores.append(clean_scores(inputs))
        sanity = target_sanity_fixed_chunks(model, inputs, protocol.model.target_grad_norm_min)
        for method in methods:
            out[method.method_id] += method_records(method, model, inputs, extended, settings,
                                                    sanity)
    return out, np.concatenate(scores)


def _written(thresholds: Thresholds) -> Thresholds:
    """The thresholds as the protocol holds them: 4 decimals (0.1 mrad, far inside their
    intervals), epsilon rounded up so that the rounding never narrows it."""
    tau_high, tau_low = round(thresholds.tau_high, 4), round(thresholds.tau_low, 4)
    epsilon = math.ceil(thresholds.epsilon * 1e4) / 1e4
    if tau_high - tau_low < epsilon:
        raise InputError(f"calibration: tau_high - tau_low = {tau_high - tau_low:.4f} rad < "
                         f"epsilon = {epsilon:.4f} rad after rounding; raise the calibration "
                         "split's n_pairs")
    return replace(thresholds, tau_high=tau_high, tau_low=tau_low, epsilon=epsilon)


def _theorem_falsified(record: PairRecord, thresholds: Thresholds, alpha: float) -> bool:
    if record.status != "valid":
        return True  # intention-to-treat: trivial and error pairs count as falsified
    return theorem_verdict(np.asarray(record.drift_high_rad), np.asarray(record.drift_low_rad),
                           tau_high=thresholds.tau_high, tau_low=thresholds.tau_low,
                           epsilon=thresholds.epsilon, alpha=alpha).falsified


def measure(protocol: Protocol, *, progress: bool = False) -> Calibration:
    """Run the calibration split and derive the thresholds (nothing is written).

    Raises
    ------
    InputError
        No ``[calibration]``; fixed thresholds; a split that shares identities with the test
        split; a model that fails its gate on the calibration split; a rule that cannot
        separate the thresholds.
    """
    from faceattr.experiments.context import build_model, build_source
    from faceattr.experiments.gate import model_gate

    started = time.time()
    spec = _spec(protocol)
    split = _split(protocol, spec, build_source(protocol).pairs())
    model = build_model(protocol)
    records, scores = _records(protocol, split, model, progress)
    genuine = np.array([p.is_genuine for p in split.pairs])
    gate = model_gate(model.name, scores, genuine, min_auc=protocol.model.min_auc)
    if not gate.passed:
        raise InputError(f"{Path(protocol.source_path).name}: {model.name} fails its gate on the "
                         f"calibration split (AUC {gate.auc:.4f} < {gate.min_auc:g}); no "
                         "threshold is derived from a model that does not verify faces")
    angles = np.arccos(np.clip(scores[genuine], -1.0, 1.0))
    blind = np.array([np.mean(r.drift_high_rad + r.drift_low_rad)
                      for r in records.pop(BLIND_ID) if r.status == "valid"], dtype=np.float64)
    thresholds = _written(genuine_angle_quantiles(
        angles, blind, genuine_quantile=spec.genuine_quantile,
        blind_quantile=spec.blind_quantile, alpha=protocol.alpha))
    alpha = protocol.falsification.settings.alpha
    verdicts = {m: {r.pair_id: _theorem_falsified(r, thresholds, alpha) for r in rs}
                for m, rs in sorted(records.items())}
    methods = {m: MethodFr(theorem_falsified=sum(verdicts[m].values()),
                           simple_falsified=sum(r.falsified_simple for r in rs), n=len(rs))
               for m, rs in sorted(records.items())}
    return Calibration(thresholds=thresholds, methods=methods, verdicts=verdicts,
                       gate_auc=gate.auc,
                       n_pairs=len(split.pairs), n_genuine=int(genuine.sum()),
                       manifest_sha256=split.manifest_sha256,
                       weights_sha256=model.weights_sha256, wall_s=time.time() - started)


def _result(protocol: Protocol, raw: dict[str, Any], cal: Calibration) -> dict[str, Any]:
    from faceattr import __version__

    t = cal.thresholds
    return {"rule": _spec(protocol).rule, "tau_high": t.tau_high, "tau_low": t.tau_low,
            "epsilon": t.epsilon, "model": protocol.model.name,
            "weights_sha256": cal.weights_sha256, "manifest_sha256": cal.manifest_sha256,
            "inputs_sha256": calibration_inputs_sha256(raw), "n_pairs": cal.n_pairs,
            "n_genuine": cal.n_genuine, "faceattr_version": __version__,
            "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "methods": {m: {"theorem_falsified": fr.theorem_falsified,
                            "simple_falsified": fr.simple_falsified, "n": fr.n}
                        for m, fr in cal.methods.items()}}


def summary_lines(cal: Calibration, alpha: float) -> list[str]:
    """Human-readable lines: the thresholds with their intervals, each method's FRs."""
    from faceattr.stats.proportions import proportion_interval

    t, g, b = cal.thresholds, cal.thresholds.genuine, cal.thresholds.blind
    level = f"{1 - alpha:.0%}"
    lines = [f"tau_high = {t.tau_high:.4f} rad: {g.quantile:g}-quantile of {g.n} genuine angles"
             f", {level} [{g.low_rad:.4f}, {g.high_rad:.4f}]",
             f"tau_low = {t.tau_low:.4f} rad: {b.quantile:g}-quantile of {b.n} blind-removal "
             f"drifts, {level} [{b.low_rad:.4f}, {b.high_rad:.4f}]",
             f"epsilon = {t.epsilon:.4f} rad: the sum of both half-widths",
             f"calibration split: {cal.n_pairs} pairs ({cal.n_genuine} genuine), model gate "
             f"AUC {cal.gate_auc:.4f}",
             f"FR on the calibration split (Wilson {level}): Theorem 3.5 | simple"]
    for method, fr in cal.methods.items():
        theorem = proportion_interval(fr.theorem_falsified, fr.n, method="wilson", alpha=alpha)
        simple = proportion_interval(fr.simple_falsified, fr.n, method="wilson", alpha=alpha)
        lines.append(f"  {method}: {theorem.estimate:.3f} [{theorem.low:.3f}, "
                     f"{theorem.high:.3f}] | {simple.estimate:.3f} [{simple.low:.3f}, "
                     f"{simple.high:.3f}]")
    return lines


def separation_lines(cal: Calibration, pairs: Sequence[tuple[str, str]],
                     alpha: float) -> list[str]:
    """Each ``(better, worse)`` on the calibration split under Theorem 3.5: FRs, exact
    McNemar p (raw and Holm over ``pairs``), the paired difference's Newcombe interval."""
    from faceattr.stats import adjust_family, paired_mcnemar, paired_risk_difference

    if not pairs:
        return []
    raw = {f"{b}<{w}": paired_mcnemar(cal.verdicts[b], cal.verdicts[w], alpha=alpha).test
           for b, w in pairs}
    adjusted = adjust_family({k: t.p_value for k, t in raw.items()}, method="holm",
                             alpha=alpha)
    lines = [f"separations on the calibration split (Theorem 3.5, exact McNemar, Holm over "
             f"{len(pairs)}):"]
    for (better, worse), key in zip(pairs, raw, strict=True):
        diff = paired_risk_difference(cal.verdicts[better], cal.verdicts[worse], alpha=alpha)
        corrected = adjusted.adjusted[adjusted.claim_ids.index(key)]
        lines.append(f"  {better} < {worse}: FR {diff.rate_a:.3f} vs {diff.rate_b:.3f}, "
                     f"difference {diff.estimate:+.3f} [{diff.low:+.3f}, {diff.high:+.3f}], "
                     f"p = {raw[key].p_value:.3g}, Holm p = {corrected:.3g}")
    return lines


def declared_separations(protocol: Protocol) -> list[tuple[str, str]]:
    """The ``fr_separation`` claims' ``(better, worse)``, in declaration order."""
    return [(str(c.params_dict()["better"]), str(c.params_dict()["worse"]))
            for c in protocol.claims if c.kind == "fr_separation"]


def calibrate_file(path: Path, *, progress: bool = False) -> Calibration:
    """Calibrate the protocol at ``path`` and rewrite it (atomically, comments kept)."""
    import tomllib

    protocol = load_protocol(path)
    cal = measure(protocol, progress=progress)
    text = read_user_text(path, "protocol file", "give the protocol's .toml file")
    raw = tomllib.loads(text)
    t = cal.thresholds
    comments = [*summary_lines(cal, protocol.alpha),
                *separation_lines(cal, declared_separations(protocol), protocol.alpha)]
    new_text = rewrite_protocol_text(
        text, str(path), {"tau_high": t.tau_high, "tau_low": t.tau_low, "epsilon": t.epsilon},
        _result(protocol, raw, cal), comments)
    atomic_write_text(path, new_text)
    load_protocol(path)  # the written protocol validates
    return cal


def _refuse(protocol: Protocol, why: str) -> InputError:
    path = protocol.source_path
    return InputError(f"{Path(path).name}: Theorem 3.5 decides this run's verdicts but its "
                      f"thresholds were not calibrated for model {protocol.model.name!r} ({why}); "
                      f"run `faceattr calibrate {path}`, or declare [falsification] thresholds = "
                      "\"fixed\" with thresholds_reason = \"...\"")


def check_calibrated(protocol: Protocol, weights_sha256: str, test_pairs: Sequence[Pair]) -> None:
    """Refuse a run whose Theorem 3.5 thresholds decide its verdicts but were not produced by
    ``faceattr calibrate`` for this model, these weights and this calibration split.

    Raises
    ------
    InputError
        One line naming what does not match and the fix (``faceattr calibrate P.toml``).
    """
    import json

    if not theorem_decides(protocol) or protocol.falsification.thresholds == "fixed":
        return
    spec, settings = protocol.calibration, protocol.falsification.settings
    if spec is None:
        raise _refuse(protocol, "no [calibration] table")
    result = spec.result
    if result is None:
        raise _refuse(protocol, "no [calibration.result]")
    written = (settings.tau_high, settings.tau_low, settings.epsilon)
    if written != (result.tau_high, result.tau_low, result.epsilon):
        raise _refuse(protocol, "[falsification] tau_high, tau_low, epsilon differ from "
                                "[calibration.result]'s")
    if result.rule != spec.rule or result.model != protocol.model.name:
        raise _refuse(protocol, f"calibrated by rule {result.rule!r} for {result.model!r}")
    if result.weights_sha256 != weights_sha256:
        raise _refuse(protocol, "calibrated for other weights")
    if result.inputs_sha256 != calibration_inputs_sha256(json.loads(protocol.raw)):
        raise _refuse(protocol, "[data], [model], [falsification] or [calibration] changed "
                                "since")
    split = _split(protocol, spec, test_pairs)
    if split.manifest_sha256 != result.manifest_sha256:
        raise _refuse(protocol, "the calibration split's images changed since")
