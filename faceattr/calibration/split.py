"""The calibration split: its pairs, its manifest, and the check that the test split never
uses its identities (a threshold read off the test identities would be tuned on the test)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from faceattr.data.pairs import LoadedImage, Pair, PairSource, build_manifest, image_hashes
from faceattr.data.pairs import manifest_sha256 as _manifest_sha256
from faceattr.data.sources import SourceSpec, build_source
from faceattr.errors import InputError

__all__ = ["CalibrationSplit", "check_disjoint", "load_split"]

_SHOWN = 5


@dataclass(frozen=True)
class CalibrationSplit:
    """The calibration pairs, their images and their manifest's SHA-256."""

    source: PairSource
    pairs: Sequence[Pair]
    images: dict[str, LoadedImage]
    manifest_sha256: str


def _identities(pairs: Sequence[Pair]) -> set[str]:
    return {p.identity_a for p in pairs} | {p.identity_b for p in pairs}


def check_disjoint(test_pairs: Sequence[Pair], calibration_pairs: Sequence[Pair],
                   where: str) -> None:
    """Refuse a calibration split that shares an identity (or an image) with the test split.

    Raises
    ------
    InputError
        One line naming the overlapping identities (the first few and how many).
    """
    shared = sorted(_identities(test_pairs) & _identities(calibration_pairs))
    if not shared:
        images = ({p.image_a for p in test_pairs} | {p.image_b for p in test_pairs}) & (
            {p.image_a for p in calibration_pairs} | {p.image_b for p in calibration_pairs})
        if not images:
            return
        raise InputError(f"{where}: the calibration split shares {len(images)} image(s) with "
                         f"the test split ({', '.join(sorted(images)[:_SHOWN])}); choose "
                         "other images in [calibration.data]")
    more = f" and {len(shared) - _SHOWN} more" if len(shared) > _SHOWN else ""
    raise InputError(f"{where}: the calibration split shares {len(shared)} identities with the "
                     f"test split ({', '.join(shared[:_SHOWN])}{more}); choose disjoint "
                     "identities in [calibration.data] (e.g. another first_identity range or "
                     "other folds)")


def load_split(spec: SourceSpec, seed: int) -> CalibrationSplit:
    """Build the calibration source, load its images and hash its manifest."""
    source = build_source(spec, seed=seed)
    pairs = source.pairs()
    images: dict[str, LoadedImage] = {}
    for pair in pairs:
        for image_id in (pair.image_a, pair.image_b):
            if image_id not in images:
                images[image_id] = source.load_image(image_id)
    manifest = build_manifest(source, pairs, image_hashes(source, pairs, images))
    return CalibrationSplit(source=source, pairs=pairs, images=images,
                            manifest_sha256=_manifest_sha256(manifest))
