from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceattr.data.folder_pairs import check_manifest_files, file_sha256_table
from faceattr.data.lfw import LfwPairSource, parse_lfw_pairs
from faceattr.data.pairs import build_manifest
from faceattr.rng import numpy_generator

PEOPLE = {"Ann_Able": 3, "Bob_Bell": 2, "Cid_Cole": 1}


def fabricate_lfw(root: Path) -> Path:
    rng = numpy_generator(0, "fabricated_lfw")
    lfw = root / "lfw"
    for name, count in PEOPLE.items():
        (lfw / name).mkdir(parents=True)
        for n in range(1, count + 1):
            pixels = rng.integers(0, 256, size=(48, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(lfw / name / f"{name}_{n:04d}.jpg", quality=90)
    return lfw


PAIRS_TXT = """2\t1
Ann_Able\t1\t2
Ann_Able\t3\tBob_Bell\t1
Bob_Bell\t1\t2
Bob_Bell\t2\tCid_Cole\t1
"""


def test_lfw_pairs_txt_over_a_fabricated_folder(tmp_path: Path) -> None:
    lfw = fabricate_lfw(tmp_path)
    (tmp_path / "pairs.txt").write_text(PAIRS_TXT)
    source = LfwPairSource(root=lfw, pairs_file=tmp_path / "pairs.txt", size=32)
    pairs = source.pairs()
    assert [(p.image_a, p.image_b, p.is_genuine) for p in pairs] == [
        ("Ann_Able/Ann_Able_0001.jpg", "Ann_Able/Ann_Able_0002.jpg", True),
        ("Ann_Able/Ann_Able_0003.jpg", "Bob_Bell/Bob_Bell_0001.jpg", False),
        ("Bob_Bell/Bob_Bell_0001.jpg", "Bob_Bell/Bob_Bell_0002.jpg", True),
        ("Bob_Bell/Bob_Bell_0002.jpg", "Cid_Cole/Cid_Cole_0001.jpg", False),
    ]
    assert (pairs[1].identity_a, pairs[1].identity_b) == ("Ann_Able", "Bob_Bell")
    assert len({p.pair_id for p in pairs}) == 4
    assert LfwPairSource(root=lfw, pairs_file=tmp_path / "pairs.txt").pairs() == pairs
    assert len(LfwPairSource(root=lfw, pairs_file=tmp_path / "pairs.txt", folds=(1,)).pairs()) == 2
    image = source.load_image(pairs[0].image_a).image
    assert image.shape == (3, 32, 32)
    assert image.dtype == np.float32
    hashes = file_sha256_table(source, pairs)
    manifest = build_manifest(source, pairs, hashes)
    assert manifest["pairs"][0]["sha256_a"] == source.file_sha256("Ann_Able/Ann_Able_0001.jpg")
    check_manifest_files(source, manifest["pairs"])
    Image.new("RGB", (48, 48)).save(lfw / "Cid_Cole" / "Cid_Cole_0001.jpg")
    with pytest.raises(ValueError, match=r"manifest does not match the files: "
                       r"Cid_Cole/Cid_Cole_0001\.jpg has sha256"):
        check_manifest_files(source, manifest["pairs"])


def test_lfw_dev_format_is_read(tmp_path: Path) -> None:
    (tmp_path / "pairsDevTest.txt").write_text("1\nAnn_Able 2 3\nAnn_Able 2 Cid_Cole 1\n")
    rows = parse_lfw_pairs(tmp_path / "pairsDevTest.txt")
    assert rows == [("Ann_Able", 2, "Ann_Able", 3, 0), ("Ann_Able", 2, "Cid_Cole", 1, 0)]


def test_lfw_folder_missing_a_listed_image_is_one_line_error(tmp_path: Path) -> None:
    lfw = fabricate_lfw(tmp_path)
    (lfw / "Bob_Bell" / "Bob_Bell_0002.jpg").unlink()
    (tmp_path / "pairs.txt").write_text(PAIRS_TXT)
    with pytest.raises(FileNotFoundError, match=r"LFW folder .*lfw lacks 1 image\(s\) listed in "
                       r"pairs\.txt, first: Bob_Bell/Bob_Bell_0002\.jpg"):
        LfwPairSource(root=lfw, pairs_file=tmp_path / "pairs.txt")


@pytest.mark.parametrize(("text", "message"), [
    ("2\t1\nAnn_Able\t1\t2\n", r"header announces 4 pairs \(2 fold\(s\) x 2 x 1\), the file "
                               r"lists 1"),
    ("1\nAnn_Able 1 Bob_Bell 1\nAnn_Able 1 2\n", r":2: expected a genuine 'name n1 n2' line"),
    ("1\nAnn_Able 1 x\nAnn_Able 1 Bob_Bell 1\n", r":2: expected an integer, got 'x'"),
    ("a b c\n", r":1: header must be"),
])
def test_malformed_pairs_file_is_one_line_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "pairs.txt").write_text(text)
    with pytest.raises(ValueError, match=message):
        parse_lfw_pairs(tmp_path / "pairs.txt")
