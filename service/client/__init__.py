"""Python client SDK for the seq2seq gRPC service; imports only grpc and the generated stubs.

    from service.client import Seq2SeqClient
    with Seq2SeqClient("localhost:50051") as client:
        print(client.translate("A tool to compress files", "fr").text)

The names below are imported on first use, so that `service.client.cli` can configure gRPC's
logging before gRPC itself is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.client.aio import AsyncSeq2SeqClient
    from service.client.channel import RetryPolicy, TlsConfig
    from service.client.errors import Seq2SeqError
    from service.client.sync import Seq2SeqClient
    from service.client.types import (
        AnswerResult,
        Attention,
        DecodeOptions,
        GenerateResult,
        Hypothesis,
        InputUsed,
        LanguageScore,
        ModelInfo,
        ModelRef,
        TextError,
        TextResult,
        Timing,
        TokenEvent,
    )

_EXPORTS = {  # public name -> module that defines it
    "AsyncSeq2SeqClient": "service.client.aio",
    "RetryPolicy": "service.client.channel",
    "TlsConfig": "service.client.channel",
    "Seq2SeqError": "service.client.errors",
    "Seq2SeqClient": "service.client.sync",
    **{
        name: "service.client.types"
        for name in (
            "AnswerResult",
            "Attention",
            "DecodeOptions",
            "GenerateResult",
            "Hypothesis",
            "InputUsed",
            "LanguageScore",
            "ModelInfo",
            "ModelRef",
            "TextError",
            "TextResult",
            "Timing",
            "TokenEvent",
        )
    },
}

__all__ = [
    "AnswerResult",
    "AsyncSeq2SeqClient",
    "Attention",
    "DecodeOptions",
    "GenerateResult",
    "Hypothesis",
    "InputUsed",
    "LanguageScore",
    "ModelInfo",
    "ModelRef",
    "RetryPolicy",
    "Seq2SeqClient",
    "Seq2SeqError",
    "TextError",
    "TextResult",
    "Timing",
    "TlsConfig",
    "TokenEvent",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'service.client' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
