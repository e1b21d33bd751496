"""The checks every pair source passes, built-in or a user's (:func:`check_source`).

A source lists pairs deterministically under stable, safe, unique ids, labels some genuine and
some impostor, loads valid images, and pins them in the manifest by hash — of the file bytes for
file-backed sources (PITFALLS.md #15).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from faceattr.data.pairs import (
    LimitedPairSource,
    LoadedImage,
    Pair,
    PairSource,
    build_manifest,
    image_hashes,
    manifest_sha256,
)
from faceattr.integrity import SAFE_NAME
from faceattr.testing._common import Check, fail, named_check, run_checks, select

__all__ = ["N_CHECK_SOURCE_PAIRS", "SOURCE_CHECKS", "SourceRef", "check_source",
           "source_checks"]

SOURCE_CHECKS: tuple[str, ...] = ("pairs_deterministic", "pair_ids_unique_safe", "both_labels",
                                  "images_valid", "manifest_hashes")
"""Every source check, in the order :func:`source_checks` yields them."""

N_CHECK_SOURCE_PAIRS: int = 4
"""Pairs whose images are loaded and hashed (the first ones); ids and labels are checked on
every pair."""

SourceRef = PairSource | Callable[[int], PairSource]
"""A source, or a factory ``seed -> source`` (then built twice to check determinism)."""

_SHA256 = re.compile(r"[0-9a-f]{64}")


def _is_source(obj: object) -> bool:
    return all(callable(getattr(obj, attr, None)) for attr in ("pairs", "load_image"))


@dataclass
class _SourceContext:
    """The source, its pairs and the ids of the images checked, built on first use."""

    ref: SourceRef
    seed: int
    subject: str = field(init=False)

    def __post_init__(self) -> None:
        self.subject = "source"

    def build(self) -> PairSource:
        """The source (a new one from a factory)."""
        if _is_source(self.ref):
            source: PairSource = self.ref  # type: ignore[assignment]
            return source
        if not callable(self.ref):
            raise TypeError(f"{self.ref!r} is neither a pair source (pairs(), load_image()) "
                            "nor a factory seed -> source")
        built = self.ref(self.seed)
        if not _is_source(built):
            raise TypeError(f"the factory returned {type(built).__name__}, not a pair source")
        return built

    @cached_property
    def source(self) -> PairSource:
        """The source under check."""
        source = self.build()
        self.subject = f"source {getattr(source, 'name', type(source).__name__)!r}"
        return source

    @cached_property
    def pairs(self) -> list[Pair]:
        """``source.pairs()``, checked to be a non-empty list of :class:`Pair`."""
        pairs = self.source.pairs()
        if not isinstance(pairs, list) or not pairs or not all(isinstance(p, Pair)
                                                                for p in pairs):
            raise TypeError("pairs() must return a non-empty list of faceattr Pair, got "
                            f"{type(pairs).__name__} of {len(pairs)} item(s)")
        return pairs

    @cached_property
    def checked_pairs(self) -> list[Pair]:
        """The first :data:`N_CHECK_SOURCE_PAIRS` pairs."""
        return self.pairs[:N_CHECK_SOURCE_PAIRS]

    @cached_property
    def image_ids(self) -> list[str]:
        """The ids of the checked pairs' images, in first-use order."""
        return list(dict.fromkeys(i for p in self.checked_pairs for i in (p.image_a, p.image_b)))


def _pairs_deterministic(ctx: _SourceContext) -> None:
    first = ctx.pairs
    if ctx.source.pairs() != first:
        fail("pairs_deterministic", ctx.subject, "two calls of pairs() give different pairs; "
             "sample from a generator keyed by the seed (faceattr.rng), never the global RNG")
    if not _is_source(ctx.ref):
        again = ctx.build().pairs()
        if again != first:
            fail("pairs_deterministic", ctx.subject, f"two sources built with seed {ctx.seed} "
                 "give different pairs; derive every draw from the seed (faceattr.rng)")


