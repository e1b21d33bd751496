"""Pre-registered protocols: a TOML file declares the data, model, methods, falsification
settings, seed and the claims with their thresholds. Validated on load.

The protocol's content hash (of its parsed scientific content; the ``[execution]`` table of
batch sizes is excluded because it must not change any result) names the run folder.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from faceattr.calibration.spec import CalibrationSpec, parse_calibration
from faceattr.claims.base import ClaimSpec
from faceattr.config import ProtocolError, TableReader
from faceattr.data.covariates import StrataSpec, read_strata_spec
from faceattr.data.sources import SourceSpec, parse_source
from faceattr.errors import InputError
from faceattr.falsification.counterfactuals import FILL_STRATEGIES, fill_of
from faceattr.falsification.engine import FalsificationSettings
from faceattr.falsification.planning import hoeffding_k
from faceattr.integrity import check_safe_name
from faceattr.io import dumps_strict, read_user_text
from faceattr.params import normalised
from faceattr.randomisation.partner_spec import PartnerSensitivitySpec, read_partner_sensitivity
from faceattr.validity.metric_spec import MetricValiditySpec, read_metric_validity

if TYPE_CHECKING:
    from faceattr.models.files import ModelFileSpec
    from faceattr.randomisation.repaired import RepairedSettings

__all__ = ["ClaimSpec", "ExecutionSpec", "FalsificationSpec", "MethodSpec",
           "ModelSpec", "Protocol", "ProtocolError", "load_protocol"]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """``[model]``: which verification model, its weights file (optional; otherwise the
    model's own lookup: environment variable, cache), and the gate it must pass."""

    name: str
    weights: str | None
    min_auc: float
    target_grad_norm_min: float
    file: ModelFileSpec | None = None  # a model from a file (``format = ...``)


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """One ``[[methods]]`` entry: a protocol id, a registry name, how its map ranks pixels
    for the falsification test (``relevance``: ``"signed"`` uses the map as it is,
    ``"abs"`` ranks by magnitude — for signed maps whose negative pixels also move the
    embedding), and the method's own parameters."""

    id: str
    method: str
    relevance: Literal["signed", "abs"]
    params: tuple[tuple[str, Any], ...]
    normalised: tuple[tuple[str, Any], ...] = ()  # every declared parameter (run hash)

    def params_dict(self) -> dict[str, Any]:
        """The parameters as a dict."""
        return dict(self.params)


@dataclass(frozen=True, slots=True)
class FalsificationSpec:
    """``[falsification]``: regions, K, fill, perturbation, verdicts, K precision.

    Keys that a choice makes irrelevant are refused (e.g. ``theta_high`` in quantile mode),
    so a protocol never carries a setting that silently does nothing.
    """

    settings: FalsificationSettings  # what the engine runs (forward_chunk from [execution])
    precision_eps_rad: float | None
    precision_delta: float | None
    # Theorem 3.5's thresholds: from `faceattr calibrate` (default) or fixed with a reason
    thresholds: Literal["calibrated", "fixed"] = "calibrated"
    thresholds_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionSpec:
    """``[execution]``: batch sizes and the device. Excluded from the scientific hash: batch
    sizes must not change any result; the device is part of the run's identity instead (its
    float32 kernels move the last bits, within the cross-machine tolerance)."""

    pairs_per_batch: int
    forward_chunk: int
    device: str = "cpu"  # cpu | cuda | cuda:N | mps (faceattr.devices)
    #: the network's memory format: "channels_last" (NHWC convolutions, oneDNN's native layout
    #: on x86: faster on some networks, README "Engine forward: CPU speed-ups") moves the last
    #: float bits, within the cross-machine tolerance; part of the run identity, like device
    memory_format: str = "contiguous"


@dataclass(frozen=True, slots=True)
class RandomisationSpec:
    """``[randomisation]`` (optional): Adebayo et al.'s model-parameter randomisation on the
    first ``n_pairs`` pairs (spread over the run's pairs), every method of the protocol; and,
    on the same pairs, the completeness residual of the IG-family methods at each of
    ``completeness_n_steps`` (its trend with the number of steps)."""

    n_pairs: int
    topk_frac: float
    completeness_n_steps: tuple[int, ...]
    repaired: RepairedSettings | None = None  # sMPRT / eMPRT (``repaired_methods``)


@dataclass(frozen=True, slots=True)
class DeterminismSpec:
    """``[determinism]`` (optional): re-run the first ``n_pairs`` pairs in fresh processes."""

    n_pairs: int


@dataclass(frozen=True, slots=True)
class ArtefactsSpec:
    """``[artefacts]`` (optional): the shape and blur controls of
    :mod:`faceattr.validity.artefacts` for ``methods`` under every fill in ``fills``, on
    ``n_pairs`` pairs spread over the run."""

    n_pairs: int
    fills: tuple[str, ...]
    methods: tuple[str, ...]
    max_overlap_frac: float
    blur_sigma_px: float


@dataclass(frozen=True, slots=True)
class BaselineSpec:
    """``[baseline]`` (optional): a run folder or legacy results file to compare against
    (``faceattr compare``), with the equivalence margin (a fraction) and alpha."""

    path: str
    margin: float
    alpha: float


@dataclass(frozen=True, slots=True)
class Protocol:
    """A parsed, validated protocol."""

    name: str
    description: str
    seed: int
    alpha: float
    interval_method: Literal["wilson", "clopper-pearson"]
    data: SourceSpec
    model: ModelSpec
    methods: tuple[MethodSpec, ...]
    falsification: FalsificationSpec
    execution: ExecutionSpec
    randomisation: RandomisationSpec | None
    determinism: DeterminismSpec | None
    baseline: BaselineSpec | None
    artefacts: ArtefactsSpec | None
    claims: tuple[ClaimSpec, ...]
    raw: str  # the validated document as JSON (for re-runs in fresh processes)
    source_path: str
    content: str  # canonical JSON of the scientific content
    metric_validity: MetricValiditySpec | None = None  # [metric_validity] (optional)
    calibration: CalibrationSpec | None = None  # [calibration] (faceattr calibrate)
    partner_sensitivity: PartnerSensitivitySpec | None = None  # [partner_sensitivity]
    strata: StrataSpec | None = None  # [strata]: the stratified analysis (optional)

    @property
    def content_sha256(self) -> str:
        """SHA-256 of the canonical scientific content."""
        return hashlib.sha256(self.content.encode()).hexdigest()


def _frozen_items(table: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, v) for k, v in table.items()))


