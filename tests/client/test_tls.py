"""TLS and mutual TLS for real: certificates made in this run, a server started with the
tls_* settings, the client's and the command line's TLS options."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pydantic
import pytest

from seq2seq_client import Seq2SeqClient, Seq2SeqError, TlsConfig
from tests.client.conftest import TLS_NAME, Certificates, ServerThread, run_cli
from tests.integration.conftest import make_settings


@pytest.fixture(scope="module")
def tls_server(certificates: Certificates, translate_only: Path) -> Iterator[ServerThread]:
    with ServerThread(
        model_repository=translate_only,
        tls_cert_file=certificates.server_cert,
        tls_key_file=certificates.server_key,
    ) as server:
        yield server


@pytest.fixture(scope="module")
def mtls_server(certificates: Certificates, translate_only: Path) -> Iterator[ServerThread]:
    with ServerThread(
        model_repository=translate_only,
        tls_cert_file=certificates.server_cert,
        tls_key_file=certificates.server_key,
        tls_client_ca_file=certificates.ca,
    ) as server:
        yield server


def _models(address: str, tls: TlsConfig | None) -> list[str]:
    with Seq2SeqClient(address, tls=tls, timeout=10) as client:
        return [m.name for m in client.list_models()]


def test_tls_with_the_right_ca_and_server_name(tls_server, certificates) -> None:
    tls = TlsConfig(root_ca_file=certificates.ca, server_name=TLS_NAME)
    assert _models(tls_server.address, tls) == ["translate-en-fr"]


@pytest.mark.parametrize(
    "case", ["wrong CA", "name not in the certificate", "plaintext client"], ids=str
)
def test_tls_failures_are_unavailable(tls_server, certificates, case: str) -> None:
    tls: TlsConfig | None = {
        "wrong CA": TlsConfig(root_ca_file=certificates.other_ca, server_name=TLS_NAME),
        "name not in the certificate": TlsConfig(root_ca_file=certificates.ca),  # 127.0.0.1
        "plaintext client": None,
    }[case]
    with pytest.raises(Seq2SeqError) as failed:
        _models(tls_server.address, tls)
    assert failed.value.code == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_needs_a_client_certificate(mtls_server, certificates) -> None:
    with_cert = TlsConfig(
        root_ca_file=certificates.ca,
        cert_file=certificates.client_cert,
        key_file=certificates.client_key,
        server_name=TLS_NAME,
    )
    assert _models(mtls_server.address, with_cert) == ["translate-en-fr"]
    without = TlsConfig(root_ca_file=certificates.ca, server_name=TLS_NAME)
    with pytest.raises(Seq2SeqError) as failed:
        _models(mtls_server.address, without)
    assert failed.value.code == grpc.StatusCode.UNAVAILABLE


def test_cli_over_mutual_tls(mtls_server, certificates) -> None:
    result = run_cli(
        "translate",
        "Lua bindings for Pure Data",
        "--to",
        "fr",
        "--target",
        mtls_server.address,
        "--ca",
        str(certificates.ca),
        "--cert",
        str(certificates.client_cert),
        "--key",
        str(certificates.client_key),
        "--server-name",
        TLS_NAME,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_cli_with_the_wrong_ca_prints_one_line(tls_server, certificates) -> None:
    result = run_cli(
        "models",
        "--target",
        tls_server.address,
        "--ca",
        str(certificates.other_ca),
        "--server-name",
        TLS_NAME,
        "--timeout",
        "10",
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("seq2seq: error: UNAVAILABLE: ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--ca", "/no/such/ca.pem"], "cannot read --ca file"),
        (["--cert", "/tmp/x.pem"], "--cert and --key go together"),
        (["--ca", str(Path(__file__))], "is not PEM"),
    ],
)
def test_cli_local_tls_mistakes_exit_2(flags: list[str], message: str) -> None:
    result = run_cli("models", "--target", "127.0.0.1:1", *flags)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert message in result.stderr


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tls_cert_file": "server_cert"}, "set together"),
        ({"tls_key_file": "server_key"}, "set together"),
        ({"tls_client_ca_file": "ca"}, "needs tls_cert_file"),
        ({"tls_cert_file": "missing", "tls_key_file": "server_key"}, "is not a file"),
    ],
)
def test_tls_settings_are_validated(certificates, fields: dict[str, str], message: str) -> None:
    paths = {
        name: Path("/no/such/file.pem") if attr == "missing" else getattr(certificates, attr)
        for name, attr in fields.items()
    }
    with pytest.raises(pydantic.ValidationError, match=message):
        make_settings(**paths)
