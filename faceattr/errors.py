"""faceattr's error types and exit codes: a user's mistake is never dressed up as a bug.

Every error a user can fix (a bad protocol, a missing file, a run folder edited after the run,
an unreachable package registry) is an :class:`InputError`: the command line prints its one-line
message and exits with :data:`EXIT_INPUT`. Anything else that escapes is a bug in faceattr: the
command line keeps the traceback, asks for a bug report and exits with :data:`EXIT_INTERNAL`.

``InputError`` subclasses ``ValueError`` (and :class:`MissingFileError` also
``FileNotFoundError``) so that callers catching the built-in types keep working.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "EXIT_FAILED",
    "EXIT_INCONCLUSIVE",
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "AssetUnavailableError",
    "FaceattrError",
    "GateFailedError",
    "InputError",
    "IntegrityError",
    "MissingFileError",
    "RunLockedError",
    "UnsafeNameError",
]

EXIT_OK = 0
"""Everything passed."""
EXIT_FAILED = 1
"""A declared claim failed, or the model gate failed: do not submit."""
EXIT_INPUT = 2
"""A user input error (one line naming the thing and the fix)."""
EXIT_INTERNAL = 3
"""An internal error in faceattr (traceback kept; please report it)."""
EXIT_INCONCLUSIVE = 4
"""``faceattr compare`` only: equivalence could not be shown for lack of pairs (not a
regression)."""


class FaceattrError(Exception):
    """Base of the errors faceattr raises on purpose."""


class InputError(FaceattrError, ValueError):
    """Bad input the user can fix; the message is one line naming the thing and the fix."""


class MissingFileError(InputError, FileNotFoundError):
    """A file the user must provide (or faceattr must fetch) is not there."""


class AssetUnavailableError(InputError):
    """A pinned third-party file could not be fetched (registry unreachable or hash mismatch)."""


class IntegrityError(InputError):
    """A run artefact no longer matches the SHA-256 recorded when it was written."""


class RunLockedError(InputError):
    """Another process holds the run folder's lock."""


class UnsafeNameError(InputError):
    """A name used in a path has characters outside ``[A-Za-z0-9._-]``."""


class GateFailedError(FaceattrError):
    """The model failed the verification gate; no attribution is trusted (exit 1).

    ``root`` is the run folder that records the failed gate (``gate.json``), when known.
    """

    def __init__(self, message: str, root: Path | None = None) -> None:
        super().__init__(message)
        self.root = root
