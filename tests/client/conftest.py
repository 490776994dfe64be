"""Real servers for the client: each in its own thread and event loop, so that blocking
clients, asyncio clients and CLI subprocesses can all call it; plus test certificates."""

from __future__ import annotations

import asyncio
import datetime
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from service.server.server import Seq2SeqServer
from tests.conftest import REPO_ROOT, TEST_MODELS
from tests.integration.conftest import make_settings

T = TypeVar("T")
TLS_NAME = "seq2seq.test"  # the only name in the test server certificate (no IP address)


class ServerThread:
    """A Seq2SeqServer started and stopped from the calling thread, serving from its own."""

    def __init__(self, **overrides: object) -> None:
        self._settings = make_settings(**overrides)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.server: Seq2SeqServer | None = None

    async def _start(self) -> Seq2SeqServer:
        server = Seq2SeqServer(self._settings)
        await server.start()
        return server

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(120)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.server is not None:
            stop = self.server.drain_and_stop(grace=1.0)
            asyncio.run_coroutine_threadsafe(stop, self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's own loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(60)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    @property
    def address(self) -> str:
        return f"{self._settings.host}:{self.port}"

    def calls(self, method: str) -> float:
        """Calls of `method` this server has started, from its own metrics registry."""
        assert self.server is not None
        return sum(
            sample.value
            for metric in self.server.metrics.registry.collect()
            for sample in metric.samples
            if sample.name == "grpc_server_started_total"
            and sample.labels.get("grpc_method") == method
        )


@pytest.fixture(scope="session")
def served() -> Iterator[ServerThread]:
    """The plaintext server over every test model."""
    with ServerThread() as server:
        yield server


@pytest.fixture(scope="session")
def translate_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository holding only the translate bundle: extra servers start faster."""
    repository = tmp_path_factory.mktemp("translate-only")
    (repository / "translate-en-fr").symlink_to(TEST_MODELS / "translate-en-fr")
    return repository


def free_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> CliResult:
    """`python -m seq2seq_client.cli ARGS` as a user runs it."""
    completed = subprocess.run(
        [sys.executable, "-m", "seq2seq_client.cli", *args],
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


# ---------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA that signed server and client
    server_cert: Path  # for TLS_NAME only
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, key, issuer, issuer_key, *, ca: bool, extensions=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, certificate=None, key=None) -> Path:
    if certificate is not None:
        path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return path


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A throw-away CA, a server certificate for TLS_NAME, a client certificate, another CA."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key, other_key, server_key, client_key = _key(), _key(), _key(), _key()
    ca = _certificate(_name("test CA"), ca_key, _name("test CA"), ca_key, ca=True)
    other = _certificate(_name("other CA"), other_key, _name("other CA"), other_key, ca=True)
    server = _certificate(
        _name(TLS_NAME),
        server_key,
        ca.subject,
        ca_key,
        ca=False,
        extensions=[
            x509.SubjectAlternativeName([x509.DNSName(TLS_NAME)]),
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
        ],
    )
    client = _certificate(
        _name("client"),
        client_key,
        ca.subject,
        ca_key,
        ca=False,
        extensions=[x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])],
    )
    return Certificates(
        ca=_write(folder / "ca.pem", ca),
        server_cert=_write(folder / "server.pem", server),
        server_key=_write(folder / "server.key", key=server_key),
        client_cert=_write(folder / "client.pem", client),
        client_key=_write(folder / "client.key", key=client_key),
        other_ca=_write(folder / "other-ca.pem", other),
    )
