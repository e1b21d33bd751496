"""Models by name: built-ins, entry points (``faceattr.models``) and import paths of loaders
(the one place that maps names to loaders); model files go through :mod:`faceattr.models.files`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import cast

from faceattr.errors import InputError
from faceattr.models.base import VerificationModel
from faceattr.registry import Registry

__all__ = ["MODEL_NAMES", "MODEL_REGISTRY", "ModelLoader", "load_model"]



ModelLoader = Callable[[Path | None], VerificationModel]
"""A model component: ``loader(weights_path or None) -> VerificationModel`` (eval mode)."""


def _synthetic(weights_path: Path | None) -> VerificationModel:
    from faceattr.models.synthetic_cnn import load_synthetic_model

    return load_synthetic_model(weights_path)


def _synthetic_level(level: int) -> ModelLoader:
    def load(weights_path: Path | None) -> VerificationModel:
        from faceattr.models.synthetic_cnn import load_synthetic_model, packaged_weights

        return load_synthetic_model(weights_path or packaged_weights(level))
    return load


def _dlib(weights_path: Path | None) -> VerificationModel:
    from faceattr.models.dlib_resnet import load_dlib_resnet

    return load_dlib_resnet(weights_path)


def _facenet(weight_set: str) -> ModelLoader:
    def load(weights_path: Path | None) -> VerificationModel:
        from faceattr.models.facenet import load_facenet

        return load_facenet(weight_set, weights_path)
    return load


def _facenet_random(weights_path: Path | None) -> VerificationModel:
    from faceattr.models.facenet import random_facenet

    del weights_path
    return random_facenet(0)


def _synthetic_vit(weights_path: Path | None) -> VerificationModel:
    from faceattr.models.synthetic_vit import load_synthetic_vit

    return load_synthetic_vit(weights_path)


def _synthetic_inception(weights_path: Path | None) -> VerificationModel:
    from faceattr.models.synthetic_inception import load_synthetic_inception

    return load_synthetic_inception(weights_path)


def _real(name: str) -> ModelLoader:
    def load(weights_path: Path | None) -> VerificationModel:
        from faceattr.models.zoo import load_real_model

        return load_real_model(name, weights_path)
    return load


_BUILTIN_MODELS: Mapping[str, ModelLoader] = MappingProxyType({
    "synthetic_cnn": _synthetic, "synthetic_cnn_d1": _synthetic_level(1),
    "synthetic_cnn_d2": _synthetic_level(2), "dlib_resnet": _dlib,
    "facenet_vggface2": _facenet("vggface2"), "facenet_casia_webface": _facenet("casia-webface"),
    "facenet_random": _facenet_random,
    # other architectures trained on the synthetic world (fixtures/README.md)
    "synthetic_vit": _synthetic_vit, "synthetic_inception": _synthetic_inception,
    # real pretrained networks from package archives (faceattr.models.zoo)
    "sface": _real("sface"), "mobilefacenet_512": _real("mobilefacenet_512"),
    "mobilefacenet_192": _real("mobilefacenet_192")})
MODEL_NAMES = tuple(_BUILTIN_MODELS)


def _check_loader(name: str, obj: object) -> ModelLoader:
    if not callable(obj) or isinstance(obj, type):
        raise TypeError(f"{obj!r} is not a function loader(weights_path) -> VerificationModel")
    return cast(ModelLoader, obj)


#: Built-ins, entry points in group ``faceattr.models`` and import paths.
MODEL_REGISTRY: Registry[ModelLoader] = Registry(kind="model", builtins=lambda: _BUILTIN_MODELS,
                                                 check=_check_loader)


def load_model(name: str, *, weights_path: Path | None = None, seed: int = 0) -> VerificationModel:
    """Load a verification model by name (registered or ``"package.module:loader"``).

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`, an entry point in group ``faceattr.models`` or an import
        path of a ``loader(weights_path) -> VerificationModel``.
    weights_path : pathlib.Path or None
        Weights file; ``None`` uses the model's environment variable or cache
        (``FACEATTR_SYNTHETIC_WEIGHTS``, ``FACEATTR_DLIB_WEIGHTS``,
        ``FACEATTR_FACENET_WEIGHTS`` / ``$TORCH_HOME/checkpoints``).
    seed : int
        Only for ``facenet_random`` (a random-initialised FaceNet, a negative control for the
        model gate).
    """
    if name == "facenet_random":
        from faceattr.models.facenet import random_facenet

        return random_facenet(seed)
    model = MODEL_REGISTRY.resolve(name, "[model]")(weights_path)
    if not isinstance(model, VerificationModel):
        raise InputError(f"model loader {name!r} returned {type(model).__name__}, not a "
                         "faceattr VerificationModel")
    return model