def _pair_ids_unique_safe(ctx: _SourceContext) -> None:
    seen: dict[str, int] = {}
    for i, pair in enumerate(ctx.pairs):
        if not SAFE_NAME.fullmatch(pair.pair_id) or set(pair.pair_id) == {"."}:
            fail("pair_ids_unique_safe", ctx.subject, f"pair {i} has id {pair.pair_id!r}, not a "
                 "safe name (letters, digits, '.', '_', '-'; it becomes part of file paths); "
                 "derive ids with faceattr.data.pairs.content_pair_id")
        if pair.pair_id in seen:
            fail("pair_ids_unique_safe", ctx.subject, f"pairs {seen[pair.pair_id]} and {i} share "
                 f"the id {pair.pair_id!r}; every pair needs its own id (content_pair_id of its "
                 "two images)")
        seen[pair.pair_id] = i


def _both_labels(ctx: _SourceContext) -> None:
    n_genuine = sum(p.is_genuine for p in ctx.pairs)
    if n_genuine in (0, len(ctx.pairs)):
        missing = "impostor" if n_genuine else "genuine"
        fail("both_labels", ctx.subject, f"all {len(ctx.pairs)} pairs are "
             f"{'genuine' if n_genuine else 'impostor'}: no {missing} pair, so verification "
             "cannot be measured (the model gate needs both)")


def _valid_image(ctx: _SourceContext, image_id: str) -> LoadedImage:
    loaded = ctx.source.load_image(image_id)
    if not isinstance(loaded, LoadedImage):
        fail("images_valid", ctx.subject, f"load_image({image_id!r}) returned "
             f"{type(loaded).__name__}, not a faceattr LoadedImage")
    image, mask = loaded.image, loaded.identity_mask
    if not (isinstance(image, np.ndarray) and image.dtype == np.float32 and image.ndim == 3
            and image.shape[0] == 3):
        fail("images_valid", ctx.subject, f"image {image_id!r} is "
             f"{getattr(image, 'dtype', '?')} {getattr(image, 'shape', '?')}, not float32 "
             "(3, H, W)")
    if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
        fail("images_valid", ctx.subject, f"image {image_id!r} has values outside [0, 1] "
             f"(or non-finite): min {np.nanmin(image):.3g}, max {np.nanmax(image):.3g}")
    if mask is not None and (not isinstance(mask, np.ndarray) or mask.dtype != np.bool_
                             or mask.shape != image.shape[1:]):
        fail("images_valid", ctx.subject, f"identity mask of {image_id!r} must be bool (H, W) "
             f"= {image.shape[1:]}, got {getattr(mask, 'dtype', '?')} "
             f"{getattr(mask, 'shape', '?')}")
    return loaded


def _images_valid(ctx: _SourceContext) -> None:
    shapes: dict[tuple[int, ...], str] = {}
    for image_id in ctx.image_ids:
        loaded = _valid_image(ctx, image_id)
        shapes.setdefault(loaded.image.shape, image_id)
        again = ctx.source.load_image(image_id)
        if not (isinstance(again, LoadedImage) and again.sha256() == loaded.sha256()):
            fail("images_valid", ctx.subject, f"loading {image_id!r} twice gives different "
                 "pixels; loading must be deterministic")
    if len(shapes) > 1:
        (shape_a, id_a), (shape_b, id_b) = list(shapes.items())[:2]
        fail("images_valid", ctx.subject, f"images differ in size ({id_a!r} is {shape_a}, "
             f"{id_b!r} is {shape_b}); give every image the model's input size")


def _image_path(source: PairSource) -> Callable[[str], Path] | None:
    """``image_path`` of a file-backed source (one whose manifest hashes files, as
    :func:`~faceattr.data.pairs.image_hashes` decides), ``None`` for a generated one."""
    inner: object = source.inner if isinstance(source, LimitedPairSource) else source
    if getattr(inner, "file_sha256", None) is None:
        return None
    image_path: Callable[[str], Path] | None = getattr(inner, "image_path", None)
    if image_path is None:
        raise TypeError("the source hashes files (file_sha256) but has no image_path(image_id) "
                        "to check the hashes against; add image_path")
    return image_path


