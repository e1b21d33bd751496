"""Claim kinds by name: the built-ins, entry points (``faceattr.claims``) and import paths,
through the one registry mechanism (:mod:`faceattr.registry`).

A user's claim kind is a :class:`ClaimKind` (its family, a parameter reader, a check and a
default id); its family names the validation check it is judged in (a family no built-in
declares is judged by the gate's generic check).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from faceattr.claims import (
    artefacts,
    completeness,
    controls,
    determinism,
    gate,
    guards,
    ledger_shares,
    partner,
    randomisation,
    regression,
    separation,
    strata,
    sufficiency,
    validity,
)
from faceattr.claims.base import ClaimResult, ClaimSpec, RunArtefacts
from faceattr.claims.params import spec_reader
from faceattr.config import TableReader
from faceattr.registry import Registry

__all__ = ["CLAIM_KINDS", "CLAIM_REGISTRY", "ClaimKind", "ParsedClaim", "claim_kind",
           "evaluate_claim", "parse_claim", "read_params"]


@dataclass(frozen=True, slots=True)
class ClaimKind:
    """A claim kind: its family, how to read its parameters, how to check it."""

    family: str
    read: Callable[[TableReader, set[str]], Any]
    check: Callable[[str, Any, RunArtefacts], ClaimResult]
    default_id: Callable[[Any], str]


@dataclass(frozen=True, slots=True)
class ParsedClaim:
    """A validated ``[[claims]]`` entry."""

    id: str
    kind: str
    params: tuple[tuple[str, Any], ...]


CLAIM_KINDS: Mapping[str, ClaimKind] = MappingProxyType({
    "fr_at_most": ClaimKind(
        family="control",
        read=lambda r, m: controls.read_fr_bound(r, m, ["estimate", "ci_high"]),
        check=controls.check_fr_at_most,
        default_id=lambda p: f"control:{p.method}:fr<={p.threshold:g}"),
    "fr_at_least": ClaimKind(
        family="control",
        read=lambda r, m: controls.read_fr_bound(r, m, ["estimate", "ci_low"]),
        check=controls.check_fr_at_least,
        default_id=lambda p: f"control:{p.method}:fr>={p.threshold:g}"),
    "fr_chance": ClaimKind(
        family="control", read=controls.read_fr_chance, check=controls.check_fr_chance,
        default_id=lambda p: f"control:{p.method}:fr~{p.chance_rate:g}"),
    "all_trivial": ClaimKind(
        family="control", read=controls.read_all_trivial, check=controls.check_all_trivial,
        default_id=lambda p: f"control:{p.method}:all_trivial"),
    "model_gate": ClaimKind(
        family="gate", read=gate.read_model_gate, check=gate.check_model_gate,
        default_id=lambda p: f"gate:auc>={p.min_auc:g}"),
    "uniformity": ClaimKind(
        family="uniformity", read=ledger_shares.read_share,
        check=ledger_shares.check_uniformity,
        default_id=lambda p: f"uniformity:{p.method}:trivial<={p.max_share:g}"),
    "attrition": ClaimKind(
        family="attrition", read=ledger_shares.read_share, check=ledger_shares.check_attrition,
        default_id=lambda p: f"attrition:{p.method}:error<={p.max_share:g}"),
    "error_budget": ClaimKind(
        family="attrition", read=ledger_shares.read_error_budget,
        check=ledger_shares.check_error_budget,
        default_id=lambda p: f"errors:{p.method}:n_error<={p.max_errors}"),
    "target_sanity": ClaimKind(
        family="target", read=ledger_shares.read_share,
        check=ledger_shares.check_target_sanity,
        default_id=lambda p: f"target:{p.method}:error_target<={p.max_share:g}"),
    "not_degenerate": ClaimKind(
        family="guard", read=guards.read_not_degenerate, check=guards.check_not_degenerate,
        default_id=lambda p: f"guard:{p.metric}:not_constant"),
    "distinct_maps": ClaimKind(
        family="guard", read=guards.read_distinct, check=guards.check_distinct_maps,
        default_id=lambda p: "guard:distinct_maps"),
    "fr_separation": ClaimKind(
        family="separation", read=separation.read_separation,
        check=separation.check_fr_separation,
        default_id=lambda p: f"separation:{p.better}<{p.worse}"),
    "completeness": ClaimKind(
        family="completeness", read=completeness.read_completeness,
        check=completeness.check_completeness,
        default_id=lambda p: f"completeness:{p.method}"),
    "determinism": ClaimKind(
        family="determinism", read=determinism.read_determinism,
        check=determinism.check_determinism, default_id=lambda p: "determinism:processes"),
    "regression": ClaimKind(
        family="regression", read=regression.read_regression,
        check=regression.check_regression, default_id=lambda p: "regression:baseline"),
    "k_sufficiency": ClaimKind(
        family="k_sufficiency", read=sufficiency.read_k, check=sufficiency.check_k_sufficiency,
        default_id=lambda p: f"k_sufficiency:eps={p.eps_rad:g},delta={p.delta:g}"),
    "target_identity": ClaimKind(
        family="target", read=partner.read_target_identity,
        check=partner.check_target_identity,
        default_id=lambda p: (f"target_identity:{p.method or 'all'}:"
                              f"error_target_identity<={p.max_share:g}")),
    "partner_sensitivity": ClaimKind(
        family="partner", read=partner.read_partner_sensitivity,
        check=partner.check_partner_sensitivity,
        default_id=lambda p: (f"partner_sensitivity:{p.method}:"
                              + (f"insensitive>={p.min_similarity:g}" if p.expected_insensitive
                                 else f"similarity<={p.max_similarity:g}"))),
    "randomisation": ClaimKind(
        family="randomisation", read=randomisation.read_randomisation,
        check=randomisation.check_randomisation,
        default_id=lambda p: p.default_id),
    "shape_control": ClaimKind(
        family="artefact", read=artefacts.read_shape_control,
        check=artefacts.check_shape_control,
        default_id=lambda p: (f"artefact:{p.method}:{p.verdict}:shape_explained"
                              f"<={p.max_share:g}")),
    "blur_control": ClaimKind(
        family="artefact", read=artefacts.read_blur_control,
        check=artefacts.check_blur_control,
        default_id=lambda p: f"artefact:{p.method}:blurred_at_chance"),
    "stratum_effect": ClaimKind(
        family="strata", read=strata.read_stratum_effect, check=strata.check_stratum_effect,
        default_id=lambda p: (f"strata:{p.method}:{p.outcome}:{p.covariate}={p.stratum}:"
                              + (f"none+-{p.margin:g}" if p.expect == "none" else p.expect))),
    "truth_tracking": ClaimKind(
        family="validity", read=validity.read_truth_tracking,
        check=validity.check_truth_tracking,
        default_id=lambda p: (f"validity:{p.outcome}~{p.quality}:{len(p.methods)}_maps"
                              f">={p.min_spearman:g}")),
    "metric_tracks_truth": ClaimKind(
        family="validity", read=validity.read_metric_tracks_truth,
        check=validity.check_metric_tracks_truth,
        default_id=lambda p: (f"validity:{p.outcome}>={p.reference}-{p.margin:g}"
                              f"~{p.quality}:{p.family}")),
})


def _check_kind(name: str, obj: object) -> ClaimKind:
    if not isinstance(obj, ClaimKind):
        raise TypeError(f"{obj!r} is not a faceattr.claims.registry.ClaimKind")
    return obj


#: Built-ins (above), entry points in group ``faceattr.claims`` and import paths.
CLAIM_REGISTRY: Registry[ClaimKind] = Registry(kind="claim", builtins=lambda: CLAIM_KINDS,
                                               check=_check_kind)


def claim_kind(kind: str, where: str = "claims") -> ClaimKind:
    """The claim kind ``kind`` names (registered name or import path)."""
    return CLAIM_REGISTRY.resolve(kind, where)


def parse_claim(table: Mapping[str, Any], where: str, method_ids: set[str]) -> ParsedClaim:
    """Validate one claim entry: ``kind``, optional ``id``, and the kind's parameters."""
    rest = dict(table)
    head = TableReader({k: rest.pop(k) for k in ("kind", "id") if k in rest}, where)
    kind = head.text("kind")
    explicit_id = head.text("id", default="")
    head.finish()
    params = claim_kind(kind, where).read(TableReader(rest, where), method_ids)
    claim_id = explicit_id or claim_kind(kind, where).default_id(params)
    return ParsedClaim(id=claim_id, kind=kind, params=tuple(sorted(rest.items())))


def read_params(spec: ClaimSpec, method_ids: set[str]) -> Any:
    """The typed parameters of a declared claim."""
    return claim_kind(spec.kind, f"claim {spec.id}").read(spec_reader(spec), method_ids)


def evaluate_claim(spec: ClaimSpec, run: RunArtefacts) -> ClaimResult:
    """Judge one declared claim on a run's artefacts."""
    parsed = read_params(spec, set(run.summary.methods))
    return claim_kind(spec.kind, f"claim {spec.id}").check(spec.id, parsed, run)
