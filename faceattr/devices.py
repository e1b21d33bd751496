"""Where a run computes: device parsing, deterministic torch settings, out-of-memory errors.

A run names its device in ``[execution] device`` or with ``--device`` (``cpu``, ``cuda``,
``cuda:N`` or ``mps``). The device is outside the protocol's scientific hash (the science is
the same on any device) but inside the run's identity (:mod:`faceattr.experiments.identity`):
a CUDA run of a protocol gets another folder than its CPU run, because float32 kernels on
another device sum in another order and the last bits of the records move (the cross-machine
tolerance of :mod:`faceattr.stats.tolerance` says how far). The identity names the device's
*kind* and model (``"cuda (NVIDIA H100 80GB HBM3)"``), not its index: two cards of one model
give the same bytes.

While a run computes, :func:`device_session` sets and records the settings that make one
device repeat itself bit for bit: ``torch.use_deterministic_algorithms(True)``,
``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (cuBLAS's reproducible workspace; set before the first
CUDA call), cuDNN's benchmark mode off and its deterministic algorithms on, and TF32 off (a
TF32 matmul keeps 10 mantissa bits: far beyond the cross-machine tolerance). On exit the
previous settings come back. An out-of-memory error escaping the session becomes one line
naming ``[execution] forward_chunk`` and the largest forward that fits (probed by halving).

References
----------
PyTorch, "Reproducibility" (docs/source/notes/randomness.rst) and
``torch.use_deterministic_algorithms``; NVIDIA, cuBLAS "Results reproducibility".
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch

from faceattr.errors import InputError

__all__ = [
    "CUBLAS_WORKSPACE",
    "DeviceOutOfMemoryError",
    "DeviceSettings",
    "apply_deterministic_settings",
    "check_device_text",
    "device_session",
    "device_settings",
    "fitting_rows",
    "identity_device",
    "is_out_of_memory",
    "is_out_of_memory_status",
    "out_of_memory_message",
    "resolve_device",
]

CUBLAS_WORKSPACE = ":4096:8"
"""``CUBLAS_WORKSPACE_CONFIG`` for reproducible cuBLAS results (NVIDIA's documented value)."""

_DEVICE_TEXT = re.compile(r"cpu|mps|cuda(:[0-9]+)?")
_OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory")


class DeviceOutOfMemoryError(RuntimeError):
    """A forward ran out of device memory (raised to leave the records loop; the session
    turns it into the one-line :class:`~faceattr.errors.InputError`)."""


def check_device_text(text: str, where: str) -> str:
    """``text`` if it names a device (``cpu``, ``cuda``, ``cuda:N``, ``mps``), else a one-line
    error at ``where``. Only the syntax: whether the device exists is :func:`resolve_device`."""
    if not isinstance(text, str) or _DEVICE_TEXT.fullmatch(text) is None:
        raise InputError(f"{where}: device {text!r} is not one of cpu, cuda, cuda:N, mps; "
                         "e.g. device = \"cuda:0\"")
    return text


def resolve_device(text: str) -> torch.device:
    """The torch device ``text`` names, checked to exist on this machine.

    Raises
    ------
    faceattr.errors.InputError
        One line naming the device and the fix (``--device cpu`` or a torch build for it).
    """
    check_device_text(text, "--device")
    device = torch.device(text)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {text!r}: torch {torch.__version__} sees no CUDA device "
                             "(a CPU-only build, or no driver); use --device cpu, or install a "
                             "CUDA build of torch on a machine with an NVIDIA GPU")
        count = torch.cuda.device_count()
        index = 0 if device.index is None else device.index
        if index >= count:
            raise InputError(f"device {text!r}: this machine has {count} CUDA device(s), "
                             f"cuda:0 to cuda:{count - 1}; pick one of them")
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        return torch.device("cuda", index)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {text!r}: torch {torch.__version__} sees no Apple MPS "
                         "device; use --device cpu")
    return device


