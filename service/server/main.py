"""`seq2seq-serve`: start the gRPC (and HTTP/JSON) server on a model repository."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from service.logging_setup import configure_logging
from service.server.server import StartupError, serve
from service.settings import Settings, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seq2seq-serve",
        description="Serve attention seq2seq bundles over gRPC and HTTP/JSON "
        "(Translate, Summarize, Answer, Detect; LibreTranslate's API).",
    )
    parser.add_argument("--config", type=Path, help="YAML or JSON settings file")
    parser.add_argument("--model-repository", type=Path, help="folder of <name>/<version>/ bundles")
    parser.add_argument("--host", help="gRPC bind address")
    parser.add_argument("--port", type=int, help="gRPC port (0 = any free port)")
    parser.add_argument("--metrics-port", type=int, help="Prometheus port (0 = any free port)")
    parser.add_argument("--http-host", help="HTTP/JSON bind address")
    parser.add_argument("--http-port", type=int, help="HTTP/JSON port (0 = any free port)")
    parser.add_argument("--providers", help="comma list in order of preference, e.g. cuda,cpu")
    parser.add_argument("--max-batch-size", type=int)
    parser.add_argument("--max-queue-delay", type=float, help="seconds")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--log-format", choices=["json", "text"])
    return parser


def log_settings(settings: Settings) -> None:
    """The effective settings as one structured field, `settings` (tokens masked)."""
    logging.getLogger(__name__).info("settings", extra={"settings": settings.describe()})


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {
        key: value
        for key, value in {
            "model_repository": args.model_repository,
            "host": args.host,
            "port": args.port,
            "metrics_port": args.metrics_port,
            "http_host": args.http_host,
            "http_port": args.http_port,
            "providers": tuple(args.providers.split(",")) if args.providers else None,
            "max_batch_size": args.max_batch_size,
            "max_queue_delay": args.max_queue_delay,
            "log_level": args.log_level,
            "log_format": args.log_format,
        }.items()
        if value is not None
    }
    try:
        config = args.config or (Path(env) if (env := os.environ.get("SEQ2SEQ_CONFIG")) else None)
        settings = load_settings(config, **overrides)
    except (ValidationError, ValueError) as exc:
        print(f"seq2seq-serve: invalid settings: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    log_settings(settings)
    try:
        asyncio.run(serve(settings))
    except StartupError as exc:
        print(f"seq2seq-serve: {exc}", file=sys.stderr)
        return exc.exit_status
    return 0


if __name__ == "__main__":
    sys.exit(main())
