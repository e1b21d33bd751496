"""Face alignment in torch: dlib-style 5-point chips for dlib's ResNet.

A dlib chip (King 2009; ``dlib::get_face_chip_details`` + ``extract_image_chip``) is the square
``size`` x ``size`` crop obtained by the least-squares similarity transform (Umeyama 1991) that
maps dlib's mean 5-point face template, padded by ``padding``, onto the image landmarks. dlib's
conventions are followed: the chip's corner pixels (0 and size-1) sit on the corners of the
chip rectangle in the image, the image is smoothed and halved (a 5-tap binomial pyramid) while the
chip would subsample it by more than 2, then sampled bilinearly; points outside the image are 0.
With dlib's own landmarks this reproduces dlib's descriptors to ~0.05 (Euclidean).

Landmarks come from dlib's ``shape_predictor_5_face_landmarks`` (the demo photos' reference
numbers) or from MTCNN (Zhang et al. 2016; eye centres and nose tip, via
:func:`dlib_chip_from_mtcnn_points`) for any other photo.

References
----------
D. E. King, "Dlib-ml: A Machine Learning Toolkit", JMLR 10, 2009.
S. Umeyama, "Least-squares estimation of transformation parameters between two point patterns",
IEEE TPAMI 13(4), 1991.
K. Zhang, Z. Zhang, Z. Li, Y. Qiao, "Joint Face Detection and Alignment Using Multitask Cascaded
Convolutional Networks", IEEE SPL 23(10), 2016.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from faceattr.errors import InputError

__all__ = [
    "ALIGNMENTS",
    "ARCFACE_112_TEMPLATE_PX",
    "DLIB_5PT_TEMPLATE",
    "align_photo",
    "arcface_chip",
    "arcface_chip_transform",
    "dlib_chip",
    "dlib_chip_from_mtcnn_points",
    "dlib_chip_transform",
    "similarity_transform",
]

DLIB_5PT_TEMPLATE: NDArray[np.float64] = np.array([
    [0.8595674595992, 0.2134981538014],   # outer corner of the eye on the image's right
    [0.6460604764104, 0.2289674387677],   # its inner corner
    [0.1205750620789, 0.2137274526848],   # outer corner of the eye on the image's left
    [0.3340850613712, 0.2290642403242],   # its inner corner
    [0.4901123135679, 0.6277975316475],   # base of the nose
])
"""dlib's mean 5-point face (unit square), in ``shape_predictor_5_face_landmarks`` order."""

_BINOMIAL5 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64) / 16.0


def similarity_transform(src: ArrayLike, dst: ArrayLike) -> tuple[NDArray[np.float64],
                                                                   NDArray[np.float64]]:
    """Least-squares similarity transform ``dst ~ M @ src + t`` (Umeyama 1991, no reflection).

    Parameters
    ----------
    src, dst : array_like
        (P, 2) corresponding points, P >= 2.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``M`` (2, 2) = scale times a rotation, and ``t`` (2,).
    """
    src_a = np.asarray(src, dtype=np.float64)
    dst_a = np.asarray(dst, dtype=np.float64)
    if src_a.shape != dst_a.shape or src_a.ndim != 2 or src_a.shape[1] != 2 or len(src_a) < 2:
        raise ValueError(f"need matching (P, 2) point sets with P >= 2, got {src_a.shape} and "
                         f"{dst_a.shape}")
    mu_s, mu_d = src_a.mean(axis=0), dst_a.mean(axis=0)
    src_c, dst_c = src_a - mu_s, dst_a - mu_d
    var_s = float((src_c ** 2).sum() / len(src_a))
    if var_s <= 0:
        raise ValueError("source points are all equal")
    cov = dst_c.T @ src_c / len(src_a)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(d) @ sign) / var_s)
    matrix = scale * rotation
    return matrix, mu_d - matrix @ mu_s


