"""Pair-level covariates for stratified analyses: where does a map work, and where does it fail?

A covariate is one number (or category) per pair, read from what is known about its probe
(the image that is explained and perturbed) or about the pair:

- **generated** (``needs = "nuisance"``): the synthetic world's own nuisance values, exactly as
  drawn (:class:`faceattr.data.synthetic.Nuisance`: shift, scale, lighting gradient and gain,
  noise, occluders and distractors, difficulty). A source exposes them with a
  ``nuisance(image_id)`` method; reading them never changes an image;
- **computed from the image** (``needs = "image"``): mean luminance and RMS contrast of the
  probe as the model sees it (ITU-R BT.601 luma; for photo sources an aligned face crop);
- **computed from five landmarks** (``needs = "landmarks"``): roll and a yaw proxy from the eye
  centres and the nose, and whether the face lies partly outside its photo. A source exposes
  them with ``landmarks_5pt(image_id) -> FivePoints | None`` in the coordinates of the
  original photo (:class:`FivePoints` converts dlib's and MTCNN's point orders);
- **of the pair** (``needs = "pair"``): genuine or impostor.

What a source cannot provide is a null value with its reason (e.g. "source 'synthetic' gives
no 5-point landmarks"), never a guess. Continuous covariates are binned by cut points declared
in the protocol's ``[strata]`` table, before any verdict is seen; categorical ones have fixed
levels.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, Protocol, cast

import numpy as np
from numpy.typing import NDArray

from faceattr.config import ProtocolError, TableReader
from faceattr.data.pairs import LoadedImage, Pair, PairSource
from faceattr.data.synthetic import Nuisance

__all__ = ["COVARIATES", "CovariateDef", "CovariateSpec", "FivePoints", "PairFacts",
           "StrataSpec", "Undefined", "bin_label", "covariate_value", "pair_facts",
           "read_strata_spec", "stratum_labels"]

Kind = Literal["continuous", "categorical"]
Needs = Literal["nuisance", "image", "landmarks", "pair"]
_LUMA_BT601 = (0.299, 0.587, 0.114)
_FACE_BOX_MARGIN_IOD = 0.5  # the face box: the landmarks' box grown by half an eye distance


class Undefined(Exception):
    """A covariate has no value for this pair; the message is the reason."""


@dataclass(frozen=True, slots=True)
class FivePoints:
    """Five facial landmarks in the pixel coordinates (x right, y down) of a photo.

    Attributes
    ----------
    eye_left, eye_right : tuple of float
        Eye centres, the eye on the image's left and on its right.
    nose : tuple of float
        Nose tip (MTCNN) or base of the nose (dlib).
    image_hw : tuple of int
        Height and width of the photo the points are in (for :attr:`partial`).
    """

    eye_left: tuple[float, float]
    eye_right: tuple[float, float]
    nose: tuple[float, float]
    image_hw: tuple[int, int]

    @classmethod
    def from_mtcnn(cls, points_xy: Sequence[Sequence[float]],
                   image_hw: tuple[int, int]) -> FivePoints:
        """MTCNN's order: image-left eye, image-right eye, nose, mouth left, mouth right."""
        p = _points(points_xy)
        return cls(eye_left=_xy(p[0]), eye_right=_xy(p[1]), nose=_xy(p[2]), image_hw=image_hw)

    @classmethod
    def from_dlib(cls, points_xy: Sequence[Sequence[float]],
                  image_hw: tuple[int, int]) -> FivePoints:
        """dlib's ``shape_predictor_5_face_landmarks`` order: image-right eye's outer and inner
        corner, image-left eye's outer and inner corner, base of the nose."""
        p = _points(points_xy)
        return cls(eye_left=_xy((p[2] + p[3]) / 2), eye_right=_xy((p[0] + p[1]) / 2),
                   nose=_xy(p[4]), image_hw=image_hw)

    @property
    def interocular_px(self) -> float:
        """Distance between the eye centres, pixels."""
        return math.dist(self.eye_left, self.eye_right)

    def roll_deg(self) -> float:
        """In-plane rotation of the eye line, degrees (positive: the image-right eye lower)."""
        dx, dy = (self.eye_right[0] - self.eye_left[0], self.eye_right[1] - self.eye_left[1])
        return math.degrees(math.atan2(dy, dx))

    def yaw_proxy(self) -> float:
        """Horizontal offset of the nose from the eye midpoint along the eye line, in
        inter-ocular distances (0 frontal; positive: the nose toward the image's right). A
        monotone proxy of yaw, not an angle."""
        iod = self.interocular_px
        if iod <= 0:
            raise Undefined("the two eye centres coincide")
        ux = (self.eye_right[0] - self.eye_left[0]) / iod
        uy = (self.eye_right[1] - self.eye_left[1]) / iod
        mx = (self.eye_left[0] + self.eye_right[0]) / 2
        my = (self.eye_left[1] + self.eye_right[1]) / 2
        return ((self.nose[0] - mx) * ux + (self.nose[1] - my) * uy) / iod

    def partial(self) -> bool:
        """True when the face box (the points' box grown by half an eye distance on every
        side) leaves the photo."""
        margin = _FACE_BOX_MARGIN_IOD * self.interocular_px
        xs = (self.eye_left[0], self.eye_right[0], self.nose[0])
        ys = (self.eye_left[1], self.eye_right[1], self.nose[1])
        height, width = self.image_hw
        return (min(xs) - margin < 0 or min(ys) - margin < 0 or max(xs) + margin > width - 1
                or max(ys) + margin > height - 1)


