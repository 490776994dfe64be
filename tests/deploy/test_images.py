"""The container images: hadolint-clean, non-root, and installing exactly the serving deps."""

from __future__ import annotations

import fnmatch
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from service.settings import Settings
from tests.deploy.conftest import DEPLOY, DOCKER, ROOT, tool

tomllib = pytest.importorskip("tomllib")

DOCKERFILES = sorted(p for p in DEPLOY.rglob("Dockerfile*") if p.is_file())
VARIANTS = {"gpu": "onnxruntime-gpu", "cpu": "onnxruntime"}  # image -> its onnxruntime wheel
TORCH = re.compile(r"\btorch\b", re.I)


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [
        line
        for line in dockerfile.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    ]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _stages(dockerfile: Path) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions(dockerfile):
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _requirements(path: Path) -> list[Requirement]:
    return [
        Requirement(line.split("#", 1)[0].strip())
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.split("#", 1)[0].strip()
    ]


def test_there_is_a_gpu_and_a_cpu_image() -> None:
    assert {p.name for p in DOCKERFILES} >= {"Dockerfile.gpu", "Dockerfile.cpu"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_install_step_installs_exactly_the_serving_dependencies(variant: str) -> None:
    dockerfile = DOCKER / f"Dockerfile.{variant}"
    instructions = _instructions(dockerfile)
    copied = {  # destination -> source
        shlex.split(args)[-1].removeprefix("./"): shlex.split(args)[0]
        for word, args in instructions
        if word == "COPY" and not args.startswith("--")
    }
    installs = [
        shlex.split(command.strip())
        for word, args in instructions
        if word == "RUN"
        for command in args.split("&&")
        if re.search(r"\bpip install\b", command)
    ]
    assert len(installs) == 2, installs
    requirement_files, packages = [], []
    for argv in installs:
        rest = argv[argv.index("install") + 1 :]
        flags = [a for a in rest if a.startswith("-")]
        operands = [a for a in rest if not a.startswith("-")]
        if "--requirement" in flags or "-r" in flags:
            assert set(flags) <= {"--no-cache-dir", "--requirement", "-r"}, argv
            requirement_files += operands
        else:
            # The package itself, without letting pip resolve pyproject's onnxruntime.
            assert set(flags) == {"--no-cache-dir", "--no-deps"}, argv
            packages += operands
    assert packages == ["."]
    assert len(requirement_files) == 1
    source = copied[requirement_files[0].removeprefix("./")]
    assert source == f"deploy/docker/requirements-{variant}.txt"

    declared = {Requirement(d) for d in _pyproject()["project"]["dependencies"]}
    wanted = {canonicalize_name(r.name): r for r in declared}
    wanted[canonicalize_name(VARIANTS[variant])] = wanted.pop("onnxruntime")
    pinned = {canonicalize_name(r.name): r for r in _requirements(ROOT / source)}
    assert set(pinned) == set(wanted)
    for name, requirement in pinned.items():
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{name} is not pinned"
        assert wanted[name].specifier.contains(spec.version), (name, spec, wanted[name])


@pytest.mark.parametrize("path", [*DOCKERFILES, *DOCKER.glob("requirements-*.txt")])
def test_torch_never_appears(path: Path) -> None:
    code = [
        line.split("#", 1)[0]
        for line in path.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    ]
    assert not TORCH.search("\n".join(code))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_runtime_stage_runs_as_uid_10001_on_the_settings_ports(variant: str) -> None:
    runtime = _stages(DOCKER / f"Dockerfile.{variant}")[-1]
    words = [word for word, _ in runtime]
    user = [args for word, args in runtime if word == "USER"]
    assert user == ["10001:10001"]
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")
    exposed = {int(p) for word, args in runtime if word == "EXPOSE" for p in args.split()}
    defaults = Settings.model_fields
    assert exposed == {
        defaults["port"].default,
        defaults["http_port"].default,
        defaults["metrics_port"].default,
    }
    env = " ".join(args for word, args in runtime if word == "ENV")
    assert "SEQ2SEQ_MODEL_REPOSITORY=/models" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env  # the root file system is read-only


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_dockerfile_documents_the_image_tag_the_overlay_uses(variant: str) -> None:
    version = _pyproject()["project"]["version"]
    text = (DOCKER / f"Dockerfile.{variant}").read_text(encoding="utf-8")
    assert f"-t seq2seq-serve:{version}-{variant} ." in text


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_dockerignore_sends_what_the_image_copies(variant: str) -> None:
    """One .dockerignore at the context root (the repository's): Docker's legacy builder
    and podman read only that one, never <Dockerfile>.dockerignore."""
    assert not list(DEPLOY.rglob("*.dockerignore"))
    dockerfile = DOCKER / f"Dockerfile.{variant}"
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8")
    allowed = [line[1:] for line in ignore.splitlines() if line.startswith("!")]
    sources = [
        shlex.split(args)[0]
        for word, args in _instructions(dockerfile)
        if word == "COPY" and not args.startswith("--from")
    ]
    # MODELS_DIR's documented values stand in for the build argument.
    sources = [
        s
        for src in sources
        for s in (["models", "deploy/docker/no-models"] if "$" in src else [src])
    ]
    for source in sources:
        assert any(fnmatch.fnmatch(source, pattern) for pattern in allowed), source
        assert (ROOT / source).exists(), source


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_no_parser_directive_needs_a_registry(dockerfile: Path) -> None:
    """`# syntax=` makes BuildKit pull a frontend image: a build without a registry fails."""
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        assert not re.match(r"#\s*syntax\s*=", line, re.I), line


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_image_ships_no_export_command(variant: str) -> None:
    """The package's seq2seq-export needs model_export and torch, which no image has."""
    runs = " ".join(args for word, args in _instructions(DOCKER / f"Dockerfile.{variant}"))
    assert "rm /opt/venv/bin/seq2seq-export" in runs


def test_the_cpu_image_asks_for_the_cpu_provider_only() -> None:
    runtime = _stages(DOCKER / "Dockerfile.cpu")[-1]
    env = " ".join(args for word, args in runtime if word == "ENV")
    assert """SEQ2SEQ_PROVIDERS='["cpu"]'""" in env
