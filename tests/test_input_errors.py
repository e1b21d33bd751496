"""User-fixable problems are one-line ``InputError``s naming the thing (issue #17).

The command line maps :class:`faceattr.errors.InputError` to exit 2 and everything else to
"internal error"; each case here is a bad input a user can hit, so it must be an ``InputError``
(still a ``ValueError`` for callers that catch the built-in type) with a one-line message.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faceattr.config import ProtocolError
from faceattr.data.alignment import align_photo
from faceattr.data.folder_pairs import FolderPairSource, check_manifest_files, file_sha256_table
from faceattr.data.images import ImageLoadError, load_rgb_uint8
from faceattr.data.lfw import LfwPairSource, parse_lfw_pairs
from faceattr.data.pairs import LimitedPairSource, build_manifest
from faceattr.data.synthetic import check_difficulty
from faceattr.data.synthetic_pairs import SyntheticPairSource
from faceattr.errors import InputError, MissingFileError
from faceattr.io import read_json, read_jsonl
from faceattr.models.facenet import FACENET_WEIGHTS_ENV, find_facenet_weights, load_facenet
from faceattr.models.loading import load_model
from faceattr.models.synthetic_cnn import (
    SYNTHETIC_WEIGHTS_ENV,
    SyntheticFaceCNN,
    default_weights_path,
    load_synthetic_model,
)
from faceattr.protocol import load_protocol

SHIPPED = Path(__file__).resolve().parents[1] / "validation" / "protocols" / "synthetic.toml"


def one_line(info: pytest.ExceptionInfo[BaseException], *names: object) -> str:
    """Assert the caught error is a one-line InputError (and ValueError) naming ``names``."""
    error = info.value
    assert isinstance(error, InputError), type(error).__mro__
    assert isinstance(error, ValueError)
    message = str(error)
    assert message
    assert "\n" not in message, message
    assert "\r" not in message, message
    for name in names:
        assert str(name) in message, (name, message)
    return message


def expect(kind: type[InputError], call: Callable[[], object], *names: object) -> str:
    """Run ``call``, expecting a one-line ``kind`` naming ``names``; return the message."""
    with pytest.raises(kind) as info:
        call()
    return one_line(info, *names)


def test_protocol_error_is_an_input_error() -> None:
    assert issubclass(ProtocolError, InputError)
    assert issubclass(ProtocolError, ValueError)


# --- protocol files ------------------------------------------------------------------------------

def test_a_folder_as_protocol_path_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "validation"
    folder.mkdir()
    with pytest.raises(ProtocolError) as info:
        load_protocol(folder)
    assert "is a folder" in one_line(info, folder)


def test_a_missing_protocol_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError) as info:
        load_protocol(tmp_path / "nope.toml")
    assert "protocol file not found" in one_line(info, tmp_path / "nope.toml")


def test_a_non_utf8_protocol_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    assert "UTF-8" in one_line(info, path)


@pytest.mark.parametrize("text", ["name = \n", "[falsification\nk = 1\n", 'a = "x\nb = 2\n',
                                  "x = 1\nx = 2\n"])
def test_invalid_toml_is_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    assert "not valid TOML" in one_line(info, path)


def test_a_bad_protocol_value_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(SHIPPED.read_text(encoding="utf-8").replace("[falsification]",
                                                                "[falsification]\nbogus = 1", 1),
                    encoding="utf-8")
    expect(ProtocolError, lambda: load_protocol(path), "bogus")


# --- synthetic CNN weights -----------------------------------------------------------------------

@pytest.fixture
def fixture_weights(monkeypatch: pytest.MonkeyPatch) -> bytes:
    monkeypatch.delenv(SYNTHETIC_WEIGHTS_ENV, raising=False)
    return default_weights_path().read_bytes()


def _bad_synthetic_files(tmp_path: Path, good: bytes) -> dict[str, Path]:
    files = {"garbage": tmp_path / "garbage.pt", "empty": tmp_path / "empty.pt",
             "text": tmp_path / "text.pt", "truncated": tmp_path / "truncated.pt",
             "tensor": tmp_path / "tensor.pt", "wrong_keys": tmp_path / "wrong_keys.pt",
             "wrong_shapes": tmp_path / "wrong_shapes.pt", "missing_key": tmp_path / "missing.pt"}
    files["garbage"].write_bytes(bytes(range(256)) * 7)
    files["empty"].write_bytes(b"")
    files["text"].write_bytes(b"hello, these are not weights\n")
    files["truncated"].write_bytes(good[:len(good) // 2])
    torch.save(torch.zeros(3), files["tensor"])
    torch.save({"foo.weight": torch.zeros(2)}, files["wrong_keys"])
    state = SyntheticFaceCNN(embedding_dim=64).state_dict()
    torch.save(state, files["wrong_shapes"])
    full = SyntheticFaceCNN().state_dict()
    del full["conv1.weight"]
    torch.save(full, files["missing_key"])
    return files


@pytest.mark.parametrize("kind", ["garbage", "empty", "text", "truncated", "tensor", "wrong_keys",
                                  "wrong_shapes", "missing_key"])
def test_unreadable_synthetic_weights_are_one_line(tmp_path: Path, fixture_weights: bytes,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   kind: str) -> None:
    path = _bad_synthetic_files(tmp_path, fixture_weights)[kind]
    monkeypatch.setenv(SYNTHETIC_WEIGHTS_ENV, str(path))
    with pytest.raises(InputError) as info:
        load_synthetic_model()
    message = one_line(info, path, "train_synthetic")
    assert not isinstance(info.value, MissingFileError)
    with pytest.raises(InputError) as via_name:
        load_model("synthetic_cnn", weights_path=path)
    assert str(via_name.value) == message


def test_wrong_shape_message_names_the_tensor(tmp_path: Path, fixture_weights: bytes) -> None:
    path = _bad_synthetic_files(tmp_path, fixture_weights)["wrong_shapes"]
    with pytest.raises(InputError) as info:
        load_synthetic_model(path)
    assert "'embedding.bias' is (64,), expected (128,)" in one_line(info, path)


def test_missing_synthetic_weights_are_a_missing_file_error(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError) as info:
        load_synthetic_model(tmp_path / "nope.pt")
    assert isinstance(info.value, FileNotFoundError)
    one_line(info, tmp_path / "nope.pt", "train_synthetic")


# --- FaceNet weights and model names -------------------------------------------------------------

@pytest.mark.parametrize("kind", ["garbage", "truncated", "tensor", "wrong_keys"])
def test_unreadable_facenet_weights_are_one_line(tmp_path: Path, fixture_weights: bytes,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 kind: str) -> None:
    path = _bad_synthetic_files(tmp_path, fixture_weights)[kind]
    monkeypatch.setenv(FACENET_WEIGHTS_ENV, str(path))
    expect(InputError, lambda: load_model("facenet_vggface2"), path, "re-download https://")


def test_synthetic_weights_given_to_facenet_name_the_architecture(
        tmp_path: Path) -> None:
    path = tmp_path / "synthetic.pt"
    torch.save(SyntheticFaceCNN().state_dict(), path)
    with pytest.raises(InputError) as info:
        load_facenet("casia-webface", path)
    message = one_line(info, path, "InceptionResnetV1", "casia-webface.pt")
    assert "missing keys" in message
    assert "unexpected keys" in message


def test_missing_facenet_weights_and_unknown_names(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FACENET_WEIGHTS_ENV, raising=False)
    expect(MissingFileError, lambda: find_facenet_weights("vggface2", tmp_path / "nope.pt"),
           tmp_path / "nope.pt")
    expect(InputError, lambda: find_facenet_weights("casia", None), "'casia'", "vggface2")
    expect(InputError, lambda: load_model("resnet50"), "'resnet50'", "synthetic_cnn")


# --- JSON files ----------------------------------------------------------------------------------

def test_read_json_problems_are_one_line(tmp_path: Path) -> None:
    expect(MissingFileError, lambda: read_json(tmp_path / "absent.json"), tmp_path / "absent.json")
    corrupt = tmp_path / "summary.json"
    corrupt.write_text('{"a": 1,\n', encoding="utf-8")
    expect(InputError, lambda: read_json(corrupt), corrupt, "delete it and re-run")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    expect(InputError, lambda: read_json(binary), binary, "delete it and re-run")
    folder = tmp_path / "claims.json"
    folder.mkdir()
    expect(InputError, lambda: read_json(folder), folder)


def test_read_jsonl_problems_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text('{"a": 1}\n{oops}\n{"a": 3}\n', encoding="utf-8")
    expect(InputError, lambda: read_jsonl(path), f"{path}:2", "delete")
    expect(MissingFileError, lambda: read_jsonl(tmp_path / "absent.jsonl"),
           tmp_path / "absent.jsonl")


# --- images and photo folders --------------------------------------------------------------------

def test_image_problems_are_input_errors(tmp_path: Path) -> None:
    assert issubclass(ImageLoadError, InputError)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    gray = tmp_path / "gray.png"
    Image.new("L", (64, 64)).save(gray)
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (10, 64)).save(tiny)
    for path in (broken, gray, tiny, tmp_path / "absent.jpg"):
        expect(ImageLoadError, partial(load_rgb_uint8, path), path)
    rgb = np.zeros((64, 64, 3), dtype=np.uint8)
    expect(InputError, lambda: align_photo(rgb, alignment="warp", size=32), "'warp'")


def _photo_folder(root: Path, counts: dict[str, int]) -> Path:
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for n in range(count):
            Image.fromarray(np.full((40, 40, 3), 20 * n + 5, dtype=np.uint8)).save(
                root / name / f"{n}.png")
    return root


def test_folder_source_problems_are_input_errors(tmp_path: Path) -> None:
    expect(MissingFileError, lambda: FolderPairSource(root=tmp_path / "absent"),
           tmp_path / "absent")
    expect(InputError, lambda: FolderPairSource(root=tmp_path, alignment="warp"), "'warp'")
    expect(InputError, lambda: FolderPairSource(root=_photo_folder(tmp_path / "one", {"a": 2})),
           tmp_path / "one", "two identity folders")
    root = _photo_folder(tmp_path / "ds", {"a": 2, "b": 1})
    expect(InputError, lambda: FolderPairSource(root=root, n_pairs=4, genuine_fraction=0.5).pairs(),
           root, "asked for 2 genuine")
    expect(InputError, lambda: FolderPairSource(root=root, n_pairs=0), "n_pairs")


def test_changed_or_deleted_files_against_a_manifest(tmp_path: Path) -> None:
    root = _photo_folder(tmp_path / "ds", {"a": 2, "b": 2})
    source = FolderPairSource(root=root, n_pairs=3, genuine_fraction=0.34, seed=0, size=32)
    pairs = source.pairs()
    manifest = build_manifest(source, pairs, file_sha256_table(source, pairs))
    check_manifest_files(source, manifest["pairs"])
    changed = pairs[0].image_a
    Image.new("RGB", (40, 40), (200, 1, 1)).save(root / changed)
    expect(InputError, lambda: check_manifest_files(source, manifest["pairs"]),
           "manifest does not match the files", changed)
    (root / changed).unlink()
    expect(MissingFileError, lambda: check_manifest_files(source, manifest["pairs"]),
           root / changed)
    expect(InputError, lambda: source.image_path("../outside.png"), "../outside.png")


# --- LFW -----------------------------------------------------------------------------------------

def _lfw(root: Path) -> Path:
    lfw = root / "lfw"
    for name, count in {"Ann_Able": 2, "Bob_Bell": 1}.items():
        (lfw / name).mkdir(parents=True)
        for n in range(1, count + 1):
            Image.new("RGB", (48, 48), (n * 40, 9, 9)).save(lfw / name / f"{name}_{n:04d}.jpg")
    return lfw


def test_lfw_pairs_file_problems_are_input_errors(tmp_path: Path) -> None:
    expect(MissingFileError, lambda: parse_lfw_pairs(tmp_path / "pairs.txt"),
           tmp_path / "pairs.txt")
    cases = {"empty.txt": b"\n\n", "header.txt": b"a b c\n", "count.txt": b"2 1\nAnn_Able 1 2\n",
             "twice.txt": b"1\nAnn_Able 1 2\nAnn_Able 1 Ann_Able 2\n",
             "latin1.txt": "1\nJos\xe9 1 2\nAnn_Able 1 Bob_Bell 1\n".encode("latin-1")}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        expect(InputError, partial(parse_lfw_pairs, path), path)


def test_lfw_folder_problems_are_input_errors(tmp_path: Path) -> None:
    lfw = _lfw(tmp_path)
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text("1\nAnn_Able 1 3\nAnn_Able 1 Bob_Bell 1\n", encoding="utf-8")
    expect(MissingFileError, lambda: LfwPairSource(root=lfw, pairs_file=pairs_file),
           lfw, "Ann_Able/Ann_Able_0003.jpg")
    nowhere = tmp_path / "nowhere"
    expect(MissingFileError, lambda: LfwPairSource(root=nowhere, pairs_file=pairs_file), nowhere)
    # the same pair listed twice: refused when the manifest is built, naming the pair
    pairs_file.write_text("2\nAnn_Able 1 2\nAnn_Able 1 2\nAnn_Able 1 Bob_Bell 1\n"
                          "Ann_Able 2 Bob_Bell 1\n", encoding="utf-8")
    source = LfwPairSource(root=lfw, pairs_file=pairs_file)
    pairs = source.pairs()
    expect(InputError, lambda: build_manifest(source, pairs, file_sha256_table(source, pairs)),
           "duplicate pair ids", "Ann_Able/Ann_Able_0001.jpg")
    expect(InputError, lambda: LimitedPairSource(source, 10).pairs(),
           "'lfw' has 4 pairs", "n_pairs")


def test_synthetic_difficulty_is_an_input_error() -> None:
    expect(InputError, lambda: check_difficulty(7), "difficulty", "7")
    with pytest.raises(InputError):
        SyntheticPairSource(world_seed=0, n_pairs=4, genuine_fraction=0.5, first_identity=1000,
                            sampling_seed=0, difficulty=True)
