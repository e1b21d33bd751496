"""Reading photos from disk with one-line errors (missing, corrupt, grayscale, too small).

Pixels are returned exactly as stored (no EXIF rotation, as dlib's and face_recognition's
loaders do), as uint8 RGB (H, W, 3); an alpha channel or a palette is dropped or expanded the way
``PIL.Image.convert("RGB")`` does. Grayscale files are refused rather than silently replicated
into three channels: a face model trained on colour chips would see a different input
distribution (PITFALLS.md #16).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from faceattr.errors import InputError

__all__ = ["DEFAULT_MIN_SIDE_PX", "ImageLoadError", "load_rgb_uint8", "to_unit_chw"]

DEFAULT_MIN_SIDE_PX: int = 32
"""Smallest accepted image side; smaller files cannot hold a face worth verifying."""

_GRAYSCALE_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


class ImageLoadError(InputError):
    """An image file that cannot be used, with a one-line reason and fix."""


def load_rgb_uint8(path: Path, *, min_side_px: int = DEFAULT_MIN_SIDE_PX) -> NDArray[np.uint8]:
    """Read an image file as uint8 RGB (H, W, 3).

    Parameters
    ----------
    path : pathlib.Path
        A JPEG, PNG or other file Pillow reads.
    min_side_px : int
        Refuse images whose height or width is below this.

    Returns
    -------
    numpy.ndarray
        uint8 (H, W, 3).

    Raises
    ------
    ImageLoadError
        One line naming the file and the problem: missing, not an image / corrupt, grayscale,
        or smaller than ``min_side_px``.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"image not found: {path}")
    try:
        with warnings.catch_warnings():
            # a truncated or oversized file is an error below, not a warning
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                mode = img.mode
                img.load()
                if mode in _GRAYSCALE_MODES:
                    raise ImageLoadError(f"{path}: grayscale image (mode {mode}); face models "
                                         "here need RGB photos: convert or drop it")
                rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except ImageLoadError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageLoadError(f"{path}: corrupt or unreadable image ({reason}); re-download or "
                             "replace the file") from None
    height, width = rgb.shape[:2]
    if min(height, width) < min_side_px:
        raise ImageLoadError(f"{path}: image too small ({width}x{height} px, minimum side "
                             f"{min_side_px} px)")
    return rgb


def to_unit_chw(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Convert uint8 (H, W, 3) to float32 (3, H, W) in [0, 1]."""
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)
