"""All server configuration in one validated object.

Sources, highest priority first: command-line flags (via `service.server.main`), environment
variables prefixed `SEQ2SEQ_`, a YAML or JSON file named by `--config` / `SEQ2SEQ_CONFIG`,
then the defaults below. Components receive the values they need as arguments.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL_REPOSITORY = Path(__file__).resolve().parent.parent / "models"


class Settings(BaseSettings):
    """Server settings; every duration is in seconds, every size in bytes or tokens."""

    model_config = SettingsConfigDict(env_prefix="SEQ2SEQ_", extra="forbid", frozen=True)

    model_repository: Path = Field(
        default=DEFAULT_MODEL_REPOSITORY,
        description="Folder of bundles laid out as <name>/<version>/bundle.json.",
    )
    host: str = Field(default="0.0.0.0", description="Address the gRPC port binds to.")
    port: int = Field(default=50051, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    metrics_host: str = Field(default="0.0.0.0", description="Address of the Prometheus port.")
    metrics_port: int = Field(
        default=9090, ge=0, le=65535, description="Prometheus HTTP port; 0 picks a free one."
    )
    http_enabled: bool = Field(
        default=True, description="Serve the HTTP/JSON front end (and LibreTranslate's API)."
    )
    http_host: str = Field(default="0.0.0.0", description="Address the HTTP port binds to.")
    http_port: int = Field(
        default=8000, ge=0, le=65535, description="HTTP/JSON port; 0 picks a free one."
    )
    max_document_chars: int = Field(
        default=100_000,
        ge=1,
        description="Longest text of a Translate call, in characters; it is split into "
        "sentences, so it may be far above a model's source limit.",
    )
    max_texts: int = Field(default=128, ge=1, description="Most texts in one Translate call.")
    document_concurrency: int = Field(
        default=256,
        ge=1,
        description="Sentences of one call in the model's queue or batch at once (the rest "
        "wait their turn). A document longer than this finishes with a tail: its last sentences "
        "start only as others end (a 200-sentence document measured 0.4-0.6x the throughput of "
        "200 separate calls at 64, 0.65-0.9x at 192, 1.1-1.25x at 256).",
    )
    max_file_bytes: int = Field(
        default=1_048_576, ge=1, description="Largest file /translate_file accepts, in bytes."
    )
    providers: tuple[Literal["tensorrt", "cuda", "cpu"], ...] = Field(
        default=("cuda", "cpu"),
        description="onnxruntime execution providers in order of preference "
        "(tensorrt is optional and needs TensorRT's libraries).",
    )
    require_gpu: bool = Field(
        default=False, description="Refuse to start when a model cannot run on CUDA."
    )
    cuda_device_id: int = Field(default=0, ge=0, description="CUDA device ordinal.")
    cuda_mem_limit: int = Field(
        default=0,
        ge=0,
        description="Bytes the CUDA memory arena may take per session; 0 = no limit.",
    )
    cuda_use_tf32: bool = Field(
        default=True,
        description="Let CUDA use TF32 matrix products (faster on Ampere and newer; log-probs "
        "differ from the CPU by about 1e-3).",
    )
    io_binding: Literal["on", "off"] = Field(
        default="off",
        description="Bind decoder inputs and outputs to the device so states stay there between "
        "steps. Off by default: on an H200 with the default models it measured 0.7-0.95x the "
        "unbound throughput (docs/gpu.md).",
    )
    intra_op_threads: int = Field(
        default=0, ge=0, description="onnxruntime intra-op threads per session; 0 = its default."
    )
    inter_op_threads: int = Field(
        default=0, ge=0, description="onnxruntime inter-op threads per session; 0 = its default."
    )
    max_batch_size: int = Field(
        default=32, ge=1, le=1024, description="Most sequences decoded together per model."
    )
    max_queue_delay: float = Field(
        default=0.002,
        ge=0.0,
        le=1.0,
        description="Seconds an idle model waits for more requests before it runs a batch.",
    )
    continuous_batching: bool = Field(
        default=True,
        description="Admit waiting requests into the running decode batch at every step "
        "(iteration-level batching); False = static batching: a batch runs to completion "
        "before the next is formed (for comparison only).",
    )
    max_bypass_delay: float = Field(
        default=0.05,
        ge=0.0,
        le=10.0,
        description="Seconds a waiting request that needs more batch rows than are free (a "
        "large beam) may be passed over by later requests that fit; after that, admission "
        "waits until it fits, so it is never starved.",
    )
    engine_mode: Literal["process", "thread"] = Field(
        default="process",
        description="Where models are decoded: 'process' = engine-core processes (one per "
        "model group) beside the front end, talking over ZMQ; 'thread' = an engine thread "
        "per model inside the server process (starts faster; shares the front end's GIL).",
    )
    engine_groups: dict[str, str] = Field(
        default_factory=dict,
        description="Model name -> engine process group; every model not named is in group "
        "'default', so by default one engine process holds every model (process mode).",
    )
    engine_heartbeat_interval: float = Field(
        default=1.0, gt=0.0, le=60.0, description="Seconds between heartbeats to an engine."
    )
    engine_heartbeat_timeout: float = Field(
        default=10.0,
        gt=0.0,
        description="Seconds without a heartbeat answer, or of one decoder step, after which "
        "an engine process counts as hung and is killed and restarted.",
    )
    engine_start_timeout: float = Field(
        default=120.0,
        gt=0.0,
        description="Seconds a new engine process gets to start and load its bundles.",
    )
    engine_restart_backoff: float = Field(
        default=0.5,
        ge=0.0,
        description="Seconds before the first restart of a dead engine process (doubled "
        "after each consecutive failure), and before a dead follower front end is started "
        "again.",
    )
    engine_restart_backoff_max: float = Field(
        default=10.0,
        ge=0.0,
        description="Longest restart delay; an engine process that stayed up this long "
        "resets the count of consecutive failures.",
    )
    engine_max_restarts: int = Field(
        default=10,
        ge=0,
        description="Consecutive failed restarts after which an engine's models stay "
        "unavailable (health NOT_SERVING); 0 = keep trying.",
    )
    frontend_processes: int = Field(
        default=0,
        ge=0,
        le=64,
        description="gRPC front-end processes sharing the port (SO_REUSEPORT), this one "
        "included; 0 = one per 4 usable cores, at least 1 (so 1 on 2 cores). More than 1 "
        "needs engine_mode 'process'.",
    )
    max_queue_size: int = Field(
        default=256, ge=1, description="Requests waiting per model before RESOURCE_EXHAUSTED."
    )
    max_input_chars: int = Field(
        default=4000, ge=1, description="Longest text (or context) accepted, in characters."
    )
    max_beam_size: int = Field(default=8, ge=1, le=64, description="Largest beam accepted.")
    max_concurrent_rpcs: int = Field(
        default=1024, ge=1, description="In-flight RPCs before gRPC answers RESOURCE_EXHAUSTED."
    )
    max_message_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Largest gRPC message accepted, in bytes."
    )
    max_connection_age: float = Field(
        default=0.0,
        ge=0.0,
        description="Seconds after which the server asks a client to reconnect (GOAWAY), so "
        "clients of a headless Service re-resolve and reach new pods; 0 = never.",
    )
    max_connection_age_grace: float = Field(
        default=30.0,
        ge=0.0,
        description="Seconds in-flight calls get to finish on a connection closed for its age.",
    )
    drain_grace_period: float = Field(
        default=20.0, ge=0.0, description="Seconds in-flight calls get to finish on SIGTERM."
    )
    drain_quiet_period: float = Field(
        default=0.5,
        ge=0.0,
        description="Seconds without a new call a draining server waits for (answering "
        "UNAVAILABLE meanwhile, within drain_grace_period) before it closes its gRPC port; "
        "gRPC cancels calls that race with the close.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level."
    )
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="Log lines as one JSON object each (json) or human-readable text.",
    )
    default_versions: dict[str, int] = Field(
        default_factory=dict,
        description="Model name -> version a request that names no version gets "
        "(default: the newest loaded version).",
    )
    repository_poll_interval: float = Field(
        default=0.0,
        ge=0.0,
        description="Seconds between rescans of the model repository for added, changed "
        "and removed bundles; 0 turns hot reload off.",
    )
    allow_empty_repository: bool = Field(
        default=False,
        description="Start even when no bundle loads (the repository folder is missing or "
        "empty, or every bundle is refused), serving nothing until hot reload adds one; "
        "needs repository_poll_interval > 0. Off: such a start stops with exit status 2.",
    )
    tls_cert_file: Path | None = Field(
        default=None,
        description="PEM server certificate (chain), set together with tls_key_file to "
        "serve TLS; None = plaintext.",
    )
    tls_key_file: Path | None = Field(
        default=None, description="PEM private key of tls_cert_file; None = plaintext."
    )
    tls_client_ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle that client certificates must chain to; set = mutual TLS "
        "required, None = no client certificate asked.",
    )
    auth_tokens_file: Path | None = Field(
        default=None,
        description="File of bearer tokens, one per line (blank lines and lines starting "
        "with # are skipped); with auth_tokens, a non-empty set turns authentication on.",
    )
    auth_tokens: tuple[str, ...] = Field(
        default=(),
        repr=False,  # secrets: never in a repr or a log line
        description="Bearer tokens accepted in 'authorization: Bearer <token>' metadata "
        "(environment: a JSON list); empty together with auth_tokens_file = no authentication.",
    )
    auth_exempt_services: tuple[str, ...] = Field(
        default=("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"),
        description="Full gRPC service names callable without a token.",
    )

    @model_validator(mode="after")
    def _auth_tokens_sane(self) -> Settings:
        if self.auth_tokens_file is not None and not self.auth_tokens_file.is_file():
            raise ValueError(f"auth_tokens_file {self.auth_tokens_file} is not a file")
        for token in self.auth_tokens:
            if not token or token != token.strip():
                raise ValueError("auth_tokens must be non-empty, without surrounding spaces")
        return self

    def bearer_tokens(self) -> tuple[str, ...]:
        """Every accepted token: `auth_tokens` then the lines of `auth_tokens_file`."""
        tokens = list(self.auth_tokens)
        if self.auth_tokens_file is not None:
            for line in self.auth_tokens_file.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    tokens.append(line)
        return tuple(dict.fromkeys(tokens))

    @model_validator(mode="after")
    def _tls_files_consistent(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be set together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file (mutual TLS) needs tls_cert_file and tls_key_file")
        for name in ("tls_cert_file", "tls_key_file", "tls_client_ca_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name} {path} is not a file")
        return self

    @model_validator(mode="after")
    def _empty_start_needs_hot_reload(self) -> Settings:
        if self.allow_empty_repository and self.repository_poll_interval <= 0:
            raise ValueError(
                "allow_empty_repository needs repository_poll_interval > 0 (hot reload), "
                "or the server would serve nothing for good"
            )
        return self

    @model_validator(mode="after")
    def _providers_not_empty(self) -> Settings:
        if not self.providers:
            raise ValueError("providers must name at least one of: cuda, cpu")
        if self.require_gpu and not {"cuda", "tensorrt"} & set(self.providers):
            raise ValueError("require_gpu needs 'cuda' (or 'tensorrt') in providers")
        return self

    @model_validator(mode="after")
    def _frontends_need_engine_processes(self) -> Settings:
        if self.frontend_processes > 1 and self.engine_mode != "process":
            raise ValueError("frontend_processes > 1 needs engine_mode 'process'")
        return self

    def frontend_count(self) -> int:
        """Front-end processes to run (resolving 0 = one per 4 usable cores, at least 1)."""
        if self.frontend_processes:
            return self.frontend_processes
        if self.engine_mode != "process":
            return 1
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        return max(1, (usable or os.cpu_count() or 1) // 4)

    def describe(self) -> dict[str, Any]:
        """The settings as printed at start-up; tokens are masked (only their count shows)."""
        described: dict[str, Any] = json.loads(self.model_dump_json())
        described["auth_tokens"] = ["***"] * len(self.auth_tokens)
        return described


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from an optional YAML/JSON file, the environment and explicit overrides.

    Overrides (command-line flags) win over the environment, which wins over the file.
    """
    file_values: dict[str, Any] = {}
    if config_file is not None:
        try:
            text = config_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read config file {config_file}: {exc}") from exc
        loaded = yaml.safe_load(text) if text.strip() else {}
        if not isinstance(loaded, dict):
            raise ValueError(f"config file {config_file} must hold a mapping of settings")
        file_values = loaded
    env_values = Settings().model_dump(exclude_unset=True)
    return Settings(**{**file_values, **env_values, **overrides})


