from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceattr.data.folder_pairs import FolderPairSource


def fabricate(root: Path, counts: dict[str, int]) -> Path:
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for n in range(count):
            Image.fromarray(np.full((40, 40, 3), 10 * n, dtype=np.uint8)).save(
                root / name / f"{n}.png")
    (root / "notes.txt").write_text("ignored")
    return root


def test_seeded_sampler_has_the_declared_balance(tmp_path: Path) -> None:
    root = fabricate(tmp_path / "ds", {"a": 3, "b": 3, "c": 2, "d": 1})
    source = FolderPairSource(root=root, n_pairs=10, genuine_fraction=0.4, seed=7, size=32)
    pairs = source.pairs()
    assert sum(p.is_genuine for p in pairs) == 4
    assert len(pairs) == 10
    assert len({p.pair_id for p in pairs}) == 10
    assert all(p.image_a.split("/")[0] == p.identity_a for p in pairs)
    same = FolderPairSource(root=root, n_pairs=10, genuine_fraction=0.4, seed=7, size=32)
    assert same.pairs() == pairs
    other = FolderPairSource(root=root, n_pairs=10, genuine_fraction=0.4, seed=8, size=32)
    assert other.pairs() != pairs
    assert source.load_image(pairs[0].image_a).image.shape == (3, 32, 32)


def test_too_many_pairs_for_the_folder_is_one_line_error(tmp_path: Path) -> None:
    root = fabricate(tmp_path / "ds", {"a": 2, "b": 1})
    source = FolderPairSource(root=root, n_pairs=4, genuine_fraction=0.5, seed=0)
    with pytest.raises(ValueError, match=r"asked for 2 genuine and 2 impostor pairs, the folder "
                       r"allows 1 and 2"):
        source.pairs()


def test_unknown_alignment_and_missing_root_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown alignment 'warp'"):
        FolderPairSource(root=tmp_path, alignment="warp")
    with pytest.raises(FileNotFoundError, match=r"image folder not found: .*absent"):
        FolderPairSource(root=tmp_path / "absent")
