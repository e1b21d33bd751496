"""Hand-made faceattr run folders for comparison tests (no torch, no model)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from faceattr.integrity import record_artefacts, record_new_files
from faceattr.io import dumps_strict, write_json
from faceattr.records import PairRecord
from faceattr.runfolder.summary import GateResult, RunSummary, summarise_method

PROTOCOL: dict[str, Any] = {"protocol": {"name": "t", "seed": 5, "alpha": 0.05},
                            "falsification": {"q_frac": 0.1, "fill": "mean"}}
PACKAGES = {"numpy": "2.4.6", "torch": "2.13.0"}


def pair_id(i: int) -> str:
    return f"p{i:04d}"


def record(i: int, method: str, falsified: bool, *, verdict_rule: str = "simple",
           status: str = "valid") -> PairRecord:
    if status != "valid":
        return PairRecord(
            pair_id=pair_id(i), model="m", method=method, is_genuine=True, status=status,
            status_reason="constant map", falsified=True, verdict_rule=verdict_rule,
            falsified_simple=True, falsified_theorem=True, p_high=None, p_low=None,
            score_clean=0.5, n_high_px=None, n_low_px=None, n_boundary_ties=None,
            area_ratio=None, area_confound=None, map_sha256=None, map_range=None,
            map_entropy_norm=None, map_gini=None, gt_roc_auc=None, gt_rank_accuracy=None,
        gt_mass_accuracy=None, attribution_sum=None,
            convergence_delta=None, target_grad_norm=None, drift_high_rad=(), drift_low_rad=(),
            score_drop_high=(), score_drop_low=(), d_high_rad=None, d_low_rad=None,
            sd_high_rad=None, sd_low_rad=None, margin_rad=None, pairwise_violation_frac=None,
            regions_sha256=None)
    high, low = ((0.2, 0.3), (0.5, 0.6)) if falsified else ((1.0, 1.2), (0.1, 0.2))
    d_high, d_low = sum(high) / 2, sum(low) / 2
    return PairRecord(
        pair_id=pair_id(i), model="m", method=method, is_genuine=True, status="valid",
        status_reason=None, falsified=falsified, verdict_rule=verdict_rule,
        falsified_simple=falsified, falsified_theorem=falsified, p_high=0.5, p_low=0.5,
        score_clean=0.7, n_high_px=10, n_low_px=10, n_boundary_ties=0, area_ratio=1.0,
        area_confound=False, map_sha256=f"{i:064x}", map_range=1.0, map_entropy_norm=0.9,
        map_gini=0.3, gt_roc_auc=None, gt_rank_accuracy=None,
        gt_mass_accuracy=None, attribution_sum=None, convergence_delta=None,
        target_grad_norm=None, drift_high_rad=high, drift_low_rad=low,
        score_drop_high=(0.1, 0.1), score_drop_low=(0.0, 0.0), d_high_rad=d_high,
        d_low_rad=d_low, sd_high_rad=0.07, sd_low_rad=0.07, margin_rad=d_high - d_low,
        pairwise_violation_frac=1.0 if falsified else 0.0, regions_sha256=f"{i:064x}")


def write_run(root: Path, verdicts: Mapping[str, Sequence[bool]], *, first_pair: int = 0,
              verdict_rule: str = "simple", protocol: Mapping[str, Any] | None = None,
              packages: Mapping[str, str] | None = None, image_salt: str = "",
              trivial: Sequence[int] = ()) -> Path:
    """A complete run folder: ``verdicts[method][i]`` is pair ``first_pair + i``'s verdict."""
    records = {m: [record(first_pair + i, m, v, verdict_rule=verdict_rule,
                          status="trivial" if i in trivial else "valid")
                   for i, v in enumerate(vs)] for m, vs in verdicts.items()}
    return write_records_run(root, records, protocol=protocol, packages=packages,
                             image_salt=image_salt)


def write_records_run(root: Path, records: Mapping[str, Sequence[PairRecord]], *,
                      protocol: Mapping[str, Any] | None = None,
                      packages: Mapping[str, str] | None = None,
                      image_salt: str = "") -> Path:
    """A complete run folder from ready records (every method over the same pairs)."""
    ids = [r.pair_id for r in next(iter(records.values()))]
    n = len(ids)
    manifest = {"source": "synthetic", "n_pairs": n, "pairs": [
        {"pair_id": p, "image_a": f"a{p}", "image_b": f"b{p}", "identity_a": "1",
         "identity_b": "1", "is_genuine": True, "sha256_a": f"{image_salt}{p}a",
         "sha256_b": f"{p}b"} for p in ids]}
    summary = RunSummary(
        run_name="t", protocol_sha256="0" * 64, manifest_sha256=f"{image_salt}{n}".ljust(64, "0"),
        seed=5, n_pairs=n, gate=GateResult(model="m", auc=0.99, n_genuine=n, n_impostor=0,
                                           tar_at_far_1e2=0.9, tar_at_far_1e3=0.8,
                                           min_auc=0.5, passed=True),
        methods={m: summarise_method(list(rs), alpha=0.05, interval_method="wilson")
                 for m, rs in records.items()})
    root.mkdir(parents=True)
    (root / "protocol.json").write_text(dumps_strict(protocol or PROTOCOL), encoding="utf-8")
    write_json(root / "manifest.json", manifest)
    write_json(root / "provenance.json", {"packages": dict(packages or PACKAGES),
                                          "git_commit": "abc", "seed": 5, "artefacts": {}})
    (root / "records.jsonl").write_text(
        "".join(dumps_strict(r.to_json()) + "\n" for rs in records.values() for r in rs),
        encoding="utf-8")
    write_json(root / "summary.json", summary.to_json())
    record_new_files(root)  # the artefact ledger, as a run writes it
    return root


def rerecord(root: Path, name: str) -> None:
    """Record an edited file's new hash: a writer's bug rather than a hand edit, so that the
    checks behind the artefact ledger are reached."""
    record_artefacts(root, name)
