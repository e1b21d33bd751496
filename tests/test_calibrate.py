"""``faceattr calibrate``: Theorem 3.5's thresholds per model, from a disjoint calibration split,
written into the protocol (comments kept), and the run refused without them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from faceattr.calibration.block import END_MARK, rewrite_protocol_text
from faceattr.calibration.calibrate import calibrate_file, check_calibrated, theorem_decides
from faceattr.calibration.rule import genuine_angle_quantiles, quantile_estimate
from faceattr.calibration.split import check_disjoint
from faceattr.cli import main
from faceattr.config import ProtocolError
from faceattr.data.pairs import Pair
from faceattr.errors import InputError
from faceattr.experiments.run import prepare_run
from faceattr.protocol import load_protocol

PROTOCOL = """# a small calibrated protocol (tests)
[protocol]
name = "calib"
description = "calibration tests"
seed = 3
alpha = 0.05
interval_method = "wilson"

[data]
source = "synthetic"
world_seed = 0
n_pairs = 8
genuine_fraction = 0.5
first_identity = 1000

[model]
name = "synthetic_cnn"
min_auc = 0.5

[falsification]
regions = "quantile"
q_frac = 0.10
k_per_region = 6
fill = "mean"
perturbation_sigma = 0.02
verdict = "{verdict}"
distance = "geodesic"
tau_high = 0.7                  # the model's own scale, written by faceattr calibrate
tau_low = 0.45
epsilon = 0.1
test_alpha = 0.05
{fixed}
{calibration}
[execution]
pairs_per_batch = 8
forward_chunk = 64

[[methods]]
method = "saliency"

[[methods]]
method = "random"
"""

CALIBRATION = """
[calibration]                   # keep this comment
rule = "genuine_angle_quantiles"

[calibration.data]
first_identity = {first_identity}   # disjoint from the test's identities
n_pairs = 24
"""


def _write(tmp_path: Path, *, verdict: str = "theorem", fixed: str = "",
           first_identity: int | None = 2000) -> Path:
    calibration = "" if first_identity is None else CALIBRATION.format(
        first_identity=first_identity)
    path = tmp_path / "calib.toml"
    path.write_text(PROTOCOL.format(verdict=verdict, fixed=fixed, calibration=calibration),
                    encoding="utf-8")
    return path


# --- the rule --------------------------------------------------------------------------------


def test_rule_reads_the_quantiles_and_resolves_them() -> None:
    rng = np.random.default_rng(0)
    genuine, blind = rng.normal(0.6, 0.05, 60), rng.normal(0.2, 0.03, 120)
    t = genuine_angle_quantiles(genuine, blind, genuine_quantile=0.5, blind_quantile=0.5,
                                alpha=0.05)
    assert t.tau_high == pytest.approx(float(np.median(genuine)))
    assert t.tau_low == pytest.approx(float(np.median(blind)))
    assert t.genuine.low_rad < t.tau_high < t.genuine.high_rad
    assert t.epsilon == pytest.approx(t.genuine.half_width_rad + t.blind.half_width_rad)
    assert 0 < t.epsilon < t.tau_high - t.tau_low
    upper = genuine_angle_quantiles(genuine, blind, genuine_quantile=0.8, blind_quantile=0.2,
                                    alpha=0.05)
    assert upper.tau_high > t.tau_high
    assert upper.tau_low < t.tau_low


def test_rule_refuses_a_blind_removal_as_far_as_a_genuine_gap() -> None:
    rng = np.random.default_rng(1)
    same = rng.normal(0.4, 0.05, 60)
    with pytest.raises(InputError, match=r"tau_high = .* < epsilon") as info:
        genuine_angle_quantiles(same, same + 0.01, genuine_quantile=0.5, blind_quantile=0.5,
                                alpha=0.05)
    assert "\n" not in str(info.value)


def test_rule_refuses_too_few_pairs_for_an_interval() -> None:
    with pytest.raises(InputError, match="3 genuine calibration pairs cannot bound"):
        quantile_estimate(np.array([0.5, 0.6, 0.7]), 0.5, 0.05, "genuine calibration pairs")
    with pytest.raises(InputError, match="non-finite"):
        quantile_estimate(np.array([0.5, np.nan] * 5), 0.5, 0.05, "genuine calibration pairs")


# --- the split ---------------------------------------------------------------------------------


def _pair(a: str, b: str) -> Pair:
    return Pair(pair_id=f"p-{a}-{b}", image_a=f"{a}/0", image_b=f"{b}/1", identity_a=a,
                identity_b=b, is_genuine=a == b)


def test_disjoint_split_passes_and_overlap_names_the_identities() -> None:
    test = [_pair("1", "1"), _pair("2", "3")]
    check_disjoint(test, [_pair("7", "7"), _pair("8", "9")], "x.toml")
    with pytest.raises(InputError, match=r"shares 2 identities .*\(2, 3\)") as info:
        check_disjoint(test, [_pair("3", "3"), _pair("2", "9")], "x.toml")
    assert "\n" not in str(info.value)


def test_calibrate_refuses_an_overlapping_split(tmp_path: Path) -> None:
    path = _write(tmp_path, first_identity=1000)  # the test's own identities
    before = path.read_text(encoding="utf-8")
    with pytest.raises(InputError, match=r"shares .* identities with the test split"):
        calibrate_file(path)
    assert path.read_text(encoding="utf-8") == before
    assert main(["calibrate", str(path), "--quiet"]) == 2


# --- the writer --------------------------------------------------------------------------------

DOC = """# head comment
[falsification]
tau_high = 0.7   # why
tau_low = 0.45
epsilon = 0.1

