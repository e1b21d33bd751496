# Planted source defects: each must fail its check, with the check's name first.
from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceattr.testing import SOURCE_CHECKS, check_source, source_checks
from faceattr.testing.sources import SourceRef
from tests.testing import components as c


@pytest.fixture(autouse=True)
def _restore_global_rng() -> Iterator[None]:
    # the planted global-RNG sampler draws from np.random: leave no trace for other tests
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    yield
    np.random.set_state(np_state)  # noqa: NPY002
    random.setstate(py_state)


def run_check(source: SourceRef, check: str) -> None:
    dict(source_checks(source))[check]()


def edited(defect: str) -> c.EditedSource:
    return c.EditedSource(inner=c.synthetic_source(0), defect=defect)


def test_correct_sources_pass() -> None:
    check_source(c.synthetic_source)
    check_source(edited(""))


def test_a_correct_file_source_passes(tmp_path: Path) -> None:
    check_source(c.FileSource(c.fabricate_files(tmp_path / "ds")))


@pytest.mark.parametrize(("defect", "check", "message"), [
    ("global_rng_order", "pairs_deterministic", r"two calls of pairs\(\) give different pairs"),
    ("duplicate_ids", "pair_ids_unique_safe", r"pairs 0 and 3 share the id 'synthetic-"),
    ("unsafe_ids", "pair_ids_unique_safe", r"pair 0 has id '\d+/id\d+/view\d', not a safe name"),
    ("genuine_only", "both_labels", r"all 4 pairs are genuine: no impostor pair"),
    ("mixed_sizes", "images_valid", r"images differ in size \('id\d+/view0' is \(3, 64, 64\), "
                                    r"'id\d+/view1' is \(3, 63, 63\)\)"),
])
def test_each_planted_defect_fails_its_check(defect: str, check: str, message: str) -> None:
    expected = rf"^{check} failed for source 'edited': .*{message}"
    with pytest.raises(AssertionError, match=expected):
        run_check(edited(defect), check)
    with pytest.raises(AssertionError, match=expected):
        check_source(edited(defect), checks=[check])


def test_duplicate_ids_also_break_the_manifest() -> None:
    with pytest.raises(AssertionError, match=r"^manifest_hashes failed for source 'edited': "
                                             r"raised InputError: .*duplicate pair ids"):
        run_check(c.EditedSource(inner=c.synthetic_source(0), defect="duplicate_ids"),
                  "manifest_hashes")


def test_a_factory_ignoring_its_seed_fails_determinism() -> None:
    with pytest.raises(AssertionError, match=r"^pairs_deterministic failed for source "
                                             r"'synthetic': two sources built with seed 0 give "
                                             r"different pairs"):
        run_check(c.unseeded_source, "pairs_deterministic")
    # a single instance is self-consistent: only the factory shows it
    run_check(c.unseeded_source(0), "pairs_deterministic")


@pytest.mark.parametrize("defect", ["path_hash", "cached"])
def test_a_file_hash_that_lies_fails_manifest_hashes(tmp_path: Path, defect: str) -> None:
    root = c.fabricate_files(tmp_path / "ds")
    source = c.FileSource(root, defect=defect)
    if defect == "cached":
        source.file_sha256("b/0.png")  # hashed once ...
        Image.fromarray(np.zeros((40, 40, 3), dtype=np.uint8)).save(root / "b/0.png")  # ... edited
    with pytest.raises(AssertionError, match=r"^manifest_hashes failed for source 'files': "
                                             r"file_sha256\('(a|b)/\d\.png'\) = [0-9a-f]{12}\.\.\. "
                                             r"but the file .* has SHA-256"):
        run_check(source, "manifest_hashes")


def test_a_file_source_without_image_path_cannot_be_verified(tmp_path: Path) -> None:
    source = c.NoImagePathSource(c.FileSource(c.fabricate_files(tmp_path / "ds")))
    with pytest.raises(AssertionError, match=r"^manifest_hashes failed for source "
                                             r"'no_image_path': raised TypeError: the source "
                                             r"hashes files \(file_sha256\) but has no "
                                             r"image_path"):
        run_check(source, "manifest_hashes")


def test_not_a_source() -> None:
    assert [name for name, _ in source_checks(c.synthetic_source)] == list(SOURCE_CHECKS)
    with pytest.raises(AssertionError, match=r"^both_labels failed for source: raised TypeError: "
                                             r"42 is neither a pair source"):
        run_check(42, "both_labels")  # type: ignore[arg-type]
