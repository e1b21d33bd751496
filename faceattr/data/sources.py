"""Pair sources by protocol name: the one place that maps ``[data]`` tables to sources.

Parameters are read strictly when the protocol loads (no disk access); the source itself is
built when the run starts (it may check files, or fetch the demo photos).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from faceattr.config import TableReader
from faceattr.data.pairs import PairSource

__all__ = ["SOURCES", "SourceSpec", "build_source", "parse_source"]

ALIGNMENTS = ["center", "mtcnn", "dlib_chip"]


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A validated ``[data]`` table: the source name and its parameters."""

    source: str
    params: tuple[tuple[str, Any], ...]

    def get(self, key: str) -> Any:
        """A parameter that the source's reader declared (present by construction)."""
        return dict(self.params)[key]


def _synthetic(r: TableReader) -> dict[str, Any]:
    # difficulty: the synthetic world's level (faceattr.data.synthetic.DIFFICULTY_LEVELS)
    return {"world_seed": r.integer("world_seed", minimum=0),
            "n_pairs": r.integer("n_pairs", minimum=2, maximum=1_000_000),
            "genuine_fraction": r.fraction("genuine_fraction"),
            "first_identity": r.integer("first_identity", minimum=0),
            "difficulty": r.integer("difficulty", default=0, minimum=0, maximum=2)}


def _photos(r: TableReader, default_alignment: str, default_size: int) -> dict[str, Any]:
    return {"alignment": r.text("alignment", default=default_alignment, allowed=ALIGNMENTS),
            "size_px": r.integer("size_px", default=default_size, minimum=8, maximum=1024)}


def _lfw(r: TableReader) -> dict[str, Any]:
    folds = r.integers("folds", default=[], minimum=0, maximum=9)
    return {"root": r.text("root"), "pairs_file": r.text("pairs_file"), "folds": folds,
            "n_pairs": r.integer("n_pairs", default=0, minimum=0),
            **_photos(r, "mtcnn", 160)}


def _folder(r: TableReader) -> dict[str, Any]:
    return {"root": r.text("root"), "n_pairs": r.integer("n_pairs", minimum=2),
            "genuine_fraction": r.fraction("genuine_fraction"), **_photos(r, "center", 160)}


def _demo(r: TableReader) -> dict[str, Any]:
    return _photos(r, "dlib_chip", 150)


READERS: Mapping[str, Callable[[TableReader], dict[str, Any]]] = MappingProxyType({
    "synthetic": _synthetic, "lfw": _lfw, "folder": _folder, "demo": _demo})
SOURCES = tuple(READERS)


def parse_source(table: Mapping[str, Any], where: str) -> SourceSpec:
    """Validate a ``[data]`` table."""
    r = TableReader(table, where)
    source = r.text("source", allowed=list(SOURCES))
    params = READERS[source](r)
    r.finish()
    return SourceSpec(source=source, params=tuple(sorted(params.items())))


def _limit(source: PairSource, n_pairs: int) -> PairSource:
    if n_pairs <= 0:
        return source
    from faceattr.data.pairs import LimitedPairSource

    return LimitedPairSource(source, n_pairs)


def build_source(spec: SourceSpec, *, seed: int) -> PairSource:
    """Construct the pair source of a validated spec (may touch the disk or fetch)."""
    p = dict(spec.params)
    if spec.source == "synthetic":
        from faceattr.data.synthetic_pairs import SyntheticPairSource

        return SyntheticPairSource(world_seed=p["world_seed"], n_pairs=p["n_pairs"],
                                   genuine_fraction=p["genuine_fraction"],
                                   first_identity=p["first_identity"], sampling_seed=seed,
                                   difficulty=p["difficulty"])
    if spec.source == "lfw":
        from faceattr.data.lfw import LfwPairSource

        lfw = LfwPairSource(root=Path(p["root"]), alignment=p["alignment"], size=p["size_px"],
                            pairs_file=Path(p["pairs_file"]),
                            folds=tuple(p["folds"]) if p["folds"] else None)
        return _limit(lfw, p["n_pairs"])
    if spec.source == "folder":
        from faceattr.data.folder_pairs import FolderPairSource

        return FolderPairSource(root=Path(p["root"]), alignment=p["alignment"],
                                size=p["size_px"], n_pairs=p["n_pairs"],
                                genuine_fraction=p["genuine_fraction"], seed=seed)
    from faceattr.data.demo_photos import DemoPhotoPairSource, fetch_demo_photos

    return DemoPhotoPairSource(root=fetch_demo_photos(), alignment=p["alignment"],
                               size=p["size_px"])
