"""Runs one EngineCore's step loop on a daemon thread until stopped.

onnxruntime releases the GIL while it computes, so the event loop keeps serving while a
batch decodes. The thread sleeps when the batching policy says there is nothing worth
running yet (idle wait), and wakes when a request arrives.
"""

from __future__ import annotations

import threading

from service.engine.core import EngineCore


class EngineThread:
    def __init__(self, core: EngineCore, name: str, idle_poll_seconds: float = 0.5) -> None:
        self.core = core
        self._stop = threading.Event()
        self._idle_poll = idle_poll_seconds  # longest sleep between checks of the stop flag
        self._thread = threading.Thread(target=self._run, name=f"engine-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        core = self.core
        while not self._stop.is_set():
            if core.queue.closed and not core.has_work:
                break  # closed and drained: checked here, between steps, so nothing is lost
            wait = core.idle_wait()
            if wait is None or wait > 0:
                core.queue.wait(self._idle_poll if wait is None else min(wait, self._idle_poll))
                continue  # re-read the policy: an arrival may have changed its answer
            core.step()
        core.abort_all("the model was unloaded while this request was in flight")

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end (a closed queue ends it once drained)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def finished(self) -> bool:
        """The loop has ended (or never started)."""
        return not self._thread.is_alive()

    def stop(self, timeout: float) -> None:
        """Stop after the current step; anything still queued or running is refused."""
        self._stop.set()
        self.core.queue.wake()
        self._thread.join(timeout)
