# The built-ins pass the same checks a user's component must pass (faceattr.testing), on the
# same inputs. Every (component, check) pair is one test; a check that does not apply is
# skipped with its reason, and a known failure is a strict xfail with its reason.
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceattr.attribution.registry import METHODS
from faceattr.data.folder_pairs import FolderPairSource
from faceattr.data.pairs import LimitedPairSource, PairSource
from faceattr.data.pairs_csv import CsvPairSource
from faceattr.testing import (
    BUILTIN_CHECK_PARAMS,
    METHOD_CHECKS,
    MODEL_CHECKS,
    SOURCE_CHECKS,
    method_checks,
    model_checks,
    source_checks,
    tiny_model,
)
from tests.testing import components as c

# Known, explained failures of built-ins (strict: they must keep failing, or be removed here).
EXPECTED_FAILURES: dict[tuple[str, str], str] = {
    ("constant", "maps_not_constant"): "the constant control is a flat map by design (every "
                                       "pair trivial: its known answer)",
    ("attention_rollout", "partner_dependence"): "attention rollout is target-independent by "
                                                 "definition (Abnar & Zuidema 2020): it maps the "
                                                 "probe's attention flow, not s(x_a, x_b)",
}


def _method_params() -> list[object]:
    out: list[object] = []
    for name in sorted(METHODS):
        for check in METHOD_CHECKS:
            reason = EXPECTED_FAILURES.get((name, check))
            marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] \
                if reason else []
            out.append(pytest.param(name, check, marks=marks, id=f"{name}-{check}"))
    return out


def test_every_builtin_has_check_settings() -> None:
    assert set(BUILTIN_CHECK_PARAMS) == set(METHODS)


@pytest.mark.parametrize(("name", "check"), _method_params())
def test_builtin_method(name: str, check: str) -> None:
    checks = dict(method_checks(name, params=BUILTIN_CHECK_PARAMS[name]))
    if check not in checks:
        assert check == "partner_dependence"
        assert METHODS[name].info.is_control
        pytest.skip(f"{check} does not apply to {name}: a control (info.is_control) does not "
                    "explain the pair score")
    checks[check]()


MODELS: dict[str, Callable[[], object]] = {
    "tiny": tiny_model,
    "synthetic_cnn": lambda: "synthetic_cnn",  # by name, through the model registry
    "synthetic_cnn_d2": lambda: "synthetic_cnn_d2",
}


@pytest.mark.parametrize("check", MODEL_CHECKS)
@pytest.mark.parametrize("model", sorted(MODELS))
def test_builtin_model(model: str, check: str) -> None:
    dict(model_checks(MODELS[model]()))[check]()  # type: ignore[arg-type]


def _fabricate(root: Path) -> Path:
    for k, name in enumerate(("ann", "ben", "cas")):
        (root / name).mkdir(parents=True)
        for n in range(3):
            Image.fromarray(np.full((40, 40, 3), 30 * k + 8 * n, dtype=np.uint8)).save(
                root / name / f"{n}.png")
    (root.parent / "pairs.csv").write_text(
        "image_a,image_b,same\nann/0.png,ann/1.png,1\nann/0.png,ben/0.png,0\n"
        "ben/1.png,ben/2.png,genuine\ncas/0.png,ann/2.png,impostor\n", encoding="utf-8")
    return root


def _sources(tmp: Path) -> dict[str, Callable[[int], PairSource]]:
    root = _fabricate(tmp / "ds")
    csv = tmp / "pairs.csv"
    return {
        "synthetic": c.synthetic_source,
        "folder": lambda seed: FolderPairSource(root=root, n_pairs=6, genuine_fraction=0.5,
                                                seed=seed, size=32),
        "pairs_csv": lambda seed: CsvPairSource(root=root, pairs_file=csv, size=32),
        "pairs_csv_limited": lambda seed: LimitedPairSource(
            CsvPairSource(root=root, pairs_file=csv, size=32), 3),
    }


SOURCE_NAMES = ("synthetic", "folder", "pairs_csv", "pairs_csv_limited")


@pytest.mark.parametrize("check", SOURCE_CHECKS)
@pytest.mark.parametrize("source", SOURCE_NAMES)
def test_builtin_source(tmp_path: Path, source: str, check: str) -> None:
    dict(source_checks(_sources(tmp_path)[source], seed=5))[check]()
