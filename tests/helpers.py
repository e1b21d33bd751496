"""Builders of hand-made records and run summaries for claim tests."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from faceattr.claims import ClaimResult, ClaimSpec, RunArtefacts, evaluate_claim
from faceattr.data.pairs import Pair
from faceattr.falsification.engine import failed_record
from faceattr.models.base import VerificationModel
from faceattr.records import PairRecord
from faceattr.runfolder.summary import GateResult, RunSummary, summarise_method


def pair(i: int) -> Pair:
    return Pair(pair_id=f"p{i:04d}", image_a=f"a{i}", image_b=f"b{i}", identity_a=str(i),
                identity_b=str(i), is_genuine=True)


def valid(i: int, method: str, falsified: bool) -> PairRecord:
    high, low = ((0.2, 0.3), (0.5, 0.6)) if falsified else ((1.0, 1.2), (0.1, 0.2))
    d_high, d_low = sum(high) / 2, sum(low) / 2
    digest = hashlib.sha256(f"{method}|{i}".encode()).hexdigest()
    return PairRecord(
        pair_id=pair(i).pair_id, model="m", method=method, is_genuine=True, status="valid",
        status_reason=None, falsified=falsified, verdict_rule="simple",
        falsified_simple=falsified, falsified_theorem=True, p_high=0.5, p_low=0.01,
        score_clean=0.7, n_high_px=10, n_low_px=10, n_boundary_ties=0, area_ratio=1.0,
        area_confound=False, map_sha256=digest, map_range=1.0,
        # a distinct map per (method, pair): its scale-free shape differs too
        map_entropy_norm=0.5 + int(digest[:4], 16) / 2**17,
        map_gini=0.2 + int(digest[4:8], 16) / 2**17, gt_roc_auc=None, gt_rank_accuracy=None,
        gt_mass_accuracy=None, attribution_sum=None, convergence_delta=None,
        target_grad_norm=None, drift_high_rad=high, drift_low_rad=low, score_drop_high=(0.1, 0.1),
        score_drop_low=(0.0, 0.0), d_high_rad=d_high, d_low_rad=d_low, sd_high_rad=0.07,
        sd_low_rad=0.07, margin_rad=d_high - d_low,
        pairwise_violation_frac=1.0 if falsified else 0.0,
        # the regions the test perturbed: distinct per (method, pair), as the map
        regions_sha256=hashlib.sha256(f"regions|{method}|{i}".encode()).hexdigest())


def records(method: str, *, n_falsified: int, n_passed: int, n_trivial: int = 0,
            n_error: int = 0) -> list[PairRecord]:
    out = [valid(i, method, True) for i in range(n_falsified)]
    out += [valid(n_falsified + i, method, False) for i in range(n_passed)]
    start = n_falsified + n_passed
    out += [failed_record(pair(start + i), "m", method, "trivial", "constant map", 0.5,
                          "simple")
            for i in range(n_trivial)]
    start += n_trivial
    out += [failed_record(pair(start + i), "m", method, "error:RuntimeError", "boom", 0.5,
                          "simple")
            for i in range(n_error)]
    return out


def run(method_records: dict[str, list[PairRecord]], *, auc: float = 0.99) -> RunSummary:
    methods = {name: summarise_method(rows, alpha=0.05, interval_method="wilson")
               for name, rows in method_records.items()}
    n_pairs = len(next(iter(method_records.values())))
    return RunSummary(run_name="test-run", protocol_sha256="0" * 64, manifest_sha256="1" * 64,
                      seed=0, n_pairs=n_pairs,
                      gate=GateResult(model="m", auc=auc, n_genuine=n_pairs // 2,
                                      n_impostor=n_pairs - n_pairs // 2, min_auc=0.95,
                                      passed=auc >= 0.95, tar_at_far_1e2=0.9,
                                      tar_at_far_1e3=0.8),
                      methods=methods)


def judge(kind: str, params: dict[str, Any], method_records: dict[str, list[PairRecord]], *,
          auc: float = 0.99, siblings: tuple[ClaimSpec, ...] = ()) -> ClaimResult:
    # evaluate one claim on hand-made records (siblings: the protocol's other claims)
    spec = ClaimSpec(id="c", kind=kind, params=tuple(sorted(params.items())))
    artefacts = RunArtefacts(summary=run(method_records, auc=auc),
                             records=[r for rows in method_records.values() for r in rows],
                             claims=(spec, *siblings))
    return evaluate_claim(spec, artefacts)


SMALL_PROTOCOL = """
[protocol]
name = "small"
description = "A small synthetic run for tests."
seed = {seed}
alpha = 0.05
interval_method = "wilson"

