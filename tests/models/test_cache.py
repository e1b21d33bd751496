from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from faceattr.models.cache import cache_dir, download_verified, extract_verified_member


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"


def test_download_verified_keeps_only_matching_bytes(tmp_path: Path) -> None:
    source = tmp_path / "artefact.tar.gz"
    source.write_bytes(b"payload")
    good = hashlib.sha256(b"payload").hexdigest()
    dest = tmp_path / "cache" / "artefact.tar.gz"
    assert download_verified(source.as_uri(), good, dest).read_bytes() == b"payload"
    dest.unlink()
    with pytest.raises(ValueError, match=r"sha256 mismatch for file:.*artefact\.tar\.gz: "
                       r"expected 0{64}, got [0-9a-f]{64}; the file was discarded"):
        download_verified(source.as_uri(), "0" * 64, dest)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_download_failure_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(OSError, match=r"download failed: file:.*missing\.tar\.gz"):
        download_verified((tmp_path / "missing.tar.gz").as_uri(), "0" * 64, tmp_path / "x")


def test_extract_verified_member_checks_the_member_hash(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("pkg/file.bin")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    good = hashlib.sha256(b"abc").hexdigest()
    out = extract_verified_member(archive, "pkg/file.bin", good, tmp_path / "out" / "file.bin")
    assert out.read_bytes() == b"abc"
    with pytest.raises(ValueError, match=r"sha256 mismatch for pkg/file\.bin in a\.tar\.gz"):
        extract_verified_member(archive, "pkg/file.bin", "1" * 64, tmp_path / "other.bin")
    with pytest.raises(ValueError, match=r"a\.tar\.gz has no member 'pkg/nope'"):
        extract_verified_member(archive, "pkg/nope", good, tmp_path / "nope.bin")
