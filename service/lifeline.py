"""Child processes of the server (engine cores, follower front ends) die with it.

Two ways, because each misses a case: PR_SET_PDEATHSIG asks the kernel to SIGKILL the
child when the parent dies (Linux; it fires when the parent *thread* that started the
child ends, and not at all when the parent died before the call), and the parent's pipe
on the child's stdin reaches end-of-file when the parent is gone, however it ended.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when the parent dies; exit now if it has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # it died before the request above took effect
        os._exit(0)


def parent_gone(fd: int) -> bool:
    """Read what is ready on the parent's pipe; True at its end (the parent is gone)."""
    return not os.read(fd, 4096)


def exit_when_parent_goes(loop: asyncio.AbstractEventLoop, what: str) -> None:
    """Exit at once when stdin (the parent's pipe) reaches its end."""
    fd = sys.stdin.fileno()

    def readable() -> None:
        if parent_gone(fd):
            log.warning("%s: the server process is gone; exiting", what)
            os._exit(0)

    loop.add_reader(fd, readable)