def _parse_methods(where: str, tables: list[Mapping[str, Any]]) -> tuple[MethodSpec, ...]:
    from faceattr.attribution.registry import method_class
    from faceattr.registry import is_import_path

    specs: list[MethodSpec] = []
    for i, table in enumerate(tables):
        loc = f"{where} [[methods]] #{i + 1}"
        rest = dict(table)
        reader = TableReader({k: rest.pop(k) for k in ("method", "id", "relevance")
                              if k in rest}, loc)
        name = reader.text("method")
        cls = method_class(name, loc)
        # an import path is no id: the class's registry name is (``id`` may name it)
        method_id = reader.text("id", default=cls.info.name if is_import_path(name) else name)
        relevance = reader.text("relevance", default="signed", allowed=["signed", "abs"])
        reader.finish()
        try:
            check_safe_name(f"{loc}: method id", method_id)
        except InputError as exc:
            raise ProtocolError(str(exc)) from None
        built = cls.from_params(method_id, TableReader(rest, loc))  # validates them now
        specs.append(MethodSpec(id=method_id, method=name,
                                relevance=cast(Literal["signed", "abs"], relevance),
                                params=_frozen_items(rest),
                                normalised=_frozen_items(normalised(built.params))))
    ids = [s.id for s in specs]
    if not specs or len(set(ids)) != len(ids):
        raise ProtocolError(f"{where}: [[methods]] must be non-empty with unique ids, got {ids}")
    return tuple(specs)


def _parse_claims(where: str, tables: list[Mapping[str, Any]],
                  method_ids: set[str]) -> tuple[ClaimSpec, ...]:
    from faceattr.claims.ledger_shares import implicit_error_budgets
    from faceattr.claims.registry import parse_claim

    specs = [parse_claim(table, f"{where} [[claims]] #{i + 1}", method_ids)
             for i, table in enumerate(tables)]
    declared = [ClaimSpec(id=s.id, kind=s.kind, params=s.params) for s in specs]
    # every method has an error budget: declared, or no error at all (an error on any pair
    # fails the gate unless the protocol says how many that method may have)
    covered = [(c.kind, str(c.params_dict().get("method", ""))) for c in declared]
    declared += [ClaimSpec(id=claim_id, kind="error_budget",
                           params=(("max_errors", limit), ("method", method)))
                 for claim_id, method, limit in implicit_error_budgets(sorted(method_ids),
                                                                       covered)]
    ids = [c.id for c in declared]
    if len(set(ids)) != len(ids):
        raise ProtocolError(f"{where}: claim ids must be unique, got {ids}")
    return tuple(declared)


