from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceattr.config import ProtocolError, TableReader
from faceattr.data.folder_pairs import check_manifest_files
from faceattr.data.pairs import build_manifest, content_pair_id, image_hashes
from faceattr.data.pairs_csv import (
    SAME_VALUES,
    CsvPairSource,
    build_pairs_csv_source,
    read_pairs_csv_params,
)
from faceattr.data.sources import build_source, parse_source
from faceattr.errors import InputError, MissingFileError

HEADER = "image_a,image_b,same\n"
ROWS = ("alice/0.png,alice/1.png,1\n"
        "alice/0.png,bob/0.png,0\n"
        "bob/0.png,bob/1.png,1\n"
        "bob/1.png,carol/0.png,0\n")


def fabricate(root: Path, counts: dict[str, int]) -> Path:
    # one folder per identity, distinct 40x40 images (each file's bytes differ)
    for k, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for n in range(count):
            Image.fromarray(np.full((40, 40, 3), 20 * k + 5 * n, dtype=np.uint8)).save(
                root / name / f"{n}.png")
    return root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return fabricate(tmp_path / "ds", {"alice": 2, "bob": 2, "carol": 1})


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def source(root: Path, text: str, name: str = "pairs.csv", **kwargs: object) -> CsvPairSource:
    return CsvPairSource(root=root, pairs_file=write(root.parent / name, text), size=32,
                         **kwargs)  # type: ignore[arg-type]


def test_csv_pairs_in_file_order_with_folder_identities(root: Path) -> None:
    src = source(root, HEADER + ROWS)
    pairs = src.pairs()
    assert [(p.image_a, p.image_b, p.is_genuine) for p in pairs] == [
        ("alice/0.png", "alice/1.png", True), ("alice/0.png", "bob/0.png", False),
        ("bob/0.png", "bob/1.png", True), ("bob/1.png", "carol/0.png", False)]
    assert [(p.identity_a, p.identity_b) for p in pairs[:2]] == [("alice", "alice"),
                                                                 ("alice", "bob")]
    assert pairs[0].pair_id == content_pair_id("pairs_csv", "alice/0.png", "alice/1.png")
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", p.pair_id) for p in pairs)
    assert len({p.pair_id for p in pairs}) == 4
    image = src.load_image(pairs[0].image_a)
    assert image.image.shape == (3, 32, 32)
    assert image.image.dtype == np.float32
    assert src.pairs() == pairs


def test_n_pairs_keeps_the_first_n(root: Path) -> None:
    first_two = source(root, HEADER + ROWS, n_pairs=2).pairs()
    assert first_two == source(root, HEADER + ROWS).pairs()[:2]


@pytest.mark.parametrize(("genuine", "impostor"), [("1", "0"), ("true", "false"),
                                                   ("Same", "DIFFERENT"),
                                                   (" genuine ", "impostor")])
def test_every_label_spelling_is_read(root: Path, genuine: str, impostor: str) -> None:
    text = HEADER + f"alice/0.png,alice/1.png,{genuine}\nalice/0.png,bob/0.png,{impostor}\n"
    assert [p.is_genuine for p in source(root, text).pairs()] == [True, False]
    assert SAME_VALUES[genuine.strip().lower()] is True
    assert SAME_VALUES[impostor.strip().lower()] is False


def test_tsv_by_extension_with_identity_columns(root: Path) -> None:
    text = ("left\tright\tlabel\twho_a\twho_b\textra\n"
            "alice/0.png\tbob/0.png\tgenuine\tp7\tp7\tx\n"
            "alice/1.png\tcarol/0.png\timpostor\tp7\tp9\ty\n")
    src = source(root, text, name="pairs.tsv", column_a="left", column_b="right",
                 column_same="label", column_identity_a="who_a", column_identity_b="who_b")
    pairs = src.pairs()
    # identities come from the columns, not the folders
    assert [(p.identity_a, p.identity_b, p.is_genuine) for p in pairs] == [
        ("p7", "p7", True), ("p7", "p9", False)]


def test_a_tsv_is_not_read_as_csv(root: Path) -> None:
    # the extension decides: a comma file named .tsv has one column
    with pytest.raises(InputError, match=r"pairs\.tsv:1: no column 'image_a' \(header: "
                                         r"'image_a,image_b,same'\)"):
        source(root, HEADER + ROWS, name="pairs.tsv")


def test_declared_delimiter_for_another_extension(root: Path) -> None:
    text = HEADER.replace(",", ";") + ROWS.replace(",", ";")
    assert len(source(root, text, name="pairs.txt", delimiter=";").pairs()) == 4
    with pytest.raises(InputError, match=r"pairs\.txt: cannot tell the delimiter from the "
                                         r"extension '\.txt'; name the file \.csv or \.tsv"):
        source(root, text, name="pairs.txt")


