"""The one validated decoding-parameters type, from the protocol converter to the strategy.

Every decoding option a caller may set lives here, with the API's field names, its default
and its range check; every layer reads it and none owns it. `DecodingParams(...)` validates
what is model-independent; `for_model` resolves the defaults that depend on the model (the
output limit) and checks the rest. The protocols derive their options from its fields
(`from_options`, `OPTION_NAMES`): a new option is one field here with its check, its proto
field, the client's `DecodeOptions` field and the code that reads it (docs/architecture.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from service.bundle import DecodingDefaults
from service.errors import InvalidArgument

OUR_DEFAULTS = DecodingDefaults()  # our own models' (the manifest's default)
_FIELD = "options."  # errors name the request field, e.g. "options.top_p"
MAX_OPTION_CHARS = 1000  # longest target_prefix, protected term or glossary term
MAX_TERMS = 64  # most protected terms plus glossary entries per request


def _invalid(name: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{_FIELD}{name} {message}", field=_FIELD + name)


@dataclass(frozen=True)
class ModelLimits:
    """What a model and the server allow; `for_model` checks options against it."""

    max_output_tokens: int  # the model's max_target_length
    max_beam_size: int  # the server's cap
    max_batch_size: int  # a beam needs this many rows at most
    has_attention: bool = True  # False for the no-attention baseline
    defaults: DecodingDefaults = OUR_DEFAULTS  # the model's (bundle manifest)


@dataclass(frozen=True)
class DecodingParams:
    """How to decode one request. Zero / None mean "the default" as in the public API."""

    beam_size: int = 1  # 0 or 1 = no beam search
    n_best: int = 1  # hypotheses returned, <= beam_size; 0 = 1
    max_output_tokens: int = 0  # most generated tokens (EOS included); 0 = the model's limit
    min_output_tokens: int = 0  # EOS is suppressed until this many tokens were generated
    # GNMT alpha: scores divided by ((5 + |Y|) / 6) ** alpha; with the model's "hf" beam
    # rule, HF's: divided by |Y| ** length_penalty (0 = the model's default, HF's 1.0)
    length_penalty: float = 0.0
    temperature: float | None = None  # sampling: > 0; None = not set
    top_k: int = 0  # sampling: keep the k most likely tokens; 0 = all
    top_p: float | None = None  # sampling: nucleus mass in (0, 1]; None = 1
    seed: int | None = None  # sampling: same seed, same output; None = a fresh random seed
    return_attention: bool = False  # keep each hypothesis' (T, S) attention matrix
    return_scores: bool = False  # return per-token log-probabilities
    extractive: bool | None = None  # every output a span of the context; None = model default
    target_prefix: str = ""  # the output starts with this text; the rest is decoded
    protected_terms: tuple[str, ...] = ()  # spans of the source that reach the output verbatim
    glossary: tuple[tuple[str, str], ...] = ()  # (source term, required target term)
    # The model's lexical shortlist: decode over the likely translations of the source's
    # words only. None = the model's default (on for a bundle that has one).
    shortlist: bool | None = None
    defaults: DecodingDefaults | None = None  # the model's decoding defaults; set by for_model

    def __post_init__(self) -> None:
        # Normalise the API's zero defaults once, so that nothing downstream writes max(1, x).
        if self.beam_size == 0:
            object.__setattr__(self, "beam_size", 1)
        if self.n_best == 0:
            object.__setattr__(self, "n_best", 1)
        self._check()

    def _check(self) -> None:
        for name in ("beam_size", "n_best", "max_output_tokens", "min_output_tokens"):
            if getattr(self, name) < 0:
                raise _invalid(name, "must not be negative")
        if self.n_best > self.beam_size:
            raise _invalid("n_best", f"{self.n_best} exceeds the beam size {self.beam_size}")
        if not math.isfinite(self.length_penalty) or self.length_penalty < 0:
            raise _invalid("length_penalty", "must be a finite number >= 0")
        if self.temperature is not None and not (
            math.isfinite(self.temperature) and self.temperature > 0
        ):
            raise _invalid("temperature", f"must be a finite number > 0, not {self.temperature}")
        if self.top_k < 0:
            raise _invalid("top_k", f"must be >= 0 (0 = no limit), not {self.top_k}")
        if self.top_p is not None and not (math.isfinite(self.top_p) and 0.0 < self.top_p <= 1.0):
            raise _invalid("top_p", f"must be in (0, 1], not {self.top_p}")
        if self.seed is not None and not 0 <= self.seed < 2**64:
            raise _invalid("seed", "must be an unsigned 64-bit integer")
        if self.sampling and self.beam_size > 1:
            raise _invalid(
                "beam_size", "cannot be combined with sampling (temperature, top_k, top_p, seed)"
            )
        if len(self.target_prefix) > MAX_OPTION_CHARS:
            raise _invalid("target_prefix", f"has more than {MAX_OPTION_CHARS} characters")
        if len(self.protected_terms) + len(self.glossary) > MAX_TERMS:
            raise _invalid("protected_terms", f"and glossary hold more than {MAX_TERMS} terms")
        texts = [*self.protected_terms, *(t for pair in self.glossary for t in pair)]
        if any(len(t) > MAX_OPTION_CHARS for t in texts):
            raise _invalid("protected_terms", f"hold a term over {MAX_OPTION_CHARS} characters")
        for index, term in enumerate(self.protected_terms):
            if not term.strip():
                raise _invalid(f"protected_terms[{index}]", "is empty")
        if len(set(self.protected_terms)) != len(self.protected_terms):
            raise _invalid("protected_terms", "lists a term twice")
        for source, target in self.glossary:
            if not source.strip() or not target.strip():
                raise _invalid("glossary", "has an empty source or target term")
        if self.max_output_tokens and self.min_output_tokens > self.max_output_tokens:
            raise _invalid(
                "min_output_tokens",
                f"{self.min_output_tokens} is above max_output_tokens {self.max_output_tokens}",
            )

    @property
    def sampling(self) -> bool:
        """Any sampling option set: the next token is drawn, not the argmax."""
        return (
            self.temperature is not None
            or self.top_k > 0
            or self.top_p is not None
            or self.seed is not None
        )

    @property
    def rows(self) -> int:
        """Batch rows this request may occupy (its beam)."""
        return self.beam_size

    def for_model(self, limits: ModelLimits) -> DecodingParams:
        """The model's defaults filled in and its limits checked (INVALID_ARGUMENT names the
        field)."""
        if self.beam_size > limits.max_beam_size:
            raise _invalid(
                "beam_size",
                f"{self.beam_size} is above this server's cap of {limits.max_beam_size}",
            )
        if self.beam_size > limits.max_batch_size:
            raise _invalid(
                "beam_size",
                f"{self.beam_size} is above this server's max_batch_size of "
                f"{limits.max_batch_size}",
            )
        for name in ("max_output_tokens", "min_output_tokens"):
            if getattr(self, name) > limits.max_output_tokens:
                raise _invalid(
                    name,
                    f"{getattr(self, name)} is above the model's limit of "
                    f"{limits.max_output_tokens}",
                )
        if self.return_attention and not limits.has_attention:
            raise _invalid(
                "return_attention",
                "cannot be set: the model has no attention (a no-attention baseline)",
            )
        defaults = self.defaults or limits.defaults
        if self.shortlist and defaults.shortlist is None:
            raise _invalid("shortlist", "cannot be set: the model has no lexical shortlist")
        return replace(
            self,
            max_output_tokens=self.max_output_tokens or limits.max_output_tokens,
            defaults=defaults,
            length_penalty=self.length_penalty or defaults.length_penalty,
            shortlist=bool(defaults.shortlist) if self.shortlist is None else self.shortlist,
        )

    @classmethod
    def from_options(cls, options: Mapping[str, object]) -> DecodingParams:
        """The options of any protocol, by name, as it delivers them: None = not set, lists
        for repeated fields, a mapping for the glossary. Unknown names are refused."""
        unknown = sorted(set(options) - set(OPTION_NAMES))
        if unknown:
            raise _invalid(unknown[0], "is not a decoding option")
        values: dict[str, object] = {}
        for name, value in options.items():
            if isinstance(value, Mapping):
                value = tuple(sorted(value.items()))
            elif isinstance(value, list | tuple):
                value = tuple(value)
            if value is not None:
                values[name] = value
        return cls(**values)  # type: ignore[arg-type]


# The options a request may set: every field but the model's defaults (for_model sets them).
OPTION_NAMES: tuple[str, ...] = tuple(
    f.name for f in fields(DecodingParams) if f.name != "defaults"
)
