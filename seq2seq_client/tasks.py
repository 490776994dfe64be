"""The task table: each task described once, and everything else driven by it.

A task is its request fields (texts that must not be empty, language codes), how those
fields become the model's source text, which field to blame when the source is too long,
and the shape of its response. The gRPC servicer, the data plane, the client SDK, the
`seq2seq` CLI and the load tester all read this table; adding a fourth task is one entry
here plus its proto messages and RPCs.

Standard library only: the client SDK imports it without the server's dependencies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

Task = Literal["translate", "summarize", "answer"]

# The separator token text that joins question and context for the answer task.
ANSWER_SEPARATOR_TOKEN = "<sep>"


def answer_source_text(question: str, context: str) -> str:
    """The one way a (question, context) pair becomes an answer model's source text."""
    return f"{question.strip()} {ANSWER_SEPARATOR_TOKEN} {context.strip()}"


@dataclass(frozen=True)
class TaskSpec:
    name: Task
    rpc: str  # unary RPC; the server-streaming twin is `stream_rpc`
    request_message: str  # proto message of the request
    response_message: str  # "GenerateResponse" or "AnswerResponse"
    text_fields: tuple[str, ...]  # required, non-empty text fields, in CLI order
    source_field: str  # the field named when the source is over the model's limit
    to_source: Callable[[Mapping[str, str]], str]  # request fields -> model source text
    description: str  # one line for help texts
    language_fields: tuple[str, ...] = ()  # ("source_language", "target_language")

    @property
    def stream_rpc(self) -> str:
        return f"{self.rpc}Stream"

    @property
    def answers(self) -> bool:
        """The response carries `answer` and `answerable` (AnswerResponse)."""
        return self.response_message == "AnswerResponse"

    @property
    def fields(self) -> tuple[str, ...]:
        """Every request field other than the decoding options."""
        return (*self.text_fields, *self.language_fields)


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="translate",
            rpc="Translate",
            request_message="TranslateRequest",
            response_message="GenerateResponse",
            text_fields=("text",),
            language_fields=("source_language", "target_language"),
            source_field="text",
            to_source=lambda fields: fields["text"],
            description="translate text from one language to another",
        ),
        TaskSpec(
            name="summarize",
            rpc="Summarize",
            request_message="SummarizeRequest",
            response_message="GenerateResponse",
            text_fields=("text",),
            source_field="text",
            to_source=lambda fields: fields["text"],
            description="summarize a long English text into a short one",
        ),
        TaskSpec(
            name="answer",
            rpc="Answer",
            request_message="AnswerRequest",
            response_message="AnswerResponse",
            text_fields=("question", "context"),
            source_field="context",
            to_source=lambda fields: answer_source_text(fields["question"], fields["context"]),
            description="answer a question from a context passage (or say it is not there)",
        ),
    )
}
