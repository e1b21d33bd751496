"""Model loading by protocol name (the one place that maps names to loaders)."""

from __future__ import annotations

from pathlib import Path

from faceattr.errors import InputError
from faceattr.models.base import VerificationModel

__all__ = ["MODEL_NAMES", "load_model"]

MODEL_NAMES = ("synthetic_cnn", "dlib_resnet", "facenet_vggface2", "facenet_casia_webface",
               "facenet_random")


def load_model(name: str, *, weights_path: Path | None = None, seed: int = 0) -> VerificationModel:
    """Load a verification model by name, in eval mode.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`.
    weights_path : pathlib.Path or None
        Weights file (CLI ``--weights``); ``None`` uses the model's environment variable or
        cache (``FACEATTR_SYNTHETIC_WEIGHTS``, ``FACEATTR_DLIB_WEIGHTS``,
        ``FACEATTR_FACENET_WEIGHTS`` / ``$TORCH_HOME/checkpoints``).
    seed : int
        Only for ``facenet_random`` (a random-initialised FaceNet, a negative control for the
        model gate).
    """
    if name == "synthetic_cnn":
        from faceattr.models.synthetic_cnn import load_synthetic_model

        return load_synthetic_model(weights_path)
    if name == "dlib_resnet":
        from faceattr.models.dlib_resnet import load_dlib_resnet

        return load_dlib_resnet(weights_path)
    if name in ("facenet_vggface2", "facenet_casia_webface"):
        from faceattr.models.facenet import load_facenet

        weight_set = "vggface2" if name == "facenet_vggface2" else "casia-webface"
        return load_facenet(weight_set, weights_path)
    if name == "facenet_random":
        from faceattr.models.facenet import random_facenet

        return random_facenet(seed)
    raise InputError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
