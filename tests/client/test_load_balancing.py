"""`dns:///name:port` with round_robin: calls spread over every address the name resolves to.

A name that resolves to two loopback addresses needs a DNS server: a tiny one in this test
answers A queries for `seq2seq.test` with 127.0.0.1 and 127.0.0.2 (and AAAA with nothing).
gRPC's c-ares resolver is pointed at it through the target's authority,
`dns://127.0.0.1:DNSPORT/seq2seq.test:PORT`; with no authority, `dns:///` asks the system's
resolver in exactly the same way. Two real servers listen on the two addresses, same port.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from seq2seq_client import AsyncSeq2SeqClient, Seq2SeqClient
from tests.client.conftest import ServerThread
from tests.conftest import heldout

NAME = "seq2seq.test"
ADDRESSES = ("127.0.0.1", "127.0.0.2")
TYPE_A = 1
CALLS = 12


def _serve_dns(sock: socket.socket, addresses: tuple[str, ...]) -> None:
    """Answer every query (a single question) with A records for `addresses`."""
    while True:
        try:
            query, peer = sock.recvfrom(512)
        except OSError:
            return  # closed
        (query_id,) = struct.unpack(">H", query[:2])
        end = query.index(b"\x00", 12) + 5  # QNAME's zero label, then QTYPE and QCLASS
        (query_type,) = struct.unpack(">H", query[end - 4 : end - 2])
        records = addresses if query_type == TYPE_A else ()
        answers = b"".join(
            b"\xc0\x0c"  # the name: a pointer to the question's QNAME
            + struct.pack(">HHIH", TYPE_A, 1, 30, 4)  # type A, class IN, ttl, rdlength
            + socket.inet_aton(address)
            for address in records
        )
        header = struct.pack(">HHHHHH", query_id, 0x8180, 1, len(records), 0, 0)
        sock.sendto(header + query[12:end] + answers, peer)


@pytest.fixture(scope="module")
def dns_port() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=_serve_dns, args=(sock, ADDRESSES), daemon=True)
    thread.start()
    yield int(sock.getsockname()[1])
    sock.close()


@pytest.fixture(scope="module")
def two_servers(translate_only) -> Iterator[tuple[ServerThread, ServerThread]]:
    with ExitStack() as servers:
        first = servers.enter_context(
            ServerThread(model_repository=translate_only, host=ADDRESSES[0])
        )
        second = servers.enter_context(  # the same port on the second address
            ServerThread(model_repository=translate_only, host=ADDRESSES[1], port=first.port)
        )
        yield first, second


def test_round_robin_reaches_both_servers(two_servers, dns_port: int) -> None:
    first, second = two_servers
    text = heldout("translate-en-fr")[1]["source"]
    before = (first.calls("Translate"), second.calls("Translate"))
    target = f"dns://127.0.0.1:{dns_port}/{NAME}:{first.port}"
    with Seq2SeqClient(target, timeout=60) as client:
        results = {client.translate(text, "fr").text for _ in range(CALLS)}
    assert len(results) == 1  # same model, same greedy output from either server
    counts = (first.calls("Translate") - before[0], second.calls("Translate") - before[1])
    assert sum(counts) == CALLS
    assert min(counts) >= 2, counts


async def test_async_client_balances_too(two_servers, dns_port: int) -> None:
    first, second = two_servers
    before = (first.calls("ListModels"), second.calls("ListModels"))
    target = f"dns://127.0.0.1:{dns_port}/{NAME}:{first.port}"
    async with AsyncSeq2SeqClient(target, timeout=60) as client:
        for _ in range(CALLS):
            await client.list_models()
    counts = (first.calls("ListModels") - before[0], second.calls("ListModels") - before[1])
    assert sum(counts) == CALLS
    assert min(counts) >= 2, counts


def test_pick_first_sticks_to_one_server(two_servers, dns_port: int) -> None:
    """The contrast: without round_robin every call goes to the same address."""
    first, second = two_servers
    before = (first.calls("ListModels"), second.calls("ListModels"))
    target = f"dns://127.0.0.1:{dns_port}/{NAME}:{first.port}"
    with Seq2SeqClient(target, load_balancing="pick_first", timeout=60) as client:
        for _ in range(CALLS):
            client.list_models()
    counts = (first.calls("ListModels") - before[0], second.calls("ListModels") - before[1])
    assert sorted(counts) == [0, CALLS]


def test_a_draining_server_gets_no_more_calls(translate_only, dns_port: int) -> None:
    """The SDK watches each server's health: once one reports NOT_SERVING (it drains after
    SIGTERM), round robin leaves it out, so no call can race with its shutdown."""
    with ExitStack() as servers:
        first = servers.enter_context(
            ServerThread(model_repository=translate_only, host=ADDRESSES[0])
        )
        second = servers.enter_context(
            ServerThread(model_repository=translate_only, host=ADDRESSES[1], port=first.port)
        )
        target = f"dns://127.0.0.1:{dns_port}/{NAME}:{first.port}"
        with Seq2SeqClient(target, timeout=60) as client:
            for _ in range(CALLS):
                client.list_models()
            assert first.calls("ListModels") >= 2  # both servers were in the rotation
            assert first.server is not None
            first.run(first.server.health.enter_graceful_shutdown())
            # The health watch reports asynchronously: call until 2 * CALLS calls in a row
            # missed the draining server (round robin without health alternates forever).
            missed, deadline = 0, time.monotonic() + 10
            while missed < 2 * CALLS and time.monotonic() < deadline:
                before = first.calls("ListModels")
                client.list_models()
                missed = missed + 1 if first.calls("ListModels") == before else 0
        assert missed == 2 * CALLS
        assert second.calls("ListModels") >= 2 * CALLS
