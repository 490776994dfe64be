"""What crosses between a front end and an engine-core process, and how it is encoded.

Every message is a msgspec Struct encoded as MessagePack (a tagged array: the tag first,
then the fields in order). Arrays travel as raw little-endian buffers with a dtype from a
short allow-list and their shape. Nothing is ever pickled: decoding builds only these
types, so bytes from a stranger on the socket cannot run code; what does not decode to
one of them (or fails DecodingParams' own checks) is dropped and counted by the caller.

Clock: `deadline` and `arrival` are `time.monotonic()` seconds, which on Linux is one
system-wide clock (CLOCK_MONOTONIC), so both processes read the same time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from msgspec import Struct, msgpack

from service.bundle import DecodingDefaults
from service.engine.constraints import (
    Constraint,
    ExtractiveSpan,
    ForcedPrefix,
    RequiredTerms,
)
from service.engine.policy import PolicyConfig
from service.engine.requests import GenerationOutput, Request, RequestListener, RequestStatus
from service.engine.runtime import RuntimeOptions
from service.engine.strategies import Hypothesis
from service.errors import ErrorCode, ServiceError
from service.params import DecodingParams

_DTYPES = {"float32", "float64", "int64", "bool"}  # the only dtypes accepted off the wire


class WireArray(Struct, array_like=True):
    dtype: str
    shape: tuple[int, ...]
    data: bytes


def pack_array(array: np.ndarray) -> WireArray:
    array = np.ascontiguousarray(array)
    return WireArray(str(array.dtype), tuple(array.shape), array.tobytes())


def unpack_array(wire: WireArray) -> np.ndarray:
    """Refuses unknown dtypes and a buffer that does not match the shape (ValueError)."""
    if wire.dtype not in _DTYPES:
        raise ValueError(f"dtype {wire.dtype!r} is not accepted on the wire")
    array = np.frombuffer(wire.data, dtype=np.dtype(wire.dtype))
    return array.reshape(wire.shape)  # raises ValueError when the sizes disagree


# --- engine process start-up (JSON on its stdin) ------------------------------------------
class WorkerConfig(Struct):
    group: str  # the model group this process serves
    address: str  # ipc:// endpoint the engine binds (a private 0700 folder)
    parent_pid: int  # the server process; the engine exits when it is gone
    runtime: RuntimeOptions
    policy: str  # "continuous" | "static"
    max_queue_size: int  # waiting requests per model before RESOURCE_EXHAUSTED
    policy_config: PolicyConfig
    log_level: str = "INFO"
    log_format: str = "json"


# --- front end -> engine ------------------------------------------------------------------
class Hello(Struct, tag="hello", array_like=True):
    frontend: int  # front-end process index; 0 is the supervisor (it gets the metrics)


class Load(Struct, tag="load", array_like=True):
    slot: int  # the front end's id for this loaded bundle (stays across engine restarts)
    path: str  # the bundle folder


class Retire(Struct, tag="retire", array_like=True):
    slot: int  # refuse new requests, finish queued and running ones, then answer Stopped


class StopSlot(Struct, tag="stop", array_like=True):
    slot: int  # refuse what is left now (UNAVAILABLE), then answer Stopped


class Shutdown(Struct, tag="shutdown", array_like=True):
    pass


class Ping(Struct, tag="ping", array_like=True):
    seq: int
    sent: float  # monotonic seconds


class PrefixWire(Struct, tag="cp", array_like=True):
    ids: tuple[int, ...]
    index: int


class SpanWire(Struct, tag="cs", array_like=True):
    context: WireArray  # (C,) int64
    word_start: WireArray  # (C,) bool
    eos_id: int
    no_answer_id: int | None
    unk_id: int | None
    active: WireArray | None  # (k,) int64
    closed: bool


class TermsWire(Struct, tag="ct", array_like=True):
    terms: tuple[tuple[int, ...], ...]
    sources: tuple[tuple[int, int], ...]
    eos_id: int
    budget: int
    missing: tuple[int, ...]
    writing: tuple[int, int] | None


ConstraintWire = PrefixWire | SpanWire | TermsWire


class Submit(Struct, tag="submit", array_like=True):
    slot: int
    rid: str
    source_ids: WireArray  # (S,) int64, EOS last
    params: DecodingParams  # resolved for the model; re-checked when decoded
    constraints: tuple[ConstraintWire, ...]
    deadline: float | None
    arrival: float
    stream: bool  # send every token (unary calls only need the result)


class Cancel(Struct, tag="cancel", array_like=True):
    rid: str


ToEngine = Hello | Load | Retire | StopSlot | Shutdown | Ping | Submit | Cancel


# --- engine -> front end ------------------------------------------------------------------
class Ready(Struct, tag="ready", array_like=True):
    pid: int
    group: str


class Loaded(Struct, tag="loaded", array_like=True):
    slot: int
    provider: str  # the execution provider the sessions really got


class Refused(Struct, tag="refused", array_like=True):
    slot: int
    reason: str


class Stopped(Struct, tag="stopped", array_like=True):
    slot: int


class Pong(Struct, tag="pong", array_like=True):
    seq: int
    sent: float  # the Ping's
    busy: tuple[tuple[int, float], ...]  # (slot, seconds its current step has run)


class Token(Struct, tag="t", array_like=True):
    rid: str
    index: int
    token_id: int
    log_prob: float


class HypothesisWire(Struct, array_like=True):
    token_ids: tuple[int, ...]
    token_scores: tuple[float, ...]
    attention: WireArray | None
    score: float
    finish_reason: str


class Finished(Struct, tag="f", array_like=True):
    rid: str
    hypotheses: tuple[HypothesisWire, ...]
    status: int
    queue_seconds: float
    compute_seconds: float


class Failed(Struct, tag="e", array_like=True):
    rid: str
    code: str  # ErrorCode value
    message: str


Event = Token | Finished | Failed


# Observations: the EngineObserver calls of one slot, replayed into the front end's metrics.
class EncoderRun(Struct, tag="oe", array_like=True):
    slot: int
    size: int
    seconds: float
    tokens: int


class DecoderStep(Struct, tag="od", array_like=True):
    slot: int
    size: int
    seconds: float


class Admitted(Struct, tag="oa", array_like=True):
    slot: int
    queue_seconds: float


class Left(Struct, tag="ol", array_like=True):
    slot: int
    status: int  # RequestStatus
    tokens: int


class Depth(Struct, tag="oq", array_like=True):
    slot: int
    waiting: int
    running: int


class Failure(Struct, tag="of", array_like=True):
    slot: int


class Dropped(Struct, tag="ox", array_like=True):
    count: int  # undecodable messages the engine dropped since the last report


Observation = EncoderRun | DecoderStep | Admitted | Left | Depth | Failure | Dropped


class Batch(Struct, tag="batch", array_like=True):
    """What one engine step produced for one front end."""

    events: tuple[Event, ...]
    observations: tuple[Observation, ...]  # only in batches for the supervisor


FromEngine = Ready | Loaded | Refused | Stopped | Pong | Batch


# --- codecs -------------------------------------------------------------------------------
def _enc_hook(value: object) -> object:
    """The model's decoding defaults (a pydantic model inside DecodingParams) as a plain map."""
    if isinstance(value, DecodingDefaults):
        return value.model_dump()
    raise NotImplementedError(f"cannot send {type(value).__name__} to the engine")