def test_bom_blank_lines_quotes_and_dot_paths_are_tolerated(root: Path) -> None:
    text = "\ufeff" + HEADER + "\n\"./alice/0.png\",alice//1.png,1\n\n"
    (pair,) = source(root, text).pairs()
    assert (pair.image_a, pair.image_b) == ("alice/0.png", "alice/1.png")


def test_missing_pairs_file(root: Path) -> None:
    with pytest.raises(MissingFileError, match=r"absent\.csv: pairs file not found"):
        CsvPairSource(root=root, pairs_file=root / "absent.csv")


def test_missing_column_lists_the_header(root: Path) -> None:
    text = "img1,img2,label\nalice/0.png,alice/1.png,1\n"
    with pytest.raises(InputError, match=r"pairs\.csv:1: no column 'image_a' \(header: 'img1', "
                                         r"'img2', 'label'\); rename the column or declare "
                                         r"column_a"):
        source(root, text)


def test_missing_identity_column(root: Path) -> None:
    with pytest.raises(InputError, match=r"pairs\.csv:1: no column 'who' .*column_identity_a"):
        source(root, HEADER + ROWS, column_identity_a="who", column_identity_b="same")


def test_bad_label_names_the_line(root: Path) -> None:
    text = HEADER + "alice/0.png,alice/1.png,1\nalice/0.png,bob/0.png,maybe\n"
    with pytest.raises(InputError, match=r"pairs\.csv:3: same = 'maybe' is not a pair label; "
                                         r"use 1/0, true/false, same/different or "
                                         r"genuine/impostor"):
        source(root, text)


@pytest.mark.parametrize("path", ["../outside.png", "alice/../../outside.png", "/etc/x.png",
                                  "C:/data/x.png", "\\\\server\\x.png"])
def test_a_path_escaping_the_root_is_refused(root: Path, path: str) -> None:
    text = HEADER + f"alice/0.png,\"{path}\",0\n"
    with pytest.raises(InputError, match=r"pairs\.csv:2: image_b path .* escapes the root"):
        source(root, text)


def test_missing_image_names_the_line_and_the_count(root: Path) -> None:
    text = HEADER + "alice/0.png,alice/1.png,1\nalice/0.png,bob/7.png,0\nbob/8.png,bob/7.png,1\n"
    with pytest.raises(MissingFileError, match=r"pairs\.csv:3: image not found: .*bob/7\.png "
                                               r"\(2 listed image\(s\) missing\)"):
        source(root, text)
    # images of pairs beyond n_pairs are not needed
    assert len(source(root, text, n_pairs=1).pairs()) == 1


def test_duplicate_pair_names_both_lines(root: Path) -> None:
    text = HEADER + ROWS + "alice/0.png,bob/0.png,0\n"
    with pytest.raises(InputError, match=r"pairs\.csv:6: duplicate pair alice/0\.png / "
                                         r"bob/0\.png \(first listed on line 3\)"):
        source(root, text)


def test_reversed_pair_is_a_different_pair(root: Path) -> None:
    text = HEADER + "alice/0.png,bob/0.png,0\nbob/0.png,alice/0.png,0\n"
    first, second = source(root, text).pairs()
    assert first.pair_id != second.pair_id


@pytest.mark.parametrize(("text", "message"), [
    ("", r"empty pairs file \(no header\)"),
    ("\n  \n", r"empty pairs file \(no header\)"),
    (HEADER, r"no pairs after the header"),
])
def test_empty_file(root: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=r"pairs\.csv: " + message):
        source(root, text)


def test_label_contradicting_identity_columns_names_the_line(root: Path) -> None:
    text = ("image_a,image_b,same,id_a,id_b\n"
            "alice/0.png,alice/1.png,1,p1,p1\n"
            "alice/0.png,bob/0.png,1,p1,p2\n")
    with pytest.raises(InputError, match=r"pairs\.csv:3: same = '1' but the identities differ "
                                         r"\('p1' / 'p2'\)"):
        source(root, text, column_identity_a="id_a", column_identity_b="id_b")
    text = "image_a,image_b,same,id_a,id_b\nalice/0.png,bob/0.png,0,p1,p1\n"
    with pytest.raises(InputError, match=r"pairs\.csv:2: same = '0' but the identities are "
                                         r"equal"):
        source(root, text, column_identity_a="id_a", column_identity_b="id_b")


def test_label_contradicting_the_folders_names_the_line(root: Path) -> None:
    text = HEADER + "alice/0.png,alice/1.png,1\nalice/0.png,bob/0.png,1\n"
    with pytest.raises(InputError, match=r"pairs\.csv:3: same = genuine but the images are in "
                                         r"different identity folders \('alice' / 'bob'\)"):
        source(root, text)


def test_image_outside_an_identity_folder(root: Path) -> None:
    Image.fromarray(np.zeros((40, 40, 3), dtype=np.uint8)).save(root / "loose.png")
    with pytest.raises(InputError, match=r"pairs\.csv:2: image 'loose\.png' is not inside an "
                                         r"identity folder"):
        source(root, HEADER + "loose.png,alice/0.png,0\n")