def dlib_chip_transform(landmarks_xy: ArrayLike, *, size: int = 150, padding: float = 0.25,
                        template: ArrayLike | None = None) -> NDArray[np.float64]:
    """Affine map from chip pixel (x, y) to image point (x, y), dlib's conventions, (2, 3).

    Parameters
    ----------
    landmarks_xy : array_like
        (P, 2) image points matching ``template`` (default: dlib's 5 points).
    size : int
        Chip side in pixels (150 for dlib's ResNet).
    padding : float
        dlib's padding around the template (0.25 in dlib's and face_recognition's usage).
    template : array_like or None
        (P, 2) unit-square template points; default :data:`DLIB_5PT_TEMPLATE`.
    """
    tmpl = DLIB_5PT_TEMPLATE if template is None else np.asarray(template, dtype=np.float64)
    chip_points = (padding + tmpl) / (2.0 * padding + 1.0) * size
    matrix, offset = similarity_transform(chip_points, landmarks_xy)
    direction = matrix @ np.array([1.0, 0.0])
    angle = math.atan2(direction[1], direction[0])
    scale = float(np.hypot(direction[0], direction[1]))
    centre = matrix @ np.array([size / 2.0, size / 2.0]) + offset
    # dlib: the chip rectangle (side size*scale) is centred there and rotated by `angle`; chip
    # pixels 0 and size-1 land on its corners, so one chip pixel spans size*scale/(size-1).
    step = size * scale / (size - 1)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    linear = rot * step
    half = (size - 1) / 2.0
    translation = centre - linear @ np.array([half, half])
    return np.concatenate([linear, translation[:, None]], axis=1)


def _pyramid_down(image: torch.Tensor) -> torch.Tensor:
    """Smooth with the separable binomial [1 4 6 4 1]/16 and keep every second pixel."""
    kernel = _BINOMIAL5.to(image.dtype)
    channels = image.shape[0]
    x = image[None]
    x = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    x = torch.nn.functional.conv2d(x, kernel.view(1, 1, 1, 5).expand(channels, 1, 1, 5),
                                   groups=channels)
    x = torch.nn.functional.conv2d(x, kernel.view(1, 1, 5, 1).expand(channels, 1, 5, 1),
                                   groups=channels)
    return x[0, :, ::2, ::2]


def dlib_chip(image: torch.Tensor, landmarks_xy: ArrayLike, *, size: int = 150,
              padding: float = 0.25, template: ArrayLike | None = None) -> torch.Tensor:
    """Cut a dlib-style aligned face chip from an image (torch, differentiable in the image).

    Parameters
    ----------
    image : torch.Tensor
        (3, H, W) float image (any range; the chip keeps it).
    landmarks_xy : array_like
        (5, 2) landmarks in dlib's 5-point order (or matching ``template``), pixel coordinates.
    size, padding, template
        As in :func:`dlib_chip_transform`.

    Returns
    -------
    torch.Tensor
        (3, size, size), same dtype as ``image``.
    """
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) image, got {tuple(image.shape)}")
    affine = dlib_chip_transform(landmarks_xy, size=size, padding=padding, template=template)
    step = float(np.hypot(affine[0, 0], affine[1, 0]))
    level_image = image
    factor = 1.0
    # dlib halves the image while the chip would still subsample it by more than 2
    while step / factor > 2.0 and min(level_image.shape[1:]) >= 4:
        level_image = _pyramid_down(level_image)
        factor *= 2.0
    affine = affine / factor
    height, width = level_image.shape[1:]
    coords = torch.arange(size, dtype=torch.float64)
    grid_y, grid_x = torch.meshgrid(coords, coords, indexing="ij")
    a = torch.from_numpy(affine)
    src_x = a[0, 0] * grid_x + a[0, 1] * grid_y + a[0, 2]
    src_y = a[1, 0] * grid_x + a[1, 1] * grid_y + a[1, 2]
    grid = torch.stack([2.0 * src_x / (width - 1) - 1.0, 2.0 * src_y / (height - 1) - 1.0],
                       dim=-1)[None].to(image.dtype)
    chip = torch.nn.functional.grid_sample(level_image[None], grid, mode="bilinear",
                                           padding_mode="zeros", align_corners=True)
    return chip[0]


