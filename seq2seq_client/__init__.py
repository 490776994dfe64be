"""Python client SDK for the seq2seq gRPC service; imports only grpc and the generated stubs.

    from seq2seq_client import Seq2SeqClient
    with Seq2SeqClient("localhost:50051") as client:
        print(client.translate("A tool to compress files", "fr").text)

The names below are imported on first use, so that `seq2seq_client.cli` can configure gRPC's
logging before gRPC itself is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seq2seq_client.aio import AsyncSeq2SeqClient
    from seq2seq_client.channel import RetryPolicy, TlsConfig
    from seq2seq_client.errors import Seq2SeqError
    from seq2seq_client.sync import Seq2SeqClient
    from seq2seq_client.types import (
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
    "AsyncSeq2SeqClient": "seq2seq_client.aio",
    "RetryPolicy": "seq2seq_client.channel",
    "TlsConfig": "seq2seq_client.channel",
    "Seq2SeqError": "seq2seq_client.errors",
    "Seq2SeqClient": "seq2seq_client.sync",
    **{
        name: "seq2seq_client.types"
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
        raise AttributeError(f"module 'seq2seq_client' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