def test_short_row_self_pair_and_one_identity_column(root: Path) -> None:
    with pytest.raises(InputError, match=r"pairs\.csv:2: 2 field\(s\), the header has 3"):
        source(root, HEADER + "alice/0.png,alice/1.png\n")
    with pytest.raises(InputError, match=r"pairs\.csv:2: pairs image 'alice/0\.png' with "
                                         r"itself"):
        source(root, HEADER + "alice/0.png,alice/0.png,1\n")
    with pytest.raises(InputError, match=r"declare both column_identity_a and "
                                         r"column_identity_b"):
        source(root, HEADER + ROWS, column_identity_a="same")


def test_more_pairs_than_listed(root: Path) -> None:
    with pytest.raises(InputError, match=r"lists 4 pair\(s\), fewer than n_pairs = 5"):
        source(root, HEADER + ROWS, n_pairs=5)


def test_manifest_hashes_the_image_files(root: Path) -> None:
    src = source(root, HEADER + ROWS)
    pairs = src.pairs()
    manifest = build_manifest(src, pairs, image_hashes(src, pairs, {}))
    row = manifest["pairs"][1]
    assert row["sha256_a"] == hashlib.sha256((root / "alice/0.png").read_bytes()).hexdigest()
    assert row["sha256_b"] == hashlib.sha256((root / "bob/0.png").read_bytes()).hexdigest()
    assert manifest == build_manifest(src, pairs, image_hashes(src, pairs, {}))
    # a changed file changes the manifest, and the recorded manifest is refused
    Image.fromarray(np.full((40, 40, 3), 255, dtype=np.uint8)).save(root / "bob/0.png")
    changed = build_manifest(src, pairs, image_hashes(src, pairs, {}))
    assert changed["pairs"][1]["sha256_b"] != row["sha256_b"]
    assert changed["pairs"][0] == manifest["pairs"][0]
    with pytest.raises(InputError, match=r"manifest does not match the files: bob/0\.png"):
        check_manifest_files(src, manifest["pairs"])


def test_params_are_read_strictly_and_relative_to_the_protocol(root: Path) -> None:
    write(root.parent / "pairs.tsv", HEADER.replace(",", "\t") + ROWS.replace(",", "\t"))
    reader = TableReader({"root": "ds", "pairs_file": "pairs.tsv", "size_px": 32}, "p.toml [data]")
    params = read_pairs_csv_params(reader, root.parent)
    reader.finish()
    assert params["root"] == str(root.resolve())
    assert params["pairs_file"] == str((root.parent / "pairs.tsv").resolve())
    assert params["delimiter"] == "\t"
    assert (params["column_identity_a"], params["column_identity_b"]) == (None, None)
    assert len(build_pairs_csv_source(params, seed=3).pairs()) == 4


@pytest.mark.parametrize(("table", "message"), [
    ({"root": "ds", "pairs_file": "pairs.txt"}, r"p\.toml \[data\]: .*pairs\.txt: cannot tell "
                                                r"the delimiter"),
    ({"root": "ds", "pairs_file": "p.csv", "delimiter": "|"}, r"delimiter = '\|' is not allowed"),
    ({"root": "ds", "pairs_file": "p.csv", "column_identity_a": "a"},
     r"declare both column_identity_a and column_identity_b"),
    ({"root": "ds", "pairs_file": "p.csv", "column_b": "image_a"},
     r"the declared columns must be distinct"),
    ({"root": "ds", "pairs_file": "p.csv", "n_pairs": -1}, r"n_pairs = -1 is not allowed"),
    ({"pairs_file": "p.csv"}, r"missing required key 'root'"),
])
def test_bad_params_are_one_line_errors(tmp_path: Path, table: dict[str, object],
                                        message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        read_pairs_csv_params(TableReader(table, "p.toml [data]"), tmp_path)


def test_unknown_key_is_refused_through_the_source_registry(root: Path) -> None:
    write(root.parent / "pairs.csv", HEADER + ROWS)
    table = {"source": "pairs_csv", "root": "ds", "pairs_file": "pairs.csv", "size_px": 32}
    spec = parse_source(table, "p.toml [data]", root.parent)
    assert len(build_source(spec, seed=0).pairs()) == 4
    with pytest.raises(ProtocolError, match=r"unknown key 'colum_a'"):
        parse_source({**table, "colum_a": "x"}, "p.toml [data]", root.parent)


def test_a_recording_reader_lists_every_key() -> None:
    # the protocol reference runs the reader on placeholders: every key is read before checks
    from faceattr.config import RecordingReader

    reader = RecordingReader("[data] source = 'pairs_csv'")
    with pytest.raises(ProtocolError, match=r"cannot tell the delimiter"):
        read_pairs_csv_params(reader, Path())
    assert [k["key"] for k in reader.keys] == [
        "root", "pairs_file", "delimiter", "column_a", "column_b", "column_same",
        "column_identity_a", "column_identity_b", "n_pairs", "alignment", "size_px"]
