"""Blocking client: one channel, typed methods, per-call deadlines, gRPC-native retries."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import grpc

from seq2seq_client import messages
from seq2seq_client.channel import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_RETRY,
    DEFAULT_TARGET,
    RetryPolicy,
    TlsConfig,
    call_metadata,
    channel_options,
)
from seq2seq_client.errors import Seq2SeqError
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from seq2seq_client.tasks import TASKS
from seq2seq_client.types import (
    AnswerResult,
    DecodeOptions,
    GenerateResult,
    LanguageScore,
    ModelInfo,
    TextResult,
    TokenEvent,
)

T = TypeVar("T")


class Seq2SeqClient:
    """Blocking client of the Seq2Seq service; use as a context manager or call close().

    `target` is anything gRPC accepts: "host:port", "dns:///name:port" (every address the
    name resolves to, balanced round robin), "unix:/path". `timeout` is the default deadline
    of every call in seconds (None = none); each method takes its own `timeout` too. Failed
    calls raise `Seq2SeqError` with the gRPC status code and the server's message.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        tls: TlsConfig | None = None,
        token: str | None = None,
        timeout: float | None = 30.0,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        load_balancing: str | None = "round_robin",
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        own_connection: bool = False,
    ) -> None:
        options = channel_options(
            retry=retry,
            load_balancing=load_balancing,
            tls=tls,
            max_message_bytes=max_message_bytes,
            own_connection=own_connection,
        )
        if tls is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            self._channel = grpc.secure_channel(target, tls.credentials(), options=options)
        self._stub = pb_grpc.Seq2SeqStub(self._channel)
        self._metadata = call_metadata(token)
        self.target = target
        self.timeout = timeout

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Seq2SeqClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def translate(
        self,
        text: str,
        target_language: str,
        *,
        source_language: str = "",
        text_format: str = "text",
        options: DecodeOptions | None = None,
        timeout: float | None = None,
    ) -> GenerateResult:
        """A sentence or a whole document (plain text, or HTML with text_format="html");
        source_language "auto" detects it."""
        request = messages.translate_request(
            text, target_language, source_language, text_format, options
        )
        reply = self._unary(self._stub.Translate, request, timeout)
        return messages.generate_result(reply)

    def translate_many(
        self,
        texts: list[str],
        target_language: str,
        *,
        source_language: str = "",
        text_format: str = "text",
        options: DecodeOptions | None = None,
        timeout: float | None = None,
    ) -> list[TextResult]:
        """Many texts in one call; results align with `texts`, a failed text carries its
        error in its place."""
        request = messages.translate_request(
            list(texts), target_language, source_language, text_format, options
        )
        reply = self._unary(self._stub.Translate, request, timeout)
        return messages.text_results(reply)

    def detect(
        self, text: str, *, top: int = 3, timeout: float | None = None
    ) -> list[LanguageScore]:
        """The most likely languages of `text` among those the server translates."""
        request = pb.DetectRequest(text=text, top=top)
        return messages.language_scores(self._unary(self._stub.Detect, request, timeout))

    def summarize(
        self, text: str, *, options: DecodeOptions | None = None, timeout: float | None = None
    ) -> GenerateResult:
        return self.generate("summarize", {"text": text}, options=options, timeout=timeout)  # type: ignore[return-value]

    def answer(
        self,
        question: str,
        context: str,
        *,
        options: DecodeOptions | None = None,
        timeout: float | None = None,
    ) -> AnswerResult:
        fields = {"question": question, "context": context}
        return self.generate("answer", fields, options=options, timeout=timeout)  # type: ignore[return-value]

    def translate_stream(
        self,
        text: str,
        target_language: str,
        *,
        source_language: str = "",
        options: DecodeOptions | None = None,
        timeout: float | None = None,
    ) -> Iterator[TokenEvent | GenerateResult]:
        """TokenEvents as tokens are decoded, then one GenerateResult."""
        fields = {
            "text": text,
            "target_language": target_language,
            "source_language": source_language,
        }
        return self.generate_stream("translate", fields, options=options, timeout=timeout)  # type: ignore[return-value]

    def summarize_stream(
        self, text: str, *, options: DecodeOptions | None = None, timeout: float | None = None
    ) -> Iterator[TokenEvent | GenerateResult]:
        """TokenEvents as tokens are decoded, then one GenerateResult."""
        return self.generate_stream("summarize", {"text": text}, options=options, timeout=timeout)  # type: ignore[return-value]

    def answer_stream(
        self,
        question: str,
        context: str,
        *,
        options: DecodeOptions | None = None,
        timeout: float | None = None,
    ) -> Iterator[TokenEvent | AnswerResult]:
        """TokenEvents as tokens are decoded, then one AnswerResult."""
        fields = {"question": question, "context": context}
        return self.generate_stream("answer", fields, options=options, timeout=timeout)  # type: ignore[return-value]

    def generate(
        self,
        task: str,
        fields: Mapping[str, str],
        *,
        options: DecodeOptions | None = None,
        timeout: float | None = None,
    ) -> GenerateResult | AnswerResult:
        """Any task of the task table by name, its request fields by name."""
        spec = TASKS[task]
        request = messages.task_request(spec, fields, options)
        reply = self._unary(getattr(self._stub, spec.rpc), request, timeout)
        return messages.task_result(spec)(reply)

    def generate_stream(
        self,
        task: str,
        fields: Mapping[str, str],
        *,
        options: DecodeOptions | None = None,
        timeout: float | None = None,
    ) -> Iterator[TokenEvent | GenerateResult | AnswerResult]:
        """TokenEvents as tokens are decoded, then the task's result."""
        spec = TASKS[task]
        request = messages.task_request(spec, fields, options)
        method = getattr(self._stub, spec.stream_rpc)
        return self._stream(method, request, timeout, messages.task_stream_event(spec))

    def list_models(self, task: str = "", *, timeout: float | None = None) -> list[ModelInfo]:
        """The models the server holds; `task` filters ("translate", "summarize", "answer")."""
        reply = self._unary(self._stub.ListModels, pb.ListModelsRequest(task=task), timeout)
        return messages.model_infos(reply)

    def _deadline(self, timeout: float | None) -> float | None:
        return self.timeout if timeout is None else timeout

    def _unary(self, method: Callable[..., Any], request: Any, timeout: float | None) -> Any:
        try:
            return method(request, timeout=self._deadline(timeout), metadata=self._metadata)
        except grpc.RpcError as error:
            raise Seq2SeqError.from_rpc_error(error) from None

    def _stream(
        self,
        method: Callable[..., Any],
        request: Any,
        timeout: float | None,
        convert: Callable[[pb.GenerateStreamResponse], T],
    ) -> Iterator[T]:
        call = method(request, timeout=self._deadline(timeout), metadata=self._metadata)
        try:
            for message in call:
                yield convert(message)
        except grpc.RpcError as error:
            raise Seq2SeqError.from_rpc_error(error) from None
        finally:
            call.cancel()  # a no-op after the end; frees the server if the caller stopped early
