"""What the client returns and accepts: small frozen dataclasses, never protobuf messages."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode; every zero / empty value means "the server's default".

    One field per field of the proto's DecodingOptions, same name (messages.py fills the
    message by name, and the `seq2seq` command line has a flag per field).
    """

    model: str = ""  # model name, e.g. "translate-en-fr"; "" = the task's default model
    model_version: int = 0  # 0 = the newest loaded version
    beam_size: int = 0  # 0 or 1 = greedy
    n_best: int = 0  # hypotheses returned; 0 = 1
    max_output_tokens: int = 0  # 0 = the model's max_target_length
    length_penalty: float = 0.0  # GNMT alpha; 0 = none
    return_attention: bool = False  # fill Hypothesis.attention
    return_scores: bool = False  # fill Hypothesis.token_scores
    min_output_tokens: int = 0  # end-of-sequence suppressed until this many tokens; 0 = none
    # Sampling (any of these set = draw tokens at random instead of the argmax):
    temperature: float | None = None  # > 0; None = 1 when sampling
    top_k: int = 0  # draw among the k most likely tokens; 0 = all
    top_p: float | None = None  # nucleus mass in (0, 1]; None = 1
    seed: int | None = None  # same seed, same output; None = a fresh random seed
    extractive: bool | None = None  # outputs are spans of the context; None = model default
    target_prefix: str = ""  # the output starts with this text
    protected_terms: tuple[str, ...] = ()  # spans of the input kept verbatim in the output
    glossary: tuple[tuple[str, str], ...] = ()  # (source term, required target term)
    shortlist: bool | None = None  # the model's lexical shortlist; None = model default (on)


@dataclass(frozen=True)
class Attention:
    """Attention weights of one hypothesis: rows = target tokens, cols = source tokens."""

    rows: int  # number of target tokens
    cols: int  # number of source tokens
    weights: tuple[float, ...]  # row-major, rows * cols values; each row sums to about 1

    def row(self, index: int) -> tuple[float, ...]:
        """The weights that target token `index` gave every source token."""
        return self.weights[index * self.cols : (index + 1) * self.cols]


@dataclass(frozen=True)
class Hypothesis:
    text: str  # the decoded output
    score: float  # sum of token log-probabilities (after length penalty when asked)
    target_tokens: tuple[str, ...]  # output token pieces
    token_scores: tuple[float, ...]  # per-token log-probabilities; () unless return_scores
    attention: Attention | None  # None unless return_attention
    finish_reason: str  # "eos" or "length"


@dataclass(frozen=True)
class ModelRef:
    name: str  # e.g. "translate-en-fr"
    version: int
    provider: str  # onnxruntime execution provider that ran it, e.g. "CPUExecutionProvider"


@dataclass(frozen=True)
class Timing:
    queue_seconds: float  # arrival to admission into the decode batch
    compute_seconds: float  # encoder + decoder wall time of this request's batches
    total_seconds: float  # arrival to response


@dataclass(frozen=True)
class LanguageScore:
    language: str  # ISO 639-1 code
    confidence: float  # in [0, 1]


@dataclass(frozen=True)
class InputUsed:
    """The part of a long Summarize text or Answer context the model read."""

    field: str  # "text" or "context"
    method: str  # "truncated" (leading sentences) or "window" (best-matching sentences)
    start: int  # character offsets [start, end) in the field as sent
    end: int
    total: int  # characters of the field as sent


@dataclass(frozen=True)
class TextError:
    code: str  # the status this text alone would have got, e.g. "INVALID_ARGUMENT"
    message: str
    field: str  # e.g. "texts[2]"


@dataclass(frozen=True)
class TextResult:
    """One text of a many-texts Translate: its translation or its error."""

    text: str
    alternatives: tuple[str, ...]
    sentence_count: int
    source_language: str
    detected_language: LanguageScore | None
    error: TextError | None  # set when this text failed; the others were answered


@dataclass(frozen=True)
class GenerateResult:
    """The reply of Translate and Summarize."""

    hypotheses: tuple[Hypothesis, ...]  # best first (a document: the whole translated text)
    source_tokens: tuple[str, ...]  # the input as the model saw it (one-sentence texts)
    model: ModelRef
    timing: Timing
    sentence_count: int = 0  # Translate: pieces sent to the model
    detected_language: LanguageScore | None = None  # Translate with source "auto"
    input_used: InputUsed | None = None  # Summarize over a long text

    @property
    def text(self) -> str:
        """The best hypothesis' text."""
        return self.hypotheses[0].text if self.hypotheses else ""


@dataclass(frozen=True)
class AnswerResult:
    """The reply of Answer."""

    answer: str  # the best answer; "" when answerable is False
    answerable: bool  # False when the model judged the context does not hold the answer
    hypotheses: tuple[Hypothesis, ...]  # best first
    source_tokens: tuple[str, ...]  # "question <sep> context" as the model saw it
    model: ModelRef
    timing: Timing
    input_used: InputUsed | None = None  # set when only a window of the context was read


@dataclass(frozen=True)
class TokenEvent:
    """One decoded token of a streaming call (best hypothesis so far)."""

    index: int  # 0-based position in the output
    token: str  # the token piece as the tokenizer spells it
    text: str  # the decoded output so far
    log_prob: float


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: int
    task: str  # "translate", "summarize" or "answer"
    source_language: str
    target_language: str
    architecture: str
    attention: str
    precision: str
    provider: str
    max_source_tokens: int
    max_target_tokens: int
    evaluation: dict[str, float] = field(default_factory=dict)  # test-split figures
    is_default_version: bool = False  # answers requests that name no version
    description: str = ""  # what the model is for and what it is not ("" = not said)
