from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from faceattr.data.demo_photos import DEMO_PHOTOS, INDEPENDENT_PHOTOS, DemoPhotoPairSource
from faceattr.data.folder_pairs import file_sha256_table
from faceattr.data.pairs import build_manifest
from faceattr.fetch import DemoAssets
from faceattr.models.dlib_resnet import load_dlib_resnet

REFERENCE = json.loads((Path(__file__).resolve().parents[2] / "fixtures" / "dlib"
                        / "demo_photos_dlib_reference.json").read_text())["images"]


def test_demo_photo_distance_table(demo_assets: DemoAssets) -> None:
    model = load_dlib_resnet(demo_assets.dlib_weights)
    source = DemoPhotoPairSource(root=demo_assets.photos_dir, include_dependent=True)
    names = list(DEMO_PHOTOS)
    chips = torch.from_numpy(np.stack([source.load_image(n).image for n in names]))
    with torch.no_grad():
        raw = model.network(model.preprocess(chips)).numpy()
    desc = dict(zip(names, raw, strict=True))
    rows = ["photo                    | deviation from dlib's descriptor"]
    for name in names:
        reference = np.asarray(REFERENCE[name]["dlib_descriptor"])
        deviation = float(np.linalg.norm(desc[name] - reference))
        rows.append(f"{name:24s} | {deviation:.4f}")
        assert deviation < 0.08, name
    rows.append("pair                     | faceattr | dlib   | same person")
    for a, b in itertools.combinations(INDEPENDENT_PHOTOS, 2):
        ours = float(np.linalg.norm(desc[a] - desc[b]))
        theirs = float(np.linalg.norm(np.asarray(REFERENCE[a]["dlib_descriptor"])
                                      - np.asarray(REFERENCE[b]["dlib_descriptor"])))
        same = DEMO_PHOTOS[a].identity == DEMO_PHOTOS[b].identity
        rows.append(f"{a + ' ' + b:24s} | {ours:.4f}   | {theirs:.4f} | {same}")
        assert (ours < 0.6) == same
    print("\n" + "\n".join(rows))


def test_demo_source_pairs_and_file_hashes(demo_assets: DemoAssets) -> None:
    source = DemoPhotoPairSource(root=demo_assets.photos_dir)
    pairs = source.pairs()
    assert len(pairs) == 6
    assert sum(p.is_genuine for p in pairs) == 3
    hashes = file_sha256_table(source, pairs)
    assert hashes == {n: DEMO_PHOTOS[n].sha256 for n in INDEPENDENT_PHOTOS}
    manifest = build_manifest(source, pairs, hashes)
    assert manifest["n_pairs"] == 6


def test_demo_source_refuses_a_changed_photo(demo_assets: DemoAssets, tmp_path: Path) -> None:
    for name in INDEPENDENT_PHOTOS:
        (tmp_path / name).write_bytes((demo_assets.photos_dir / name).read_bytes())
    (tmp_path / "biden.jpg").write_bytes(b"changed")
    with pytest.raises(ValueError, match=r"demo photo .*biden\.jpg has another sha256"):
        DemoPhotoPairSource(root=tmp_path)