def _points(points_xy: Sequence[Sequence[float]]) -> NDArray[np.float64]:
    p = np.asarray(points_xy, dtype=np.float64)
    if p.shape != (5, 2) or not np.isfinite(p).all():
        raise ValueError(f"expected five finite (x, y) landmarks, got shape {p.shape}")
    return p


def _xy(point: NDArray[np.float64]) -> tuple[float, float]:
    return float(point[0]), float(point[1])


class NuisanceSource(Protocol):
    """A source that knows the nuisance each image was generated with."""

    def nuisance(self, image_id: str) -> Nuisance:
        """The exact nuisance values of one image."""
        ...


class LandmarkSource(Protocol):
    """A source that knows five landmarks of each photo."""

    def landmarks_5pt(self, image_id: str) -> FivePoints | None:
        """The photo's landmarks, or None when none were found."""
        ...


@dataclass(frozen=True, slots=True, eq=False)
class PairFacts:
    """What covariates are computed from: the pair, its probe, and what the source knows.

    ``nuisance`` and ``landmarks`` are None with ``*_reason`` saying why."""

    pair: Pair
    probe: LoadedImage
    nuisance: Nuisance | None
    nuisance_reason: str | None
    landmarks: FivePoints | None
    landmarks_reason: str | None


def _capability(source: PairSource, name: str) -> Callable[[str], Any] | None:
    inner: Any = source
    while getattr(inner, name, None) is None and getattr(inner, "inner", None) is not None:
        inner = inner.inner  # a LimitedPairSource (e.g. the first n LFW pairs)
    method = getattr(inner, name, None)
    return cast("Callable[[str], Any] | None", method)


def pair_facts(source: PairSource, pair: Pair, probe: LoadedImage) -> PairFacts:
    """Collect the facts of one pair from its source (no capability: a null with a reason)."""
    nuisance_of = _capability(source, "nuisance")
    landmarks_of = _capability(source, "landmarks_5pt")
    landmarks = None if landmarks_of is None else landmarks_of(pair.image_a)
    if landmarks_of is None:
        landmarks_reason: str | None = (f"source {source.name!r} gives no 5-point landmarks "
                                        "(no landmarks_5pt method)")
    else:
        landmarks_reason = None if landmarks is not None else \
            f"no landmarks found for {pair.image_a!r}"
    return PairFacts(
        pair=pair, probe=probe,
        nuisance=None if nuisance_of is None else nuisance_of(pair.image_a),
        nuisance_reason=None if nuisance_of is not None else
        f"source {source.name!r} is not generated: its nuisance is unknown",
        landmarks=landmarks, landmarks_reason=landmarks_reason)


