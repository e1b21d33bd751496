"""The checks every verification model passes, built-in or a user's (:func:`check_model`).

A model is what every stage uses: a :class:`~faceattr.models.base.VerificationModel` taking
float32 RGB in [0, 1] at ``input_size_px`` and returning L2-normalised embeddings, through which
the verification score is differentiable (PITFALLS.md #5, #16).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from functools import cached_property

import torch

from faceattr.attribution.target import target_sanity
from faceattr.models.base import VerificationModel, verification_score
from faceattr.testing._common import (
    Check,
    CheckFailure,
    check_images,
    fail,
    named_check,
    run_checks,
    select,
)
from faceattr.testing.tolerances import ATOL_EMBEDDING_BATCH, GRAD_NORM_MIN, atol_unit_norm

__all__ = ["MODEL_CHECKS", "N_CHECK_IMAGES", "check_model", "model_checks"]

MODEL_CHECKS: tuple[str, ...] = ("input_range", "embedding_normalised", "input_gradient",
                                 "input_dependence", "batch_invariance")
"""Every model check, in the order :func:`model_checks` yields them."""

N_CHECK_IMAGES: int = 4
"""Images per check batch."""


@dataclass
class _ModelContext:
    """The model and its check inputs, built on first use."""

    ref: VerificationModel | str
    subject: str = field(init=False)

    def __post_init__(self) -> None:
        self.subject = (f"model {self.ref!r}" if isinstance(self.ref, str)
                        else f"model {getattr(self.ref, 'name', type(self.ref).__name__)!r}")

    @cached_property
    def model(self) -> VerificationModel:
        """The model under check."""
        if isinstance(self.ref, str):
            from faceattr.models.loading import load_model

            return load_model(self.ref)
        return self.ref

    @cached_property
    def images(self) -> torch.Tensor:
        """(2 N, 3, S, S) float32 images in [0, 1]: N probes, then N partners."""
        side = self.model.input_size_px
        if isinstance(side, bool) or not isinstance(side, int) or side < 1:
            raise TypeError(f"input_size_px must be a positive int, got {side!r}")
        return torch.from_numpy(check_images(2 * N_CHECK_IMAGES, side, "model-inputs"))

    def embed(self, check: str, images: torch.Tensor) -> torch.Tensor:
        """``model.embed(images)`` without gradients, checked to be a finite (n, D) tensor."""
        with torch.no_grad():
            out = self.model.embed(images)
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != images.shape[0]:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            fail(check, self.subject, f"embed returned {shape} for {images.shape[0]} images, "
                 "expected an (N, D) tensor")
        if not out.is_floating_point() or not torch.isfinite(out).all():
            fail(check, self.subject, f"embed returned non-finite or non-float values "
                 f"({out.dtype}) for images in [0, 1]")
        return out


def _input_range(ctx: _ModelContext) -> None:
    n, side = N_CHECK_IMAGES, ctx.model.input_size_px
    probes = ctx.images[:n]
    extremes = torch.stack([torch.zeros(3, side, side), torch.ones(3, side, side)])
    for what, images in (("float32 images in [0, 1]", probes),
                         ("an all-black and an all-white image", extremes)):
        try:
            ctx.embed("input_range", images)
        except CheckFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - the model refused valid input: the failure
            fail("input_range", ctx.subject, f"embed refused {what} of shape "
                 f"{tuple(images.shape)} (input_size_px = {side}): {type(exc).__name__}: {exc}; "
                 "take (N, 3, input_size_px, input_size_px) RGB in [0, 1] and do the model's "
                 "own preprocessing inside")


def _embedding_normalised(ctx: _ModelContext) -> None:
    emb = ctx.embed("embedding_normalised", ctx.images[:N_CHECK_IMAGES])
    tol = atol_unit_norm(int(emb.shape[1]), emb.dtype)
    norms = emb.double().norm(dim=1)
    worst = float((norms - 1.0).abs().max())
    if not worst <= tol:
        fail("embedding_normalised", ctx.subject, f"embedding norms are "
             f"{[round(float(v), 6) for v in norms]}, not 1 (|norm - 1| = {worst:.3g} > "
             f"{tol:.3g} = D x eps); embed must return L2-normalised embeddings")


def _input_gradient(ctx: _ModelContext) -> None:
    n = N_CHECK_IMAGES
    partners = ctx.embed("input_gradient", ctx.images[n:]).detach()
    probes = ctx.images[:n].clone().requires_grad_(True)
    score = verification_score(ctx.model.embed(probes), partners)
    grad = (torch.autograd.grad(score.sum(), probes, allow_unused=True)[0]
            if score.requires_grad else None)
    if grad is None:
        fail("input_gradient", ctx.subject, "the verification score has no gradient path to "
             "the input (a detach, .numpy() or no_grad inside the model); gradient methods "
             "need embed to be differentiable")
    checks = target_sanity(ctx.model, ctx.images[:n], partners, grad_norm_min=GRAD_NORM_MIN)
    bad = [(i, c.grad_norm) for i, c in enumerate(checks) if not c.grad_norm >= GRAD_NORM_MIN]
    if bad:
        fail("input_gradient", ctx.subject, f"the input gradient of the verification score is "
             f"zero, tiny or non-finite for image(s) {[i for i, _ in bad]} (L2 norm "
             f"{max(g for _, g in bad):.3g} < {GRAD_NORM_MIN:g}); the score must depend "
             "differentiably on the probe")


def _input_dependence(ctx: _ModelContext) -> None:
    emb = ctx.embed("input_dependence", ctx.images[:N_CHECK_IMAGES]).double()
    gaps = (emb[:, None, :] - emb[None, :, :]).abs().amax(dim=2)
    gaps.fill_diagonal_(float("inf"))
    closest = float(gaps.min())
    if not closest > ATOL_EMBEDDING_BATCH:
        i, j = divmod(int(gaps.argmin()), N_CHECK_IMAGES)
        fail("input_dependence", ctx.subject, f"images {i} and {j} differ but their embeddings "
             f"agree within {closest:.3g} (<= {ATOL_EMBEDDING_BATCH:g}): the output does not "
             "depend on the input")


def _batch_invariance(ctx: _ModelContext) -> None:
    images = ctx.images[:N_CHECK_IMAGES]
    together = ctx.embed("batch_invariance", images).double()
    again = ctx.embed("batch_invariance", images).double()
    repeat = float((together - again).abs().max())
    if not repeat <= ATOL_EMBEDDING_BATCH:
        fail("batch_invariance", ctx.subject, f"embedding the same batch twice differs by "
             f"{repeat:.3g} (> {ATOL_EMBEDDING_BATCH:g}); keep the network in eval mode (no "
             "dropout, no batch statistics)")
    for i in range(N_CHECK_IMAGES):
        alone = ctx.embed("batch_invariance", images[i:i + 1]).double()
        error = float((alone[0] - together[i]).abs().max())
        if not error <= ATOL_EMBEDDING_BATCH:
            fail("batch_invariance", ctx.subject, f"image {i} embedded alone and inside a batch "
                 f"of {N_CHECK_IMAGES} differs by {error:.3g} (> {ATOL_EMBEDDING_BATCH:g}); an "
                 "image's embedding must not depend on the rest of its batch (eval-mode "
                 "BatchNorm, no batch-wide normalisation)")


def model_checks(model: VerificationModel | str) -> Iterator[Check]:
    """Yield ``(check_name, check)`` for every model check (see :func:`check_model`).

    Parameters
    ----------
    model : VerificationModel or str
        The model, or a model name / loader import path
        (:func:`faceattr.models.loading.load_model`, loaded on the first check).

    Yields
    ------
    tuple of (str, callable)
        The check's name (one of :data:`MODEL_CHECKS`) and a function of no arguments that
        raises a one-line :class:`CheckFailure` (an ``AssertionError``) naming the check.
    """
    ctx = _ModelContext(model)
    bodies = {"input_range": lambda: _input_range(ctx),
              "embedding_normalised": lambda: _embedding_normalised(ctx),
              "input_gradient": lambda: _input_gradient(ctx),
              "input_dependence": lambda: _input_dependence(ctx),
              "batch_invariance": lambda: _batch_invariance(ctx)}
    for name in MODEL_CHECKS:
        yield name, named_check(name, lambda: ctx.subject, bodies[name])


def check_model(model: VerificationModel | str, *, checks: Collection[str] | None = None
                ) -> None:
    """Run the model checks; the first failure raises.

    - ``input_range``: ``embed`` takes (N, 3, S, S) float32 RGB in [0, 1] at ``input_size_px``
      (textured, all-black and all-white images) and returns finite (N, D) floats;
    - ``embedding_normalised``: every embedding has L2 norm 1 within ``D x eps(dtype)``;
    - ``input_gradient``: the verification score has a gradient w.r.t. the probe, of L2 norm
      ``>= GRAD_NORM_MIN`` for every image;
    - ``input_dependence``: four different images give four different embeddings (by more
      than ``ATOL_EMBEDDING_BATCH``);
    - ``batch_invariance``: an image embedded alone, inside a batch of four, or twice, gives
      the same embedding within ``ATOL_EMBEDDING_BATCH``.

    Parameters
    ----------
    model : VerificationModel or str
        See :func:`model_checks`.
    checks : collection of str, optional
        Run only these (names from :data:`MODEL_CHECKS`).

    Raises
    ------
    faceattr.testing.CheckFailure
        One line: ``"<check> failed for model '<name>': <reason and fix>"``.
    ValueError
        ``checks`` names an unknown check.
    """
    run_checks(select(list(model_checks(model)), checks, MODEL_CHECKS, "model"))

