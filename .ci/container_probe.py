"""Runs INSIDE the serving container (its own Python, `podman exec -i NAME python3 - <`):
waits for health, calls every RPC once over loopback and reads /metrics. Prints one line
per check; exits non-zero at the first failure. Imports only what the image ships."""

from __future__ import annotations

import errno
import os
import sys
import time
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc

TARGET = "127.0.0.1:50051"
METRICS = "http://127.0.0.1:9090/metrics"
SERVICE = "seq2seq.v1.Seq2Seq"
ANSWER = pb.AnswerRequest(
    question="Who maintains xfonts-terminus?",
    context="xfonts-terminus is a Debian package in the fonts section. "
    "It is maintained by Anton Zinoviev.",
)
TRANSLATE = pb.TranslateRequest(text="A tool to compress files", target_language="fr")
SUMMARIZE = pb.SummarizeRequest(
    text="NaCl is a new easy-to-use high-speed software library for network communication, "
    "encryption, decryption, signatures, etc."
)


def check(name: str, ok: bool, detail: object) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)
    if not ok:
        sys.exit(1)


def confinement() -> None:
    """What the pod's securityContext and the network promise, seen from inside."""
    check("uid", (os.getuid(), os.getgid()) == (10001, 10001), (os.getuid(), os.getgid()))
    status = Path("/proc/self/status").read_text()
    effective = int(next(x for x in status.splitlines() if x.startswith("CapEff:")).split()[1], 16)
    check("capabilities", effective == 0, f"CapEff {effective:#x}")
    try:
        Path("/probe").write_text("x")
        check("read-only root", False, "/probe was written")
    except OSError as error:
        check("read-only root", error.errno == errno.EROFS, error.strerror)
    interfaces = sorted(os.listdir("/sys/class/net"))
    check("network", interfaces == ["lo"], interfaces)


def wait_serving(channel: grpc.Channel, seconds: float) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + seconds
    while True:
        try:
            statuses = [
                health.Check(health_pb2.HealthCheckRequest(service=s), timeout=5).status
                for s in ("", SERVICE)
            ]
            if all(s == health_pb2.HealthCheckResponse.SERVING for s in statuses):
                check("health", True, "SERVING for '' and " + SERVICE)
                return
        except grpc.RpcError as error:
            statuses = [error.code()]
        if time.monotonic() > deadline:
            check("health", False, statuses)
        time.sleep(0.5)


def main() -> None:
    confinement()
    with grpc.insecure_channel(TARGET) as channel:
        wait_serving(channel, float(sys.argv[1]) if len(sys.argv) > 1 else 120)
        stub = pb_grpc.Seq2SeqStub(channel)
        models = stub.ListModels(pb.ListModelsRequest(), timeout=10).models
        check("ListModels", len(models) >= 1, sorted(f"{m.name} v{m.version}" for m in models))
        for rpc, request in (("Translate", TRANSLATE), ("Summarize", SUMMARIZE)):
            reply = getattr(stub, rpc)(request, timeout=30)
            check(rpc, bool(reply.hypotheses[0].text), reply.hypotheses[0].text)
            events = list(getattr(stub, rpc + "Stream")(request, timeout=30))
            final = events[-1].result.hypotheses[0].text
            check(rpc + "Stream", final == reply.hypotheses[0].text, f"{len(events)} events")
        answer = stub.Answer(ANSWER, timeout=30)
        check("Answer", bool(answer.model.name), answer.answer or "(not in the context)")
        events = list(stub.AnswerStream(ANSWER, timeout=30))
        check("AnswerStream", events[-1].answer_result.answer == answer.answer, len(events))
        check("provider", answer.model.provider == "CPUExecutionProvider", answer.model.provider)
    text = urllib.request.urlopen(METRICS, timeout=10).read().decode()
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    info = [line for line in lines if line.startswith("seq2seq_model_info{")]
    check("/metrics model_info", len(info) == len(models), f"{len(info)} models")
    handled = [line for line in lines if line.startswith("grpc_server_handled_total{")]
    check("/metrics grpc_server_handled_total", len(handled) >= 7, f"{len(handled)} series")


if __name__ == "__main__":
    main()