def _nuisance(facts: PairFacts) -> Nuisance:
    if facts.nuisance is None:
        raise Undefined(facts.nuisance_reason or "no nuisance")
    return facts.nuisance


def _landmarks(facts: PairFacts) -> FivePoints:
    if facts.landmarks is None:
        raise Undefined(facts.landmarks_reason or "no landmarks")
    return facts.landmarks


def _luma(image: NDArray[np.float32]) -> NDArray[np.float64]:
    r, g, b = (image[c].astype(np.float64) for c in range(3))
    luma: NDArray[np.float64] = _LUMA_BT601[0] * r + _LUMA_BT601[1] * g + _LUMA_BT601[2] * b
    return luma


Value = float | int | bool


@dataclass(frozen=True, slots=True)
class CovariateDef:
    """A covariate: its kind, what it needs, its unit, its levels (categorical) and how it is
    computed from a pair's facts (raising :class:`Undefined` with a reason)."""

    name: str
    kind: Kind
    needs: Needs
    unit: str
    doc: str
    compute: Callable[[PairFacts], Value]
    levels: tuple[str, ...] = ()  # categorical: the labels, in order (False/True for flags)


def _flag(name: str, doc: str, get: Callable[[Nuisance], bool]) -> CovariateDef:
    return CovariateDef(name=name, kind="categorical", needs="nuisance", unit="", doc=doc,
                        compute=lambda f: get(_nuisance(f)), levels=("no", "yes"))


def _continuous(name: str, unit: str, doc: str, get: Callable[[Nuisance], float]
                ) -> CovariateDef:
    return CovariateDef(name=name, kind="continuous", needs="nuisance", unit=unit, doc=doc,
                        compute=lambda f: get(_nuisance(f)))


_DEFS: tuple[CovariateDef, ...] = (
    CovariateDef(name="is_genuine", kind="categorical", needs="pair", unit="",
                 doc="impostor or genuine pair", compute=lambda f: f.pair.is_genuine,
                 levels=("impostor", "genuine")),
    _continuous("shift_px", "px", "length of the face's displacement",
                lambda n: n.shift_px),
    _continuous("scale", "", "face scale", lambda n: n.scale),
    _continuous("light_gradient", "", "strength of the lighting gradient (relative change "
                "centre to edge)", lambda n: n.light_strength),
    _continuous("gain", "", "global lighting gain", lambda n: n.gain),
    _continuous("noise_sigma", "unit intensity", "SD of the pixel noise",
                lambda n: n.noise_sigma),
    _flag("occluder", "at least one rectangular occluder", lambda n: n.n_occluders > 0),
    _flag("distractor", "any distractor: hair, glasses, earrings, moles or occluders",
          lambda n: n.hair or n.glasses or n.earring or n.n_moles > 0 or n.n_occluders > 0),
    _flag("hair", "a hair cap", lambda n: n.hair),
    _flag("glasses", "a glasses frame", lambda n: n.glasses),
    _flag("earring", "earrings", lambda n: n.earring),
    _flag("moles", "at least one mole", lambda n: n.n_moles > 0),
    CovariateDef(name="n_occluders", kind="categorical", needs="nuisance", unit="",
                 doc="number of occluders", compute=lambda f: _nuisance(f).n_occluders,
                 levels=("0", "1", "2")),
    CovariateDef(name="difficulty", kind="categorical", needs="nuisance", unit="",
                 doc="difficulty level of the synthetic world",
                 compute=lambda f: _nuisance(f).difficulty, levels=("0", "1", "2")),
    CovariateDef(name="luminance", kind="continuous", needs="image", unit="unit intensity",
                 doc="mean BT.601 luma of the probe as the model sees it",
                 compute=lambda f: float(_luma(f.probe.image).mean())),
    CovariateDef(name="contrast", kind="continuous", needs="image", unit="unit intensity",
                 doc="RMS contrast (SD of the BT.601 luma) of the probe as the model sees it",
                 compute=lambda f: float(_luma(f.probe.image).std())),
    CovariateDef(name="roll_deg", kind="continuous", needs="landmarks", unit="deg",
                 doc="roll of the eye line in the original photo (5 landmarks)",
                 compute=lambda f: _landmarks(f).roll_deg()),
    CovariateDef(name="yaw_proxy", kind="continuous", needs="landmarks",
                 unit="inter-ocular distances",
                 doc="nose offset from the eye midpoint (5 landmarks; a proxy, not an angle)",
                 compute=lambda f: _landmarks(f).yaw_proxy()),
    CovariateDef(name="partial_face", kind="categorical", needs="landmarks", unit="",
                 doc="the face box leaves the original photo (5 landmarks)",
                 compute=lambda f: _landmarks(f).partial(), levels=("no", "yes")),
)