def _parse_model(where: str, table: Mapping[str, Any], base_dir: Path) -> ModelSpec:
    """``[model]``: a registered name (or import path of a loader) with optional weights, or
    a model file (``format = "onnx" | "torchscript" | "state_dict"``); relative paths are
    taken from the protocol's folder."""
    from faceattr.models.loading import MODEL_REGISTRY

    loc = f"{where} [model]"
    rest = dict(table)
    gate = TableReader({k: rest.pop(k) for k in ("min_auc", "target_grad_norm_min")
                        if k in rest}, loc)
    min_auc = gate.fraction("min_auc")
    grad_min = gate.number("target_grad_norm_min", default=1e-6, minimum=0.0)
    gate.finish()
    r = TableReader(rest, loc)
    if "format" in rest:
        from faceattr.models.files import read_model_file_spec

        file = read_model_file_spec(r, base_dir)
        return ModelSpec(name=file.name, weights=None, min_auc=min_auc,
                         target_grad_norm_min=grad_min, file=file)
    name = r.text("name")
    MODEL_REGISTRY.resolve(name, loc)  # a known name or an importable loader, now
    weights = r.text("weights", default="") or None
    r.finish()
    if weights is not None:
        weights = str((base_dir / Path(weights).expanduser()).resolve())
    return ModelSpec(name=name, weights=weights, min_auc=min_auc,
                     target_grad_norm_min=grad_min, file=None)


def _parse_regions(r: TableReader) -> tuple[str, float, float, float, tuple[float, float]]:
    regions = r.text("regions", allowed=["quantile", "threshold"])
    if regions == "quantile":
        return regions, r.fraction("q_frac", open_low=True, maximum=0.5), 1.0, 0.0, (1.0, 1.0)
    theta_high, theta_low = r.fraction("theta_high"), r.fraction("theta_low")
    if theta_low > theta_high:
        raise ProtocolError(f"{r.where}: theta_low = {theta_low} exceeds theta_high = "
                            f"{theta_high}; expected theta_low <= theta_high")
    bounds = r.number("area_ratio_min", minimum=0.0), r.number("area_ratio_max", minimum=0.0)
    if bounds[0] > bounds[1]:
        raise ProtocolError(f"{r.where}: area_ratio_min > area_ratio_max")
    return regions, 0.0, theta_high, theta_low, bounds


def _parse_falsification(where: str, table: Mapping[str, Any],
                         forward_chunk: int) -> FalsificationSpec:
    r = TableReader(table, f"{where} [falsification]")
    regions, q_frac, theta_high, theta_low, bounds = _parse_regions(r)
    k = r.integer("k_per_region", minimum=2, maximum=100_000)
    fill = r.text("fill")
    fill_of(fill, r.where)  # a built-in, an entry point or an importable Fill, now
    blur_sigma = r.number("blur_sigma_px", minimum=0.1, maximum=32.0) if fill == "blur" else 0.0
    distance = r.text("distance", allowed=["geodesic", "score_drop"])
    tau_high = r.number("tau_high", minimum=-2.0, maximum=math.pi)
    tau_low = r.number("tau_low", minimum=-2.0, maximum=math.pi)
    epsilon = r.number("epsilon", minimum=0.0, maximum=math.pi)
    if tau_high - tau_low < epsilon:
        raise ProtocolError(f"{r.where}: tau_high - tau_low = {tau_high - tau_low:g} < epsilon "
                            f"= {epsilon:g}; Theorem 3.5 needs tau_high - tau_low >= epsilon")
    eps_rad = r.number("precision_eps_rad", default=0.0, minimum=0.0, maximum=math.pi)
    delta = r.fraction("precision_delta", default=0.0, maximum=0.5)
    if (eps_rad > 0) != (delta > 0):
        raise ProtocolError(f"{r.where}: declare both precision_eps_rad and precision_delta, "
                            "or neither")
    if eps_rad > 0 and k < hoeffding_k(eps_rad=eps_rad, delta=delta):
        raise ProtocolError(f"{r.where}: k_per_region = {k} is below the declared precision; "
                            f"Hoeffding needs K >= {hoeffding_k(eps_rad=eps_rad, delta=delta)} "
                            f"for eps = {eps_rad:g} rad, delta = {delta:g}")
    settings = FalsificationSettings(
        regions=cast(Literal["quantile", "threshold"], regions), q_frac=q_frac,
        theta_high=theta_high, theta_low=theta_low, area_ratio_bounds=bounds,
        k_per_region=k, fill=fill,
        blur_sigma_px=blur_sigma,
        perturbation_sigma=r.number("perturbation_sigma", minimum=0.0, maximum=1.0),
        verdict=cast(Literal["simple", "theorem"],
                     r.text("verdict", allowed=["simple", "theorem"])),
        distance=cast(Literal["geodesic", "score_drop"], distance), tau_high=tau_high,
        tau_low=tau_low, epsilon=epsilon,
        alpha=r.fraction("test_alpha", open_low=True, maximum=0.5),
        forward_chunk=forward_chunk)
    thresholds = r.text("thresholds", default="calibrated", allowed=["calibrated", "fixed"])
    reason = r.text("thresholds_reason", default="").strip()
    if (thresholds == "fixed") != bool(reason):
        raise ProtocolError(f"{r.where}: thresholds = \"fixed\" needs thresholds_reason = "
                            "\"...\" (why these tau values hold for this model), and only it")
    spec = FalsificationSpec(settings=settings, precision_eps_rad=eps_rad or None,
                             precision_delta=delta or None,
                             thresholds=cast(Literal["calibrated", "fixed"], thresholds),
                             thresholds_reason=reason or None)
    r.finish()
    return spec


