"""Runs one EngineCore's step loop on a daemon thread until stopped.

onnxruntime releases the GIL while it computes, so whatever else runs in the process (the
event loop in thread mode, the IPC thread in an engine process) keeps going while a batch
decodes. The thread sleeps when the batching policy says there is nothing worth running
yet (idle wait), and wakes when a request arrives.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from service.engine.core import EngineCore


def _nothing() -> None:
    return None


class EngineThread:
    def __init__(
        self,
        core: EngineCore,
        name: str,
        idle_poll_seconds: float = 0.5,
        after_step: Callable[[], None] = _nothing,
        on_exit: Callable[[], None] = _nothing,
    ) -> None:
        """`after_step` runs on this thread after every step and after the final refusal
        (an engine process sends what the step produced); `on_exit` runs last."""
        self.core = core
        self._stop = threading.Event()
        self._idle_poll = idle_poll_seconds  # longest sleep between checks of the stop flag
        self._after_step = after_step
        self._on_exit = on_exit
        self.step_started: float | None = None  # monotonic start of the running step
        self._thread = threading.Thread(target=self._run, name=f"engine-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        core = self.core
        try:
            while not self._stop.is_set():
                if core.queue.closed and not core.has_work:
                    break  # closed and drained: checked here, between steps, so nothing is lost
                wait = core.idle_wait()
                if wait is None or wait > 0:
                    core.queue.wait(self._idle_poll if wait is None else min(wait, self._idle_poll))
                    continue  # re-read the policy: an arrival may have changed its answer
                self.step_started = time.monotonic()
                core.step()
                self.step_started = None
                self._after_step()
            core.abort_all("the model was unloaded while this request was in flight")
            self._after_step()
        finally:
            self._on_exit()

    def busy_seconds(self, now: float) -> float:
        """How long the current step has run (0 between steps): a hung step grows."""
        started = self.step_started
        return 0.0 if started is None else max(0.0, now - started)

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end (a closed queue ends it once drained)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def finished(self) -> bool:
        """The loop has ended (or never started)."""
        return not self._thread.is_alive()

    def request_stop(self) -> None:
        """Stop after the current step without waiting; what is left is refused."""
        self._stop.set()
        self.core.queue.wake()

    def stop(self, timeout: float) -> None:
        """Stop after the current step; anything still queued or running is refused."""
        self.request_stop()
        self._thread.join(timeout)