#: Every covariate by name.
COVARIATES: Mapping[str, CovariateDef] = MappingProxyType({d.name: d for d in _DEFS})


def covariate_value(definition: CovariateDef, facts: PairFacts) -> tuple[Value | None,
                                                                          str | None]:
    """``(value, None)`` or ``(None, reason)``; a non-finite value is undefined."""
    try:
        value = definition.compute(facts)
    except Undefined as exc:
        return None, str(exc)
    if isinstance(value, float) and not math.isfinite(value):
        return None, f"{definition.name} is not finite"
    return value, None


@dataclass(frozen=True, slots=True)
class CovariateSpec:
    """One declared covariate: its name and, for a continuous one, its cut points (strictly
    increasing; ``k`` cuts give ``k + 1`` strata)."""

    name: str
    cuts: tuple[float, ...]

    @property
    def definition(self) -> CovariateDef:
        """The covariate's definition."""
        return COVARIATES[self.name]

    def labels(self) -> tuple[str, ...]:
        """The strata in order."""
        if self.definition.kind == "categorical":
            return self.definition.levels
        edges = [f"{c:g}" for c in self.cuts]
        return (f"<{edges[0]}", *(f"[{a}, {b})" for a, b in itertools.pairwise(edges)),
                f">={edges[-1]}")


def bin_label(spec: CovariateSpec, value: Value) -> str:
    """The stratum of one value: a level of a categorical covariate, or the bin of the
    declared cuts a continuous value falls in (``cut <= value`` goes up)."""
    labels = spec.labels()
    definition = spec.definition
    if definition.kind == "categorical":
        index = int(value)
        if not 0 <= index < len(labels):
            raise ValueError(f"covariate {spec.name}: value {value!r} is not one of {labels}")
        return labels[index]
    return labels[int(np.searchsorted(np.asarray(spec.cuts), float(value), side="right"))]


def stratum_labels(spec: CovariateSpec, values: Sequence[Value | None]) -> list[str | None]:
    """The stratum of each value (None stays None)."""
    return [None if v is None else bin_label(spec, v) for v in values]


@dataclass(frozen=True, slots=True)
class StrataSpec:
    """``[strata]`` (optional): the stratified analysis of the run's verdicts.

    Attributes
    ----------
    covariates : tuple of CovariateSpec
        The declared covariates and their cut points.
    methods : tuple of str
        The methods analysed (every method when the protocol names none).
    outcomes : tuple of str
        ``"falsified"`` (the verdict below, intention-to-treat) and/or ``"trivial"`` (the map
        could not rank pixels).
    verdict : {"primary", "simple", "theorem"}
        Which verdict ``falsified`` is: the protocol's primary one or one of the two recorded.
    interactions : tuple of (str, str)
        Method pairs whose method x stratum interaction is tested (GEE, pair clusters).
    alpha : float
        Family-wise level (Holm within each family of tests).
    min_stratum_pairs : int
        Strata with fewer pairs are shown but not tested (a rule on covariate counts only).
    n_resamples : int
        Monte Carlo tables of the Fisher-Freeman-Halton test for more than two strata.
    """

    covariates: tuple[CovariateSpec, ...]
    methods: tuple[str, ...]
    outcomes: tuple[str, ...]
    verdict: str
    interactions: tuple[tuple[str, str], ...]
    alpha: float
    min_stratum_pairs: int
    n_resamples: int


