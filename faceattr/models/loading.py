"""Model loading by protocol name (the one place that maps names to loaders)."""

from __future__ import annotations

from faceattr.models.base import VerificationModel

__all__ = ["MODEL_NAMES", "load_model"]

MODEL_NAMES = ("synthetic_cnn",)


def load_model(name: str) -> VerificationModel:
    """Load a verification model by name, in eval mode."""
    if name == "synthetic_cnn":
        from faceattr.models.synthetic_cnn import load_synthetic_model

        return load_synthetic_model()
    raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
