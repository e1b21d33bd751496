"""The shipped validity protocols: each graded level runs its own world and model, declares the
same families, and validity.toml replicates level 0 on fresh identities."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceattr.claims.validity import declared_families
from faceattr.protocol import Protocol, load_protocol

PROTOCOLS = Path(__file__).parents[1] / "validation" / "protocols"
LEVELS = (0, 1, 2)


def _load(relative: str) -> Protocol:
    return load_protocol(PROTOCOLS / relative)


def _families(protocol: Protocol) -> dict[str, tuple[str, ...]]:
    ids = {m.id for m in protocol.methods}
    return {f.claim_id: f.methods for f in declared_families(protocol.claims, ids)}


@pytest.mark.parametrize("level", LEVELS)
def test_each_level_uses_its_world_and_model(level: int) -> None:
    protocol = _load(f"graded/level{level}.toml")
    params = dict(protocol.data.params)
    assert params.get("difficulty", 0) == level
    assert protocol.model.weights is None  # the shipped model of each level
    assert protocol.model.name == ("synthetic_cnn" if level == 0 else f"synthetic_cnn_d{level}")


def test_levels_declare_the_same_families_and_claims() -> None:
    reference = _load("graded/level0.toml")
    for level in LEVELS[1:]:
        protocol = _load(f"graded/level{level}.toml")
        assert _families(protocol) == _families(reference)
        assert [(c.id, c.params) for c in protocol.claims] == \
            [(c.id, c.params) for c in reference.claims]


def test_default_validity_protocol_replicates_level0_on_fresh_identities() -> None:
    level0, validity = _load("graded/level0.toml"), _load("validity.toml")
    assert _families(validity)["dose_response_margin"] == \
        _families(level0)["dose_response_margin"]
    assert dict(validity.data.params)["first_identity"] != \
        dict(level0.data.params)["first_identity"]
    assert validity.seed == level0.seed
