"""The checks every attribution method passes, built-in or a user's (:func:`check_method`).

A method is named the way a protocol names it — a registered name (``"saliency"``) or an import
path (``"mystudy.attributions:SimilarityRISE"``) — or given as its class, and built with its
protocol parameters through :meth:`~faceattr.attribution.base.AttributionMethod.from_params`,
exactly as a run builds it. The checks run it on a small deterministic model (the tiny CNN of
:func:`~faceattr.testing.tiny_model`, or the caller's) and four fixed pairs.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
import tempfile
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from faceattr.attribution.base import (
    AttributionBatch,
    AttributionDetails,
    AttributionMethod,
    UnsupportedModelError,
)
from faceattr.config import TableReader
from faceattr.errors import InputError
from faceattr.experiments.context import take_rows
from faceattr.models.base import VerificationModel
from faceattr.testing._common import (
    Check,
    changed_streams,
    check_images,
    fail,
    global_rng_state,
    named_check,
    run_checks,
    select,
    tiny_model,
)
from faceattr.testing.tolerances import (
    ATOL_CONSTANT_MAP,
    ATOL_COPY_NORMALISED,
    RHO_COPY,
    RTOL_BATCH_MAP,
)

__all__ = ["BUILTIN_CHECK_MODELS", "BUILTIN_CHECK_PARAMS", "CHECK_SEED",
           "FRESH_PROCESS_TIMEOUT_S", "METHOD_CHECKS",
           "N_CHECK_PAIRS", "MethodRef", "ModelRef", "check_method", "method_checks"]

MethodRef = str | type[AttributionMethod]
"""A method: a registered name, an import path ``"package.module:Class"`` or the class."""

ModelRef = VerificationModel | str | None
"""A model: ``None`` (the tiny check model), a model name or loader import path
(:func:`faceattr.models.loading.load_model`), or a :class:`VerificationModel`."""

METHOD_CHECKS: tuple[str, ...] = (
    "maps_finite", "maps_not_constant", "details_consistent", "batch_invariance",
    "fresh_process_determinism", "global_rng_untouched", "distinct_from_builtins",
    "partner_dependence")
"""Every method check, in the order :func:`method_checks` yields them. ``partner_dependence``
applies only to methods that explain the pair score (``info.is_control`` false)."""

N_CHECK_PAIRS: int = 4
"""Pairs in the check batch (the batch-invariance check attributes each alone and all four
together)."""

CHECK_SEED: int = 3
"""The run seed of the check batch."""

FRESH_PROCESS_TIMEOUT_S: float = 300.0
"""Wall-clock limit of the fresh process (importing torch and the method, one attribution)."""

#: Small settings of the built-ins so that every check stays fast on one CPU thread (the
#: attribution tests' settings). Every registered built-in has an entry (a test enforces it).
BUILTIN_CHECK_PARAMS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "saliency": {}, "gradient_x_input": {}, "smoothgrad": {"n_samples": 4},
    "integrated_gradients": {"n_steps": 8}, "geodesic_ig": {"n_steps": 8, "n_pilot": 16},
    "grad_cam": {}, "layer_cam": {}, "deeplift": {}, "lrp": {},
    "occlusion": {"patch_px": 8, "stride_px": 8},
    "kernel_shap": {"n_samples": 40, "cell_px": 8}, "lime": {"n_samples": 40, "cell_px": 8},
    "oracle": {}, "noisy_oracle": {"noise_weight": 0.5}, "inverted": {"of": "saliency"},
    "random": {}, "constant": {}, "biometric_grad_cam": {}, "spatial_biometric_grad_cam": {},
    "guided_backprop": {}, "guided_grad_cam": {},
    "attention_rollout": {}, "gradient_rollout": {}, "branch_attention_cam": {},
})

#: The model a built-in's checks run on when ``model`` is ``None``, for built-ins that need an
#: architecture the tiny check CNN lacks (they raise UnsupportedModelError on it): attention
#: layers (rollout) or Inception blocks (branch-attention CAM). Each is a shipped model name.
BUILTIN_CHECK_MODELS: Mapping[str, str] = MappingProxyType({
    "attention_rollout": "synthetic_vit", "gradient_rollout": "synthetic_vit",
    "branch_attention_cam": "synthetic_inception",
})

_WHERE = "faceattr.testing"


@dataclass(frozen=True)
class _Target:
    """The method under check and how to build it (here and in a fresh process)."""

    ref: MethodRef
    params: Mapping[str, Any]
    method_id: str

    def cls(self) -> type[AttributionMethod]:
        """The method's class (imports it)."""
        if isinstance(self.ref, str):
            from faceattr.attribution.registry import method_class

            return method_class(self.ref, f"{_WHERE} ({self.ref})")
        if not (isinstance(self.ref, type) and issubclass(self.ref, AttributionMethod)):
            raise TypeError(f"{self.ref!r} is neither a method name, an import path "
                            "'package.module:Class' nor an AttributionMethod subclass")
        return self.ref

    def build(self) -> AttributionMethod:
        """A new instance, built from the protocol parameters as a run builds it."""
        if isinstance(self.ref, str):
            from faceattr.attribution.registry import build_method

            return build_method(self.method_id, self.ref, dict(self.params),
                                f"{_WHERE} ({self.ref})")
        return self.cls().from_params(self.method_id,
                                      TableReader(dict(self.params), f"{_WHERE} ({self.label})"))

    @property
    def label(self) -> str:
        """The reference as given (name, path or class path)."""
        if isinstance(self.ref, str):
            return self.ref
        return f"{getattr(self.ref, '__module__', '?')}:{getattr(self.ref, '__qualname__', '?')}"

    def import_path(self) -> str:
        """A name a fresh process can build the method from.

        Raises
        ------
        ValueError
            The class cannot be imported by its module and qualified name (defined in
            ``__main__``, inside a function, or shadowed).
        """
        if isinstance(self.ref, str):
            return self.ref
        path = self.label
        if self.ref.__module__ == "__main__" or "<locals>" in self.ref.__qualname__:
            raise ValueError(f"class {path} cannot be imported by another process (defined in "
                             "__main__ or inside a function); define it at module level of an "
                             "importable module and pass 'package.module:Class'")
        try:
            found = pkgutil.resolve_name(path)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ValueError(f"class {path} cannot be re-imported ({type(exc).__name__}: "
                             f"{exc}); pass 'package.module:Class'") from None
        if found is not self.ref:
            raise ValueError(f"{path} imports a different object than the class given; pass "
                             "'package.module:Class'")
        return path