def _parse_repaired(rr: TableReader, method_ids: set[str]) -> RepairedSettings | None:
    """The sMPRT / eMPRT keys of ``[randomisation]`` (Hedström et al. 2023): the methods and
    the choices that change the verdict; none of the other keys without ``repaired_methods``."""
    from faceattr.randomisation.repaired import LAYER_ORDERS, RepairedSettings

    methods = rr.texts("repaired_methods", default=[], allowed=sorted(method_ids))
    settings = {
        "n_samples": rr.integer("smprt_n_samples", default=50, minimum=1, maximum=1024),
        "noise_frac": rr.fraction("smprt_noise_frac", default=0.1),
        "layer_order": rr.text("layer_order", default="bottom_up", allowed=list(LAYER_ORDERS)),
        "smprt_abs": rr.boolean("smprt_abs", default=True),
        "emprt_abs": rr.boolean("emprt_abs", default=False),
        "n_bins": rr.integer("emprt_n_bins", default=100, minimum=2, maximum=100_000)}
    if not methods:
        declared = sorted(k for k in ("smprt_n_samples", "smprt_noise_frac", "layer_order",
                                      "smprt_abs", "emprt_abs", "emprt_n_bins")
                          if k in rr._table)
        if declared:
            raise ProtocolError(f"{rr.where}: {declared[0]} has no effect without "
                                "repaired_methods (the methods sMPRT / eMPRT run on)")
        return None
    if len(set(methods)) != len(methods):
        raise ProtocolError(f"{rr.where}: repaired_methods repeats a method: {methods}")
    return RepairedSettings(methods=tuple(sorted(methods)), **settings)  # type: ignore[arg-type]


def _parse_artefacts(where: str, top: TableReader, method_ids: set[str]) -> ArtefactsSpec:
    r = TableReader(top.table("artefacts"), f"{where} [artefacts]")
    fills = r.texts("fills", default=list(FILL_STRATEGIES))
    for name in fills:
        fill_of(name, r.where)
    methods = r.texts("methods", default=[], allowed=sorted(method_ids))
    spec = ArtefactsSpec(
        n_pairs=r.integer("n_pairs", minimum=2, maximum=100_000),
        fills=tuple(dict.fromkeys(fills)), methods=tuple(sorted(set(methods))),
        max_overlap_frac=r.fraction("max_overlap_frac", default=0.25),
        blur_sigma_px=r.number("blur_sigma_px", default=2.0, minimum=0.1, maximum=32.0))
    r.finish()
    if not spec.methods or not spec.fills:
        raise ProtocolError(f"{r.where}: declare at least one method and one fill")
    return spec


#: ``[execution] memory_format`` values.
MEMORY_FORMATS = ("contiguous", "channels_last")


def _parse_device(r: TableReader) -> str:
    from faceattr.devices import check_device_text

    text = r.text("device", default="cpu")
    try:
        return check_device_text(text, r.where)
    except InputError as exc:
        raise ProtocolError(str(exc)) from None


