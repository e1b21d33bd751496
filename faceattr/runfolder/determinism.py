"""``determinism.json``: what the determinism stage's fresh-process re-runs showed
(written by :mod:`faceattr.experiments.determinism`, judged by the ``determinism`` claim)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from faceattr.io import read_json

__all__ = ["DeterminismResult", "load_determinism"]


@dataclass(frozen=True, slots=True)
class DeterminismResult:
    """What the re-runs showed."""

    n_pairs: int
    n_lines_compared: int
    identical_across_processes: bool
    first_difference: str | None
    stochastic_methods: tuple[str, ...]
    seed_changes_stochastic: bool

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        row = asdict(self)
        row["stochastic_methods"] = list(self.stochastic_methods)
        return row

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> DeterminismResult:
        """Rebuild (exact keys)."""
        values = dict(row)
        values["stochastic_methods"] = tuple(row["stochastic_methods"])
        return cls(**values)



def load_determinism(run_root: Path) -> DeterminismResult | None:
    """The stage's outcome, or None when the protocol declared no determinism stage."""
    path = run_root / "determinism.json"
    return DeterminismResult.from_json(read_json(path)) if path.exists() else None