def _subject(target: _Target) -> str:
    try:
        name = target.cls().info.name
    except Exception:  # noqa: BLE001 - the label only; the checks report the error itself
        return f"method {target.label!r}"
    return f"method {name!r} ({target.label})" if name != target.label else f"method {name!r}"


def _row(batch: AttributionBatch, i: int) -> AttributionBatch:
    return take_rows(batch, [i])


@dataclass
class _MethodContext:
    """The check inputs, built on first use and shared by one component's checks."""

    target: _Target
    model_ref: ModelRef
    subject: str = field(init=False)

    def __post_init__(self) -> None:
        self.subject = _subject(self.target)

    @cached_property
    def model(self) -> VerificationModel:
        """The model the maps are computed on."""
        if self.model_ref is None:
            return tiny_model(0)
        if isinstance(self.model_ref, str):
            from faceattr.models.loading import load_model

            return load_model(self.model_ref)
        return self.model_ref

    @cached_property
    def images(self) -> NDArray[np.float32]:
        """Probes, partners and alternative partners: (3 N, 3, S, S)."""
        return check_images(3 * N_CHECK_PAIRS, self.model.input_size_px, "method-inputs")

    @cached_property
    def batch(self) -> AttributionBatch:
        """N pairs with identity masks (a central rectangle), seed :data:`CHECK_SEED`."""
        n, side = N_CHECK_PAIRS, self.model.input_size_px
        with torch.no_grad():
            partners = self.model.embed(torch.from_numpy(self.images[n:2 * n])).detach()
        masks = np.zeros((n, side, side), dtype=bool)
        masks[:, side // 4:side // 2, side // 4:3 * side // 4] = True
        return AttributionBatch(model=self.model, probes=torch.from_numpy(self.images[:n]),
                                partner_embeddings=partners,
                                pair_ids=tuple(f"check-pair-{i}" for i in range(n)),
                                identity_masks=masks, seed=CHECK_SEED)

    @cached_property
    def partner_changed(self) -> AttributionBatch:
        """The batch with every partner embedding replaced by another image's."""
        n = N_CHECK_PAIRS
        with torch.no_grad():
            other = self.model.embed(torch.from_numpy(self.images[2 * n:])).detach()
        b = self.batch
        return AttributionBatch(model=b.model, probes=b.probes, partner_embeddings=other,
                                pair_ids=b.pair_ids, identity_masks=b.identity_masks,
                                seed=b.seed)

    @cached_property
    def method(self) -> AttributionMethod:
        """One instance of the method."""
        return self.target.build()

    @cached_property
    def maps(self) -> NDArray[np.float64]:
        """The method's maps of the check batch, as returned."""
        maps: NDArray[np.float64] = self.method.attribute(self.batch)
        return maps

    def checked_maps(self, check: str, maps: object, n: int) -> NDArray[np.float64]:
        """``maps`` if it is a float64 (n, S, S) array, else the failure of ``check``."""
        side = self.model.input_size_px
        if not isinstance(maps, np.ndarray):
            fail(check, self.subject, f"attribute returned {type(maps).__name__}, not a numpy "
                 "array of maps")
        if maps.shape != (n, side, side) or maps.dtype != np.float64:
            fail(check, self.subject, f"maps are {maps.dtype} {maps.shape}, expected float64 "
                 f"(N, H, W) = {(n, side, side)}")
        return maps


# --- the checks -------------------------------------------------------------------------------

def _maps_finite(ctx: _MethodContext) -> None:
    maps = ctx.checked_maps("maps_finite", ctx.maps, N_CHECK_PAIRS)
    bad = ~np.isfinite(maps)
    if bad.any():
        rows = sorted({int(i) for i in np.nonzero(bad)[0]})
        fail("maps_finite", ctx.subject, f"{int(bad.sum())} non-finite value(s) (NaN or inf) "
             f"in pair(s) {rows}; a map must be finite everywhere")


def _maps_not_constant(ctx: _MethodContext) -> None:
    # the engine's rule for a trivial map (faceattr.falsification.regions): a map that is
    # constant on every pair cannot rank pixels at all (a constant target, PITFALLS.md #5).
    # One flat pair is legitimate (Grad-CAM's ReLU can zero a whole map): a run counts it as a
    # failed pair and the uniformity claim measures how often that happens.
    maps = ctx.checked_maps("maps_not_constant", ctx.maps, N_CHECK_PAIRS)
    flat = maps.reshape(maps.shape[0], -1)
    scale = np.maximum(np.abs(flat).max(axis=1), 1.0)
    ranges = np.ptp(flat, axis=1)
    if not (ranges > ATOL_CONSTANT_MAP * scale).any():
        fail("maps_not_constant", ctx.subject, f"the map of every pair is constant (max - min "
             f"<= {ATOL_CONSTANT_MAP:g} x max(|map|, 1); largest range {ranges.max():.3g}): it "
             "cannot rank pixels; explain the verification score s(x_a, x_b), not a constant")


def _details_consistent(ctx: _MethodContext) -> None:
    details = ctx.method.attribute_with_details(ctx.batch)
    if not isinstance(details, AttributionDetails):
        fail("details_consistent", ctx.subject, f"attribute_with_details returned "
             f"{type(details).__name__}, not AttributionDetails")
    maps = ctx.checked_maps("details_consistent", details.maps, N_CHECK_PAIRS)
    reference = ctx.checked_maps("details_consistent", ctx.maps, N_CHECK_PAIRS)
    if not np.array_equal(maps, reference, equal_nan=True):
        fail("details_consistent", ctx.subject, "attribute_with_details(batch).maps differ "
             f"from attribute(batch) (max |difference| {np.nanmax(np.abs(maps - reference)):.3g})"
             "; attribute must return attribute_with_details(batch).maps")
    declared = ctx.method.info.has_convergence_delta
    delta = details.convergence_delta
    if declared != (delta is not None):
        fail("details_consistent", ctx.subject, f"info.has_convergence_delta = {declared} but "
             f"attribute_with_details gives convergence_delta = "
             f"{'None' if delta is None else 'an array'}; make the flag match the details")
    if delta is not None and (np.shape(delta) != (N_CHECK_PAIRS,)
                              or not np.isfinite(delta).all()):
        fail("details_consistent", ctx.subject, f"convergence_delta must be finite, shape "
             f"(N,) = ({N_CHECK_PAIRS},), got shape {np.shape(delta)}")


def _batch_invariance(ctx: _MethodContext) -> None:
    together = ctx.checked_maps("batch_invariance", ctx.maps, N_CHECK_PAIRS)
    for i in range(N_CHECK_PAIRS):
        alone = ctx.checked_maps("batch_invariance", ctx.method.attribute(_row(ctx.batch, i)), 1)
        scale = float(np.abs(alone).max())
        error = float(np.abs(together[i] - alone[0]).max())
        if not error <= RTOL_BATCH_MAP * scale:
            fail("batch_invariance", ctx.subject, f"pair {i} attributed alone and inside a batch "
                 f"of {N_CHECK_PAIRS} differs by {error:.3g} (> {RTOL_BATCH_MAP:g} x max|map| = "
                 f"{RTOL_BATCH_MAP * scale:.3g}); compute each pair's map from its own rows "
                 "only (no batch statistics, no batch-wide normalisation)")


def _fresh_maps(ctx: _MethodContext) -> NDArray[np.float64]:
    """The maps of the check batch computed by a new Python process."""
    path = ctx.target.import_path()
    with tempfile.TemporaryDirectory(prefix="faceattr-fresh-") as tmp:
        folder = Path(tmp)
        batch = ctx.batch
        masks = batch.identity_masks
        torch.save({"probes": batch.probes, "partners": batch.partner_embeddings,
                    "masks": torch.from_numpy(masks) if masks is not None else torch.empty(0)},
                   folder / "batch.pt")
        model: dict[str, Any]
        if ctx.model_ref is None:
            model = {"kind": "tiny", "seed": 0}
        elif isinstance(ctx.model_ref, str):
            model = {"kind": "name", "name": ctx.model_ref}
        else:
            # never a pickle (torch.load runs with weights_only=True only): the network's
            # class by import path, rebuilt with no arguments, and its state_dict
            vm = ctx.model_ref
            cls = type(vm.network)
            torch.save(vm.network.state_dict(), folder / "model.pt")
            model = {"kind": "state_dict", "path": str(folder / "model.pt"),
                     "network": f"{cls.__module__}:{cls.__qualname__}", "name": vm.name,
                     "input_size_px": vm.input_size_px, "pixel_mean": vm.pixel_mean,
                     "pixel_scale": vm.pixel_scale, "weights_sha256": vm.weights_sha256}
        spec = {"method": path, "params": dict(ctx.target.params),
                "method_id": ctx.target.method_id, "pair_ids": list(batch.pair_ids),
                "seed": batch.seed, "has_masks": masks is not None, "model": model,
                "batch": str(folder / "batch.pt"), "out": str(folder / "maps.npy"),
                "threads": torch.get_num_threads(),
                "deterministic": torch.are_deterministic_algorithms_enabled()}
        (folder / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        env = dict(os.environ)
        # the child imports what this process can; a fresh hash seed exposes hash()-keyed draws
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p or os.getcwd() for p in sys.path))
        env["PYTHONHASHSEED"] = "random"
        try:
            done = subprocess.run([sys.executable, "-m", "faceattr.testing._fresh",
                                   str(folder / "spec.json")], env=env, capture_output=True,
                                  text=True, timeout=FRESH_PROCESS_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"the fresh process ran over {FRESH_PROCESS_TIMEOUT_S:g} s") \
                from None
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            raise RuntimeError(f"the fresh process failed (exit {done.returncode}): "
                               f"{lines[-1] if lines else 'no output'}")
        fresh: NDArray[np.float64] = np.load(folder / "maps.npy", allow_pickle=False)
        return fresh