def _read_cuts(raw: object, where: str) -> tuple[float, ...]:
    if not isinstance(raw, list) or not raw or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in raw):
        raise ProtocolError(f"{where}: cuts = {raw!r} is not allowed; expected a non-empty "
                            "list of finite numbers")
    cuts = tuple(float(v) for v in raw)
    if any(b <= a for a, b in itertools.pairwise(cuts)):
        raise ProtocolError(f"{where}: cuts = {list(cuts)} must be strictly increasing")
    return cuts


def _read_covariate(table: Mapping[str, Any], where: str) -> CovariateSpec:
    rest = dict(table)
    raw_cuts = rest.pop("cuts", None)
    reader = TableReader(rest, where)
    name = reader.text("name", allowed=sorted(COVARIATES))
    reader.finish()
    kind = COVARIATES[name].kind
    if kind == "continuous" and raw_cuts is None:
        raise ProtocolError(f"{where}: covariate {name!r} is continuous; declare its cut points "
                            "(cuts = [...]) before seeing any verdict")
    if kind == "categorical" and raw_cuts is not None:
        raise ProtocolError(f"{where}: covariate {name!r} has fixed levels "
                            f"{COVARIATES[name].levels}; remove cuts")
    return CovariateSpec(name=name, cuts=() if raw_cuts is None else _read_cuts(raw_cuts, where))


def _read_interactions(reader: TableReader, methods: Sequence[str]
                       ) -> tuple[tuple[str, str], ...]:
    pairs = []
    for i, table in enumerate(reader.tables("interactions")):
        r = TableReader(table, f"{reader.where} [[interactions]] #{i + 1}")
        names = r.texts("methods", default=[], allowed=list(methods))
        r.finish()
        if len(names) != 2 or names[0] == names[1]:
            raise ProtocolError(f"{r.where}: methods must name two distinct analysed methods, "
                                f"got {names}")
        pairs.append((names[0], names[1]))
    return tuple(pairs)


def read_strata_spec(table: Mapping[str, Any], where: str, method_ids: set[str],
                     default_alpha: float) -> StrataSpec:
    """Validate ``[strata]``: covariates (names, cuts), methods, outcomes, verdict, interactions,
    alpha, minimum stratum size and the Monte Carlo resamples."""
    r = TableReader(table, where)
    covariates = tuple(_read_covariate(t, f"{where} [[covariates]] #{i + 1}")
                       for i, t in enumerate(r.tables("covariates")))
    names = [c.name for c in covariates]
    if not covariates or len(set(names)) != len(names):
        raise ProtocolError(f"{where}: declare at least one covariate, each once; got {names}")
    methods = tuple(r.texts("methods", default=sorted(method_ids), allowed=sorted(method_ids)))
    if not methods or len(set(methods)) != len(methods):
        raise ProtocolError(f"{where}: methods must be distinct method ids, got {list(methods)}")
    outcomes = tuple(r.texts("outcomes", default=["falsified"], allowed=["falsified",
                                                                          "trivial"]))
    if not outcomes or len(set(outcomes)) != len(outcomes):
        raise ProtocolError(f"{where}: outcomes must be distinct, got {list(outcomes)}")
    spec = StrataSpec(
        covariates=covariates, methods=methods, outcomes=outcomes,
        verdict=r.text("verdict", default="primary", allowed=["primary", "simple", "theorem"]),
        interactions=_read_interactions(r, methods),
        alpha=r.fraction("alpha", default=default_alpha, open_low=True, maximum=0.5),
        min_stratum_pairs=r.integer("min_stratum_pairs", default=10, minimum=2,
                                    maximum=100_000),
        n_resamples=r.integer("n_resamples", default=9999, minimum=99, maximum=1_000_000))
    r.finish()
    return spec
