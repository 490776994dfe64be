"""What a run measured: every call's outcome folded into counters and histograms as it ends.

Latencies are of successful calls only, from the *intended* send time (open loop) or the
send time (closed loop) to the reply; failed calls are counted by status code. Memory is
bounded by the run's duration (one small histogram per second), not by its request count.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from seq2seq_client.loadtest.histogram import LatencyHistogram
from seq2seq_client.loadtest.schedule import Phase

OK = "OK"
LATE_SECONDS = 0.010  # an open-loop send later than this after its intended time is "late"


@dataclass(frozen=True)
class Outcome:
    """One call, its times in seconds since the run started."""

    rpc: str  # "Translate", "Summarize" or "Answer"
    phase: Phase  # WARMUP or MEASURED
    intended: float  # when it was due to be sent (closed loop: when it was sent)
    sent: float  # when the call was started
    finished: float  # when the reply or the error arrived
    code: str  # "OK" or a gRPC status code name
    output_tokens: int = 0  # tokens of the best hypothesis (0 on error)
    server_total: float | None = None  # the server's own arrival -> response (Timing)
    server_queue: float | None = None  # the server's arrival -> joining the decode batch


@dataclass
class SecondStats:
    """Calls of the measured window that finished in one second of it."""

    ok: int = 0
    errors: int = 0
    output_tokens: int = 0
    sent: int = 0  # measured calls intended to start in this second
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)


@dataclass
class RunStats:
    """Running totals of one load run; `record` is called once per finished call."""

    calls: dict[Phase, Counter[tuple[str, str]]] = field(
        default_factory=lambda: {Phase.WARMUP: Counter(), Phase.MEASURED: Counter()}
    )  # phase -> (rpc, code) -> calls
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)  # measured, OK
    latency_by_rpc: dict[str, LatencyHistogram] = field(default_factory=dict)
    server_total: LatencyHistogram = field(default_factory=LatencyHistogram)
    server_queue: LatencyHistogram = field(default_factory=LatencyHistogram)
    send_lag: LatencyHistogram = field(default_factory=LatencyHistogram)  # sent - intended
    output_tokens: int = 0  # measured, OK calls
    window_start: float | None = None  # first measured call's intended time
    window_end: float | None = None  # last measured call's finish
    per_second: dict[int, SecondStats] = field(default_factory=dict)  # second -> its calls
    late_sends: int = 0  # measured open-loop sends more than LATE_SECONDS after their time
    dropped: dict[Phase, int] = field(
        default_factory=lambda: {Phase.WARMUP: 0, Phase.MEASURED: 0}
    )  # open loop: not sent because max_in_flight calls were already waiting
    in_flight: int = 0
    client_cpu_seconds: float = 0.0  # this process, whole run

    def started(self, phase: Phase, intended: float) -> None:
        self.in_flight += 1
        if phase is Phase.MEASURED:
            if self.window_start is None:
                self.window_start = intended
            self._second(intended).sent += 1

    def drop(self, phase: Phase, intended: float) -> None:
        self.dropped[phase] += 1
        if phase is Phase.MEASURED and self.window_start is None:
            self.window_start = intended

    def record(self, o: Outcome) -> None:
        self.in_flight -= 1
        self.calls[o.phase][(o.rpc, o.code)] += 1
        if o.phase is not Phase.MEASURED:
            return
        self.window_end = max(self.window_end or o.finished, o.finished)
        lag = o.sent - o.intended
        self.send_lag.record(lag)
        if lag > LATE_SECONDS:
            self.late_sends += 1
        second = self._second(o.finished)
        if o.code != OK:
            second.errors += 1
            return
        latency = o.finished - o.intended
        self.latency.record(latency)
        self.latency_by_rpc.setdefault(o.rpc, LatencyHistogram()).record(latency)
        second.ok += 1
        second.output_tokens += o.output_tokens
        second.latency.record(latency)
        self.output_tokens += o.output_tokens
        if o.server_total is not None:
            self.server_total.record(o.server_total)
        if o.server_queue is not None:
            self.server_queue.record(o.server_queue)

    def _second(self, offset: float) -> SecondStats:
        index = max(0, int(offset - (self.window_start or 0.0)))
        return self.per_second.setdefault(index, SecondStats())

    # ------------------------------------------------------------ totals

    def count(self, phase: Phase, *, ok: bool | None = None) -> int:
        """Finished calls of a phase: all, only OK (ok=True) or only failed (ok=False)."""
        return sum(
            n for (_, code), n in self.calls[phase].items() if ok is None or (code == OK) == ok
        )

    def errors_by_code(self, phase: Phase = Phase.MEASURED) -> dict[str, int]:
        errors: Counter[str] = Counter()
        for (_, code), n in self.calls[phase].items():
            if code != OK:
                errors[code] += n
        return dict(sorted(errors.items()))

    @property
    def window_seconds(self) -> float:
        """From the first measured call's intended time to the last measured reply."""
        if self.window_start is None or self.window_end is None:
            return 0.0
        return max(self.window_end - self.window_start, 0.0)