def dlib_chip_from_mtcnn_points(image: torch.Tensor, mtcnn_points_xy: ArrayLike, *,
                                size: int = 150, padding: float = 0.25) -> torch.Tensor:
    """A dlib-style chip from MTCNN's 5 points (eyes, nose tip, mouth corners).

    MTCNN's eye centres are matched to the midpoints of dlib's eye corners and its nose tip to
    dlib's nose base (the mouth corners have no dlib counterpart and are not used); the residual
    offset between a nose tip and a nose base makes these chips slightly less exact than chips
    from dlib's own landmarks.
    """
    points = np.asarray(mtcnn_points_xy, dtype=np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"expected MTCNN's (5, 2) landmarks, got {points.shape}")
    # MTCNN order: eye on the image's left, eye on the image's right, nose, mouth left, right
    template = np.stack([DLIB_5PT_TEMPLATE[2:4].mean(axis=0), DLIB_5PT_TEMPLATE[0:2].mean(axis=0),
                         DLIB_5PT_TEMPLATE[4]])
    return dlib_chip(image, points[:3], size=size, padding=padding, template=template)


ARCFACE_112_TEMPLATE_PX: NDArray[np.float64] = np.array([
    [38.2946, 51.6963],   # eye on the image's left (the subject's right eye)
    [73.5318, 51.5014],   # eye on the image's right
    [56.0252, 71.7366],   # nose tip
    [41.5493, 92.3655],   # mouth corner on the image's left
    [70.7299, 92.2041],   # mouth corner on the image's right
])
"""The standard 5-point template of 112x112 face crops (InsightFace's ``arcface_src``, OpenCV's
``FaceRecognizerSF::alignCrop``), in pixels, in MTCNN's landmark order."""


def arcface_chip_transform(points_xy: ArrayLike, *, size: int = 112) -> NDArray[np.float64]:
    """Affine map from chip pixel (x, y) to image point (x, y) for a 5-point template crop, (2, 3).

    The least-squares similarity transform (Umeyama 1991) from the 5 image points to
    :data:`ARCFACE_112_TEMPLATE_PX` (scaled by ``size / 112``) is what ``cv2.warpAffine`` applies
    in OpenCV's ``alignCrop`` and InsightFace's ``norm_crop``; this returns its inverse, so
    chip pixel (x, y) (pixel centres at integer coordinates) samples image point ``A @ (x, y, 1)``.

    Parameters
    ----------
    points_xy : array_like
        (5, 2) landmarks in MTCNN's order: eyes (image left, image right), nose tip, mouth
        corners (image left, image right), pixel coordinates.
    size : int
        Chip side (112 for SFace and the MobileFaceNets).
    """
    points = np.asarray(points_xy, dtype=np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"expected (5, 2) landmarks, got {points.shape}")
    matrix, offset = similarity_transform(ARCFACE_112_TEMPLATE_PX * (size / 112.0), points)
    return np.concatenate([matrix, offset[:, None]], axis=1)


def arcface_chip(image: torch.Tensor, points_xy: ArrayLike, *, size: int = 112) -> torch.Tensor:
    """Cut a 5-point template face crop (SFace / ArcFace / MobileFaceNet input), differentiable.

    The image is warped with the similarity transform of :func:`arcface_chip_transform` and
    sampled bilinearly (points outside the image are 0), as ``cv2.warpAffine(..., INTER_LINEAR)``
    does in the networks' reference pipelines; unlike a plain warp, the image is first halved
    with the binomial pyramid of :func:`dlib_chip` while the crop would subsample it by more
    than 2 (a face several hundred pixels wide in a large photo would otherwise alias).

    Parameters
    ----------
    image : torch.Tensor
        (3, H, W) float image (any range; the crop keeps it).
    points_xy : array_like
        (5, 2) landmarks in MTCNN's order (:data:`ARCFACE_112_TEMPLATE_PX`).
    size : int
        Crop side in pixels.

    Returns
    -------
    torch.Tensor
        (3, size, size), same dtype as ``image``.
    """
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) image, got {tuple(image.shape)}")
    affine = arcface_chip_transform(points_xy, size=size)
    step = float(np.hypot(affine[0, 0], affine[1, 0]))
    level_image, factor = image, 1.0
    while step / factor > 2.0 and min(level_image.shape[1:]) >= 4:
        level_image = _pyramid_down(level_image)
        factor *= 2.0
    # pixel i of the halved image is at 2i (+ 0) of the finer one: coordinates scale by 1/2
    affine = affine / factor
    height, width = level_image.shape[1:]
    coords = torch.arange(size, dtype=torch.float64)
    grid_y, grid_x = torch.meshgrid(coords, coords, indexing="ij")
    a = torch.from_numpy(affine)
    src_x = a[0, 0] * grid_x + a[0, 1] * grid_y + a[0, 2]
    src_y = a[1, 0] * grid_x + a[1, 1] * grid_y + a[1, 2]
    grid = torch.stack([2.0 * src_x / (width - 1) - 1.0, 2.0 * src_y / (height - 1) - 1.0],
                       dim=-1)[None].to(image.dtype)
    chip = torch.nn.functional.grid_sample(level_image[None], grid, mode="bilinear",
                                           padding_mode="zeros", align_corners=True)
    return chip[0]


