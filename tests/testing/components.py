"""Components for the faceattr.testing tests: one good user method, and planted defects.

Defined at module level so the fresh-process check can import them by
``tests.testing.components:<Name>``. Each defect is the smallest change of a correct
component that breaks one property; its test names the check that must catch it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from faceattr.attribution.base import (
    AttributionBatch,
    AttributionMethod,
    MethodInfo,
    VerificationScoreModule,
)
from faceattr.attribution.gradient import Saliency
from faceattr.data.pairs import LoadedImage, Pair, content_pair_id
from faceattr.data.synthetic_pairs import SyntheticPairSource
from faceattr.models.base import VerificationModel
from faceattr.rng import numpy_generator
from faceattr.testing import tiny_model


def _info(name: str, *, is_control: bool = False, has_convergence_delta: bool = False
          ) -> MethodInfo:
    return MethodInfo(name=name, reference="faceattr.testing test component",
                      aggregation="signed_sum", multiplies_by_inputs=False,
                      has_convergence_delta=has_convergence_delta, stochastic=False,
                      is_control=is_control)


def _gradient(batch: AttributionBatch) -> torch.Tensor:
    # d s(x_a, x_b) / d x_a, (N, C, H, W)
    probes = batch.probes.detach().clone().requires_grad_(True)
    score = VerificationScoreModule(batch.model, batch.partner_embeddings)(probes)
    (grad,) = torch.autograd.grad(score.sum(), probes)
    return grad


def _saliency(batch: AttributionBatch) -> NDArray[np.float64]:
    maps: NDArray[np.float64] = _gradient(batch).abs().sum(dim=1).double().numpy()
    return maps


# --- methods ----------------------------------------------------------------------------------

class SignedGradient(AttributionMethod):
    """A correct user method: the signed gradient of the score, channels summed, with a seeded
    tie-breaking jitter from the pair's own stream (faceattr.rng)."""

    info = _info("signed_gradient")

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Return ``sum_c d s / d x_a`` plus a 1e-9 keyed jitter."""
        maps = _gradient(batch).sum(dim=1).double().numpy()
        jitter = np.stack([numpy_generator(batch.seed, pair_id, batch.model.name,
                                           self.method_id, "jitter").random(maps.shape[1:])
                           for pair_id in batch.pair_ids])
        out: NDArray[np.float64] = maps + 1e-9 * float(np.abs(maps).max()) * jitter
        return out


class GlobalRngJitter(AttributionMethod):
    """Defect: breaks ties with the global NumPy RNG (PITFALLS.md #14)."""

    info = _info("global_rng_jitter")

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Saliency plus a jitter from ``np.random.rand``."""
        maps = _saliency(batch)
        out: NDArray[np.float64] = maps + 1e-9 * np.random.rand(*maps.shape)  # noqa: NPY002
        return out


class NaNMaps(AttributionMethod):
    """Defect: divides by a zero range (NaN where a map is flat; here one pixel per map)."""

    info = _info("nan_maps")

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Saliency with one NaN per map."""
        maps = _saliency(batch)
        maps[:, 0, 0] = np.nan
        return maps


class ZeroMaps(AttributionMethod):
    """Defect: the explained score was computed under ``no_grad`` and its missing gradient
    replaced by zeros: every map is flat."""

    info = _info("zero_maps")

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Zeros (N, H, W)."""
        return np.zeros(tuple(batch.probes.shape[:1]) + tuple(batch.probes.shape[2:]))


class BatchMaxSaliency(AttributionMethod):
    """Defect: normalises by the maximum over the whole batch (maps depend on the batch)."""

    info = _info("batch_max_saliency")

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Saliency divided by the batch's largest value."""
        maps = _saliency(batch)
        out: NDArray[np.float64] = maps / maps.max()
        return out


class RenamedSaliency(Saliency):
    """Defect: a built-in under a new name (PITFALLS.md #20)."""

    info = MethodInfo(name="renamed_saliency", reference="Simonyan et al. 2014",
                      aggregation="abs_sum", multiplies_by_inputs=False,
                      has_convergence_delta=False, stochastic=False, is_control=False)


class RescaledSaliency(Saliency):
    """Defect: a built-in times a constant plus an offset (the "biometric" weighting with no
    effect after normalisation, PITFALLS.md #20)."""

    info = MethodInfo(name="rescaled_saliency", reference="Simonyan et al. 2014",
                      aggregation="abs_sum", multiplies_by_inputs=False,
                      has_convergence_delta=False, stochastic=False, is_control=False)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """``3 * saliency + 1``."""
        out: NDArray[np.float64] = 3.0 * super().attribute(batch) + 1.0
        return out


class SqrtSaliency(Saliency):
    """Defect: a monotone transform of a built-in (the same pixel ranking)."""

    info = MethodInfo(name="sqrt_saliency", reference="Simonyan et al. 2014",
                      aggregation="abs_sum", multiplies_by_inputs=False,
                      has_convergence_delta=False, stochastic=False, is_control=False)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """``sqrt(saliency)``."""
        out: NDArray[np.float64] = np.sqrt(super().attribute(batch))
        return out


class NormTargetSaliency(AttributionMethod):
    """Defect: explains the norm of the L2-normalised embedding (no partner, PITFALLS.md #5)."""

    info = _info("norm_target_saliency")

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """``sum_c |d ||f(x)|| / d x|``: rounding noise, whatever the partner."""
        probes = batch.probes.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(batch.model.embed(probes).norm(dim=1).sum(), probes)
        maps: NDArray[np.float64] = grad.abs().sum(dim=1).double().numpy()
        return maps


class FirstComponentSaliency(AttributionMethod):
    """Defect: explains the first embedding component instead of the pair score."""

    info = _info("first_component_saliency")

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """``sum_c |d f(x)_0 / d x|``."""
        probes = batch.probes.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(batch.model.embed(probes)[:, 0].sum(), probes)
        maps: NDArray[np.float64] = grad.abs().sum(dim=1).double().numpy()
        return maps


class HashSeeded(AttributionMethod):
    """Defect: keys its noise with Python's ``hash()``, which differs between processes."""

    info = _info("hash_seeded")

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Saliency times ``1 + 0.1 U``, ``U`` from ``default_rng(hash(pair_id))``."""
        maps = _saliency(batch)
        noise = np.stack([np.random.default_rng(hash(p) % 2**32).random(maps.shape[1:])
                          for p in batch.pair_ids])
        out: NDArray[np.float64] = maps * (1.0 + 0.1 * noise)
        return out


class UndeclaredDelta(Saliency):
    """Defect: declares a completeness residual it never reports."""

    info = MethodInfo(name="undeclared_delta", reference="Simonyan et al. 2014",
                      aggregation="abs_sum", multiplies_by_inputs=False,
                      has_convergence_delta=True, stochastic=False, is_control=False)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Saliency, plus a negligible offset so it is not a copy of the built-in."""
        maps = super().attribute(batch)
        out: NDArray[np.float64] = maps + np.linspace(0.0, 0.5, maps.size).reshape(maps.shape) \
            * float(maps.max())
        return out


class OnePairOnly(AttributionMethod):
    """Defect: supports batches of one pair only (and says so with an ``assert``)."""

    info = _info("one_pair_only")

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        """Saliency of a single pair."""
        assert batch.probes.shape[0] == 1, "one pair at a time"
        return _saliency(batch)


class SaliencyCopyAsControl(Saliency):
    """A control (``is_control``) for the applicability tests."""

    info = MethodInfo(name="control_like", reference="test", aggregation="abs_sum",
                      multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=False, is_control=True)


# --- models -----------------------------------------------------------------------------------

class _Constant(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.vector = nn.Parameter(torch.linspace(-1.0, 1.0, 16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vector.expand(x.shape[0], -1)


class _Detached(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.inner(x).detach()
        return out


class _PerImageStandardised(nn.Module):
    # divides by each image's own standard deviation: NaN for a uniform image
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        mean = flat.mean(dim=1)[:, None, None, None]
        std = flat.std(dim=1)[:, None, None, None]
        out: torch.Tensor = self.inner((x - mean) / std)
        return out


def _with_network(network: nn.Module, name: str) -> VerificationModel:
    return VerificationModel(name=name, network=network.eval(), input_size_px=16,
                             pixel_mean=0.0, pixel_scale=255.0, weights_sha256="0" * 64)


def input_blind_model() -> VerificationModel:
    """Defect: the output is a learned vector, whatever the input."""
    return _with_network(_Constant(), "input_blind")


def detached_model() -> VerificationModel:
    """Defect: the network detaches its output (no gradient reaches the input)."""
    return _with_network(_Detached(tiny_model().network), "detached")


def standardising_model() -> VerificationModel:
    """Defect: per-image standardisation inside the network (NaN on a uniform image)."""
    return _with_network(_PerImageStandardised(tiny_model().network), "standardising")


def train_mode_batchnorm_model() -> VerificationModel:
    """Defect: BatchNorm left in training mode (embeddings use the batch's statistics)."""
    layers = list(tiny_model().network.children())
    network = nn.Sequential(layers[0], nn.BatchNorm2d(8), *layers[1:])
    model = _with_network(network, "train_mode_bn")
    model.network.train()
    return model


@dataclass(frozen=True, eq=False)
class UnnormalisedModel(VerificationModel):
    """Defect: ``embed`` returns the raw network output, not L2-normalised."""

    def embed(self, images_unit: torch.Tensor) -> torch.Tensor:
        """The raw embeddings (N, D)."""
        out: torch.Tensor = self.network(self.preprocess(images_unit))
        return out


def unnormalised_model() -> VerificationModel:
    """The tiny network without normalisation."""
    base = tiny_model()
    return UnnormalisedModel(name="unnormalised", network=base.network, input_size_px=16,
                             pixel_mean=0.0, pixel_scale=255.0, weights_sha256="0" * 64)


# --- sources ----------------------------------------------------------------------------------

def synthetic_source(seed: int) -> SyntheticPairSource:
    """The built-in synthetic source, 8 pairs, half genuine."""
    return SyntheticPairSource(world_seed=0, n_pairs=8, genuine_fraction=0.5,
                               first_identity=1000, sampling_seed=seed)


@dataclass(frozen=True)
class EditedSource:
    """The synthetic source with one thing changed (the planted defect)."""

    inner: SyntheticPairSource
    defect: str
    name: str = "edited"

    def pairs(self) -> list[Pair]:
        """The inner pairs, edited."""
        pairs = self.inner.pairs()
        if self.defect == "duplicate_ids":
            return [Pair(pair_id=pairs[0].pair_id if i == 3 else p.pair_id, image_a=p.image_a,
                         image_b=p.image_b, identity_a=p.identity_a, identity_b=p.identity_b,
                         is_genuine=p.is_genuine) for i, p in enumerate(pairs)]
        if self.defect == "unsafe_ids":
            return [Pair(pair_id=f"{p.identity_a}/{p.image_b}", image_a=p.image_a,
                         image_b=p.image_b, identity_a=p.identity_a, identity_b=p.identity_b,
                         is_genuine=p.is_genuine) for p in pairs]
        if self.defect == "global_rng_order":
            order = np.random.permutation(len(pairs))  # noqa: NPY002
            return [pairs[int(i)] for i in order]
        if self.defect == "genuine_only":
            return [p for p in pairs if p.is_genuine]
        return pairs

    def load_image(self, image_id: str) -> LoadedImage:
        """The inner image (cropped for one id under ``mixed_sizes``)."""
        loaded = self.inner.load_image(image_id)
        if self.defect == "mixed_sizes" and image_id == self.inner.pairs()[0].image_b:
            return LoadedImage(image=np.ascontiguousarray(loaded.image[:, 1:, 1:]),
                               identity_mask=None)
        return loaded


def unseeded_source(seed: int) -> SyntheticPairSource:
    """Defect: the sampling seed comes from fresh OS entropy, not from ``seed``."""
    del seed
    return synthetic_source(int(np.random.default_rng().integers(1 << 30)))


@dataclass(frozen=True)
class FileSource:
    """A file-backed source over ``root/<identity>/<n>.png`` listing fixed pairs.

    ``defect``: ``"path_hash"`` hashes the path string; ``"cached"`` hashes each file once and
    keeps the value.
    """

    root: Path
    defect: str = ""
    name: str = "files"
    _cache: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    listed: ClassVar[tuple[tuple[str, str], ...]] = (("a/0.png", "a/1.png"), ("a/0.png", "b/0.png"),
                                                     ("b/0.png", "b/1.png"))

    def pairs(self) -> list[Pair]:
        """The listed pairs."""
        return [Pair(pair_id=content_pair_id(self.name, a, b), image_a=a, image_b=b,
                     identity_a=a.split("/")[0], identity_b=b.split("/")[0],
                     is_genuine=a.split("/")[0] == b.split("/")[0]) for a, b in self.listed]

    def image_path(self, image_id: str) -> Path:
        """Where an image is."""
        return self.root / image_id

    def load_image(self, image_id: str) -> LoadedImage:
        """The PNG as float32 (3, H, W) in [0, 1]."""
        from PIL import Image

        with Image.open(self.root / image_id) as img:
            rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        return LoadedImage(image=np.ascontiguousarray(rgb.transpose(2, 0, 1)),
                           identity_mask=None)

    def file_sha256(self, image_id: str) -> str:
        """The file's SHA-256 (or the planted lie)."""
        path = self.root / image_id
        if self.defect == "path_hash":
            return hashlib.sha256(str(path).encode()).hexdigest()
        if self.defect == "cached":
            if image_id not in self._cache:
                self._cache[image_id] = hashlib.sha256(path.read_bytes()).hexdigest()
            return self._cache[image_id]
        return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class NoImagePathSource:
    """A file-backed source (``file_sha256``) that does not say where its files are."""

    inner: FileSource
    name: str = "no_image_path"

    def pairs(self) -> list[Pair]:
        """The inner pairs."""
        return self.inner.pairs()

    def load_image(self, image_id: str) -> LoadedImage:
        """The inner image."""
        return self.inner.load_image(image_id)

    def file_sha256(self, image_id: str) -> str:
        """The inner hash."""
        return self.inner.file_sha256(image_id)


def fabricate_files(root: Path) -> Path:
    """``root/a/{0,1}.png`` and ``root/b/{0,1}.png``, distinct 40 x 40 images."""
    from PIL import Image

    for k, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for n in range(2):
            pixels = numpy_generator(0, "fabricate", name, n).integers(0, 256, (40, 40, 3))
            Image.fromarray(pixels.astype(np.uint8) // (k + 1)).save(root / name / f"{n}.png")
    return root
