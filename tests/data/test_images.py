from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceattr.data.images import ImageLoadError, load_rgb_uint8, to_unit_chw


def test_rgb_and_rgba_files_load_as_uint8_rgb(tmp_path: Path) -> None:
    Image.new("RGBA", (40, 50), (10, 20, 30, 128)).save(tmp_path / "a.png")
    rgb = load_rgb_uint8(tmp_path / "a.png")
    assert rgb.shape == (50, 40, 3)
    assert rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [10, 20, 30]
    unit = to_unit_chw(rgb)
    assert unit.shape == (3, 50, 40)
    assert unit.dtype == np.float32
    assert unit.max() <= 1


def test_corrupt_image_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageLoadError, match=r"broken\.jpg: corrupt or unreadable image") as info:
        load_rgb_uint8(tmp_path / "broken.jpg")
    assert "\n" not in str(info.value)


def test_grayscale_image_is_refused(tmp_path: Path) -> None:
    Image.new("L", (64, 64), 100).save(tmp_path / "gray.png")
    with pytest.raises(ImageLoadError, match=r"gray\.png: grayscale image \(mode L\)"):
        load_rgb_uint8(tmp_path / "gray.png")


def test_tiny_image_is_refused(tmp_path: Path) -> None:
    Image.new("RGB", (20, 100)).save(tmp_path / "tiny.png")
    with pytest.raises(ImageLoadError, match=r"tiny\.png: image too small \(20x100 px, minimum "
                       r"side 32 px\)"):
        load_rgb_uint8(tmp_path / "tiny.png")


def test_missing_image_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match=r"image not found: .*absent\.jpg"):
        load_rgb_uint8(tmp_path / "absent.jpg")