def _fresh_process_determinism(ctx: _MethodContext) -> None:
    check = "fresh_process_determinism"
    first = ctx.checked_maps(check, ctx.maps, N_CHECK_PAIRS)
    again = ctx.checked_maps(check, ctx.target.build().attribute(ctx.batch), N_CHECK_PAIRS)
    if first.tobytes() != again.tobytes():
        fail(check, ctx.subject, "two instances built alike give different maps in one process "
             f"(max |difference| {np.nanmax(np.abs(first - again)):.3g}); draw every random "
             "number from a generator keyed by (batch.seed, pair_id, ...)")
    try:
        fresh = ctx.checked_maps(check, _fresh_maps(ctx), N_CHECK_PAIRS)
    except ValueError as exc:
        fail(check, ctx.subject, str(exc))
    if first.tobytes() != fresh.tobytes():
        fail(check, ctx.subject, "the same seed gives different maps in a fresh process (max "
             f"|difference| {np.nanmax(np.abs(first - fresh)):.3g}); derive every random draw "
             "from batch.seed and the pair id (faceattr.rng), never from hash(), the clock, "
             "object ids or the global RNG")


def _global_rng_untouched(ctx: _MethodContext) -> None:
    batch = ctx.batch  # built before the snapshot: only the method is watched
    before = global_rng_state()
    ctx.target.build().attribute(batch)
    changed = changed_streams(before, global_rng_state())
    if changed:
        fail("global_rng_untouched", ctx.subject, f"building and running the method changed "
             f"the global RNG state of {', '.join(changed)}; draw from an explicit generator "
             "(faceattr.rng.numpy_generator / torch_generator), or isolate third-party code in "
             "torch.random.fork_rng()")


