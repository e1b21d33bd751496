"""faceattr: statistical validation of attribution methods on face-verification models.

The public API is this flat namespace (captum's pattern: implementations in private modules,
one surface here); names are imported on first use, so ``import faceattr`` stays cheap.

- Running: :func:`run`, :func:`load_run`, :class:`Run`, :func:`load_protocol`.
- Writing components: :class:`AttributionMethod` (with :class:`MethodInfo`,
  :class:`AttributionBatch`, :class:`AttributionDetails`; explain the pair score through
  :class:`VerificationScoreModule`), :class:`VerificationModel`,
  :class:`PairSource` (:class:`Pair`, :class:`LoadedImage`, :class:`SourceKind`),
  :class:`ClaimKind` (:class:`ClaimResult`), :func:`param` / :func:`read_params`; register them
  with entry points (groups ``faceattr.methods``, ``faceattr.models``, ``faceattr.sources``,
  ``faceattr.claims``) or name them by import path in the protocol; check them with
  :mod:`faceattr.testing`.
- Errors: :class:`InputError` (exit 2), :class:`GateFailedError` (exit 1),
  :class:`IntegrityError`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "run": "faceattr.api", "load_run": "faceattr.api", "Run": "faceattr.api",
    "load_protocol": "faceattr.protocol", "Protocol": "faceattr.protocol",
    "AttributionMethod": "faceattr.attribution.base", "MethodInfo": "faceattr.attribution.base",
    "AttributionBatch": "faceattr.attribution.base",
    "AttributionDetails": "faceattr.attribution.base",
    "VerificationModel": "faceattr.models.base",
    "VerificationScoreModule": "faceattr.attribution.base",
    "PairSource": "faceattr.data.pairs", "Pair": "faceattr.data.pairs",
    "LoadedImage": "faceattr.data.pairs", "SourceKind": "faceattr.data.sources",
    "ClaimKind": "faceattr.claims.registry", "ClaimResult": "faceattr.claims.base",
    "RunArtefacts": "faceattr.claims.base",
    "param": "faceattr.params", "read_params": "faceattr.params",
    "InputError": "faceattr.errors", "GateFailedError": "faceattr.errors",
    "IntegrityError": "faceattr.errors",
}

__all__ = [
    "AttributionBatch",
    "AttributionDetails",
    "AttributionMethod",
    "ClaimKind",
    "ClaimResult",
    "GateFailedError",
    "InputError",
    "IntegrityError",
    "LoadedImage",
    "MethodInfo",
    "Pair",
    "PairSource",
    "Protocol",
    "Run",
    "RunArtefacts",
    "SourceKind",
    "VerificationModel",
    "VerificationScoreModule",
    "__version__",
    "load_protocol",
    "load_run",
    "param",
    "read_params",
    "run",
]

if TYPE_CHECKING:
    from faceattr.api import Run, load_run, run
    from faceattr.attribution.base import (
        AttributionBatch,
        AttributionDetails,
        AttributionMethod,
        MethodInfo,
        VerificationScoreModule,
    )
    from faceattr.claims.base import ClaimResult, RunArtefacts
    from faceattr.claims.registry import ClaimKind
    from faceattr.data.pairs import LoadedImage, Pair, PairSource
    from faceattr.data.sources import SourceKind
    from faceattr.errors import GateFailedError, InputError, IntegrityError
    from faceattr.models.base import VerificationModel
    from faceattr.params import param, read_params
    from faceattr.protocol import Protocol, load_protocol


if set(__all__) != {"__version__", *_EXPORTS}:  # one list of names, checked at import
    raise ImportError("faceattr.__all__ and its lazy exports disagree")


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'faceattr' has no attribute {name!r}")