def _dec_hook(kind: type, value: object) -> object:
    if kind is DecodingDefaults:
        return DecodingDefaults.model_validate(value)  # validated like a manifest's
    raise NotImplementedError(f"cannot read {kind} from the wire")


_encoder = msgpack.Encoder(enc_hook=_enc_hook)
_to_engine = msgpack.Decoder(ToEngine, dec_hook=_dec_hook)
_from_engine = msgpack.Decoder(FromEngine, dec_hook=_dec_hook)


def encode(message: Struct) -> bytes:
    return _encoder.encode(message)


@dataclass(frozen=True)
class Submitted:
    """A Submit as the engine takes it: arrays and constraints decoded (once) and checked."""

    slot: int
    rid: str
    source_ids: np.ndarray  # (S,) int64, EOS last
    params: DecodingParams
    constraints: tuple[Constraint, ...]
    deadline: float | None
    arrival: float
    stream: bool


def decode_to_engine(raw: bytes) -> Submitted | ToEngine | None:
    """The message (a Submit decoded into a Submitted), or None when it is not one
    (malformed, unknown tag, bad options, arrays or constraints)."""
    try:
        message = _to_engine.decode(raw)
        if not isinstance(message, Submit):
            return message
        return Submitted(
            slot=message.slot,
            rid=message.rid,
            source_ids=unpack_array(message.source_ids),
            params=message.params,
            constraints=tuple(constraint_from_wire(c) for c in message.constraints),
            deadline=message.deadline,
            arrival=message.arrival,
            stream=message.stream,
        )
    except Exception:  # msgspec errors, ValueError from arrays, InvalidArgument from params
        return None