[calibration]  # keep me
rule = "genuine_angle_quantiles"

[calibration.data]
n_pairs = 4

# a comment of the next table
[[claims]]
kind = "x"
"""


def test_writer_keeps_comments_and_replaces_its_own_block() -> None:
    values = {"tau_high": 0.5, "tau_low": 0.2, "epsilon": 0.05}
    result = {"rule": "r", "n": 3, "methods": {"a.b": {"n": 1}}}
    once = rewrite_protocol_text(DOC, "d.toml", values, result, ["note"])
    assert "tau_high = 0.5   # why" in once
    assert "# keep me" in once
    assert "# head comment" in once
    assert once.index(END_MARK) < once.index("# a comment of the next table")
    parsed = tomllib.loads(once)
    assert parsed["calibration"]["result"] == result
    assert parsed["falsification"] == values
    assert parsed["claims"] == [{"kind": "x"}]
    twice = rewrite_protocol_text(once, "d.toml", {**values, "tau_high": 0.6},
                                  {**result, "n": 4}, ["other"])
    assert twice.count("\n[calibration.result]") == 1
    assert "# note" not in twice
    assert tomllib.loads(twice)["calibration"]["result"]["n"] == 4


def test_writer_refuses_a_hand_edited_block_and_a_missing_table() -> None:
    once = rewrite_protocol_text(DOC, "d.toml", {"tau_high": 0.5}, {"rule": "r"}, [])
    with pytest.raises(InputError, match="edited by hand"):
        rewrite_protocol_text(once.replace(END_MARK, ""), "d.toml", {"tau_high": 0.5},
                              {"rule": "r"}, [])
    bare = DOC.split("[calibration]")[0]
    with pytest.raises(InputError, match=r"no \[calibration\] table"):
        rewrite_protocol_text(bare, "d.toml", {"tau_high": 0.5}, {"rule": "r"}, [])
    with pytest.raises(InputError, match="on one line"):
        rewrite_protocol_text(DOC.replace("tau_low = 0.45\n", ""), "d.toml",
                              {"tau_low": 0.2}, {"rule": "r"}, [])


# --- parsing and the refusal at run time -------------------------------------------------------


def test_fixed_thresholds_need_a_reason_and_only_fixed_takes_one(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match="thresholds_reason"):
        load_protocol(_write(tmp_path, fixed='thresholds = "fixed"'))
    with pytest.raises(ProtocolError, match="thresholds_reason"):
        load_protocol(_write(tmp_path, fixed='thresholds_reason = "because"'))


def test_run_refused_without_calibration(tmp_path: Path) -> None:
    protocol = load_protocol(_write(tmp_path, first_identity=None))
    assert theorem_decides(protocol)
    with pytest.raises(InputError, match=r"faceattr calibrate .*calib\.toml") as info:
        prepare_run(protocol, tmp_path / "reports")
    assert "no [calibration] table" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match=r"no \[calibration.result\]"):
        prepare_run(load_protocol(_write(tmp_path)), tmp_path / "reports")


def test_run_accepted_with_fixed_thresholds_and_a_reason(tmp_path: Path) -> None:
    path = _write(tmp_path, first_identity=None,
                  fixed='thresholds = "fixed"\nthresholds_reason = "no disjoint split exists"')
    protocol = load_protocol(path)
    assert protocol.falsification.thresholds_reason == "no disjoint split exists"
    assert prepare_run(protocol, tmp_path / "reports").root.parent == tmp_path / "reports"


def test_simple_verdict_without_theorem_claims_is_not_gated_by_tau(tmp_path: Path) -> None:
    protocol = load_protocol(_write(tmp_path, verdict="simple", first_identity=None))
    assert not theorem_decides(protocol)
    prepare_run(protocol, tmp_path / "reports")


@pytest.mark.parametrize(("strata_verdict", "outcomes", "decides"), [
    ("theorem", '["falsified"]', True), ("theorem", '["trivial"]', False),
    ("simple", '["falsified"]', False), ("primary", '["falsified", "trivial"]', False)])
def test_a_stratified_theorem_verdict_needs_calibrated_thresholds(
        tmp_path: Path, strata_verdict: str, outcomes: str, decides: bool) -> None:
    # [strata] verdict = "theorem" reads Theorem 3.5's verdict under a simple primary verdict:
    # its thresholds decide what the stratified analysis reports, so they must be calibrated
    path = _write(tmp_path, verdict="simple", first_identity=None)
    path.write_text(path.read_text(encoding="utf-8") + f"""