ALIGNMENTS: tuple[str, ...] = ("center", "mtcnn", "dlib_chip", "arcface_112")
"""Photo alignment modes: ``center`` (central square, resized: for pre-aligned datasets such as
lfw-deepfunneled), ``mtcnn`` (facenet-pytorch's MTCNN box crop, FaceNet's input) and
``dlib_chip`` (dlib's 5-point chip from given landmarks, else from MTCNN's landmarks) and
``arcface_112`` (the 5-point template crop of SFace and the MobileFaceNets, from MTCNN's
landmarks: :func:`arcface_chip`)."""


def align_photo(rgb: NDArray[np.uint8], *, alignment: str, size: int,
                landmarks_xy: ArrayLike | None = None, name: str = "image"
                ) -> NDArray[np.float32]:
    """Turn a uint8 RGB photo (H, W, 3) into a float32 (3, size, size) model input in [0, 1].

    Parameters
    ----------
    rgb : numpy.ndarray
        uint8 (H, W, 3), e.g. from :func:`faceattr.data.images.load_rgb_uint8`.
    alignment : {"center", "mtcnn", "dlib_chip", "arcface_112"}
        See :data:`ALIGNMENTS`.
    size : int
        Output side (150 for dlib's ResNet, 160 for FaceNet).
    landmarks_xy : array_like or None
        dlib 5-point landmarks for ``dlib_chip`` (``None``: MTCNN's landmarks).
    name : str
        Used in error messages.

    Raises
    ------
    faceattr.errors.InputError
        Unknown alignment, or no face found by MTCNN (one line naming the image).
    """
    if alignment == "center":
        from PIL import Image

        height, width = rgb.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        crop = Image.fromarray(rgb[top:top + side, left:left + side])
        resized = np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR),
                             dtype=np.uint8)
        return np.ascontiguousarray(resized.transpose(2, 0, 1), dtype=np.float32) / 255.0
    if alignment not in ("mtcnn", "dlib_chip", "arcface_112"):
        raise InputError(f"unknown alignment {alignment!r}; known: {', '.join(ALIGNMENTS)}")
    if alignment == "dlib_chip" and landmarks_xy is not None:
        image = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32))
        chip = dlib_chip(image, landmarks_xy, size=size).clamp(0.0, 255.0) / 255.0
        out: NDArray[np.float32] = chip.numpy().astype(np.float32)
        return out
    from faceattr.models.facenet import mtcnn_crop, mtcnn_detect

    faces = mtcnn_detect(rgb)
    if not faces:
        raise InputError(f"{name}: MTCNN found no face; drop the image or give its landmarks")
    if alignment == "mtcnn":
        return mtcnn_crop(rgb, faces[0], size=size)
    if alignment == "arcface_112":
        photo = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32))
        arc_crop = arcface_chip(photo, faces[0].landmarks_xy, size=size).clamp(0.0, 255.0)
        arc_out: NDArray[np.float32] = (arc_crop / 255.0).numpy().astype(np.float32)
        return arc_out
    image = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32))
    chip = dlib_chip_from_mtcnn_points(image, faces[0].landmarks_xy, size=size)
    mtcnn_out: NDArray[np.float32] = (chip.clamp(0.0, 255.0) / 255.0).numpy().astype(np.float32)
    return mtcnn_out
