# Devices: parsing, availability errors, the deterministic settings a run computes under and
# records, out-of-memory as one line naming forward_chunk; GPU runs where CUDA is present.
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from faceattr.devices import (
    DeviceOutOfMemoryError,
    check_device_text,
    device_session,
    device_settings,
    fitting_rows,
    is_out_of_memory,
    out_of_memory_message,
    resolve_device,
)
from faceattr.errors import InputError
from faceattr.experiments.executor import check_out_of_memory
from faceattr.experiments.run import prepare_run, run_protocol
from faceattr.falsification.engine import failed_record
from faceattr.models.base import VerificationModel
from faceattr.protocol import ProtocolError, load_protocol
from tests.helpers import pair, small_protocol

NO_CUDA = not torch.cuda.is_available()
NEEDS_CUDA = pytest.mark.skipif(NO_CUDA, reason=f"needs a CUDA device: torch "
                                f"{torch.__version__} sees none on this machine")
OOM_TEXT = "CUDA out of memory. Tried to allocate 2.00 GiB"


def _write(tmp_path: Path, text: str, name: str = "small") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _on(text: str, device: str) -> str:
    return text.replace("[execution]\n", f'[execution]\ndevice = "{device}"\n')


@pytest.mark.parametrize("text", ["cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_device_names_are_accepted(text: str) -> None:
    assert check_device_text(text, "--device") == text


@pytest.mark.parametrize("text", ["gpu", "CUDA", "cuda:", "cuda:x", "cuda:0 ", "", "tpu"])
def test_other_device_names_are_one_line_errors(text: str) -> None:
    with pytest.raises(InputError, match=r"^--device: device .* is not one of cpu, cuda"):
        check_device_text(text, "--device")


def test_the_protocol_device_is_checked_and_outside_the_scientific_hash(tmp_path: Path) -> None:
    plain = load_protocol(_write(tmp_path, small_protocol(), "plain"))
    explicit = load_protocol(_write(tmp_path, _on(small_protocol(), "cpu"), "explicit"))
    cuda = load_protocol(_write(tmp_path, _on(small_protocol(), "cuda:1"), "cuda"))
    assert (plain.execution.device, cuda.execution.device) == ("cpu", "cuda:1")
    assert plain.content_sha256 == explicit.content_sha256 == cuda.content_sha256
    with pytest.raises(ProtocolError, match=r"\[execution\]: device 'gpu' is not one of"):
        load_protocol(_write(tmp_path, _on(small_protocol(), "gpu"), "bad"))


def test_an_explicit_cpu_device_is_the_default_run(tmp_path: Path) -> None:
    plain = prepare_run(load_protocol(_write(tmp_path, small_protocol(), "a")), tmp_path)
    explicit = prepare_run(load_protocol(_write(tmp_path, _on(small_protocol(), "cpu"), "b")),
                           tmp_path)
    assert plain.identity == explicit.identity
    assert plain.root.name == explicit.root.name
    assert plain.identity.device == "cpu"


@pytest.mark.skipif(not NO_CUDA, reason="CUDA is present here: the error cannot be seen")
def test_cuda_without_cuda_is_one_line_naming_the_fix(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    from faceattr.cli import main

    with pytest.raises(InputError, match=r"^device 'cuda:0': torch .* sees no CUDA device .*"
                                         r"use --device cpu"):
        resolve_device("cuda:0")
    path = _write(tmp_path, small_protocol())
    code = main(["run", str(path), "--device", "cuda", "--quiet",
                 "--reports-dir", str(tmp_path / "reports")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0
    assert err.startswith("faceattr: error: device 'cuda': torch")
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())


def test_the_session_sets_the_deterministic_settings_and_restores_them() -> None:
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
              torch.backends.cuda.matmul.allow_tf32)
    model = _oom_model(max_rows=64)
    with device_session(model, "cpu", 8) as settings:
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.benchmark is False
        assert torch.backends.cuda.matmul.allow_tf32 is False
    assert settings == device_settings(torch.device("cpu"))
    assert settings.to_json()["deterministic_algorithms"] is True
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
            torch.backends.cuda.matmul.allow_tf32) == before


class _OomAbove(nn.Module):
    # a network that runs out of "device memory" above max_rows rows (grad_only: only when
    # autograd records, as a backward pass needs the activations)
    def __init__(self, inner: nn.Module, max_rows: int, grad_only: bool,
                 error: type[Exception]) -> None:
        super().__init__()
        self.inner = inner
        self.max_rows = max_rows
        self.grad_only = grad_only
        self.error = error

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > self.max_rows and (torch.is_grad_enabled() or not self.grad_only):
            raise self.error(OOM_TEXT)
        out: torch.Tensor = self.inner(x)
        return out


def _oom_model(max_rows: int, grad_only: bool = False,
               error: type[Exception] = torch.OutOfMemoryError) -> VerificationModel:
    from faceattr.models.synthetic_cnn import load_synthetic_model

    model = load_synthetic_model()
    return replace(model, network=_OomAbove(model.network, max_rows, grad_only, error).eval())


def oom_above_16(weights_path: Path | None) -> VerificationModel:
    """A protocol's model (``tests.test_devices:oom_above_16``): no forward above 16 rows."""
    del weights_path
    return _oom_model(16)


def oom_in_backward(weights_path: Path | None) -> VerificationModel:
    """No forward above 2 rows while autograd records (the attributions, target sanity)."""
    del weights_path
    return _oom_model(2, grad_only=True)


@pytest.mark.parametrize("error", [torch.OutOfMemoryError, RuntimeError],
                         ids=["OutOfMemoryError", "RuntimeError-out-of-memory"])
def test_out_of_memory_in_the_session_is_one_line_with_the_size_that_fits(
        error: type[Exception]) -> None:
    model = _oom_model(16, error=error)
    with pytest.raises(InputError) as caught, device_session(model, "cpu", 64):
        model.embed(torch.zeros((64, 3, 64, 64)))
    message = str(caught.value)
    assert "\n" not in message
    assert message == out_of_memory_message("cpu", 64, 16)
    assert "forward_chunk = 64; a forward of 16 rows fits: set forward_chunk = 16" in message


def test_other_errors_pass_through_the_session_unchanged() -> None:
    with pytest.raises(KeyError, match="not memory"), \
            device_session(_oom_model(16), "cpu", 64):
        raise KeyError("not memory")


def test_when_nothing_fits_the_error_says_so() -> None:
    def never(rows: int) -> None:
        raise torch.OutOfMemoryError(OOM_TEXT)

    assert fitting_rows(never, 64, torch.device("cpu")) is None
    assert "a forward of one image does not fit either" in out_of_memory_message("cpu", 64, None)
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_an_out_of_memory_pair_error_stops_the_run_instead_of_becoming_a_record() -> None:
    ok = failed_record(pair(0), "m", "saliency", "error:ValueError", "bad map", 0.5, "simple")
    check_out_of_memory([ok])  # a real per-pair error stays a record
    for status, reason in (("error:OutOfMemoryError", OOM_TEXT),
                           ("error:RuntimeError", "CUDA out of memory. Tried to allocate")):
        oom = failed_record(pair(1), "m", "saliency", status, reason, 0.5, "simple")
        with pytest.raises(DeviceOutOfMemoryError, match="pair p0001, method saliency"):
            check_out_of_memory([ok, oom])


@pytest.mark.slow
@pytest.mark.parametrize(("loader", "fits"), [("oom_above_16", 16), ("oom_in_backward", 32)],
                         ids=["clean-embeddings", "records-loop"])
def test_a_run_out_of_memory_is_one_line_naming_forward_chunk(tmp_path: Path, loader: str,
                                                              fits: int) -> None:
    text = small_protocol(methods=("saliency",)).replace(
        'name = "synthetic_cnn"', f'name = "tests.test_devices:{loader}"')
    with pytest.raises(InputError) as caught:
        run_protocol(load_protocol(_write(tmp_path, text)), tmp_path / "r", progress=False)
    assert str(caught.value) == out_of_memory_message("cpu", 64, fits)


def test_provenance_records_the_device_settings(tmp_path: Path) -> None:
    folder = run_protocol(load_protocol(_write(tmp_path, small_protocol(
        n_pairs=4, methods=("constant",)))), tmp_path / "r", progress=False)
    document = json.loads((folder.root / "provenance.json").read_text())
    assert document["device"] == "cpu"
    assert document["device_settings"] == device_settings(torch.device("cpu")).to_json()
    assert json.loads(folder.timing.read_text())["executor"] == "serial"


# --- [execution] memory_format (README "Engine forward: CPU speed-ups") ----------------------


def _channels_last(text: str) -> str:
    return text.replace("[execution]\n", '[execution]\nmemory_format = "channels_last"\n')


def test_channels_last_is_its_own_identity_and_equivalent_to_the_default(tmp_path: Path) -> None:
    from faceattr.experiments.golden import compare_golden, golden_failures, run_snapshot, snapshot

    text = small_protocol(n_pairs=12)
    plain = load_protocol(_write(tmp_path, text, "plain"))
    nhwc = load_protocol(_write(tmp_path, _channels_last(text), "nhwc"))
    assert plain.content_sha256 == nhwc.content_sha256  # the science is the same
    assert prepare_run(nhwc, tmp_path).identity.device == "cpu+channels_last"
    assert prepare_run(nhwc, tmp_path).root.name != prepare_run(plain, tmp_path).root.name
    base = run_snapshot(tmp_path / "plain.toml", tmp_path / "a", name="small")
    first = run_protocol(nhwc, tmp_path / "b", progress=False)
    second = run_protocol(load_protocol(tmp_path / "nhwc.toml"), tmp_path / "c", progress=False)
    for name in ("records.jsonl", "summary.json"):  # the same format repeats its bytes
        assert (first.root / name).read_bytes() == (second.root / name).read_bytes(), name
    diffs = compare_golden(base, snapshot(first.root, name="small"))
    assert golden_failures(diffs) == (), [str(d) for d in diffs]  # within the tolerance


def test_an_unknown_memory_format_is_a_one_line_error(tmp_path: Path) -> None:
    text = small_protocol().replace("[execution]\n", '[execution]\nmemory_format = "nhwc"\n')
    with pytest.raises(ProtocolError, match=r"memory_format.*one of 'contiguous', "
                                            r"'channels_last'"):
        load_protocol(_write(tmp_path, text, "bad"))


# --- on a GPU (skipped with the reason where CUDA is absent) ----------------------------------


@NEEDS_CUDA
@pytest.mark.gpu
def test_a_cuda_run_repeats_its_bytes_and_is_equivalent_to_the_cpu_run(tmp_path: Path) -> None:
    from faceattr.experiments.golden import compare_golden, golden_failures, run_snapshot

    text = small_protocol(n_pairs=12)
    cpu = run_snapshot(_write(tmp_path, text, "cpu"), tmp_path / "cpu", name="small")
    first = run_protocol(load_protocol(_write(tmp_path, _on(text, "cuda"), "g1")),
                         tmp_path / "g1", progress=False)
    second = run_protocol(load_protocol(_write(tmp_path, _on(text, "cuda"), "g2")),
                          tmp_path / "g2", progress=False)
    for name in ("records.jsonl", "summary.json"):
        assert (first.root / name).read_bytes() == (second.root / name).read_bytes(), name
    assert first.root.name != prepare_run(load_protocol(tmp_path / "cpu.toml"),
                                          tmp_path).root.name  # another identity
    from faceattr.experiments.golden import snapshot

    diffs = compare_golden(cpu, snapshot(first.root, name="small"))
    assert golden_failures(diffs) == (), [str(d) for d in diffs]


@NEEDS_CUDA
@pytest.mark.gpu
def test_the_model_and_the_settings_are_on_the_gpu(tmp_path: Path) -> None:
    prepared = prepare_run(load_protocol(_write(tmp_path, _on(small_protocol(), "cuda"))),
                           tmp_path)
    assert prepared.model.device.type == "cuda"
    assert prepared.identity.device.startswith("cuda (")
    with device_session(prepared.model, "cuda", 64) as settings:
        import os

        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert settings.accelerator == torch.cuda.get_device_name(0)
