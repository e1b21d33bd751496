"""The self-contained HTML report, rendered from run artefacts only."""

from faceattr.report.render import render_report

__all__ = ["render_report"]
