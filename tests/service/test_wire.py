"""The IPC messages between front end and engine process: every one survives the trip,
and bytes that are not one of them are refused (never unpickled, never half-decoded)."""

from __future__ import annotations

import dataclasses
import pickle

import msgspec
import numpy as np
import pytest

from service.engine.constraints import ExtractiveSpan, ForcedPrefix, RequiredTerms
from service.engine.policy import PolicyConfig
from service.engine.requests import GenerationOutput, Request, RequestStatus
from service.engine.runtime import RuntimeOptions
from service.engine.strategies import Hypothesis
from service.engine_process import wire
from service.errors import Expired, InternalError, Overloaded, ServiceError, Unavailable
from service.params import DecodingParams
from tests.service.conftest import CollectingListener


def _span() -> ExtractiveSpan:
    return ExtractiveSpan(
        context=np.array([5, 6, 7], dtype=np.int64),
        word_start=np.array([True, False, True]),
        eos_id=2,
        no_answer_id=9,
        unk_id=3,
        active=np.array([1], dtype=np.int64),
        closed=False,
    )


def _request() -> Request:
    return Request(
        request_id="r1",
        source_ids=np.array([4, 5, 6, 2], dtype=np.int64),
        params=DecodingParams(beam_size=3, n_best=2, glossary=(("a", "b"),), max_output_tokens=9),
        listener=CollectingListener(),
        deadline=123.5,
        arrival=120.25,
        constraints=(
            ForcedPrefix((7, 8), 1),
            _span(),
            RequiredTerms.start(((3, 4), (5,)), ((0, 1), (2, 3)), eos_id=2, budget=9),
        ),
    )


def test_a_request_crosses_with_its_options_constraints_and_clock() -> None:
    request = _request()
    raw = wire.encode(wire.submit_message(4, request, stream=True))
    message = wire.decode_to_engine(raw)
    assert isinstance(message, wire.Submitted) and message.slot == 4 and message.stream
    again = wire.request_from_submit(message, CollectingListener())
    assert again.request_id == "r1" and again.params == request.params
    assert (again.deadline, again.arrival) == (123.5, 120.25)
    np.testing.assert_array_equal(again.source_ids, request.source_ids)
    prefix, span, terms = again.constraints
    assert prefix == request.constraints[0] and terms == request.constraints[2]
    assert isinstance(span, ExtractiveSpan)
    for name in ("context", "word_start", "active"):
        np.testing.assert_array_equal(getattr(span, name), getattr(_span(), name))
    assert (span.eos_id, span.no_answer_id, span.closed) == (2, 9, False)


def test_a_result_crosses_with_attention_and_scores() -> None:
    attention = np.arange(6, dtype=np.float32).reshape(2, 3)
    output = GenerationOutput(
        hypotheses=(
            Hypothesis((5, 6), (-0.5, -0.25), attention, -0.75, "eos"),
            Hypothesis((7,), (-1.0,), None, -1.0, "length"),
        ),
        status=RequestStatus.FINISHED_EOS,
        queue_seconds=0.01,
        compute_seconds=0.02,
    )
    batch = wire.Batch((wire.finished_message("r1", output),), ())
    message = wire.decode_from_engine(wire.encode(batch))
    assert isinstance(message, wire.Batch)
    (finished,) = message.events
    assert isinstance(finished, wire.Finished)
    again = wire.output_from_wire(finished)
    assert again.status is RequestStatus.FINISHED_EOS and again.queue_seconds == 0.01
    assert again.hypotheses[0].token_ids == (5, 6) and again.hypotheses[1].attention is None
    np.testing.assert_array_equal(again.hypotheses[0].attention, attention)


@pytest.mark.parametrize(
    ("constraint", "wire_form"),
    [
        (ForcedPrefix, wire.PrefixWire),
        (ExtractiveSpan, wire.SpanWire),
        (RequiredTerms, wire.TermsWire),
    ],
)
def test_every_constraint_field_has_a_wire_field(constraint: type, wire_form: type) -> None:
    """A field added to a constraint must cross the process boundary too."""
    assert [f.name for f in dataclasses.fields(constraint)] == list(wire_form.__struct_fields__)