def identity_device(device: torch.device) -> str:
    """The device as a run's identity names it: its kind and model, never its index."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


@dataclass(frozen=True, slots=True)
class DeviceSettings:
    """The torch settings a run computed under (recorded in ``provenance.json``)."""

    device: str
    accelerator: str | None
    deterministic_algorithms: bool
    cublas_workspace_config: str | None
    cudnn_benchmark: bool
    cudnn_deterministic: bool
    tf32_matmul: bool
    tf32_cudnn: bool

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _snapshot() -> tuple[Any, ...]:
    return (torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)


def _restore(state: tuple[Any, ...]) -> None:
    enabled, warn_only, benchmark, deterministic, tf32_matmul, tf32_cudnn = state
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
    torch.backends.cudnn.benchmark = benchmark
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cuda.matmul.allow_tf32 = tf32_matmul
    torch.backends.cudnn.allow_tf32 = tf32_cudnn


def device_settings(device: torch.device) -> DeviceSettings:
    """The settings :func:`device_session` computes under on ``device`` (what a run records
    in its provenance before it computes)."""
    cuda = device.type == "cuda"
    return DeviceSettings(
        device=str(device), accelerator=torch.cuda.get_device_name(device) if cuda else None,
        deterministic_algorithms=True,
        cublas_workspace_config=os.environ.get("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        if cuda else None,
        cudnn_benchmark=False, cudnn_deterministic=True, tf32_matmul=False, tf32_cudnn=False)


def _current(device: torch.device) -> DeviceSettings:
    cuda = device.type == "cuda"
    return DeviceSettings(
        device=str(device), accelerator=torch.cuda.get_device_name(device) if cuda else None,
        deterministic_algorithms=torch.are_deterministic_algorithms_enabled(),
        cublas_workspace_config=os.environ.get("CUBLAS_WORKSPACE_CONFIG") if cuda else None,
        cudnn_benchmark=torch.backends.cudnn.benchmark,
        cudnn_deterministic=torch.backends.cudnn.deterministic,
        tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
        tf32_cudnn=torch.backends.cudnn.allow_tf32)


def apply_deterministic_settings(device: torch.device) -> DeviceSettings:
    """Set :func:`device_settings` process-wide and return them, as read back."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    settings = _current(device)
    if settings != device_settings(device):
        raise RuntimeError(f"torch did not take the deterministic settings: {settings}")
    return settings


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocator's out-of-memory error (CUDA, MPS or the CPU's)."""
    if isinstance(exc, torch.OutOfMemoryError | DeviceOutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in _OOM_MARKERS)


def is_out_of_memory_status(status: str, reason: str | None) -> bool:
    """Whether a per-pair record's ``error:<type>`` status came from an out-of-memory error
    (the records loop retries a failing chunk pair by pair and records what still fails; an
    out-of-memory error is a setting to change, not a property of the pair)."""
    if not status.startswith("error:"):
        return False
    return status in ("error:OutOfMemoryError", "error:MemoryError") or (
        reason is not None and any(m in reason.lower() for m in _OOM_MARKERS))


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def fitting_rows(forward: Callable[[int], object], start_rows: int,
                 device: torch.device) -> int | None:
    """The largest ``start_rows / 2**j`` (j >= 1) for which ``forward(rows)`` does not run out
    of memory, or None when not even one row fits."""
    rows = start_rows // 2
    while rows >= 1:
        try:
            forward(rows)
            return rows
        except Exception as exc:  # only an out-of-memory error is a probe result
            if not is_out_of_memory(exc):
                raise
            _free(device)
        rows //= 2
    return None


def out_of_memory_message(device: str, forward_chunk: int, fits: int | None) -> str:
    """The one-line error of an out-of-memory run."""
    if fits is None:
        return (f"out of memory on {device} with [execution] forward_chunk = {forward_chunk}, "
                "and a forward of one image does not fit either; free the device or use "
                "--device cpu")
    return (f"out of memory on {device} with [execution] forward_chunk = {forward_chunk}; a "
            f"forward of {fits} rows fits: set forward_chunk = {fits} in the protocol's "
            "[execution] table (and no method's internal_batch_size above it)")


def _probe(model: Any) -> Callable[[int], object]:
    from faceattr.models.base import embed_batched

    size = int(model.input_size_px)

    def forward(rows: int) -> object:
        return embed_batched(model, torch.zeros((rows, 3, size, size)), chunk_size=rows)

    return forward


@contextmanager
def device_session(model: Any, device_text: str, forward_chunk: int
                   ) -> Iterator[DeviceSettings]:
    """Compute under the deterministic settings on ``device_text``; restore them after.

    Parameters
    ----------
    model : faceattr.models.base.VerificationModel
        The run's model, already on the device (its forward is the out-of-memory probe).
    device_text : str
        The run's device (``[execution] device`` or ``--device``).
    forward_chunk : int
        ``[execution] forward_chunk`` (named in the out-of-memory error).

    Raises
    ------
    faceattr.errors.InputError
        An out-of-memory error in the body, as one line naming ``forward_chunk`` and the
        largest forward that fits.
    """
    device = resolve_device(device_text)
    state = _snapshot()
    try:
        settings = apply_deterministic_settings(device)
        try:
            yield settings
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            _free(device)
            fits = fitting_rows(_probe(model), forward_chunk, device)
            raise InputError(out_of_memory_message(str(device), forward_chunk, fits)) from None
    finally:
        _restore(state)
