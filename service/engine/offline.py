"""The offline API: load a bundle, decode a list of sources, get hypotheses.

The model is CTranslate2's `Translator.translate_batch`: no gRPC, no asyncio, no threads;
every decoding option is a keyword with the same name and default as the public API's
`DecodingOptions`. Sources go through the same engine core (continuous batching, every
strategy) as served requests, so benchmarks and batch jobs measure what the server runs.

    engine = Seq2SeqEngine("models/translate-en-fr/1", intra_op_threads=2)
    results = engine.generate_batch(["A tool to compress files"], beam_size=4, n_best=2)
    print(results[0].hypotheses[0].text)
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from service.engine.core import EngineCore, EngineObserver
from service.engine.output_text import TextHypothesis, decode_output
from service.engine.policy import PolicyConfig, make_policy
from service.engine.preparation import (
    encode_source,
    model_limits,
    new_request,
    source_of_ids,
)
from service.engine.queue import RequestQueue
from service.engine.repository import LoadedBundle, load_bundle
from service.engine.requests import GenerationOutput, Request, TokenEvent
from service.engine.runtime import RuntimeOptions
from service.errors import ServiceError
from service.params import DecodingParams, ModelLimits


@dataclass(frozen=True)
class GenerationResult:
    hypotheses: tuple[TextHypothesis, ...]  # n-best, best first
    source_ids: tuple[int, ...]  # EOS last
    answerable: bool  # False: an answer model said the context lacks the answer
    queue_seconds: float  # submitted -> admitted into the decode batch
    compute_seconds: float  # encoder + decoder time of the batches it was part of

    @property
    def best(self) -> TextHypothesis:
        return self.hypotheses[0]


class _Collector:
    """A RequestListener that keeps the one result (or error) of a request."""

    def __init__(self) -> None:
        self.output: GenerationOutput | None = None
        self.error: ServiceError | None = None

    def on_token(self, event: TokenEvent) -> None:
        pass

    def on_finish(self, output: GenerationOutput) -> None:
        self.output = output

    def on_error(self, error: ServiceError) -> None:
        self.error = error


class Seq2SeqEngine:
    """One bundle, decoded on the calling thread."""

    def __init__(
        self,
        bundle_dir: str | Path,
        *,
        providers: Sequence[str] = ("cpu",),
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        cuda_device_id: int = 0,
        io_binding: bool | None = None,
        max_batch_size: int = 32,
        batching: str = "continuous",
        max_beam_size: int = 16,
        observer: EngineObserver | None = None,
        bundle: LoadedBundle | None = None,
    ) -> None:
        """`bundle`: an already loaded bundle (then bundle_dir and the runtime options are
        not used); see `from_bundle`."""
        self.bundle: LoadedBundle = bundle or load_bundle(
            Path(bundle_dir),
            RuntimeOptions(
                providers=tuple(providers),
                cuda_device_id=cuda_device_id,
                intra_op_threads=intra_op_threads,
                inter_op_threads=inter_op_threads,
                io_binding=io_binding,
            ),
        )
        self.manifest = self.bundle.manifest
        self.tokenizer = self.bundle.tokenizer
        self.provider = self.bundle.runtime.provider
        self._batching = batching
        self._max_batch_size = max_batch_size
        self._observer = observer
        self.limits: ModelLimits = model_limits(
            self.manifest, max_beam_size=max_beam_size, max_batch_size=max_batch_size
        )
        self._ids = itertools.count()

    @classmethod
    def from_bundle(cls, bundle: LoadedBundle, **settings: object) -> Seq2SeqEngine:
        """An engine over a bundle loaded elsewhere (e.g. with an instrumented runtime)."""
        return cls(bundle.path, bundle=bundle, **settings)  # type: ignore[arg-type]

    def encode(self, text: str) -> tuple[int, ...]:
        """Source ids of a text (EOS appended), refused when over the model's limit."""
        return tuple(int(i) for i in encode_source(self.bundle, text, "source").ids)

    def generate_batch(
        self,
        sources: Sequence[str] | Sequence[Sequence[int]],
        params: DecodingParams | None = None,
        **options: object,
    ) -> list[GenerationResult]:
        """Decode every source (texts, or token ids with EOS last) with one set of options.

        Options are DecodingParams' fields as keywords (beam_size, n_best,
        max_output_tokens, min_output_tokens, length_penalty, temperature, top_k, top_p,
        seed, return_attention, return_scores), or a ready `params`. All sources share the
        engine's continuous batch of `max_batch_size` rows. Raises the first request's
        ServiceError if any request fails.
        """
        if params is not None and options:
            raise TypeError("pass either params or keyword options, not both")
        resolved = (params or DecodingParams(**options)).for_model(self.limits)  # type: ignore[arg-type]
        prepared = [
            encode_source(self.bundle, s, "source") if isinstance(s, str) else source_of_ids(s)
            for s in sources
        ]
        core = EngineCore(
            self.bundle.runtime,
            make_policy(self._batching, PolicyConfig(self._max_batch_size, 0.0)),
            RequestQueue(max_size=max(1, len(prepared))),
            self._observer,
        )
        collectors = [_Collector() for _ in prepared]
        now = time.monotonic()
        requests = [
            new_request(
                self.bundle,
                source,
                resolved,
                request_id=f"offline-{next(self._ids)}",
                listener=collector,
                arrival=now,
            )
            for source, collector in zip(prepared, collectors, strict=True)
        ]
        for request in requests:
            core.submit(request)
        while core.has_work:
            core.step()
        return [self._result(r, c) for r, c in zip(requests, collectors, strict=True)]

    def _result(self, request: Request, collector: _Collector) -> GenerationResult:
        if collector.error is not None:
            raise collector.error
        output = collector.output
        assert output is not None, "the engine finished without answering a request"
        decoded = decode_output(
            output,
            self.tokenizer,
            self.manifest,
            request.params,
            request.terms,
        )
        return GenerationResult(
            hypotheses=decoded.hypotheses,
            source_ids=tuple(int(i) for i in request.source_ids),
            answerable=decoded.answerable,
            queue_seconds=output.queue_seconds,
            compute_seconds=output.compute_seconds,
        )