# --- docs/configuration.md is generated from the fields above -------------------------------
CONFIGURATION_DOC = Path("docs") / "configuration.md"
_DOC_INTRO = """# Configuration

One validated settings object (`service/settings.py`). Sources, highest priority first:
command-line flags (`seq2seq-serve --help`), environment variables `SEQ2SEQ_<NAME>`, a YAML
or JSON file given by `--config FILE` or `SEQ2SEQ_CONFIG`, then the defaults. Lists and maps
are JSON in the environment. The effective settings are logged at start-up as one structured
field of one log line (`{"message": "settings", "settings": {...}}`, tokens masked).

This page is generated from the settings' own descriptions: `python -m service.settings
--write` (a test fails when it is stale).
"""
_DOC_DEFAULTS = {"model_repository": "`models/` of this checkout"}


def _doc_default(name: str, value: Any) -> str:
    if name in _DOC_DEFAULTS:
        return _DOC_DEFAULTS[name]
    if value is None:
        return "none"
    shown = json.dumps(list(value) if isinstance(value, tuple) else value)
    return f"`{shown.strip(chr(34)) if isinstance(value, str) else shown}`"


def configuration_markdown() -> str:
    """The settings table: name, environment variable, default, what it does."""
    rows = ["| setting | environment | default | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        structured = isinstance(default, tuple | dict)
        variable = f"`SEQ2SEQ_{name.upper()}`" + (" (JSON)" if structured else "")
        meaning = (field.description or "").replace("|", "\\|").replace("<", "&lt;")
        rows.append(f"| `{name}` | {variable} | {_doc_default(name, default)} | {meaning} |")
    return _DOC_INTRO + "\n" + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the configuration page, write it (--write), or check it is current (--check)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m service.settings", description=main.__doc__)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help=f"write {CONFIGURATION_DOC}")
    action.add_argument(
        "--check", action="store_true", help=f"fail if {CONFIGURATION_DOC} is stale"
    )
    args = parser.parse_args(argv)
    page = configuration_markdown()
    target = Path(__file__).resolve().parents[1] / CONFIGURATION_DOC
    if args.write:
        target.write_text(page, encoding="utf-8")
    elif args.check:
        if not target.is_file() or target.read_text(encoding="utf-8") != page:
            print(f"{CONFIGURATION_DOC} is stale: run python -m service.settings --write")
            return 1
    else:
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
