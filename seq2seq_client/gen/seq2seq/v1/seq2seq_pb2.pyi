from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DecodingOptions(_message.Message):
    __slots__ = ("model", "model_version", "beam_size", "n_best", "max_output_tokens", "length_penalty", "return_attention", "return_scores", "min_output_tokens", "temperature", "top_k", "top_p", "seed", "extractive", "target_prefix", "protected_terms", "glossary", "shortlist")
    class GlossaryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    BEAM_SIZE_FIELD_NUMBER: _ClassVar[int]
    N_BEST_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LENGTH_PENALTY_FIELD_NUMBER: _ClassVar[int]
    RETURN_ATTENTION_FIELD_NUMBER: _ClassVar[int]
    RETURN_SCORES_FIELD_NUMBER: _ClassVar[int]
    MIN_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    EXTRACTIVE_FIELD_NUMBER: _ClassVar[int]
    TARGET_PREFIX_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_TERMS_FIELD_NUMBER: _ClassVar[int]
    GLOSSARY_FIELD_NUMBER: _ClassVar[int]
    SHORTLIST_FIELD_NUMBER: _ClassVar[int]
    model: str
    model_version: int
    beam_size: int
    n_best: int
    max_output_tokens: int
    length_penalty: float
    return_attention: bool
    return_scores: bool
    min_output_tokens: int
    temperature: float
    top_k: int
    top_p: float
    seed: int
    extractive: bool
    target_prefix: str
    protected_terms: _containers.RepeatedScalarFieldContainer[str]
    glossary: _containers.ScalarMap[str, str]
    shortlist: bool
    def __init__(self, model: _Optional[str] = ..., model_version: _Optional[int] = ..., beam_size: _Optional[int] = ..., n_best: _Optional[int] = ..., max_output_tokens: _Optional[int] = ..., length_penalty: _Optional[float] = ..., return_attention: _Optional[bool] = ..., return_scores: _Optional[bool] = ..., min_output_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_k: _Optional[int] = ..., top_p: _Optional[float] = ..., seed: _Optional[int] = ..., extractive: _Optional[bool] = ..., target_prefix: _Optional[str] = ..., protected_terms: _Optional[_Iterable[str]] = ..., glossary: _Optional[_Mapping[str, str]] = ..., shortlist: _Optional[bool] = ...) -> None: ...

class TranslateRequest(_message.Message):
    __slots__ = ("text", "source_language", "target_language", "options", "texts", "format")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TARGET_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    text: str
    source_language: str
    target_language: str
    options: DecodingOptions
    texts: _containers.RepeatedScalarFieldContainer[str]
    format: str
    def __init__(self, text: _Optional[str] = ..., source_language: _Optional[str] = ..., target_language: _Optional[str] = ..., options: _Optional[_Union[DecodingOptions, _Mapping]] = ..., texts: _Optional[_Iterable[str]] = ..., format: _Optional[str] = ...) -> None: ...

class SummarizeRequest(_message.Message):
    __slots__ = ("text", "options")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    text: str
    options: DecodingOptions
    def __init__(self, text: _Optional[str] = ..., options: _Optional[_Union[DecodingOptions, _Mapping]] = ...) -> None: ...

class AnswerRequest(_message.Message):
    __slots__ = ("question", "context", "options")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    question: str
    context: str
    options: DecodingOptions
    def __init__(self, question: _Optional[str] = ..., context: _Optional[str] = ..., options: _Optional[_Union[DecodingOptions, _Mapping]] = ...) -> None: ...

class AttentionMatrix(_message.Message):
    __slots__ = ("rows", "cols", "weights")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    rows: int
    cols: int
    weights: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, rows: _Optional[int] = ..., cols: _Optional[int] = ..., weights: _Optional[_Iterable[float]] = ...) -> None: ...

class Hypothesis(_message.Message):
    __slots__ = ("text", "score", "target_tokens", "token_scores", "attention", "finish_reason")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    TARGET_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_SCORES_FIELD_NUMBER: _ClassVar[int]
    ATTENTION_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    text: str
    score: float
    target_tokens: _containers.RepeatedScalarFieldContainer[str]
    token_scores: _containers.RepeatedScalarFieldContainer[float]
    attention: AttentionMatrix
    finish_reason: str
    def __init__(self, text: _Optional[str] = ..., score: _Optional[float] = ..., target_tokens: _Optional[_Iterable[str]] = ..., token_scores: _Optional[_Iterable[float]] = ..., attention: _Optional[_Union[AttentionMatrix, _Mapping]] = ..., finish_reason: _Optional[str] = ...) -> None: ...

class Timing(_message.Message):
    __slots__ = ("queue_seconds", "compute_seconds", "total_seconds")
    QUEUE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    queue_seconds: float
    compute_seconds: float
    total_seconds: float
    def __init__(self, queue_seconds: _Optional[float] = ..., compute_seconds: _Optional[float] = ..., total_seconds: _Optional[float] = ...) -> None: ...

