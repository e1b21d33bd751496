"""One registry mechanism for every extension point: built-ins, entry points, import paths.

A protocol names a component — an attribution method, a model, a pair source, a fill, a claim
kind — by one of

- a built-in name (``method = "saliency"``);
- the name of an installed package's entry point in the kind's group (``faceattr.methods``,
  ``faceattr.models``, ``faceattr.sources``, ``faceattr.fills``, ``faceattr.claims``), e.g. in
  the study's ``pyproject.toml``::

      [project.entry-points."faceattr.methods"]
      similarity_rise = "mystudy.attributions:SimilarityRISE"

- an import path ``"package.module:Name"`` (resolved with :func:`pkgutil.resolve_name`).

The table of built-ins and entry points is built once, on first use, and frozen; two providers
of one name are a one-line error naming both. Every resolved object is checked to be what the
kind needs (a method class, a fill, ...) before it is used. This is captum's and Quantus'
openness (any ``forward_func``, any ``explain_func``) with a name for each component so that a
run records which one it used.
"""

from __future__ import annotations

import importlib.metadata
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Generic, TypeVar

from faceattr.config import ProtocolError

__all__ = ["ENTRY_POINT_GROUPS", "Registry", "is_import_path"]

T = TypeVar("T")

#: Entry-point group of each kind.
ENTRY_POINT_GROUPS = {"method": "faceattr.methods", "model": "faceattr.models",
                      "source": "faceattr.sources", "fill": "faceattr.fills",
                      "claim": "faceattr.claims"}


def is_import_path(name: str) -> bool:
    """``"package.module:Name"``: an import path, not a registered name."""
    return ":" in name


@dataclass
class Registry(Generic[T]):
    """Components of one kind by name.

    Parameters
    ----------
    kind : str
        ``"method"``, ``"model"``, ``"source"``, ``"fill"`` or ``"claim"`` (names the
        entry-point group and the protocol key in messages).
    builtins : callable
        Returns the built-in components by name (called once, lazily: built-ins may import
        heavy modules).
    check : callable
        ``check(name, obj) -> T``: the object as a component of this kind, or a one-line
        ``TypeError`` message naming what it should be.
    """

    kind: str
    builtins: Callable[[], Mapping[str, T]]
    check: Callable[[str, object], T]
    _table: Mapping[str, T] | None = field(default=None, init=False, repr=False)
    _origin: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    @property
    def group(self) -> str:
        """The entry-point group of this kind."""
        return ENTRY_POINT_GROUPS[self.kind]

    def table(self) -> Mapping[str, T]:
        """Built-ins and entry points by name (built once, then frozen)."""
        if self._table is None:
            table = dict(self.builtins())
            self._origin = {name: "faceattr (built-in)" for name in table}
            for point in importlib.metadata.entry_points(group=self.group):
                provider = point.dist.name if point.dist is not None else point.value
                if point.name in table:
                    raise ProtocolError(
                        f"{self.kind} name {point.name!r} is provided twice: by "
                        f"{self._origin[point.name]} and by {provider} (entry point "
                        f"{point.value}); rename one of them")
                try:
                    loaded = point.load()
                except Exception as exc:  # noqa: BLE001 — a user's package failed to import
                    raise ProtocolError(f"entry point {point.name} = {point.value} of {provider} "
                                        f"({self.group}) cannot be loaded: "
                                        f"{type(exc).__name__}: {exc}") from None
                table[point.name] = self._checked(point.name, loaded, f"entry point of {provider}")
                self._origin[point.name] = provider
            self._table = MappingProxyType(table)
        return self._table

    def names(self) -> tuple[str, ...]:
        """The registered names, sorted."""
        return tuple(sorted(self.table()))

    def _checked(self, name: str, obj: object, where: str) -> T:
        try:
            return self.check(name, obj)
        except TypeError as exc:
            raise ProtocolError(f"{where}: {self.kind} {name!r} is not usable: {exc}") from None

    def resolve(self, name: str, where: str) -> T:
        """The component ``name`` names (registered name or import path).

        Raises
        ------
        ProtocolError
            One line naming the protocol location, the name and the known names.
        """
        if is_import_path(name):
            try:
                obj = pkgutil.resolve_name(name)
            except (ImportError, AttributeError, ValueError) as exc:
                raise ProtocolError(f"{where}: {self.kind} = {name!r} cannot be imported "
                                    f"({type(exc).__name__}: {exc}); check the module is "
                                    "installed and importable") from None
            return self._checked(name, obj, where)
        table = self.table()
        if name not in table:
            raise ProtocolError(f"{where}: {self.kind} = {name!r} is not registered; known: "
                                f"{', '.join(sorted(table))}; or give an import path "
                                "'package.module:Name' or an entry point in group "
                                f"{self.group}")
        return table[name]
