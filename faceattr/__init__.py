"""faceattr: statistical validation of attribution methods on face-verification models."""

__version__ = "0.1.0"