def parse_protocol(raw: Mapping[str, Any], source_path: str) -> Protocol:
    """Validate a parsed TOML document and return the protocol."""
    where = Path(source_path).name
    top = TableReader(raw, where)
    head = TableReader(top.table("protocol"), f"{where} [protocol]")
    name = head.text("name")
    try:
        check_safe_name(f"{where} [protocol]: protocol name", name)
    except InputError as exc:
        raise ProtocolError(str(exc)) from None
    description = head.text("description")
    seed = head.integer("seed", minimum=0)
    alpha = head.fraction("alpha", open_low=True, maximum=0.5)
    interval = cast(Literal["wilson", "clopper-pearson"],
                    head.text("interval_method", allowed=["wilson", "clopper-pearson"]))
    head.finish()
    base_dir = Path(source_path).resolve().parent
    data = parse_source(top.table("data"), f"{where} [data]", base_dir)
    model = _parse_model(where, top.table("model"), base_dir)
    methods = _parse_methods(where, top.tables("methods"))
    exe_r = TableReader(top.table("execution"), f"{where} [execution]")
    execution = ExecutionSpec(pairs_per_batch=exe_r.integer("pairs_per_batch", minimum=1),
                              forward_chunk=exe_r.integer("forward_chunk", minimum=1),
                              device=_parse_device(exe_r),
                              memory_format=exe_r.text("memory_format", default="contiguous",
                                                       allowed=MEMORY_FORMATS))
    exe_r.finish()
    falsification = _parse_falsification(where, top.table("falsification"),
                                         execution.forward_chunk)
    randomisation = None
    if "randomisation" in raw:
        rr = TableReader(top.table("randomisation"), f"{where} [randomisation]")
        randomisation = RandomisationSpec(
            n_pairs=rr.integer("n_pairs", minimum=2),
            topk_frac=rr.fraction("topk_frac", default=0.1, open_low=True, maximum=0.5),
            completeness_n_steps=tuple(rr.integers("completeness_n_steps", default=[],
                                                   minimum=1, maximum=4096)),
            repaired=_parse_repaired(rr, {m.id for m in methods}))
        rr.finish()
    determinism = None
    if "determinism" in raw:
        dr = TableReader(top.table("determinism"), f"{where} [determinism]")
        determinism = DeterminismSpec(n_pairs=dr.integer("n_pairs", minimum=1, maximum=1000))
        dr.finish()
    baseline = None
    if "baseline" in raw:
        br = TableReader(top.table("baseline"), f"{where} [baseline]")
        baseline = BaselineSpec(path=str((base_dir / Path(br.text("path"))).resolve()),
                                margin=br.fraction("margin", open_low=True, maximum=0.5),
                                alpha=br.fraction("alpha", default=0.05, open_low=True,
                                                  maximum=0.5))
        br.finish()
    artefacts = _parse_artefacts(where, top, {m.id for m in methods}) \
        if "artefacts" in raw else None
    metric_validity = read_metric_validity(
        TableReader(top.table("metric_validity"), f"{where} [metric_validity]"),
        falsification.settings.fill) if "metric_validity" in raw else None
    calibration = parse_calibration(where, top.table("calibration"), top.table("data"),
                                    base_dir) if "calibration" in raw else None
    partner_sensitivity = read_partner_sensitivity(TableReader(
        top.table("partner_sensitivity"), f"{where} [partner_sensitivity]")) \
        if "partner_sensitivity" in raw else None
    strata = read_strata_spec(top.table("strata"), f"{where} [strata]", {m.id for m in methods},
                              alpha) if "strata" in raw else None
    claims = _parse_claims(where, top.tables("claims"), {m.id for m in methods})
    top.finish()
    science = {k: v for k, v in raw.items() if k != "execution"}
    # the run hash covers each method's normalised parameters (every declared parameter with
    # its value, defaults included: `n_steps = 32` written or not is one protocol); method
    # order is not science (results are identical whatever the order)
    science["methods"] = [{"id": m.id, "method": m.method, "relevance": m.relevance,
                           "params": dict(m.normalised)}
                          for m in sorted(methods, key=lambda m: m.id)]
    return Protocol(name=name, description=description, seed=seed, alpha=alpha,
                    interval_method=interval, data=data, model=model, methods=methods,
                    falsification=falsification, execution=execution,
                    randomisation=randomisation, determinism=determinism, baseline=baseline,
                    artefacts=artefacts, claims=claims,
                    raw=dumps_strict(dict(raw)),
                    source_path=source_path, content=dumps_strict(science),
                    metric_validity=metric_validity, calibration=calibration,
                    partner_sensitivity=partner_sensitivity, strata=strata)


def load_protocol(path: Path) -> Protocol:
    """Read and validate a protocol file; errors are one-line ``ProtocolError``s."""
    path = Path(path)
    try:
        text = read_user_text(path, "protocol file", "give a .toml file such as "
                              "validation/protocols/synthetic.toml")
    except InputError as exc:
        raise ProtocolError(str(exc)) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        reason = " ".join(str(exc).split())
        raise ProtocolError(f"{path}: not valid TOML ({reason}); fix the file") from None
    return parse_protocol(raw, str(path))