def _manifest_hashes(ctx: _SourceContext) -> None:
    pairs = ctx.checked_pairs
    first = build_manifest(ctx.source, pairs, image_hashes(ctx.source, pairs, {}))
    second = build_manifest(ctx.source, pairs, image_hashes(ctx.source, pairs, {}))
    if manifest_sha256(first) != manifest_sha256(second):
        fail("manifest_hashes", ctx.subject, "two manifests of the same pairs differ; image "
             "hashes must be a function of the image content")
    recorded = {row[key]: row[sha] for row in first["pairs"]
                for key, sha in (("image_a", "sha256_a"), ("image_b", "sha256_b"))}
    bad = [i for i, digest in recorded.items()
           if not (isinstance(digest, str) and _SHA256.fullmatch(digest))]
    if bad:
        fail("manifest_hashes", ctx.subject, f"the hash of {bad[0]!r} is {recorded[bad[0]]!r}, "
             "not a SHA-256 hex digest")
    image_path = _image_path(ctx.source)
    if image_path is None:
        # generated images: the manifest pins the decoded float32 pixels
        for image_id in ctx.image_ids:
            expected = ctx.source.load_image(image_id).sha256()
            if recorded[image_id] != expected:
                fail("manifest_hashes", ctx.subject, f"the manifest hash of {image_id!r} is not "
                     "the SHA-256 of its pixels")
        return
    for image_id in ctx.image_ids:
        path = Path(image_path(image_id))
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if recorded[image_id] != actual:
            fail("manifest_hashes", ctx.subject, f"file_sha256({image_id!r}) = "
                 f"{recorded[image_id][:12]}... but the file {path} has SHA-256 {actual[:12]}...; "
                 "hash the file's current bytes (faceattr.models.cache.sha256_file), never a "
                 "cached or derived value")


def source_checks(source: SourceRef, *, seed: int = 0) -> Iterator[Check]:
    """Yield ``(check_name, check)`` for every source check (see :func:`check_source`).

    Parameters
    ----------
    source : PairSource or callable
        The source, or a factory ``seed -> source`` (built on the first check, and once more by
        ``pairs_deterministic``).
    seed : int
        The seed given to a factory.

    Yields
    ------
    tuple of (str, callable)
        The check's name (one of :data:`SOURCE_CHECKS`) and a function of no arguments that
        raises a one-line :class:`CheckFailure` (an ``AssertionError``) naming the check.
    """
    ctx = _SourceContext(ref=source, seed=seed)
    bodies = {"pairs_deterministic": lambda: _pairs_deterministic(ctx),
              "pair_ids_unique_safe": lambda: _pair_ids_unique_safe(ctx),
              "both_labels": lambda: _both_labels(ctx),
              "images_valid": lambda: _images_valid(ctx),
              "manifest_hashes": lambda: _manifest_hashes(ctx)}
    for name in SOURCE_CHECKS:
        yield name, named_check(name, lambda: ctx.subject, bodies[name])


def check_source(source: SourceRef, *, seed: int = 0,
                 checks: Collection[str] | None = None) -> None:
    """Run the source checks; the first failure raises.

    - ``pairs_deterministic``: ``pairs()`` returns a non-empty list of :class:`Pair`, the same
      on a second call and, for a factory, from a second source built with the same seed;
    - ``pair_ids_unique_safe``: every pair id is unique and a safe name ``[A-Za-z0-9._-]+``;
    - ``both_labels``: at least one genuine and one impostor pair;
    - ``images_valid``: the images of the first :data:`N_CHECK_SOURCE_PAIRS` pairs load as
      :class:`LoadedImage` (float32 (3, H, W) in [0, 1], bool (H, W) mask or none), all of one
      size, the same pixels on a second load;
    - ``manifest_hashes``: the manifest of those pairs is the same twice, records SHA-256
      digests, and for a file-backed source (``file_sha256``) each digest is that of the
      file's current bytes (read through ``image_path``) — so a changed file changes the
      manifest; for a generated source, that of the decoded pixels.

    Parameters
    ----------
    source, seed
        See :func:`source_checks`.
    checks : collection of str, optional
        Run only these (names from :data:`SOURCE_CHECKS`).

    Raises
    ------
    faceattr.testing.CheckFailure
        One line: ``"<check> failed for source '<name>': <reason and fix>"``.
    ValueError
        ``checks`` names an unknown check.
    """
    run_checks(select(list(source_checks(source, seed=seed)), checks, SOURCE_CHECKS, "source"))
