"""``faceattr plan``: Theorem 3.7's cost model, calibrated through the engine, against a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceattr.experiments.plan import plan_run
from faceattr.experiments.run import run_protocol
from faceattr.protocol import load_protocol
from tests.helpers import small_protocol


@pytest.fixture
def protocol_path(tmp_path: Path) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(small_protocol(n_pairs=12, k=6))
    return path


def test_forwards_follow_the_cost_model_and_skip_trivial_maps(protocol_path: Path) -> None:
    plan = plan_run(load_protocol(protocol_path))
    forwards = {m.method: m.counterfactual_forwards for m in plan.methods}
    assert forwards["constant"] == 0  # a constant map is trivial: no counterfactuals
    for method in ("saliency", "oracle", "inverted", "random"):
        assert forwards[method] == 12 * 2 * 6
    assert plan.counterfactual_s > 0
    assert plan.expected_s == pytest.approx(sum(m.expected_s for m in plan.methods))
    assert "total" in plan.render()


def test_estimate_is_within_generous_bounds_of_a_measured_run(protocol_path: Path,
                                                              tmp_path: Path) -> None:
    """The estimate tracks the measured records loop (timing, so bounds are generous: the
    benchmark and README report the real ratios on the shipped protocols)."""
    protocol = load_protocol(protocol_path)
    plan = plan_run(protocol)
    folder = run_protocol(protocol, tmp_path / "reports", progress=False)
    measured_s = json.loads(folder.timing.read_text())["wall_s"]
    assert 0.2 < plan.expected_s / measured_s < 5.0
