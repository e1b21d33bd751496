"""Reference inputs ("baselines") for path and perturbation methods, one per probe.

Every baseline is a function of its own probe only, so a method's map for a pair never depends on
which other pairs share its batch (batch invariance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch

from faceattr.params import param

__all__ = ["BASELINES", "BaselineKind", "BaselineParams", "make_baseline"]

BaselineKind = Literal["black", "blur", "mean"]
BASELINES: tuple[str, ...] = get_args(BaselineKind)


def _gaussian_blur(images: torch.Tensor, sigma_px: float) -> torch.Tensor:
    radius = max(1, round(3.0 * sigma_px))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-0.5 * (offsets / sigma_px) ** 2)
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    # reflect padding needs radius < side; replicate works for any radius
    out = torch.nn.functional.pad(images, (radius, radius, 0, 0), mode="replicate")
    out = torch.nn.functional.conv2d(out, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1),
                                     groups=channels)
    out = torch.nn.functional.pad(out, (0, 0, radius, radius), mode="replicate")
    return torch.nn.functional.conv2d(out, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1),
                                      groups=channels)


def make_baseline(probes: torch.Tensor, kind: BaselineKind, *, blur_sigma_px: float
                  ) -> torch.Tensor:
    """Return the baseline of each probe, same shape (N, 3, H, W) and dtype.

    Parameters
    ----------
    probes : torch.Tensor
        (N, 3, H, W) images in [0, 1].
    kind : {"black", "blur", "mean"}
        ``"black"``: all zeros. ``"blur"``: the probe under a Gaussian blur of ``blur_sigma_px``
        (replicate padding), as in Sturmfels et al. 2020, "Visualizing the Impact of Feature
        Attribution Baselines", Distill. ``"mean"``: a uniform image of the probe's own
        per-channel mean colour. (A *data-set* mean needs statistics the attribution batch does
        not carry; the per-probe mean keeps maps independent of batch composition.)
    blur_sigma_px : float
        Standard deviation of the blur in pixels (used by ``"blur"`` only).
    """
    probes = probes.detach()
    if kind == "black":
        return torch.zeros_like(probes)
    if kind == "blur":
        return _gaussian_blur(probes, blur_sigma_px)
    if kind == "mean":
        return probes.mean(dim=(2, 3), keepdim=True).expand_as(probes).clone()
    raise ValueError(f"unknown baseline {kind!r}; expected one of {BASELINES}")


@dataclass(frozen=True, kw_only=True)
class BaselineParams:
    """The reference input of path and perturbation methods (see :func:`make_baseline`)."""

    baseline: BaselineKind = param(
        "black", doc="reference input: all zeros, the blurred probe or the probe's mean colour")
    blur_sigma_px: float = param(4.0, minimum=0.1, maximum=64.0, unit="px",
                                 doc="standard deviation of the 'blur' baseline")

    def make_baselines(self, probes: torch.Tensor) -> torch.Tensor:
        """The declared baseline of each probe (:func:`make_baseline`)."""
        return make_baseline(probes, self.baseline, blur_sigma_px=self.blur_sigma_px)

