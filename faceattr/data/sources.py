"""Pair sources by name (built-ins, entry points ``faceattr.sources``, import paths): the one
place that maps ``[data]`` tables to sources.

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
from faceattr.registry import Registry

__all__ = ["SOURCES", "SOURCE_REGISTRY", "SourceKind", "SourceSpec", "build_source",
           "parse_source"]

ALIGNMENTS = ["center", "mtcnn", "dlib_chip", "arcface_112"]


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


def _limit(source: PairSource, n_pairs: int) -> PairSource:
    if n_pairs <= 0:
        return source
    from faceattr.data.pairs import LimitedPairSource

    return LimitedPairSource(source, n_pairs)


def _build_synthetic(p: Mapping[str, Any], seed: int) -> PairSource:
    from faceattr.data.synthetic_pairs import SyntheticPairSource

    return SyntheticPairSource(world_seed=p["world_seed"], n_pairs=p["n_pairs"],
                               genuine_fraction=p["genuine_fraction"],
                               first_identity=p["first_identity"], sampling_seed=seed,
                               difficulty=p["difficulty"])


def _build_lfw(p: Mapping[str, Any], seed: int) -> PairSource:
    from faceattr.data.lfw import LfwPairSource

    del seed
    lfw = LfwPairSource(root=Path(p["root"]), alignment=p["alignment"], size=p["size_px"],
                        pairs_file=Path(p["pairs_file"]),
                        folds=tuple(p["folds"]) if p["folds"] else None)
    return _limit(lfw, p["n_pairs"])


def _build_folder(p: Mapping[str, Any], seed: int) -> PairSource:
    from faceattr.data.folder_pairs import FolderPairSource

    return FolderPairSource(root=Path(p["root"]), alignment=p["alignment"], size=p["size_px"],
                            n_pairs=p["n_pairs"], genuine_fraction=p["genuine_fraction"],
                            seed=seed)


def _build_demo(p: Mapping[str, Any], seed: int) -> PairSource:
    from faceattr.data.demo_photos import DemoPhotoPairSource, fetch_demo_photos

    del seed
    return DemoPhotoPairSource(root=fetch_demo_photos(), alignment=p["alignment"],
                               size=p["size_px"])


def _real_photos(r: TableReader) -> dict[str, Any]:
    # faceattr.data.real_photos: 10 credited photos of 5 identities, pinned MTCNN landmarks
    from faceattr.data.real_photos import REAL_IDENTITIES

    return {"alignment": r.text("alignment", default="arcface_112",
                                allowed=["arcface_112", "dlib_chip"]),
            "size_px": r.integer("size_px", default=112, minimum=8, maximum=1024),
            "pair_set": r.text("pair_set", default="all", allowed=["all", "balanced"]),
            "occluded": r.boolean("occluded", default=False),
            "identities": r.texts("identities", default=[],
                                  allowed=REAL_IDENTITIES)}


def _build_real_photos(p: Mapping[str, Any], seed: int) -> PairSource:
    from faceattr.data.real_photos import RealPhotoPairSource, fetch_real_photos

    del seed
    return RealPhotoPairSource(root=fetch_real_photos(), alignment=p["alignment"],
                               size=p["size_px"], pair_set=p["pair_set"],
                               occluded=p["occluded"], identities=tuple(p["identities"]))


def _read_pairs_csv(r: TableReader, base_dir: Path) -> dict[str, Any]:
    from faceattr.data.pairs_csv import read_pairs_csv_params

    return read_pairs_csv_params(r, base_dir)


def _build_pairs_csv(p: Mapping[str, Any], seed: int) -> PairSource:
    from faceattr.data.pairs_csv import build_pairs_csv_source

    return build_pairs_csv_source(dict(p), seed)


@dataclass(frozen=True, slots=True)
class SourceKind:
    """A pair source kind: how to read its ``[data]`` parameters (strictly, no disk access;
    relative paths resolved against the protocol's folder) and how to build it."""

    read: Callable[[TableReader, Path], dict[str, Any]]
    build: Callable[[Mapping[str, Any], int], PairSource]


def _relative_to(keys: tuple[str, ...], reader: Callable[[TableReader], dict[str, Any]]
                 ) -> Callable[[TableReader, Path], dict[str, Any]]:
    def read(r: TableReader, base_dir: Path) -> dict[str, Any]:
        params = reader(r)
        for key in keys:
            params[key] = str((base_dir / Path(params[key]).expanduser()).resolve())
        return params
    return read


_BUILTIN_SOURCES: Mapping[str, SourceKind] = MappingProxyType({
    "synthetic": SourceKind(read=_relative_to((), _synthetic), build=_build_synthetic),
    "lfw": SourceKind(read=_relative_to(("root", "pairs_file"), _lfw), build=_build_lfw),
    "folder": SourceKind(read=_relative_to(("root",), _folder), build=_build_folder),
    "demo": SourceKind(read=_relative_to((), _demo), build=_build_demo),
    "real_photos": SourceKind(read=_relative_to((), _real_photos), build=_build_real_photos),
    "pairs_csv": SourceKind(read=_read_pairs_csv, build=_build_pairs_csv)})
SOURCES = tuple(_BUILTIN_SOURCES)


def _check_source_kind(name: str, obj: object) -> SourceKind:
    if not isinstance(obj, SourceKind):
        raise TypeError(f"{obj!r} is not a faceattr.data.sources.SourceKind")
    return obj


#: Built-ins, entry points in group ``faceattr.sources`` and import paths.
SOURCE_REGISTRY: Registry[SourceKind] = Registry(kind="source",
                                                 builtins=lambda: _BUILTIN_SOURCES,
                                                 check=_check_source_kind)


def parse_source(table: Mapping[str, Any], where: str, base_dir: Path = Path()) -> SourceSpec:
    """Validate a ``[data]`` table; relative paths are taken from ``base_dir`` (the
    protocol's folder)."""
    r = TableReader(table, where)
    source = r.text("source")
    params = SOURCE_REGISTRY.resolve(source, where).read(r, base_dir)
    r.finish()
    return SourceSpec(source=source, params=tuple(sorted(params.items())))


def build_source(spec: SourceSpec, *, seed: int) -> PairSource:
    """Construct the pair source of a validated spec (may touch the disk or fetch)."""
    return SOURCE_REGISTRY.resolve(spec.source, "[data]").build(dict(spec.params), seed)
