from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from faceattr.protocol import ProtocolError, load_protocol, parse_protocol

SHIPPED = Path(__file__).parents[1] / "validation" / "protocols" / "synthetic.toml"


def _raw() -> dict[str, Any]:
    return tomllib.loads(SHIPPED.read_text(encoding="utf-8"))


def test_shipped_protocol_loads() -> None:
    protocol = load_protocol(SHIPPED)
    assert protocol.name == "synthetic"
    assert {m.id for m in protocol.methods} >= {"saliency", "oracle", "inverted", "random",
                                                "constant", "integrated_gradients",
                                                "geodesic_ig", "grad_cam"}
    assert len(protocol.content_sha256) == 64  # the run folder's name also needs the identity


def test_execution_settings_do_not_change_the_content_hash() -> None:
    raw = _raw()
    raw["execution"]["pairs_per_batch"] = 7
    assert parse_protocol(raw, "x.toml").content_sha256 == load_protocol(SHIPPED).content_sha256
    raw["protocol"]["seed"] = 1
    assert parse_protocol(raw, "x.toml").content_sha256 != load_protocol(SHIPPED).content_sha256


@pytest.mark.parametrize(("path", "value", "match"), [
    (("falsification", "q_frac"), 10, r"q_frac = 10 is not allowed; expected a fraction in "
                                      r"\(0, 0.5\] — a fraction, not a percent"),
    (("falsification", "fill"), "inpaint",
     r"fill = 'inpaint' is not registered; known: blur, mean, nli, noise, zero"),
    (("falsification", "fill"), "blur", r"missing required key 'blur_sigma_px'"),
    (("falsification", "k_per_region"), 1, r"k_per_region = 1 is not allowed"),
    (("protocol", "alpha"), 5, r"alpha = 5 is not allowed"),
    (("data", "genuine_fraction"), 50, r"genuine_fraction = 50 is not allowed"),
    (("model", "name"), "resnet50", r"model = 'resnet50' is not registered"),
])
def test_bad_values_are_one_line_errors(path: tuple[str, str], value: object, match: str) -> None:
    raw = _raw()
    raw[path[0]][path[1]] = value
    with pytest.raises(ProtocolError, match=match) as info:
        parse_protocol(raw, "bad.toml")
    assert "\n" not in str(info.value)


def test_unknown_key_is_named() -> None:
    raw = _raw()
    raw["falsification"]["k_per_regoin"] = 32
    with pytest.raises(ProtocolError, match=r"\[falsification\]: unknown key 'k_per_regoin'"):
        parse_protocol(raw, "bad.toml")


def test_unknown_method_is_named() -> None:
    raw = _raw()
    raw["methods"].append({"method": "biometric_saliency"})
    with pytest.raises(ProtocolError, match="method = 'biometric_saliency' is not registered"):
        parse_protocol(raw, "bad.toml")


def test_claim_on_undeclared_method_is_refused() -> None:
    raw = _raw()
    raw["claims"].append({"kind": "fr_at_most", "method": "lime", "threshold": 0.1})
    with pytest.raises(ProtocolError, match="method = 'lime' is not allowed"):
        parse_protocol(raw, "bad.toml")


def test_missing_file_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match="protocol file not found"):
        load_protocol(tmp_path / "nope.toml")


def test_k_below_declared_precision_is_refused() -> None:
    raw = _raw()
    raw["falsification"] |= {"precision_eps_rad": 0.1, "precision_delta": 0.05}
    with pytest.raises(ProtocolError, match=r"k_per_region = 32 is below the declared "
                                            r"precision; Hoeffding needs K >= 1821"):
        parse_protocol(raw, "bad.toml")


def test_settings_of_another_mode_are_refused() -> None:
    raw = _raw()
    raw["falsification"]["theta_high"] = 0.8  # quantile mode: a threshold would do nothing
    with pytest.raises(ProtocolError, match="unknown key 'theta_high'"):
        parse_protocol(raw, "bad.toml")


def test_taus_must_leave_the_epsilon_gap() -> None:
    raw = _raw()
    raw["falsification"]["tau_low"] = 0.65  # tau_high = 0.7: a gap of 0.05 < epsilon = 0.1
    with pytest.raises(ProtocolError, match=r"Theorem 3\.5 needs tau_high - tau_low >= epsilon"):
        parse_protocol(raw, "bad.toml")
