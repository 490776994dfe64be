"""Find (or fetch with apt-get) the apt list files the datasets are built from."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from model_export.data.errors import DataError

SUITE = "bookworm"  # Debian 12; the suite whose main component we read
ARCH = "amd64"  # the Packages file read for metadata (arch:all packages are in it too)
MIRROR = "http://deb.debian.org/debian"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
_COMPRESSION = ("", ".lz4", ".xz", ".gz")  # preference order when several copies exist
_RELEASE_FIELDS = ("Origin", "Label", "Suite", "Version", "Codename", "Date")


@dataclass(frozen=True)
class ListFiles:
    """The input files of one preparation run."""

    english: Path  # Translation-en
    translations: dict[str, Path]  # lang -> Translation-<lang>
    packages: Path  # binary-<arch> Packages
    release: Path | None  # InRelease or Release of the suite, for the snapshot info


def _find(lists_dir: Path, stem: str) -> Path | None:
    """The file whose name ends with `stem` (apt prefixes the mirror path), any compression."""
    pattern = re.compile(rf"(^|_){re.escape(stem)}(\.lz4|\.xz|\.gz)?$")
    hits = [p for p in sorted(lists_dir.iterdir()) if p.is_file() and pattern.search(p.name)]
    hits.sort(key=lambda p: _COMPRESSION.index(p.suffix if p.suffix in _COMPRESSION else ""))
    return hits[0] if hits else None


def locate(lists_dir: Path, languages: tuple[str, ...], *, suite: str = SUITE) -> ListFiles:
    """Find every needed list in lists_dir; raise DataError naming the first one missing."""
    if not lists_dir.is_dir():
        raise DataError(f"apt lists folder {lists_dir} does not exist")

    def need(stem: str) -> Path:
        path = _find(lists_dir, stem)
        if path is None:
            raise DataError(f"no apt list matching *{stem}[.lz4|.xz|.gz] in {lists_dir}")
        return path

    i18n = f"dists_{suite}_main_i18n_Translation-"
    return ListFiles(
        english=need(i18n + "en"),
        translations={lang: need(i18n + lang) for lang in languages},
        packages=need(f"dists_{suite}_main_binary-{ARCH}_Packages"),
        release=_find(lists_dir, f"dists_{suite}_InRelease")
        or _find(lists_dir, f"dists_{suite}_Release"),
    )


def release_info(path: Path | None) -> dict[str, str]:
    """The snapshot header (Suite, Version, Date, ...) of an InRelease/Release file, if known."""
    if path is None:
        return {}
    info: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        name, sep, value = line.partition(":")
        if sep and name in _RELEASE_FIELDS:
            info[name] = value.strip()
    return info


def private_apt_dir(dest: Path) -> Path:
    """Where our sources.list and apt cache go: beside the lists folder, not inside it."""
    return dest.with_name(dest.name + ".apt")


def apt_command(dest: Path, languages: tuple[str, ...], *, suite: str = SUITE) -> list[str]:
    """The apt-get call that fetches exactly our lists into dest, whatever the host's sources.

    A private sources.list, architecture and cache keep the result independent of the machine
    (an Ubuntu or arm64 host fetches the same bookworm amd64 files); nothing system-wide is
    written. They live in the sibling <dest>.apt/, because apt deletes unknown files from
    its lists folder.
    """
    apt_dir = private_apt_dir(dest)
    signed = f"[signed-by={KEYRING}] " if KEYRING.exists() else ""
    (apt_dir / "sources.list").write_text(f"deb {signed}{MIRROR} {suite} main\n", encoding="utf-8")
    langs = ",".join(("en", *languages))
    return [
        "apt-get", "update",
        "-o", f"Acquire::Languages={langs}",
        "-o", f"Dir::State::Lists={dest}",
        "-o", f"Dir::Etc::SourceList={apt_dir / 'sources.list'}",
        "-o", "Dir::Etc::SourceParts=/nonexistent",
        "-o", f"Dir::Cache={apt_dir / 'cache'}",
        "-o", f"APT::Architecture={ARCH}",
        "-o", f"APT::Architectures={ARCH}",
    ]  # fmt: skip


def fetch_lists(
    dest: Path,
    languages: tuple[str, ...],
    *,
    suite: str = SUITE,
    log: Callable[[str], None] = print,
) -> Path:
    """Run apt-get update into dest (printing its progress) and return dest."""
    if shutil.which("apt-get") is None:
        raise DataError("apt-get not found: run on a Debian/Ubuntu machine or pass --lists-dir")
    dest = dest.resolve()  # apt reads a relative Dir::Etc::SourceList under /etc/apt
    (dest / "partial").mkdir(parents=True, exist_ok=True)
    (private_apt_dir(dest) / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    cmd = apt_command(dest, languages, suite=suite)
    log(f"fetching Debian {suite} lists into {dest}: {' '.join(cmd)}")
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log(line.rstrip())
    if proc.returncode != 0:
        raise DataError(f"apt-get update failed with exit code {proc.returncode}; see output above")
    return dest