def decode_from_engine(raw: bytes) -> FromEngine | None:
    try:
        return _from_engine.decode(raw)
    except Exception:
        return None


# --- domain <-> wire ----------------------------------------------------------------------
def constraint_to_wire(constraint: Constraint) -> ConstraintWire:
    if isinstance(constraint, ForcedPrefix):
        return PrefixWire(constraint.ids, constraint.index)
    if isinstance(constraint, ExtractiveSpan):
        return SpanWire(
            pack_array(constraint.context.astype(np.int64)),
            pack_array(constraint.word_start.astype(bool)),
            constraint.eos_id,
            constraint.no_answer_id,
            constraint.unk_id,
            None if constraint.active is None else pack_array(constraint.active.astype(np.int64)),
            constraint.closed,
        )
    if isinstance(constraint, RequiredTerms):
        return TermsWire(
            constraint.terms,
            constraint.sources,
            constraint.eos_id,
            constraint.budget,
            tuple(sorted(constraint.missing)),
            constraint.writing,
        )
    raise TypeError(f"no wire form for constraint {type(constraint).__name__}")


def constraint_from_wire(wire: ConstraintWire) -> Constraint:
    if isinstance(wire, PrefixWire):
        return ForcedPrefix(wire.ids, wire.index)
    if isinstance(wire, SpanWire):
        context = unpack_array(wire.context)
        word_start = unpack_array(wire.word_start)
        if context.shape != word_start.shape:
            raise ValueError("extractive context and word starts differ in length")
        return ExtractiveSpan(
            context,
            word_start,
            wire.eos_id,
            wire.no_answer_id,
            wire.unk_id,
            None if wire.active is None else unpack_array(wire.active),
            wire.closed,
        )
    return RequiredTerms(
        wire.terms, wire.sources, wire.eos_id, wire.budget, frozenset(wire.missing), wire.writing
    )


def submit_message(slot: int, request: Request, stream: bool) -> Submit:
    return Submit(
        slot=slot,
        rid=request.request_id,
        source_ids=pack_array(request.source_ids.astype(np.int64)),
        params=request.params,
        constraints=tuple(constraint_to_wire(c) for c in request.constraints),
        deadline=request.deadline,
        arrival=request.arrival,
        stream=stream,
    )


def request_from_submit(message: Submitted, listener: RequestListener) -> Request:
    return Request(
        request_id=message.rid,
        source_ids=message.source_ids,
        params=message.params,
        listener=listener,
        deadline=message.deadline,
        arrival=message.arrival,
        constraints=message.constraints,
    )


def finished_message(rid: str, output: GenerationOutput) -> Finished:
    return Finished(
        rid=rid,
        hypotheses=tuple(
            HypothesisWire(
                h.token_ids,
                h.token_scores,
                None if h.attention is None else pack_array(h.attention),
                h.score,
                h.finish_reason,
            )
            for h in output.hypotheses
        ),
        status=int(output.status),
        queue_seconds=output.queue_seconds,
        compute_seconds=output.compute_seconds,
    )


def output_from_wire(message: Finished) -> GenerationOutput:
    return GenerationOutput(
        hypotheses=tuple(
            Hypothesis(
                token_ids=h.token_ids,
                token_scores=h.token_scores,
                attention=None if h.attention is None else unpack_array(h.attention),
                score=h.score,
                finish_reason=h.finish_reason,
            )
            for h in message.hypotheses
        ),
        status=RequestStatus(message.status),
        queue_seconds=message.queue_seconds,
        compute_seconds=message.compute_seconds,
    )


_ERRORS: dict[ErrorCode, type[ServiceError]] = {
    cls.code: cls for cls in ServiceError.__subclasses__()
}


def failed_message(rid: str, error: ServiceError) -> Failed:
    return Failed(rid, error.code.value, error.message)


def error_from_wire(message: Failed) -> ServiceError:
    """The same ServiceError subclass the engine raised (INTERNAL for an unknown code)."""
    try:
        code = ErrorCode(message.code)
    except ValueError:
        code = ErrorCode.INTERNAL
    return _ERRORS.get(code, ServiceError)(message.message)
