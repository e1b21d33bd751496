"""The known-answer synthetic face world: identity lives only inside known regions.

Each identity is a fixed set of feature parameters (eyes, nose, mouth: position, spacing, size,
shape, tilt, colour, stripe texture, iris). Every image of an identity is rendered with freshly
drawn *nuisance* (textured background, skin colour and texture, face oval, lighting gradient and
gain, a shift of up to +-3 px and a scale in [0.9, 1.1] that move the features with the face, and
Gaussian pixel noise with sigma in [0.01, 0.05]).

The rendering has one property the validation harness relies on: for a fixed nuisance draw, the
pixels outside the identity mask do not depend on the identity at all. Two identities rendered
from the same nuisance generator state are bit-identical outside the union of their masks. The
identity mask is the union of the feature shapes as rasterised (hard edges, no anti-aliasing),
and it covers about 10 % of the image (``10 % * scale**2``, i.e. 8-12 %).

All randomness comes from explicit generators; :func:`synthetic_face` keys them by
``(world_seed, "synthetic", ...)`` through :mod:`faceattr.rng`.

Difficulty levels
-----------------
Every rendering function takes ``difficulty`` (an int in ``DIFFICULTY_LEVELS = (0, 1, 2)``).
Level 0 is the world described above, bit for bit. Levels 1 and 2 draw extra nuisance values
*after* all of level 0's draws, always the same number in the same order (levels 1 and 2 share
them; the level only scales them), so a level-0 image and a level-1/2 image of the same view
share the level-0 nuisance. Numbers are (level 1 / level 2):

* **stronger nuisance**: extra shift up to +-1 / +-2 px on each axis (face, features and mask
  move together), extra pixel-noise sigma in [0, 0.02] / [0, 0.05] on top of [0.01, 0.05],
  extra lighting-gradient strength in [0, 0.10] / [0, 0.25] on top of [0, 0.35], a per-channel
  colour cast (white balance) of up to +-4 % / +-10 %;
* **intra-identity variation** (expression, gaze, make-up; drawn per image, independently of the
  identity): iris offset jitter up to +-0.05 / +-0.20 of the eye's ``radius_x``, mouth-curve
  jitter up to +-0.5 / +-1.5 px, eye-tilt jitter up to +-0.03 / +-0.08 rad, and feature-colour
  jitter up to +-0.03 / +-0.08 per channel;
* **subtler identity features**: every feature and iris colour is blended toward the image's skin
  colour by 20 % / 40 %, and stripe amplitudes are scaled by 0.85 / 0.65;
* **distractors outside the identity regions**, all painted *before* the features (so features
  cover them and the mask stays exactly the identity-dependent pixels): a textured hair cap with
  a wavy fringe at the top of the face oval (present with probability 0.6 / 0.85; hairline at
  v in [-25, -19] / [-23, -15] px plus fringe and temples, eyes sit at v in [-10, -7]);
  glasses-frame-like rings around the nominal eye positions with a bridge and a lens tint of up
  to 30 % (probability 0.3 / 0.5); earring-like discs at the side of the oval (probability
  0.3 / 0.5); three mole-like dark blobs on forehead, cheeks or chin (each with probability
  0.3 / 0.6); and up to one / two random-colour rotated rectangular occluders anywhere in the
  image (probabilities 0.4 / 0.8 and 0 / 0.5, half sides 4-10 / 5-14 px) that hide skin, hair
  and background but never the features.

With the committed models (``fixtures/README.md``) the held-out verification ROC AUC is 0.998
at level 0, 0.994 at level 1 and 0.982 at level 2.

At every level the two invariants above hold (nuisance never depends on the identity, identities
differ only inside the union of their masks), and the mask coverage is unchanged (8-12 %).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from faceattr.errors import InputError
from faceattr.rng import numpy_generator

__all__ = [
    "DIFFICULTY_LEVELS",
    "IDENTITY_MASK_FRACTION",
    "IMAGE_SIZE_PX",
    "FeatureParams",
    "IdentityParams",
    "Nuisance",
    "SyntheticFace",
    "check_difficulty",
    "identity_params",
    "render_face",
    "synthetic_batch",
    "synthetic_face",
]

IMAGE_SIZE_PX: int = 64
"""Side of every synthetic image, in pixels."""

IDENTITY_MASK_FRACTION: float = 0.10
"""Target share of the image covered by the identity mask at scale 1 (q = 0.10)."""

DIFFICULTY_LEVELS: tuple[int, ...] = (0, 1, 2)
"""Declared difficulty levels of the world (0: the original world; see the module docstring)."""

Colour = tuple[float, float, float]
FloatImage = NDArray[np.float64]

_TARGET_AREA_PX = IDENTITY_MASK_FRACTION * IMAGE_SIZE_PX * IMAGE_SIZE_PX
_FACE_CENTRE_Y_OFFSET_PX = 1.0  # the face oval sits slightly below the feature origin


def _pixel_grid() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    ys, xs = np.meshgrid(np.arange(IMAGE_SIZE_PX, dtype=np.float64),
                         np.arange(IMAGE_SIZE_PX, dtype=np.float64), indexing="ij")
    ys.flags.writeable = False
    xs.flags.writeable = False
    return ys, xs


_PIXEL_GRID = _pixel_grid()


@dataclass(frozen=True)
class SyntheticFace:
    """One rendered synthetic face.

    Parameters
    ----------
    image : numpy.ndarray
        float32 RGB image of shape (3, H, W) with values in [0, 1].
    identity_mask : numpy.ndarray
        bool array of shape (H, W): the pixels whose values depend on the identity.
    """

    image: NDArray[np.float32]
    identity_mask: NDArray[np.bool_]
    nuisance: Nuisance | None = None  # the generator's nuisance values (exact, not estimated)


@dataclass(frozen=True, slots=True)
class Nuisance:
    """The nuisance values an image was rendered with, exactly as drawn (no estimate).

    Exposed for stratified analyses (which pairs does a map fail on?); reading them never
    changes an image. Shifts and the lighting strength are the totals (level 0's draw plus
    the level's extra); presence flags and counts are the distractors actually painted
    (always absent at level 0).

    Parameters
    ----------
    difficulty : int
        The image's difficulty level.
    shift_x_px, shift_y_px : float
        Displacement of the face (and its features and mask), pixels.
    scale : float
        Face scale (features and mask scale with it).
    gain : float
        Global lighting gain.
    light_strength : float
        Strength of the linear lighting gradient (relative intensity change from the image
        centre to its edge along the gradient).
    light_angle_rad : float
        Direction of the lighting gradient, radians.
    noise_sigma : float
        Standard deviation of the Gaussian pixel noise (total).
    hair, glasses, earring : bool
        Whether a hair cap, a glasses frame or earrings were painted.
    n_moles : int
        Mole-like dark blobs painted (0-3).
    n_occluders : int
        Rectangular occluders painted (0-2); they hide skin, hair and background, never a
        feature.
    """

    difficulty: int
    shift_x_px: float
    shift_y_px: float
    scale: float
    gain: float
    light_strength: float
    light_angle_rad: float
    noise_sigma: float
    hair: bool
    glasses: bool
    earring: bool
    n_moles: int
    n_occluders: int

    @property
    def shift_px(self) -> float:
        """Length of the face's displacement, pixels."""
        return math.hypot(self.shift_x_px, self.shift_y_px)


@dataclass(frozen=True)
class FeatureParams:
    """Geometry and appearance of one facial feature, in face coordinates (pixels at scale 1).

    Parameters
    ----------
    centre_y : float
        Vertical position of the feature centre relative to the face origin (down is positive).
    radius_x, radius_y : float
        Semi-axes of the feature's superellipse.
    exponent : float
        Superellipse exponent ``p`` in ``|x/rx|**p + |y/ry|**p <= 1`` (2 is an ellipse).
    colour : tuple of float
        Base RGB colour in [0, 1].
    stripe_freq : float
        Stripe frequency in cycles per pixel.
    stripe_angle : float
        Stripe direction in radians.
    stripe_amp : float
        Stripe darkening amplitude in [0, 1).
    stripe_phase : float
        Stripe phase in radians.
    """

    centre_y: float
    radius_x: float
    radius_y: float
    exponent: float
    colour: Colour
    stripe_freq: float
    stripe_angle: float
    stripe_amp: float
    stripe_phase: float


@dataclass(frozen=True)
class IdentityParams:
    """All identity-carrying parameters of one synthetic identity (41 numbers).

    Parameters
    ----------
    identity : int
        The identity index these parameters were drawn for.
    eye : FeatureParams
        The (mirror-symmetric) eye; ``centre_y`` is the eye height.
    eye_half_spacing : float
        Horizontal distance of each eye centre from the face midline, pixels.
    eye_tilt : float
        Eye rotation in radians (mirrored between the two eyes).
    iris_radius_frac : float
        Iris radius as a fraction of the eye's ``radius_y``.
    iris_offset_frac : float
        Horizontal iris offset as a fraction of the eye's ``radius_x`` (mirrored).
    iris_colour : tuple of float
        Iris RGB colour in [0, 1].
    nose : FeatureParams
        The nose, centred on the midline.
    mouth : FeatureParams
        The mouth, centred on the midline.
    mouth_curve : float
        Vertical displacement of the mouth corners in pixels (negative: smile).
    """

    identity: int
    eye: FeatureParams
    eye_half_spacing: float
    eye_tilt: float
    iris_radius_frac: float
    iris_offset_frac: float
    iris_colour: Colour
    nose: FeatureParams
    mouth: FeatureParams
    mouth_curve: float


def _superellipse_area_factor(exponent: float) -> float:
    # Area of |x|**p + |y|**p <= 1 is 4 * Gamma(1 + 1/p)**2 / Gamma(1 + 2/p).
    return 4.0 * math.gamma(1.0 + 1.0 / exponent) ** 2 / math.gamma(1.0 + 2.0 / exponent)


def _colour(rng: np.random.Generator, low: float, high: float) -> Colour:
    r, g, b = (float(c) for c in rng.uniform(low, high, size=3))
    return (r, g, b)


def _feature(rng: np.random.Generator, *, centre_y: float, area_px: float,
             aspect: tuple[float, float], exponent: tuple[float, float]) -> FeatureParams:
    # Draw order is fixed: aspect, exponent, colour, stripe (freq, angle, amp, phase).
    ratio = float(rng.uniform(*aspect))  # radius_y / radius_x
    p = float(rng.uniform(*exponent))
    colour = _colour(rng, 0.05, 0.95)
    stripe_freq = float(rng.uniform(0.12, 0.40))
    stripe_angle = float(rng.uniform(0.0, math.pi))
    stripe_amp = float(rng.uniform(0.15, 0.45))
    stripe_phase = float(rng.uniform(0.0, 2.0 * math.pi))
    radius_x = math.sqrt(area_px / (_superellipse_area_factor(p) * ratio))
    return FeatureParams(centre_y=centre_y, radius_x=radius_x, radius_y=ratio * radius_x,
                         exponent=p, colour=colour, stripe_freq=stripe_freq,
                         stripe_angle=stripe_angle, stripe_amp=stripe_amp,
                         stripe_phase=stripe_phase)


@lru_cache(maxsize=4096)
def identity_params(world_seed: int, identity: int) -> IdentityParams:
    """Draw the identity-carrying parameters of one identity.

    The feature areas are split by drawn shares of a fixed total, so every identity's mask covers
    ``IDENTITY_MASK_FRACTION`` of the image at scale 1 (up to rasterisation and slight overlaps).

    Parameters
    ----------
    world_seed : int
        Seed of the synthetic world (non-negative).
    identity : int
        Identity index (non-negative). Training uses 0..199; evaluation uses >= 1000.

    Returns
    -------
    IdentityParams
        Drawn from ``numpy_generator(world_seed, "synthetic", "identity", identity)``; the same
        arguments always give the same parameters.
    """
    rng = numpy_generator(world_seed, "synthetic", "identity", identity)
    eye_share = float(rng.uniform(0.42, 0.52))  # both eyes together
    nose_share = float(rng.uniform(0.16, 0.24))
    mouth_share = 1.0 - eye_share - nose_share
    eye_y = float(rng.uniform(-10.0, -7.0))
    eye_half_spacing = float(rng.uniform(10.5, 13.0))
    eye_tilt = float(rng.uniform(-0.25, 0.25))
    iris_radius_frac = float(rng.uniform(0.35, 0.70))
    iris_offset_frac = float(rng.uniform(-0.35, 0.35))
    iris_colour = _colour(rng, 0.0, 1.0)
    nose_y = float(rng.uniform(1.0, 3.5))
    mouth_y = float(rng.uniform(14.0, 17.0))
    mouth_curve = float(rng.uniform(-2.5, 2.5))
    eye = _feature(rng, centre_y=eye_y, area_px=_TARGET_AREA_PX * eye_share / 2.0,
                   aspect=(0.45, 0.80), exponent=(1.6, 3.5))
    nose = _feature(rng, centre_y=nose_y, area_px=_TARGET_AREA_PX * nose_share,
                    aspect=(1.2, 2.0), exponent=(1.4, 3.0))
    mouth = _feature(rng, centre_y=mouth_y, area_px=_TARGET_AREA_PX * mouth_share,
                     aspect=(0.25, 0.45), exponent=(1.6, 4.0))
    return IdentityParams(identity=identity, eye=eye, eye_half_spacing=eye_half_spacing,
                          eye_tilt=eye_tilt, iris_radius_frac=iris_radius_frac,
                          iris_offset_frac=iris_offset_frac, iris_colour=iris_colour, nose=nose,
                          mouth=mouth, mouth_curve=mouth_curve)


def _upsample_bilinear(grid: FloatImage, size: int) -> FloatImage:
    """Bilinearly upsample (C, g, g) to (C, size, size), corners aligned."""
    g = grid.shape[-1]
    t = np.linspace(0.0, g - 1.0, size)
    i0 = np.minimum(np.floor(t).astype(np.intp), g - 2)
    w = t - i0
    rows = grid[:, i0, :] * (1.0 - w)[None, :, None] + grid[:, i0 + 1, :] * w[None, :, None]
    out: FloatImage = rows[:, :, i0] * (1.0 - w)[None, None, :] + rows[:, :, i0 + 1] * w
    return out


def _stripes(lu: FloatImage, lv: FloatImage, feature: FeatureParams) -> FloatImage:
    phase = 2.0 * math.pi * feature.stripe_freq * (
        lu * math.cos(feature.stripe_angle) + lv * math.sin(feature.stripe_angle))
    wave = 0.5 + 0.5 * np.sin(phase + feature.stripe_phase)
    shade: FloatImage = 1.0 - feature.stripe_amp * wave
    return shade


def _inside(lu: FloatImage, lv: FloatImage, feature: FeatureParams) -> NDArray[np.bool_]:
    p = feature.exponent
    level = np.abs(lu / feature.radius_x) ** p + np.abs(lv / feature.radius_y) ** p
    inside: NDArray[np.bool_] = level <= 1.0
    return inside


def _paint(image: FloatImage, where: NDArray[np.bool_], colour: Colour,
           shade: FloatImage | float) -> None:
    values = np.asarray(colour, dtype=np.float64)[:, None, None] * shade
    image[:, where] = np.broadcast_to(values, image.shape)[:, where]


def check_difficulty(difficulty: int) -> int:
    """Return ``difficulty`` if it is a declared level (an int in :data:`DIFFICULTY_LEVELS`).

    Raises
    ------
    faceattr.errors.InputError
        For anything else (bools, floats, out-of-range ints).
    """
    if isinstance(difficulty, bool) or not isinstance(difficulty, int) \
            or difficulty not in DIFFICULTY_LEVELS:
        raise InputError(f"difficulty must be one of {DIFFICULTY_LEVELS}, got {difficulty!r}")
    return difficulty


@dataclass(frozen=True)
class _Level:
    """Strengths of one difficulty level (see the module docstring)."""

    shift_px: float
    noise_sigma: float
    light_strength: float
    colour_cast: float
    gaze_frac: float
    mouth_curve_px: float
    tilt_rad: float
    colour_jitter: float
    blend_to_skin: float
    stripe_scale: float
    hair_prob: float
    hairline_v: tuple[float, float]
    glasses_prob: float
    earring_prob: float
    blob_prob: float
    occluder_prob: tuple[float, float]
    occluder_half_px: tuple[float, float]


_LEVELS: dict[int, _Level] = {
    1: _Level(shift_px=1.0, noise_sigma=0.02, light_strength=0.10, colour_cast=0.04,
              gaze_frac=0.05, mouth_curve_px=0.5, tilt_rad=0.03, colour_jitter=0.03,
              blend_to_skin=0.20, stripe_scale=0.85, hair_prob=0.6, hairline_v=(-25.0, -19.0),
              glasses_prob=0.3, earring_prob=0.3, blob_prob=0.3, occluder_prob=(0.4, 0.0),
              occluder_half_px=(4.0, 10.0)),
    2: _Level(shift_px=2.0, noise_sigma=0.05, light_strength=0.25, colour_cast=0.10,
              gaze_frac=0.20, mouth_curve_px=1.5, tilt_rad=0.08, colour_jitter=0.08,
              blend_to_skin=0.40, stripe_scale=0.65, hair_prob=0.85, hairline_v=(-23.0, -15.0),
              glasses_prob=0.5, earring_prob=0.5, blob_prob=0.6, occluder_prob=(0.8, 0.5),
              occluder_half_px=(5.0, 14.0)),
}

_N_BLOBS = 3
_N_OCCLUDERS = 2
_NOMINAL_EYE_U, _NOMINAL_EYE_V = 11.75, -8.5  # centre of the identity ranges of eye position
# mole zones (u_low, u_high, v_low, v_high), face coordinates: forehead, cheeks, chin
_BLOB_ZONES = ((-10.0, 10.0, -21.0, -16.0), (-21.0, -15.0, -1.0, 9.0), (15.0, 21.0, -1.0, 9.0),
               (-6.0, 6.0, 23.0, 26.0))


@dataclass(frozen=True)
class _Extras:
    """The level >= 1 nuisance draws, in unit ranges (scaled by the level where used)."""

    shift: NDArray[np.float64]  # (2,) in [-1, 1]
    noise: float  # [0, 1]
    light: float  # [0, 1]
    cast: NDArray[np.float64]  # (3,) in [-1, 1]
    gaze: float  # [-1, 1]
    mouth_curve: float  # [-1, 1]
    tilt: float  # [-1, 1]
    colour_jitter: NDArray[np.float64]  # (4, 3) in [-1, 1]: eye, iris, nose, mouth
    hair: NDArray[np.float64]  # (9,) unit draws, see _paint_hair
    hair_tint: NDArray[np.float64]  # (3,) in [0.7, 1]
    hair_texture: NDArray[np.float64]  # (1, 9, 9) in [-1, 1]
    glasses: NDArray[np.float64]  # (7,) unit draws, see _paint_glasses
    glasses_colours: NDArray[np.float64]  # (2, 3) frame, lens in [0, 1]
    earring: NDArray[np.float64]  # (4,) unit draws
    earring_colour: NDArray[np.float64]  # (3,) in [0, 1]
    blobs: NDArray[np.float64]  # (_N_BLOBS, 6) unit draws
    occluders: NDArray[np.float64]  # (_N_OCCLUDERS, 6) unit draws
    occluder_colours: NDArray[np.float64]  # (_N_OCCLUDERS, 3) in [0, 1]
    occluder_gradients: NDArray[np.float64]  # (_N_OCCLUDERS, 2) in [-1, 1]


def _draw_extras(rng: np.random.Generator) -> _Extras:
    # Fixed order and count, independent of the identity and of the level (1 or 2).
    return _Extras(
        shift=rng.uniform(-1.0, 1.0, size=2), noise=float(rng.uniform()),
        light=float(rng.uniform()), cast=rng.uniform(-1.0, 1.0, size=3),
        gaze=float(rng.uniform(-1.0, 1.0)), mouth_curve=float(rng.uniform(-1.0, 1.0)),
        tilt=float(rng.uniform(-1.0, 1.0)), colour_jitter=rng.uniform(-1.0, 1.0, size=(4, 3)),
        hair=rng.uniform(size=9), hair_tint=rng.uniform(0.7, 1.0, size=3),
        hair_texture=rng.uniform(-1.0, 1.0, size=(1, 9, 9)), glasses=rng.uniform(size=7),
        glasses_colours=rng.uniform(size=(2, 3)), earring=rng.uniform(size=4),
        earring_colour=rng.uniform(size=3), blobs=rng.uniform(size=(_N_BLOBS, 6)),
        occluders=rng.uniform(size=(_N_OCCLUDERS, 6)),
        occluder_colours=rng.uniform(size=(_N_OCCLUDERS, 3)),
        occluder_gradients=rng.uniform(-1.0, 1.0, size=(_N_OCCLUDERS, 2)))


def _lerp(unit: float, low: float, high: float) -> float:
    return low + (high - low) * float(unit)


def _identity_as_seen(params: IdentityParams, extras: _Extras, level: _Level,
                      skin: NDArray[np.float64]) -> IdentityParams:
    """The identity's parameters with this image's expression, make-up and subtlety applied."""
    def colour(base: Colour, jitter: NDArray[np.float64]) -> Colour:
        jittered = np.clip(np.asarray(base) + level.colour_jitter * jitter, 0.0, 1.0)
        r, g, b = (float(c) for c in (1.0 - level.blend_to_skin) * jittered
                   + level.blend_to_skin * skin)
        return (r, g, b)

    def feature(f: FeatureParams, jitter: NDArray[np.float64]) -> FeatureParams:
        return replace(f, colour=colour(f.colour, jitter),
                       stripe_amp=f.stripe_amp * level.stripe_scale)

    jit = extras.colour_jitter
    return replace(params, eye=feature(params.eye, jit[0]), nose=feature(params.nose, jit[2]),
                   mouth=feature(params.mouth, jit[3]),
                   iris_colour=colour(params.iris_colour, jit[1]),
                   iris_offset_frac=params.iris_offset_frac + level.gaze_frac * extras.gaze,
                   mouth_curve=params.mouth_curve + level.mouth_curve_px * extras.mouth_curve,
                   eye_tilt=params.eye_tilt + level.tilt_rad * extras.tilt)


def _disc(u: FloatImage, v: FloatImage, cu: float, cv: float, ru: float,
          rv: float) -> NDArray[np.bool_]:
    inside: NDArray[np.bool_] = ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 <= 1.0
    return inside


def _paint_distractors(image: FloatImage, u: FloatImage, v: FloatImage, scale: float,
                       face_rx: float, face_ry: float, extras: _Extras, level: _Level
                       ) -> dict[str, int]:
    """Hair, glasses, earrings, moles and occluders; painted before the identity features.
    Returns how many of each were painted (the image's distractor nuisance)."""
    painted = {"hair": 0, "glasses": 0, "earring": 0, "n_moles": 0, "n_occluders": 0}
    n = IMAGE_SIZE_PX
    ys, xs = _PIXEL_GRID
    # hair cap with a wavy fringe: presence, hairline, fringe amplitude/frequency/phase,
    # luminance, strand angle/frequency/phase
    h = extras.hair
    if h[0] < level.hair_prob:
        painted["hair"] = 1
        hairline = _lerp(h[1], *level.hairline_v)
        fringe = (_lerp(h[2], 0.5, 3.0) * np.sin(2.0 * math.pi * _lerp(h[3], 0.04, 0.15) * u
                                                 + 2.0 * math.pi * h[4])
                  + 5.0 * (u / face_rx) ** 2)
        cap = ((u / (face_rx + 2.0)) ** 2 + ((v - _FACE_CENTRE_Y_OFFSET_PX) / (face_ry + 2.5)) ** 2
               <= 1.0)
        hair = cap & (v < hairline + fringe)
        angle = _lerp(h[6], 0.35 * math.pi, 0.65 * math.pi)
        strands = np.sin(2.0 * math.pi * _lerp(h[7], 0.25, 0.55)
                         * (u * math.cos(angle) + v * math.sin(angle)) + 2.0 * math.pi * h[8])
        shade = 1.0 + 0.25 * strands + 0.35 * _upsample_bilinear(extras.hair_texture, n)[0]
        hair_colour = _lerp(h[5], 0.04, 0.6) * extras.hair_tint
        image[:, hair] = (hair_colour[:, None, None] * shade[None])[:, hair]
    # glasses: presence, centre jitter (u, v), ring semi-axes, frame width, lens alpha
    g = extras.glasses
    if g[0] < level.glasses_prob:
        painted["glasses"] = 1
        cu = _NOMINAL_EYE_U + _lerp(g[1], -1.5, 1.5)
        cv = _NOMINAL_EYE_V + _lerp(g[2], -1.5, 1.5)
        ru, rv = _lerp(g[3], 7.0, 9.0), _lerp(g[4], 5.0, 7.0)
        width = _lerp(g[5], 0.8, 1.8) / scale
        frame_colour, lens_colour = extras.glasses_colours[0] * 0.5, extras.glasses_colours[1]
        alpha = _lerp(g[6], 0.0, 0.3)
        lens = _disc(u, v, -cu, cv, ru, rv) | _disc(u, v, cu, cv, ru, rv)
        image[:, lens] = ((1.0 - alpha) * image[:, lens] + alpha * lens_colour[:, None])
        frame = (lens & ~(_disc(u, v, -cu, cv, ru - width, rv - width)
                          | _disc(u, v, cu, cv, ru - width, rv - width)))
        frame |= (np.abs(u) <= cu - ru + 0.5) & (np.abs(v - cv + 0.3 * rv) <= 0.5 * width)
        image[:, frame] = frame_colour[:, None]
    # earrings: presence, which ears (both, left, right), height, radius
    e = extras.earring
    if e[0] < level.earring_prob:
        painted["earring"] = 1
        ev, er = _lerp(e[2], 3.0, 10.0), _lerp(e[3], 1.2, 2.5)
        sides = (-1.0, 1.0) if e[1] < 0.5 else ((-1.0,) if e[1] < 0.75 else (1.0,))
        for side in sides:
            ring = _disc(u, v, side * (face_rx - 0.5), ev, er, er)
            image[:, ring] = extras.earring_colour[:, None]
    # moles / dark blobs on forehead, cheeks, chin: presence, zone, position (2), radius, darkness
    for b in extras.blobs:
        if b[0] < level.blob_prob:
            painted["n_moles"] += 1
            u0, u1, v0, v1 = _BLOB_ZONES[min(int(b[1] * len(_BLOB_ZONES)), len(_BLOB_ZONES) - 1)]
            radius = _lerp(b[4], 0.8, 2.2)
            blob = _disc(u, v, _lerp(b[2], u0, u1), _lerp(b[3], v0, v1), radius, radius)
            image[:, blob] *= _lerp(b[5], 0.25, 0.7)
    # occluders, image coordinates: presence, centre (x, y), half sides (2), angle
    for k, o in enumerate(extras.occluders):
        if o[0] < level.occluder_prob[k]:
            painted["n_occluders"] += 1
            cx, cy = _lerp(o[1], 0.0, n - 1.0), _lerp(o[2], 0.0, n - 1.0)
            half_a, half_b = (_lerp(o[3], *level.occluder_half_px),
                              _lerp(o[4], *level.occluder_half_px))
            angle = math.pi * float(o[5])
            a = (xs - cx) * math.cos(angle) + (ys - cy) * math.sin(angle)
            b_ = -(xs - cx) * math.sin(angle) + (ys - cy) * math.cos(angle)
            patch = (np.abs(a) <= half_a) & (np.abs(b_) <= half_b)
            grad = extras.occluder_gradients[k]
            shade = 1.0 + 0.3 * (grad[0] * a / half_a + grad[1] * b_ / half_b)
            image[:, patch] = (extras.occluder_colours[k][:, None, None] * shade[None])[:, patch]
    return painted


def render_face(params: IdentityParams, *, rng: np.random.Generator,
                difficulty: int = 0) -> SyntheticFace:
    """Render one image of an identity with nuisance drawn only from ``rng``.

    The nuisance draws (their number and order) never depend on ``params``, so two identities
    rendered from generators in the same state share every nuisance value and their images are
    identical outside the union of their identity masks.

    Parameters
    ----------
    params : IdentityParams
        The identity to render (see :func:`identity_params`).
    rng : numpy.random.Generator
        Source of every nuisance draw; it is advanced.
    difficulty : int
        Difficulty level in :data:`DIFFICULTY_LEVELS` (see the module docstring). Level 0 is the
        original world, bit for bit; levels >= 1 draw their extra nuisance after level 0's.

    Returns
    -------
    SyntheticFace
        The float32 image (3, 64, 64) in [0, 1] and its identity mask (64, 64).
    """
    level = _LEVELS.get(check_difficulty(difficulty))
    n = IMAGE_SIZE_PX
    # --- nuisance, fixed draw order -------------------------------------------------------
    shift_x, shift_y = (float(v) for v in rng.uniform(-3.0, 3.0, size=2))
    scale = float(rng.uniform(0.9, 1.1))
    skin = rng.uniform(0.25, 0.95, size=3)
    face_rx = float(rng.uniform(22.0, 25.0))
    face_ry = float(rng.uniform(27.0, 30.0))
    skin_texture = rng.uniform(-0.08, 0.08, size=(3, 5, 5))
    bg_colour = rng.uniform(0.0, 1.0, size=3)
    bg_texture = rng.uniform(-0.25, 0.25, size=(3, 9, 9))
    grating_freq = rng.uniform(0.03, 0.25, size=2)
    grating_angle = rng.uniform(0.0, math.pi, size=2)
    grating_phase = rng.uniform(0.0, 2.0 * math.pi, size=2)
    grating_colour = rng.uniform(-0.15, 0.15, size=(2, 3))
    gain = float(rng.uniform(0.75, 1.15))
    light_strength = float(rng.uniform(0.0, 0.35))
    light_angle = float(rng.uniform(0.0, 2.0 * math.pi))
    noise_sigma = float(rng.uniform(0.01, 0.05))
    noise = rng.standard_normal(size=(3, n, n))
    extras = None if level is None else _draw_extras(rng)  # level >= 1: after every draw above
    if level is not None and extras is not None:
        shift_x += level.shift_px * float(extras.shift[0])
        shift_y += level.shift_px * float(extras.shift[1])
        noise_sigma += level.noise_sigma * extras.noise
        light_strength += level.light_strength * extras.light
        params = _identity_as_seen(params, extras, level, skin)

    # --- pixel grid and face coordinates (features move and scale with the face) -----------
    centre = (n - 1) / 2.0
    ys, xs = _PIXEL_GRID
    u = (xs - centre - shift_x) / scale
    v = (ys - centre - shift_y) / scale

    # --- background ----------------------------------------------------------------------
    image = np.empty((3, n, n), dtype=np.float64)
    image[:] = bg_colour[:, None, None] + _upsample_bilinear(bg_texture, n)
    for k in range(2):
        wave = np.sin(2.0 * math.pi * grating_freq[k] * (
            xs * math.cos(grating_angle[k]) + ys * math.sin(grating_angle[k])) + grating_phase[k])
        image += grating_colour[k][:, None, None] * wave[None]

    # --- face oval (skin) ------------------------------------------------------------------
    face = (u / face_rx) ** 2 + ((v - _FACE_CENTRE_Y_OFFSET_PX) / face_ry) ** 2 <= 1.0
    skin_image = skin[:, None, None] * (1.0 + _upsample_bilinear(skin_texture, n))
    image[:, face] = skin_image[:, face]
    if level is not None and extras is not None:
        painted = _paint_distractors(image, u, v, scale, face_rx, face_ry, extras, level)
    else:
        painted = {"hair": 0, "glasses": 0, "earring": 0, "n_moles": 0, "n_occluders": 0}

    # --- identity features (evaluated in each feature's bounding window only) ---------------
    mask = np.zeros((n, n), dtype=np.bool_)

    def window(cu: float, cv: float, half_u: float, half_v: float) -> tuple[slice, slice]:
        x0 = centre + shift_x + scale * (cu - half_u)
        x1 = centre + shift_x + scale * (cu + half_u)
        y0 = centre + shift_y + scale * (cv - half_v)
        y1 = centre + shift_y + scale * (cv + half_v)
        return (slice(max(0, math.floor(y0) - 1), min(n, math.ceil(y1) + 2)),
                slice(max(0, math.floor(x0) - 1), min(n, math.ceil(x1) + 2)))

    eye = params.eye
    eye_reach = math.hypot(eye.radius_x, eye.radius_y)
    for side in (-1.0, 1.0):
        rows, cols = window(side * params.eye_half_spacing, eye.centre_y, eye_reach, eye_reach)
        du = u[rows, cols] - side * params.eye_half_spacing
        dv = v[rows, cols] - eye.centre_y
        tilt = side * params.eye_tilt
        # local coordinates, mirrored so that the two eyes are symmetric about the midline
        lu = side * (du * math.cos(tilt) + dv * math.sin(tilt))
        lv = -du * math.sin(tilt) + dv * math.cos(tilt)
        inside = _inside(lu, lv, eye)
        patch = image[:, rows, cols]
        _paint(patch, inside, eye.colour, _stripes(lu, lv, eye))
        iris_r = params.iris_radius_frac * eye.radius_y
        iris = inside & (
            (lu - params.iris_offset_frac * eye.radius_x) ** 2 + lv**2 <= iris_r**2)
        _paint(patch, iris, params.iris_colour, 1.0)
        mask[rows, cols] |= inside
    nose = params.nose
    rows, cols = window(0.0, nose.centre_y, nose.radius_x, nose.radius_y)
    lu = u[rows, cols]
    lv = v[rows, cols] - nose.centre_y
    inside = _inside(lu, lv, nose)
    _paint(image[:, rows, cols], inside, nose.colour, _stripes(lu, lv, nose))
    mask[rows, cols] |= inside
    mouth = params.mouth
    rows, cols = window(0.0, mouth.centre_y, mouth.radius_x,
                        mouth.radius_y + abs(params.mouth_curve))
    lu = u[rows, cols]
    lv = v[rows, cols] - mouth.centre_y - params.mouth_curve * (lu / mouth.radius_x) ** 2
    inside = _inside(lu, lv, mouth)
    _paint(image[:, rows, cols], inside, mouth.colour, _stripes(lu, lv, mouth))
    mask[rows, cols] |= inside

    # --- colour cast, lighting, noise (pixelwise: the mask stays exact) ----------------------
    if level is not None and extras is not None:
        image *= (1.0 + level.colour_cast * extras.cast)[:, None, None]
    ramp = ((xs - centre) * math.cos(light_angle) + (ys - centre) * math.sin(light_angle)) / centre
    image *= gain * (1.0 + light_strength * ramp)[None]
    image += noise_sigma * noise
    np.clip(image, 0.0, 1.0, out=image)
    nuisance = Nuisance(difficulty=difficulty, shift_x_px=shift_x, shift_y_px=shift_y,
                        scale=scale, gain=gain, light_strength=light_strength,
                        light_angle_rad=light_angle, noise_sigma=noise_sigma,
                        hair=bool(painted["hair"]), glasses=bool(painted["glasses"]),
                        earring=bool(painted["earring"]), n_moles=painted["n_moles"],
                        n_occluders=painted["n_occluders"])
    return SyntheticFace(image=image.astype(np.float32), identity_mask=mask, nuisance=nuisance)


def synthetic_face(world_seed: int, identity: int, view: int,
                   difficulty: int = 0) -> SyntheticFace:
    """Render view ``view`` of identity ``identity`` of the world ``world_seed``.

    Parameters
    ----------
    world_seed : int
        Seed of the synthetic world (non-negative).
    identity : int
        Identity index (non-negative).
    view : int
        View index (non-negative); each view has its own nuisance.
    difficulty : int
        Difficulty level in :data:`DIFFICULTY_LEVELS` (0: the original world).

    Returns
    -------
    SyntheticFace
        Rendered with ``numpy_generator(world_seed, "synthetic", "view", identity, view)`` (the
        same stream at every level); the same arguments give bit-identical arrays in any process.
    """
    rng = numpy_generator(world_seed, "synthetic", "view", identity, view)
    return render_face(identity_params(world_seed, identity), rng=rng, difficulty=difficulty)


def synthetic_batch(world_seed: int, identities: Sequence[int], views: Sequence[int],
                    difficulty: int = 0) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Render many views at once (a stack of :func:`synthetic_face` results).

    Parameters
    ----------
    world_seed : int
        Seed of the synthetic world (non-negative).
    identities, views : sequence of int
        Equal-length sequences: image ``i`` is view ``views[i]`` of identity ``identities[i]``.
    difficulty : int
        Difficulty level in :data:`DIFFICULTY_LEVELS` (0: the original world).

    Returns
    -------
    images : numpy.ndarray
        float32 array (N, 3, 64, 64) in [0, 1].
    masks : numpy.ndarray
        bool array (N, 64, 64) of identity masks.
    """
    if len(identities) != len(views):
        raise ValueError(f"identities and views must have equal length, got {len(identities)} "
                         f"and {len(views)}")
    check_difficulty(difficulty)
    n = IMAGE_SIZE_PX
    images = np.empty((len(views), 3, n, n), dtype=np.float32)
    masks = np.empty((len(views), n, n), dtype=np.bool_)
    for i, (identity, view) in enumerate(zip(identities, views, strict=True)):
        face = synthetic_face(world_seed, identity, view, difficulty)
        images[i] = face.image
        masks[i] = face.identity_mask
    return images, masks