class ModelRef(_message.Message):
    __slots__ = ("name", "version", "provider")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    provider: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., provider: _Optional[str] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("hypotheses", "source_tokens", "model", "timing", "results", "detected_language", "sentence_count", "input_used")
    HYPOTHESES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    DETECTED_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    SENTENCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    INPUT_USED_FIELD_NUMBER: _ClassVar[int]
    hypotheses: _containers.RepeatedCompositeFieldContainer[Hypothesis]
    source_tokens: _containers.RepeatedScalarFieldContainer[str]
    model: ModelRef
    timing: Timing
    results: _containers.RepeatedCompositeFieldContainer[TextResult]
    detected_language: LanguageScore
    sentence_count: int
    input_used: InputUsed
    def __init__(self, hypotheses: _Optional[_Iterable[_Union[Hypothesis, _Mapping]]] = ..., source_tokens: _Optional[_Iterable[str]] = ..., model: _Optional[_Union[ModelRef, _Mapping]] = ..., timing: _Optional[_Union[Timing, _Mapping]] = ..., results: _Optional[_Iterable[_Union[TextResult, _Mapping]]] = ..., detected_language: _Optional[_Union[LanguageScore, _Mapping]] = ..., sentence_count: _Optional[int] = ..., input_used: _Optional[_Union[InputUsed, _Mapping]] = ...) -> None: ...

class InputUsed(_message.Message):
    __slots__ = ("field", "method", "start", "end", "total")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    field: str
    method: str
    start: int
    end: int
    total: int
    def __init__(self, field: _Optional[str] = ..., method: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class TextResult(_message.Message):
    __slots__ = ("text", "alternatives", "sentence_count", "source_language", "detected_language", "error")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ALTERNATIVES_FIELD_NUMBER: _ClassVar[int]
    SENTENCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    DETECTED_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    text: str
    alternatives: _containers.RepeatedScalarFieldContainer[str]
    sentence_count: int
    source_language: str
    detected_language: LanguageScore
    error: TextError
    def __init__(self, text: _Optional[str] = ..., alternatives: _Optional[_Iterable[str]] = ..., sentence_count: _Optional[int] = ..., source_language: _Optional[str] = ..., detected_language: _Optional[_Union[LanguageScore, _Mapping]] = ..., error: _Optional[_Union[TextError, _Mapping]] = ...) -> None: ...

class TextError(_message.Message):
    __slots__ = ("code", "message", "field")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    field: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class LanguageScore(_message.Message):
    __slots__ = ("language", "confidence")
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    language: str
    confidence: float
    def __init__(self, language: _Optional[str] = ..., confidence: _Optional[float] = ...) -> None: ...

class DetectRequest(_message.Message):
    __slots__ = ("text", "top")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    text: str
    top: int
    def __init__(self, text: _Optional[str] = ..., top: _Optional[int] = ...) -> None: ...

class DetectResponse(_message.Message):
    __slots__ = ("languages",)
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    languages: _containers.RepeatedCompositeFieldContainer[LanguageScore]
    def __init__(self, languages: _Optional[_Iterable[_Union[LanguageScore, _Mapping]]] = ...) -> None: ...

class AnswerResponse(_message.Message):
    __slots__ = ("input_used", "answer", "answerable", "hypotheses", "source_tokens", "model", "timing")
    INPUT_USED_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    ANSWERABLE_FIELD_NUMBER: _ClassVar[int]
    HYPOTHESES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    input_used: InputUsed
    answer: str
    answerable: bool
    hypotheses: _containers.RepeatedCompositeFieldContainer[Hypothesis]
    source_tokens: _containers.RepeatedScalarFieldContainer[str]
    model: ModelRef
    timing: Timing
    def __init__(self, input_used: _Optional[_Union[InputUsed, _Mapping]] = ..., answer: _Optional[str] = ..., answerable: _Optional[bool] = ..., hypotheses: _Optional[_Iterable[_Union[Hypothesis, _Mapping]]] = ..., source_tokens: _Optional[_Iterable[str]] = ..., model: _Optional[_Union[ModelRef, _Mapping]] = ..., timing: _Optional[_Union[Timing, _Mapping]] = ...) -> None: ...

class GenerateStreamResponse(_message.Message):
    __slots__ = ("token", "result", "answer_result")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_RESULT_FIELD_NUMBER: _ClassVar[int]
    token: TokenEvent
    result: GenerateResponse
    answer_result: AnswerResponse
    def __init__(self, token: _Optional[_Union[TokenEvent, _Mapping]] = ..., result: _Optional[_Union[GenerateResponse, _Mapping]] = ..., answer_result: _Optional[_Union[AnswerResponse, _Mapping]] = ...) -> None: ...

class TokenEvent(_message.Message):
    __slots__ = ("index", "token", "text", "log_prob")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LOG_PROB_FIELD_NUMBER: _ClassVar[int]
    index: int
    token: str
    text: str
    log_prob: float
    def __init__(self, index: _Optional[int] = ..., token: _Optional[str] = ..., text: _Optional[str] = ..., log_prob: _Optional[float] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: str
    def __init__(self, task: _Optional[str] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "task", "source_language", "target_language", "architecture", "attention", "precision", "provider", "max_source_tokens", "max_target_tokens", "evaluation", "is_default_version", "description")
    class EvaluationEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    SOURCE_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TARGET_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    ATTENTION_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MAX_SOURCE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_TARGET_TOKENS_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    task: str
    source_language: str
    target_language: str
    architecture: str
    attention: str
    precision: str
    provider: str
    max_source_tokens: int
    max_target_tokens: int
    evaluation: _containers.ScalarMap[str, float]
    is_default_version: bool
    description: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., task: _Optional[str] = ..., source_language: _Optional[str] = ..., target_language: _Optional[str] = ..., architecture: _Optional[str] = ..., attention: _Optional[str] = ..., precision: _Optional[str] = ..., provider: _Optional[str] = ..., max_source_tokens: _Optional[int] = ..., max_target_tokens: _Optional[int] = ..., evaluation: _Optional[_Mapping[str, float]] = ..., is_default_version: _Optional[bool] = ..., description: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...
