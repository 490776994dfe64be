"""The one error the client raises: a gRPC status code and the server's message."""

from __future__ import annotations

from typing import Any

import grpc


class Seq2SeqError(Exception):
    """An RPC failed; `code` is the gRPC status, `details` the server's (or gRPC's) message."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details

    @classmethod
    def from_rpc_error(cls, error: Any) -> Seq2SeqError:
        """Wrap a `grpc.RpcError` (sync) or `grpc.aio.AioRpcError`."""
        code = error.code() if callable(getattr(error, "code", None)) else None
        details = error.details() if callable(getattr(error, "details", None)) else None
        return cls(code or grpc.StatusCode.UNKNOWN, " ".join(str(details or error).split()))
