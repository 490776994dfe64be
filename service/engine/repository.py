"""Load every bundle of a model repository; a bad bundle is refused, the others serve."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from service import bundle as contract
from service.bundle import BundleError, BundleManifest
from service.engine.runtime import OnnxSeq2Seq, RuntimeOptions
from service.engine.tokenizer import Tokenizer, open_tokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedBundle:
    manifest: BundleManifest
    path: Path  # the bundle folder
    runtime: OnnxSeq2Seq
    tokenizer: Tokenizer

    @property
    def key(self) -> tuple[str, int]:
        return (self.manifest.name, self.manifest.version)


@dataclass(frozen=True)
class RepositoryScan:
    loaded: list[LoadedBundle] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # bundle folder -> why


def load_bundle(bundle_dir: Path, options: RuntimeOptions) -> LoadedBundle:
    """Check manifest, checksums and graph contract, then open the sessions."""
    manifest = contract.read_manifest(bundle_dir)
    contract.verify_checksums(bundle_dir, manifest)
    tokenizer = load_tokenizer(bundle_dir, manifest)
    runtime = OnnxSeq2Seq(bundle_dir, manifest, options)
    return LoadedBundle(manifest=manifest, path=bundle_dir, runtime=runtime, tokenizer=tokenizer)


def load_tokenizer(bundle_dir: Path, manifest: BundleManifest) -> Tokenizer:
    """The bundle's tokenizer, checked against the manifest's vocabulary size."""
    spec = manifest.tokenizer
    # the file a vocabulary problem is blamed on: the one that maps pieces to ids
    tokenizer_path = bundle_dir / (spec.vocab or spec.file)
    try:
        tokenizer = open_tokenizer(bundle_dir, manifest)
    except Exception as exc:  # tokenizers / sentencepiece raise their own exception types
        names = ", ".join(str(bundle_dir / f) for f in spec.files)
        raise BundleError(f"{names}: cannot load tokenizer: {exc}") from exc
    if tokenizer.vocab_size != manifest.vocab_size:
        raise BundleError(
            f"{tokenizer_path}: vocabulary of {tokenizer.vocab_size} tokens, "
            f"but {contract.MANIFEST_FILE} says {manifest.vocab_size}"
        )
    return tokenizer


def bundle_dirs(repository: Path) -> list[Path]:
    """Every `<name>/<version>/` folder, in name then numeric version order."""
    if not repository.is_dir():
        return []
    found = []
    for model_dir in sorted(p for p in repository.iterdir() if p.is_dir()):
        if model_dir.name.startswith("."):
            continue
        versions = [p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
        found.extend(sorted(versions, key=lambda p: int(p.name)))
    return found


def scan_repository(repository: Path, options: RuntimeOptions) -> RepositoryScan:
    scan = RepositoryScan()
    if not repository.is_dir():
        scan.refused[str(repository)] = "model repository folder does not exist"
        return scan
    for bundle_dir in bundle_dirs(repository):
        try:
            loaded = load_bundle(bundle_dir, options)
        except BundleError as exc:
            log.error("refused bundle %s: %s", bundle_dir, exc)
            scan.refused[str(bundle_dir)] = str(exc)
            continue
        log.info(
            "loaded %s v%d (%s) on %s",
            loaded.manifest.name,
            loaded.manifest.version,
            loaded.manifest.task,
            loaded.runtime.provider,
        )
        scan.loaded.append(loaded)
    return scan


Fingerprint = tuple[tuple[str, int, int], ...]  # (file name, size in bytes, mtime in ns)


def bundle_fingerprint(bundle_dir: Path) -> Fingerprint:
    """A cheap stamp of a bundle folder's files: it changes when any file is written.

    A changed stamp only triggers a full check (manifest, sha256 of every file); whether
    a bundle really changed is decided by its checksums, never by this stamp alone.
    """
    stamps = []
    try:
        entries = sorted(bundle_dir.iterdir())
    except OSError:
        return ()
    for path in entries:
        try:
            stat = path.stat()
        except OSError:
            continue  # removed while we looked; the next poll sees the new state
        if path.is_file():
            stamps.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(stamps)
