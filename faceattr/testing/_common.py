"""What every component check shares: named failures, the check wrapper, the global RNG
snapshot and the check inputs (deterministic images and the tiny model)."""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from faceattr.models.base import VerificationModel
from faceattr.rng import numpy_generator, torch_generator

__all__ = ["Check", "CheckFailure", "CheckFn", "GlobalRngState", "changed_streams", "check_images",
           "fail", "global_rng_state", "named_check", "one_line", "run_checks", "select",
           "tiny_model"]

CheckFn = Callable[[], None]
"""A check bound to its component: raises :class:`AssertionError` naming itself, or returns."""

Check = tuple[str, CheckFn]
"""``(check_name, check)`` as the ``*_checks`` generators yield them."""

_MESSAGE_CHARS = 400


def one_line(text: str, limit: int = _MESSAGE_CHARS) -> str:
    """``text`` on one line (whitespace runs collapsed), shortened to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


class CheckFailure(AssertionError):
    """A component failed a check: ``"<check> failed for <component>: <reason and fix>"``.

    An :class:`AssertionError`, so pytest reports it as a failed test; every check raises this
    (a component's own exceptions, its own ``assert`` included, are wrapped in it).
    """


def fail(check: str, subject: str, reason: str) -> NoReturn:
    """Raise the one-line :class:`CheckFailure` of a failed check."""
    raise CheckFailure(one_line(f"{check} failed for {subject}: {reason}"))


def named_check(check: str, subject: Callable[[], str], body: Callable[[], None]) -> CheckFn:
    """Wrap ``body`` as the check ``check``: anything it raises becomes the check's failure.

    A :class:`CheckFailure` from :func:`fail` passes through; any other exception (the
    component raised — its own ``AssertionError`` too — or could not be built) becomes a
    ``CheckFailure`` naming the check and the exception, chained to it (``raise ... from``) so
    the traceback is kept.
    """
    def run() -> None:
        try:
            body()
        except CheckFailure:
            raise
        except Exception as exc:  # a component's own error fails the check, by name
            raise CheckFailure(one_line(
                f"{check} failed for {subject()}: raised {type(exc).__name__}: "
                f"{one_line(str(exc), 200)}")) from exc

    run.__name__ = run.__qualname__ = f"check_{check}"
    run.__doc__ = f"The ``{check}`` check."
    return run


def select(available: Sequence[Check], checks: Collection[str] | None, known: Sequence[str],
           what: str) -> list[Check]:
    """The checks named in ``checks`` (all of ``available`` when ``None``), in order.

    Raises
    ------
    ValueError
        A name that is not a check, or one that does not apply to this component.
    """
    if checks is None:
        return list(available)
    unknown = sorted(set(checks) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} check {unknown[0]!r}; known: {', '.join(known)}")
    names = {name for name, _ in available}
    skipped = sorted(set(checks) - names)
    if skipped:
        raise ValueError(f"{what} check {skipped[0]!r} does not apply to this component "
                         f"(applicable: {', '.join(n for n, _ in available)})")
    return [(name, fn) for name, fn in available if name in checks]


def run_checks(checks: Iterator[Check] | Sequence[Check]) -> None:
    """Run checks in order; the first failure propagates (sklearn's ``check_estimator``)."""
    for _name, check in checks:
        check()


@dataclass(frozen=True, slots=True, eq=False)
class GlobalRngState:
    """The three global random states a component must leave untouched."""

    torch_state: torch.Tensor
    numpy_state: tuple[Any, ...]
    python_state: tuple[Any, ...]


def global_rng_state() -> GlobalRngState:
    """Snapshot ``torch.random``, the legacy ``np.random`` and Python's ``random`` states."""
    # reading the legacy global state is the point here (it is never drawn from or seeded)
    numpy_state = np.random.get_state(legacy=True)  # noqa: NPY002
    assert isinstance(numpy_state, tuple)
    return GlobalRngState(torch_state=torch.random.get_rng_state(),
                          numpy_state=numpy_state, python_state=random.getstate())


def changed_streams(before: GlobalRngState, after: GlobalRngState) -> list[str]:
    """Names of the global streams whose state differs between two snapshots."""
    changed = []
    if not torch.equal(before.torch_state, after.torch_state):
        changed.append("torch (torch.random / torch.rand*)")
    if len(before.numpy_state) != len(after.numpy_state) or not all(
            np.array_equal(a, b) for a, b in zip(before.numpy_state, after.numpy_state,
                                                 strict=True)):
        changed.append("numpy (np.random.*)")
    if before.python_state != after.python_state:
        changed.append("python (random.*)")
    return changed


def check_images(n: int, side: int, key: str) -> NDArray[np.float32]:
    """``n`` deterministic float32 RGB images (n, 3, side, side) in [0, 1], distinct per row.

    Uniform texture blended with its channel mean (as the attribution tests' inputs), so maps
    are not flat and the three channels are correlated like a photo's. Drawn from the stream
    ``(11, "faceattr.testing", key, side)``: the same images in any process.
    """
    rng = numpy_generator(11, "faceattr.testing", key, side)
    images = rng.random((n, 3, side, side)).astype(np.float32)
    mixed: NDArray[np.float32] = np.clip(
        0.5 * images + 0.5 * images.mean(axis=1, keepdims=True), 0.0, 1.0).astype(np.float32)
    return mixed


def tiny_model(seed: int = 0) -> VerificationModel:
    """A small random conv net (16 x 16 inputs, 16-D embeddings), the default check model.

    Initialised from the explicit generator ``(seed, "tiny_model")`` (never the global RNG), so
    it is the same network in every process; it is the attribution tests' tiny model.
    """
    with torch.device("meta"):
        network = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                                nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
                                nn.Flatten(), nn.Linear(8 * 4 * 4, 16))
    network = network.to_empty(device="cpu")
    generator = torch_generator(seed, "tiny_model")
    for parameter in network.parameters():
        nn.init.normal_(parameter, std=0.3, generator=generator)
    return VerificationModel(name="tiny", network=network.eval(), input_size_px=16,
                             pixel_mean=0.0, pixel_scale=255.0, weights_sha256="0" * 64)