[strata]
outcomes = {outcomes}
verdict = "{strata_verdict}"

[[strata.covariates]]
name = "is_genuine"
""", encoding="utf-8")
    protocol = load_protocol(path)
    assert theorem_decides(protocol) is decides
    if decides:
        with pytest.raises(InputError, match=r"no \[calibration\] table"):
            prepare_run(protocol, tmp_path / "reports")
    else:
        prepare_run(protocol, tmp_path / "reports")


def test_calibrate_writes_the_block_and_the_run_checks_it(tmp_path: Path) -> None:
    path = _write(tmp_path)
    assert main(["calibrate", str(path), "--quiet"]) == 0
    text = path.read_text(encoding="utf-8")
    assert "# keep this comment" in text
    assert "# the model's own scale" in text
    protocol = load_protocol(path)
    result, settings = protocol.calibration.result, protocol.falsification.settings
    assert result is not None
    assert result.model == "synthetic_cnn"
    assert (settings.tau_high, settings.tau_low, settings.epsilon) == (
        result.tau_high, result.tau_low, result.epsilon)
    assert settings.tau_high - settings.tau_low >= settings.epsilon > 0
    assert result.n_pairs == 24
    assert dict(result.methods)["random"].n == 24
    prepared = prepare_run(protocol, tmp_path / "reports")  # accepted
    with pytest.raises(InputError, match="other weights"):
        check_calibrated(protocol, "0" * 64, prepared.pairs)
    edited = text.replace(f"tau_high = {settings.tau_high}  ", "tau_high = 0.9  ", 1)
    assert edited != text
    path.write_text(edited, encoding="utf-8")
    with pytest.raises(InputError, match="differ from"):
        prepare_run(load_protocol(path), tmp_path / "reports")
    path.write_text(text.replace("k_per_region = 6", "k_per_region = 7"), encoding="utf-8")
    with pytest.raises(InputError, match="changed since"):
        prepare_run(load_protocol(path), tmp_path / "reports")


REAL_CALIBRATED = Path(__file__).parents[1] / "validation/protocols/real_models/calibrated"


@pytest.mark.parametrize("model", ["dlib_resnet", "sface", "mobilefacenet_512",
                                   "mobilefacenet_192"])
def test_real_calibrated_protocols_are_disjoint_and_refuse_an_overlap(
        tmp_path: Path, model: str) -> None:
    """The four real-model protocols: test identities (macron, ardern, sunak) never in the
    calibration split (obama, biden); planting one test identity there is refused, naming it,
    before any model is built and without touching the file."""
    text = (REAL_CALIBRATED / f"{model}.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    assert not set(raw["data"]["identities"]) & set(raw["calibration"]["data"]["identities"])
    planted = text.replace('identities = ["obama", "biden"]', 'identities = ["obama", "sunak"]')
    assert planted != text
    path = tmp_path / f"{model}.toml"
    path.write_text(planted, encoding="utf-8")
    with pytest.raises(InputError, match=r"shares 1 identities with the test split \(sunak\)"):
        calibrate_file(path)
    assert path.read_text(encoding="utf-8") == planted