[data]
source = "synthetic"
world_seed = 0
n_pairs = {n_pairs}
genuine_fraction = 0.5
first_identity = 1000

[model]
name = "synthetic_cnn"
min_auc = 0.5

[falsification]
regions = "quantile"
q_frac = 0.10
k_per_region = {k}
fill = "mean"
perturbation_sigma = 0.02
verdict = "simple"
distance = "geodesic"
tau_high = 0.5
tau_low = 0.3
epsilon = 0.1
test_alpha = 0.05

[execution]
pairs_per_batch = {pairs_per_batch}
forward_chunk = 64

{methods}

{claims}
"""

METHODS = {
    "saliency": '[[methods]]\nmethod = "saliency"\n',
    "oracle": '[[methods]]\nmethod = "oracle"\n',
    "inverted": '[[methods]]\nid = "inverted"\nmethod = "inverted"\nof = "oracle"\n',
    "random": '[[methods]]\nmethod = "random"\n',
    "constant": '[[methods]]\nmethod = "constant"\n',
}


def small_protocol(*, seed: int = 5, n_pairs: int = 12, k: int = 6, pairs_per_batch: int = 5,
                   methods: tuple[str, ...] = ("saliency", "oracle", "inverted", "random",
                                               "constant"),
                   claims: str = "") -> str:
    return SMALL_PROTOCOL.format(seed=seed, n_pairs=n_pairs, k=k, pairs_per_batch=pairs_per_batch,
                                 methods="\n".join(METHODS[m] for m in methods), claims=claims)


def tiny_model(seed: int = 0) -> VerificationModel:
    # a small random conv net from an explicit generator: faceattr.testing's check model
    from faceattr.testing import tiny_model as checks_model

    return checks_model(seed)


def graded(method: str, n: int, quality: float, margin: float,
           falsified_every: int = 0) -> list[PairRecord]:
    """``n`` valid records of one method with the given quality and margin (rad)."""
    out = []
    for i in range(n):
        falsified = falsified_every > 0 and i % falsified_every == 0
        base = valid(i, method, falsified)
        jitter = 0.01 * ((i * 7) % 5)
        d_low = 0.1
        d_high = d_low + margin + jitter
        out.append(replace(base, gt_roc_auc=min(quality + jitter / 10, 1.0),
                           gt_rank_accuracy=quality, gt_mass_accuracy=quality,
                           drift_high_rad=(d_high, d_high), d_high_rad=d_high,
                           drift_low_rad=(d_low, d_low), d_low_rad=d_low,
                           margin_rad=d_high - d_low))
    return out


FAMILY = {"m0": (0.95, 1.2), "m1": (0.8, 0.9), "m2": (0.6, 0.5), "m3": (0.5, 0.1)}


def graded_family(planted: bool = False) -> dict[str, list[PairRecord]]:
    """Four maps whose margin follows their quality (``planted``: runs backwards)."""
    margins = [m for _, m in FAMILY.values()]
    if planted:  # the defect: the outcome ranks the maps backwards
        margins = margins[::-1]
    return {name: graded(name, 20, q, margin)
            for (name, (q, _)), margin in zip(FAMILY.items(), margins, strict=True)}


def untrained_weights(folder: Path) -> Path:
    """A random-initialised synthetic CNN (explicit generator) saved to ``folder``: not a face
    model, so it fails the model gate."""
    import torch

    from faceattr.models.synthetic_cnn import SyntheticFaceCNN
    from faceattr.models.train_synthetic import init_parameters
    from faceattr.rng import torch_generator

    with torch.device("meta"):
        network = SyntheticFaceCNN()
    network = network.to_empty(device="cpu")
    init_parameters(network, torch_generator(0, "untrained"))
    weights = folder / "untrained.pt"
    torch.save(network.state_dict(), weights)
    return weights
