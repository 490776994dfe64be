"""A follower front end: `python -m service.server.follower_main` (a FollowerConfig on stdin).

Started by the server (service/api/frontends.py) when `frontend_processes` > 1; serves
gRPC on the server's port with models and engines the server tells it about, and exits
with it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import msgspec

from service.lifeline import die_with_parent, exit_when_parent_goes
from service.logging_setup import configure_logging
from service.server.frontends import FollowerConfig, FollowerRole
from service.server.server import serve
from service.settings import Settings


async def _run(settings: Settings, role: FollowerRole) -> None:
    exit_when_parent_goes(asyncio.get_running_loop(), f"front end {role.index}")
    await serve(settings, follower=role)


def main() -> int:
    try:
        config = msgspec.json.decode(sys.stdin.buffer.readline(), type=FollowerConfig)
    except msgspec.DecodeError as exc:
        print(f"seq2seq front end: bad configuration on stdin: {exc}", file=sys.stderr)
        return 2
    die_with_parent(config.parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server sends SIGTERM when it drains
    settings = Settings(
        **{
            **config.settings,
            "port": config.port,
            "metrics_port": 0,  # the server's /metrics carries our figures
            "frontend_processes": 1,
            "http_enabled": False,  # the HTTP front end runs in the server process only
            "repository_poll_interval": 0.0,
        }
    )
    configure_logging(settings.log_level, settings.log_format)
    logging.getLogger(__name__).info("front end %d serving on port %d", config.index, config.port)
    asyncio.run(_run(settings, FollowerRole(config.index, config.control)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