def _average_ranks(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Ranks 1..n of ``values``, ties sharing their average rank (``scipy.stats.rankdata``)."""
    flat = values.ravel()
    ranks = np.empty(flat.size, dtype=np.float64)
    ranks[np.argsort(flat, kind="stable")] = np.arange(1, flat.size + 1, dtype=np.float64)
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    averaged: NDArray[np.float64] = (np.bincount(inverse, weights=ranks) / counts)[inverse]
    return averaged


def _rank_correlation(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Spearman's rho of two maps (average ranks for ties); NaN when either is constant."""
    ra, rb = _average_ranks(a), _average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum()) / denominator if denominator > 0 else float("nan")


def _normalised(m: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = (m - m.min()) / max(float(np.ptp(m)), 1e-300)
    return out


def _copy_reason(maps: NDArray[np.float64], other: NDArray[np.float64]) -> str | None:
    """Why ``maps`` are a copy of ``other`` (every pair), or ``None``."""
    gaps = [float(np.abs(_normalised(a) - _normalised(b)).max())
            for a, b in zip(maps, other, strict=True)]
    if max(gaps) <= ATOL_COPY_NORMALISED:
        return (f"the min-max normalised maps agree within {max(gaps):.3g} "
                f"(<= {ATOL_COPY_NORMALISED:g}) on every pair")
    rhos = [_rank_correlation(a, b) for a, b in zip(maps, other, strict=True)]
    if all(rho >= RHO_COPY for rho in rhos):
        return (f"Spearman rho >= {min(rhos):.4f} (>= {RHO_COPY:g}) on every pair: it ranks "
                "the pixels the same way")
    return None


@dataclass
class _Builtins:
    """Maps of every registered built-in on one context's batch (computed once)."""

    ctx: _MethodContext

    @cached_property
    def maps(self) -> dict[str, NDArray[np.float64]]:
        """Built-in name -> maps; built-ins that cannot explain this model are left out."""
        from faceattr.attribution.registry import METHODS, build_method

        out: dict[str, NDArray[np.float64]] = {}
        for name in sorted(METHODS):
            method = build_method(name, name, dict(BUILTIN_CHECK_PARAMS.get(name, {})),
                                  f"{_WHERE} built-in {name}")
            try:
                out[name] = np.asarray(method.attribute(self.ctx.batch), dtype=np.float64)
            except (UnsupportedModelError, InputError):
                continue  # e.g. no LRP rules for this model's layers: nothing to copy here
        return out


def _distinct_from_builtins(ctx: _MethodContext, builtins: _Builtins) -> None:
    from faceattr.attribution.registry import METHODS

    maps = ctx.checked_maps("distinct_from_builtins", ctx.maps, N_CHECK_PAIRS)
    own = {name for name, cls in METHODS.items() if cls is type(ctx.method)}
    for name, other in builtins.maps.items():
        if name in own or other.shape != maps.shape:
            continue
        reason = _copy_reason(maps, other)
        if reason is not None:
            fail("distinct_from_builtins", ctx.subject, f"its maps are those of the built-in "
                 f"{name!r}: {reason}; a new method must differ from every built-in "
                 "(PITFALLS.md #20)")


def _partner_dependence(ctx: _MethodContext) -> None:
    maps = ctx.checked_maps("partner_dependence", ctx.maps, N_CHECK_PAIRS)
    changed = ctx.checked_maps("partner_dependence", ctx.method.attribute(ctx.partner_changed),
                               N_CHECK_PAIRS)
    same = []
    for i in range(N_CHECK_PAIRS):
        scale = float(np.abs(maps[i]).max())
        if not float(np.abs(changed[i] - maps[i]).max()) > RTOL_BATCH_MAP * scale:
            same.append(i)
    if same:
        fail("partner_dependence", ctx.subject, f"the map of pair(s) {same} does not change when "
             f"the partner embedding changes (by <= {RTOL_BATCH_MAP:g} x max|map|): it does not "
             "explain s(x_a, x_b); use batch.partner_embeddings (VerificationScoreModule), or "
             "declare the method a control (info.is_control)")


# --- public API -------------------------------------------------------------------------------

def method_checks(method: MethodRef, *, params: Mapping[str, Any] | None = None,
                  model: ModelRef = None, method_id: str = "checked") -> Iterator[Check]:
    """Yield ``(check_name, check)`` for every check that applies to ``method``.

    For ``pytest.mark.parametrize`` (each ``check`` is a function named ``check_<name>``, so
    pytest ids read ``maps_finite-check_maps_finite``)::

        @pytest.mark.parametrize(("name", "check"),
                                 method_checks("mystudy.attributions:SimilarityRISE"))
        def test_similarity_rise(name, check):
            check()

    Parameters
    ----------
    method : str or type
        A registered name (``"saliency"``), an import path ``"package.module:Class"`` (what a
        protocol's ``method =`` takes), or an :class:`AttributionMethod` subclass. The fresh
        process check rebuilds it by that name (a class: by ``module:qualname``, which must
        import the same class).
    params : mapping, optional
        The method's protocol parameters (read strictly by its ``from_params``).
    model : VerificationModel, str or None
        ``None``: the tiny check CNN (:func:`faceattr.testing.tiny_model`), or for a built-in
        named in :data:`BUILTIN_CHECK_MODELS` the shipped model named there; a model name or
        loader import path; or a model (its network class, rebuilt with no arguments, and its
        state_dict go to the fresh process — never a pickle).
    method_id : str
        The method id (keys the method's random streams).

    Yields
    ------
    tuple of (str, callable)
        The check's name (one of :data:`METHOD_CHECKS`) and a function of no arguments that
        raises :class:`CheckFailure` (an ``AssertionError``) ``"<name> failed for method ...:
        <reason>"`` (one line).
        The inputs are built on the first call and shared by the checks of one generator.
        ``partner_dependence`` is not yielded for controls (``info.is_control``).
    """
    target = _Target(ref=method, params=MappingProxyType(dict(params or {})),
                     method_id=method_id)
    if model is None and isinstance(method, str):
        model = BUILTIN_CHECK_MODELS.get(method)
    ctx = _MethodContext(target=target, model_ref=model)
    builtins = _Builtins(ctx)
    try:
        is_control = target.cls().info.is_control
    except Exception:  # noqa: BLE001 - every check then fails with the error, by name
        is_control = False
    bodies = {"maps_finite": lambda: _maps_finite(ctx),
              "maps_not_constant": lambda: _maps_not_constant(ctx),
              "details_consistent": lambda: _details_consistent(ctx),
              "batch_invariance": lambda: _batch_invariance(ctx),
              "fresh_process_determinism": lambda: _fresh_process_determinism(ctx),
              "global_rng_untouched": lambda: _global_rng_untouched(ctx),
              "distinct_from_builtins": lambda: _distinct_from_builtins(ctx, builtins),
              "partner_dependence": lambda: _partner_dependence(ctx)}
    for name in METHOD_CHECKS:
        if name == "partner_dependence" and is_control:
            continue
        yield name, named_check(name, lambda: ctx.subject, bodies[name])


def check_method(method: MethodRef, *, params: Mapping[str, Any] | None = None,
                 model: ModelRef = None, method_id: str = "checked",
                 checks: Collection[str] | None = None) -> None:
    """Run the method checks on ``method``; the first failure raises.

    The checks (see :data:`METHOD_CHECKS`; tolerances in :mod:`faceattr.testing.tolerances`):

    - ``maps_finite``: ``attribute`` returns a finite float64 array (N, H, W);
    - ``maps_not_constant``: the maps are not constant on every pair (the engine's trivial-map
      rule; one flat pair is allowed: a run counts it as a failed pair);
    - ``details_consistent``: ``attribute_with_details(batch).maps`` equals ``attribute(batch)``
      and ``convergence_delta`` is present exactly when ``info.has_convergence_delta``;
    - ``batch_invariance``: each pair attributed alone matches its map inside the batch of 4
      within ``RTOL_BATCH_MAP`` x its map's max ``|value|``;
    - ``fresh_process_determinism``: two instances in this process, and a new Python process
      (fresh hash seed) building the method by name, give bit-identical maps;
    - ``global_rng_untouched``: building and running it leaves the torch, numpy and Python
      global RNG states unchanged;
    - ``distinct_from_builtins``: its maps are not those of any registered built-in (min-max
      normalised maps within ``ATOL_COPY_NORMALISED``, or Spearman ``>= RHO_COPY``, on every
      pair);
    - ``partner_dependence`` (methods that explain the pair score, not controls): changing the
      partner embedding changes every pair's map by more than ``RTOL_BATCH_MAP`` x its scale.

    Parameters
    ----------
    method, params, model, method_id
        See :func:`method_checks`.
    checks : collection of str, optional
        Run only these checks (names from :data:`METHOD_CHECKS`).

    Raises
    ------
    faceattr.testing.CheckFailure
        One line: ``"<check> failed for method '<name>': <reason and fix>"``.
    ValueError
        ``checks`` names an unknown check, or one that does not apply (``partner_dependence``
        of a control).
    """
    available = list(method_checks(method, params=params, model=model, method_id=method_id))
    run_checks(select(available, checks, METHOD_CHECKS, "method"))

