"""Every claim of the validated protocols, one check per claim family (faceattr.gate.checks)."""

from faceattr.gate.checks import *  # noqa: F403 — the gate's checks, collected here