@pytest.mark.parametrize("error", [Overloaded("full"), Expired("late"), Unavailable("gone")])
def test_an_error_crosses_as_the_same_error_type(error: ServiceError) -> None:
    message = wire.decode_from_engine(
        wire.encode(wire.Batch((wire.failed_message("r", error),), ()))
    )
    assert isinstance(message, wire.Batch)
    (failed,) = message.events
    assert isinstance(failed, wire.Failed)
    again = wire.error_from_wire(failed)
    assert type(again) is type(error) and again.message == error.message


def test_an_unknown_error_code_becomes_internal() -> None:
    assert isinstance(wire.error_from_wire(wire.Failed("r", "melted", "?")), InternalError)


@pytest.mark.parametrize(
    "message",
    [
        wire.Hello(0),
        wire.Load(3, "/models/x/1"),
        wire.Retire(3),
        wire.StopSlot(3),
        wire.Shutdown(),
        wire.Ping(7, 1.5),
        wire.Cancel("r1"),
    ],
)
def test_every_control_message_to_the_engine_round_trips(message: msgspec.Struct) -> None:
    assert wire.decode_to_engine(wire.encode(message)) == message


@pytest.mark.parametrize(
    "message",
    [
        wire.Ready(42, "default"),
        wire.Loaded(3, "CPUExecutionProvider"),
        wire.Refused(3, "bad checksum"),
        wire.Stopped(3),
        wire.Pong(7, 1.5, ((3, 0.25),)),
        wire.Batch(
            (wire.Token("r1", 0, 5, -0.5), wire.Failed("r2", "expired", "late")),
            (
                wire.EncoderRun(3, 4, 0.01, 40),
                wire.DecoderStep(3, 4, 0.001),
                wire.Admitted(3, 0.002),
                wire.Left(3, int(RequestStatus.CANCELLED), 5),
                wire.Depth(3, 2, 4),
                wire.Failure(3),
                wire.Dropped(2),
            ),
        ),
    ],
)
def test_every_message_from_the_engine_round_trips(message: msgspec.Struct) -> None:
    assert wire.decode_from_engine(wire.encode(message)) == message


def test_the_engine_configuration_crosses_as_json() -> None:
    config = wire.WorkerConfig(
        group="default",
        address="ipc:///tmp/x.sock",
        parent_pid=1,
        runtime=RuntimeOptions(providers=("cuda", "cpu"), intra_op_threads=1),
        policy="continuous",
        max_queue_size=8,
        policy_config=PolicyConfig(max_batch_size=4, max_queue_delay=0.002),
    )
    assert msgspec.json.decode(msgspec.json.encode(config), type=wire.WorkerConfig) == config


def _submit_with(**changes: object) -> bytes:
    """A valid Submit as a plain list, with some fields replaced (by position)."""
    fields = msgspec.msgpack.decode(wire.encode(wire.submit_message(1, _request(), False)))
    names = wire.Submit.__struct_fields__
    for name, value in changes.items():
        fields[1 + names.index(name)] = value
    return msgspec.msgpack.encode(fields)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xc1",  # never valid MessagePack
        b"not msgpack at all",
        msgspec.msgpack.encode(["submit"]),  # too few fields
        msgspec.msgpack.encode(["launch-missiles", 1]),  # unknown tag
        msgspec.msgpack.encode({"rid": "r1"}),  # a map, not a tagged array
        pickle.dumps(Unavailable("x")),  # pickles are just bytes that do not decode
        _submit_with(source_ids=["object", [4], b"\0" * 32]),  # dtype not allowed
        _submit_with(source_ids=["int64", [5], b"\0" * 32]),  # buffer and shape disagree
        _submit_with(params={"beam_size": 2, "n_best": 3}),  # fails DecodingParams' checks
        _submit_with(slot="one"),  # wrong type
    ],
)
def test_bytes_that_are_not_a_message_are_refused(raw: bytes) -> None:
    assert wire.decode_to_engine(raw) is None
    assert wire.decode_from_engine(raw) is None
