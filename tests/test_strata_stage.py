# The [strata] stage end to end on a small planted world: strata.json is written, hashed in
# the run's ledger and verified; the stratum_effect claim finds the planted stratum and fails
# on planted defects (wrong direction, an absence claim); the report shows "Where maps fail".
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from faceattr.claims import ClaimSpec, evaluate_claim
from faceattr.claims.base import RunArtefacts
from faceattr.errors import IntegrityError
from faceattr.experiments.run import run_protocol
from faceattr.experiments.strata_stage import STRATA_FILE, load_strata
from faceattr.gate.judging import run_artefacts, write_verdicts
from faceattr.integrity import recorded_artefacts, verify_artefacts
from faceattr.protocol import Protocol, parse_protocol
from faceattr.runfolder.folder import load_summary

N_PAIRS = 40


def _raw() -> dict[str, Any]:
    world = {"world_seed": 0, "difficulty": 1, "first_identity": 3000}
    return {
        "protocol": {"name": "strata-small", "description": "planted", "seed": 7,
                     "alpha": 0.05, "interval_method": "wilson"},
        "data": {"source": "synthetic", "n_pairs": N_PAIRS, "genuine_fraction": 0.5,
                 **world},
        "model": {"name": "synthetic_cnn_d1", "min_auc": 0.9},
        "falsification": {"regions": "quantile", "q_frac": 0.1, "k_per_region": 4,
                          "fill": "mean", "perturbation_sigma": 0.02, "verdict": "simple",
                          "distance": "geodesic", "tau_high": 0.8, "tau_low": 0.52,
                          "epsilon": 0.1, "test_alpha": 0.05},
        "execution": {"pairs_per_batch": 20, "forward_chunk": 256},
        "methods": [{"method": "oracle"},
                    {"id": "planted", "method":
                     "faceattr.attribution.planted:NuisanceDegradedOracle",
                     "n_identities": 4 * N_PAIRS, **world}],
        "strata": {"min_stratum_pairs": 5, "outcomes": ["falsified", "trivial"],
                   "covariates": [{"name": "occluder"},
                                  {"name": "light_gradient", "cuts": [0.2]},
                                  {"name": "yaw_proxy", "cuts": [0.0]}],
                   "interactions": [{"methods": ["planted", "oracle"]}]},
        "claims": [{"kind": "model_gate", "min_auc": 0.9}],
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Protocol, Path, RunArtefacts]:
    root = tmp_path_factory.mktemp("strata")
    protocol = parse_protocol(_raw(), str(root / "strata_small.toml"))
    folder = run_protocol(protocol, root / "reports", progress=False)
    return protocol, folder.root, run_artefacts(protocol, folder, load_summary(folder))


def _judge(run: RunArtefacts, **params: Any) -> Any:
    spec = ClaimSpec(id="c", kind="stratum_effect", params=tuple(sorted(params.items())))
    return evaluate_claim(spec, run)


def test_strata_json_is_written_hashed_and_verified(run: tuple[Protocol, Path, RunArtefacts]
                                                    ) -> None:
    _, root, artefacts = run
    assert STRATA_FILE in recorded_artefacts(root)
    result = load_strata(root)
    assert result is not None
    assert artefacts.strata is not None
    assert result.verdict_rule == "simple"
    assert len(result.pairs) == N_PAIRS
    yaw = next(c for c in result.covariates if c.name == "yaw_proxy")
    assert yaw.undefined[0][1] == N_PAIRS
    assert "landmarks" in yaw.undefined[0][0]
    flagged = [(c.method, c.covariate, c.stratum, c.flag) for c in result.analysis.flagged()]
    assert flagged == [("planted", "occluder", "yes", "higher")]
    document = json.loads((root / STRATA_FILE).read_text())
    document["verdict_rule"] = "theorem"
    (root / "edited").mkdir()
    edited = root / "edited" / STRATA_FILE
    edited.write_text(json.dumps(document))
    original = (root / STRATA_FILE).read_bytes()
    try:
        (root / STRATA_FILE).write_text(json.dumps(document))
        with pytest.raises(IntegrityError, match=STRATA_FILE):
            verify_artefacts(root)
    finally:
        (root / STRATA_FILE).write_bytes(original)
        edited.unlink()
        (root / "edited").rmdir()


def test_the_planted_stratum_claim_passes_and_its_defects_fail(
        run: tuple[Protocol, Path, RunArtefacts]) -> None:
    _, _, artefacts = run
    found = _judge(artefacts, method="planted", covariate="occluder", stratum="yes",
                   expect="higher", exclusive=True)
    assert found.passed
    assert found.p_corrected is not None
    assert found.p_corrected < 0.05
    assert found.observed > 0.3
    # the reference stratum of a two-stratum covariate: the same contrast, sign flipped
    mirror = _judge(artefacts, method="planted", covariate="occluder", stratum="no",
                    expect="lower")
    assert mirror.passed
    assert mirror.observed == pytest.approx(-found.observed)
    # planted defects: the wrong direction, an effect where there is none, absence claimed
    assert not _judge(artefacts, method="planted", covariate="occluder", stratum="yes",
                      expect="lower").passed
    assert not _judge(artefacts, method="oracle", covariate="occluder", stratum="yes",
                      expect="higher").passed
    assert not _judge(artefacts, method="planted", covariate="occluder", stratum="yes",
                      expect="none", margin=0.1).passed
    assert _judge(artefacts, method="oracle", covariate="occluder", stratum="yes",
                  expect="none", margin=0.3).passed
    untested = _judge(artefacts, method="planted", covariate="yaw_proxy", stratum=">=0",
                      expect="higher")
    assert not untested.passed
    assert "fewer than 2 strata" in untested.detail
    with pytest.raises(ValueError, match="no stratum"):
        _judge(artefacts, method="planted", covariate="occluder", stratum="maybe",
               expect="higher")


def test_the_claim_fails_without_strata_json(run: tuple[Protocol, Path, RunArtefacts]) -> None:
    _, _, artefacts = run
    bare = RunArtefacts(summary=artefacts.summary, records=artefacts.records,
                        claims=artefacts.claims)
    result = _judge(bare, method="planted", covariate="occluder", stratum="yes",
                    expect="higher")
    assert not result.passed
    assert "no strata.json" in result.detail


def test_an_absence_claim_needs_a_margin() -> None:
    raw = _raw()
    raw["claims"].append({"kind": "stratum_effect", "method": "oracle", "covariate": "occluder",
                          "stratum": "yes", "expect": "none"})
    with pytest.raises(ValueError, match="margin"):
        parse_protocol(raw, "strata_small.toml")


def test_the_report_shows_where_maps_fail(run: tuple[Protocol, Path, RunArtefacts]) -> None:
    protocol, root, artefacts = run
    from faceattr.runfolder.folder import RunFolder

    folder = RunFolder(root)
    results = {s.id: evaluate_claim(s, artefacts) for s in protocol.claims}
    _, report = write_verdicts(protocol, folder, artefacts.summary, results, {})
    html = report.read_text(encoding="utf-8")
    assert "Where maps fail" in html
    assert 'id="strata-planted"' in html
    assert "occluder = yes" in html
    assert "higher" in html
