"""Channel set-up shared by the sync and asyncio clients: service config, TLS, metadata.

Retries and load balancing are gRPC's own, configured through the channel's default service
config (gRFC A6 retries, round_robin LB policy); this module only writes that config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Seq2Seq"].full_name  # "seq2seq.v1.Seq2Seq"
DEFAULT_TARGET = "localhost:50051"
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # as the server's default max_message_bytes


@dataclass(frozen=True)
class RetryPolicy:
    """gRPC retry policy: exponential backoff with jitter, done by gRPC itself.

    gRPC waits random(0, min(initial_backoff * multiplier**(n-1), max_backoff)) seconds before
    attempt n+1, and retries only codes in `retryable_codes` and only before the server sent
    any response message (a stream that already produced tokens is never replayed).
    """

    max_attempts: int = 4  # total attempts including the first; gRPC caps it at 5
    initial_backoff: float = 0.1  # seconds before the first retry (upper bound of the jitter)
    max_backoff: float = 2.0  # seconds, cap of the backoff
    backoff_multiplier: float = 2.0  # growth of the backoff per attempt
    retryable_codes: tuple[str, ...] = ("UNAVAILABLE", "RESOURCE_EXHAUSTED")  # status names

    def __post_init__(self) -> None:
        if not 2 <= self.max_attempts <= 5:
            raise ValueError("max_attempts must be between 2 and 5 (gRPC's limit)")
        if self.initial_backoff <= 0 or self.max_backoff <= 0 or self.backoff_multiplier <= 0:
            raise ValueError("backoffs and multiplier must be > 0")
        for name in self.retryable_codes:
            if name not in grpc.StatusCode.__members__:
                raise ValueError(f"unknown gRPC status code {name!r}")

    def as_config(self) -> dict[str, Any]:
        return {
            "maxAttempts": self.max_attempts,
            "initialBackoff": f"{self.initial_backoff}s",
            "maxBackoff": f"{self.max_backoff}s",
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": list(self.retryable_codes),
        }


@dataclass(frozen=True)
class TlsConfig:
    """TLS to the server; every field optional (TlsConfig() = TLS with the system's roots)."""

    root_ca_file: Path | None = None  # PEM CA bundle the server's certificate chains to
    cert_file: Path | None = None  # PEM client certificate for mutual TLS (with key_file)
    key_file: Path | None = None  # PEM private key of cert_file
    server_name: str | None = None  # name to check the certificate against (SNI override)

    def credentials(self) -> grpc.ChannelCredentials:
        """Read the PEM files; raises OSError when one cannot be read, ValueError on misuse."""
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate and its key must be given together")
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.root_ca_file),
            private_key=_read(self.key_file),
            certificate_chain=_read(self.cert_file),
        )


def _read(path: Path | None) -> bytes | None:
    return None if path is None else Path(path).read_bytes()


def service_config(retry: RetryPolicy | None, load_balancing: str | None) -> dict[str, Any]:
    """The channel's default service config: a retry policy for every Seq2Seq method, the
    load-balancing policy (round_robin spreads calls over every address a
    `dns:///name:port` target resolves to; pick_first uses one) and client-side health
    checking: a server that reports NOT_SERVING for the Seq2Seq service (it is draining
    after SIGTERM) gets no more calls, so none race with its shutdown. gRPC does the
    health watch under every policy but pick_first."""
    config: dict[str, Any] = {"healthCheckConfig": {"serviceName": SERVICE_NAME}}
    if retry is not None:
        config["methodConfig"] = [
            {"name": [{"service": SERVICE_NAME}], "retryPolicy": retry.as_config()}
        ]
    if load_balancing:
        config["loadBalancingConfig"] = [{load_balancing: {}}]
    return config


def channel_options(
    *,
    retry: RetryPolicy | None,
    load_balancing: str | None,
    tls: TlsConfig | None,
    max_message_bytes: int,
    own_connection: bool = False,
) -> list[tuple[str, Any]]:
    """`own_connection`: never share the TCP connection with another client of the same
    target (gRPC shares one by default), e.g. to reach several server processes."""
    options: list[tuple[str, Any]] = [
        ("grpc.service_config", json.dumps(service_config(retry, load_balancing))),
        ("grpc.enable_retries", 1 if retry is not None else 0),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]
    if tls is not None and tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    if own_connection:
        options.append(("grpc.use_local_subchannel_pool", 1))
    return options


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """`authorization: Bearer TOKEN` on every call when a token is set."""
    return (("authorization", f"Bearer {token}"),) if token else ()


DEFAULT_RETRY = RetryPolicy()
