"""The model bundle contract shared by `model_export` (writes) and `service` (loads).

A model repository is `MODEL_REPO/<name>/<version>/` holding `bundle.json`, `encoder.onnx`,
`decoder.onnx` and the tokenizer's files (`tokenizer.json` for our own models; an imported
checkpoint keeps its own, see `TokenizerSpec`). This module imports nothing but pydantic, the
standard library and two tiny name tables (seq2seq_client/tasks.py, service/families.py), so
that the export tools can depend on it without pulling in the server.

ONNX graph contract (names are fixed; all batch and length axes are dynamic):
  encoder.onnx  in : src_ids int64 (B, S), src_lengths int64 (B,)
                out: memory float (B, S, H), then `init_<state>` for every state tensor
  decoder.onnx  in : prev_ids int64 (B,), memory float (B, S, H), src_mask bool (B, S),
                     then `state_<state>` for every state tensor
                out: log_probs float32 (B, V), attention float32 (B, S),
                     then `new_state_<state>` for every state tensor that is not
                     `constant` (a constant state is read by every step, never output)
  decoder_shortlist.onnx (only with a lexical `shortlist`): the decoder's inputs, then
                     vocab_ids int64 (K,) and vocab_mask bool (B, K); log_probs (B, K) are
                     over the K ids given, each row normalised over the columns its mask
                     allows (the others hold the lowest finite value); the rest as decoder.onnx
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from seq2seq_client.tasks import ANSWER_SEPARATOR_TOKEN, Task, answer_source_text  # noqa: F401

# Re-exported: model_export builds answer sources through the same function as the server.
from service.families import Family

# 1: states with a batch axis only. 2: states may also have a source or a target axis, or
# be constant (StateTensor; `constant` is optional, so schema-2 bundles without it load).
# The server loads both; model_export writes the oldest that describes a bundle's states
# (`schema_version_for`), so a bundle that needs no axis stays at 1.
BUNDLE_SCHEMA_VERSION: Final = 2
MANIFEST_FILE = "bundle.json"
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
TOKENIZER_FILE = "tokenizer.json"
REQUIRED_FILES = (ENCODER_FILE, DECODER_FILE)  # plus the tokenizer's (TokenizerSpec.files)

# Encoder graph names.
ENC_SRC_IDS = "src_ids"
ENC_SRC_LENGTHS = "src_lengths"
ENC_MEMORY = "memory"
# Decoder graph names.
DEC_PREV_IDS = "prev_ids"
DEC_MEMORY = "memory"
DEC_SRC_MASK = "src_mask"
DEC_LOG_PROBS = "log_probs"
DEC_ATTENTION = "attention"
# The shortlist decoder's extra inputs (ShortlistSpec).
SHORTLIST_DECODER_FILE = "decoder_shortlist.onnx"
DEC_VOCAB_IDS = "vocab_ids"
DEC_VOCAB_MASK = "vocab_mask"

# The token an answer model emits when the context does not hold the answer.
NO_ANSWER_TOKEN = "<noans>"

Precision = Literal["fp32", "fp16", "int8"]


def init_state_name(state: str) -> str:
    """Encoder output that holds the decoder's initial value of `state`."""
    return f"init_{state}"


def state_input_name(state: str) -> str:
    """Decoder input carrying `state` into a step."""
    return f"state_{state}"


def state_output_name(state: str) -> str:
    """Decoder output carrying `state` out of a step."""
    return f"new_state_{state}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LanguagePair(_Strict):
    source: str = Field(min_length=2, max_length=8, description="ISO 639-1 code, e.g. 'en'")
    target: str = Field(min_length=2, max_length=8, description="ISO 639-1 code, e.g. 'fr'")


class AttentionSpec(_Strict):
    """Which member of the attention family the decoder uses."""

    kind: Literal["soft", "hard", "none"] = "soft"  # none: the no-attention baseline
    scope: Literal["global", "local"] = "global"
    window: int | None = Field(default=None, ge=1, description="half-width D of a local window")
    score: Literal["dot", "general", "additive", "cosine", "scaled_dot"] = "general"

    @model_validator(mode="after")
    def _window_iff_local(self) -> AttentionSpec:
        if self.scope == "local" and self.window is None:
            raise ValueError("attention.scope 'local' needs attention.window")
        if self.scope == "global" and self.window is not None:
            raise ValueError("attention.window is only valid with scope 'local'")
        return self


class SpecialTokens(_Strict):
    pad_id: int = Field(ge=0)
    bos_id: int = Field(ge=0)
    eos_id: int = Field(ge=0)
    unk_id: int = Field(ge=0)
    sep_id: int | None = Field(default=None, ge=0)  # answer: joins question and context
    no_answer_id: int | None = Field(default=None, ge=0)  # answer: "not in the context"


class StateTensor(_Strict):
    """One recurrent or cached decoder state carried from step to step, described by its axes.

    The engine pads, trims and reorders every state generically from these axes:
    - `batch_axis`: one slice per batch row; gathered when rows leave or beams reorder,
      concatenated when requests join.
    - `source_axis` (optional): follows the source length, like `memory` (e.g. cached
      cross-attention keys/values). Rows that join with a shorter source are padded at the
      END with zeros; the axis is trimmed when the longest source leaves. The model must
      mask padded positions with `src_mask`.
    - `target_axis` (optional): a cache that grows by ONE slot per decoder step, newest slot
      last (right-aligned), e.g. self-attention keys/values; the encoder's initial value has
      length 0 on this axis. Rows that join with a shorter cache are padded at the START with
      zeros, and leading slots that no live row uses any more are trimmed, so the axis is as
      long as the longest live row's output. The model must mask the padded leading slots
      itself (e.g. from a per-row step counter carried as another state).
    - `constant` (optional, default false): the step reads the state but never changes it
      (e.g. cached cross-attention keys/values), so the decoder graph has no `new_state_`
      output for it and the engine keeps its value from step to step. Its rows of one
      request stay identical, so a beam reordering rows within requests leaves it as it
      is; only rows joining or leaving move it.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    batch_axis: int = Field(ge=0, description="axis to gather on when beams are reordered")
    source_axis: int | None = Field(default=None, ge=0, description="axis that follows S")
    target_axis: int | None = Field(default=None, ge=0, description="axis that grows per step")
    constant: bool = False  # read by every step, never updated: no new_state_ output

    @model_serializer(mode="wrap")
    def _omit_default_constant(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """A state that is not constant is written as before the flag existed, so a server
        that predates it still loads the bundles that do not use it."""
        data: dict[str, object] = handler(self)
        if not self.constant:
            data.pop("constant", None)
        return data

    @model_validator(mode="after")
    def _distinct_axes(self) -> StateTensor:
        axes = [a for a in (self.batch_axis, self.source_axis, self.target_axis) if a is not None]
        if len(set(axes)) != len(axes):
            raise ValueError(f"state '{self.name}' uses one axis for two roles: {axes}")
        if self.source_axis is not None and self.target_axis is not None:
            raise ValueError(f"state '{self.name}' cannot have both a source and a target axis")
        if self.constant and self.target_axis is not None:
            raise ValueError(f"state '{self.name}' grows on a target axis, so it is not constant")
        return self


def schema_version_for(states: tuple[StateTensor, ...]) -> Literal[1, 2]:
    """The oldest schema that can describe these states."""
    return (
        2
        if any(s.source_axis is not None or s.target_axis is not None or s.constant for s in states)
        else 1
    )


def updated_states(states: tuple[StateTensor, ...]) -> tuple[str, ...]:
    """The states a decoder step outputs (`new_state_<name>`), in manifest order."""
    return tuple(s.name for s in states if not s.constant)


class TokenizerSpec(_Strict):
    """How text becomes token ids and back; the default is our own models' tokenizer.json.

    - `tokenizers`: a Hugging Face `tokenizers` file. Without `post_processor` the server
      appends EOS itself (our models); with it, the file's own template adds the special
      tokens (BART's `<s> text </s>`), exactly as the original tokenizer does.
    - `sentencepiece`: Marian's pair of SentencePiece models, whose pieces are mapped to
      ids through `vocab` (and `target_vocab` when the two sides have separate vocabularies),
      EOS appended, as transformers' MarianTokenizer does.
    """

    kind: Literal["tokenizers", "sentencepiece"] = "tokenizers"
    file: str = TOKENIZER_FILE  # tokenizers: the tokenizer.json
    post_processor: bool = False  # tokenizers: the file adds the special tokens itself
    source_model: str | None = None  # sentencepiece: e.g. "source.spm"
    target_model: str | None = None  # sentencepiece: e.g. "target.spm"
    vocab: str | None = None  # sentencepiece: piece -> id, e.g. "vocab.json"
    target_vocab: str | None = None  # sentencepiece: the target side's own piece -> id
    special_tokens: tuple[str, ...] = ()  # texts the tokenizer never splits (Marian's "</s>")

    @model_validator(mode="after")
    def _files_of_kind(self) -> TokenizerSpec:
        if self.kind == "sentencepiece" and None in (
            self.source_model,
            self.target_model,
            self.vocab,
        ):
            raise ValueError("a sentencepiece tokenizer names source_model, target_model, vocab")
        return self

    @property
    def files(self) -> tuple[str, ...]:
        """The bundle files this tokenizer reads."""
        if self.kind == "tokenizers":
            return (self.file,)
        named = (self.source_model, self.target_model, self.vocab, self.target_vocab)
        return tuple(dict.fromkeys(f for f in named if f is not None))


class DecodingDefaults(_Strict):
    """Per-model defaults of decoding options a request may override, and how the model's
    outputs are decided where models differ. Our own models keep the defaults; an imported
    checkpoint gets Hugging Face `generate()`'s rules (`beam` "hf": score = sum of log-probs /
    length ** length_penalty with its `early_stopping` rule, instead of our GNMT penalty and
    stopping rule; EOS forced at the length limit), so the server returns its outputs."""

    # Every output a span of the context part of the source; None = on for answer models.
    extractive: bool | None = None
    beam: Literal["gnmt", "hf"] = "gnmt"  # the beam search a beam request gets
    length_penalty: float = Field(default=0.0, ge=0.0)  # when a request sets none (0)
    # hf beam only: "heuristic" (HF early_stopping=False), "full" (True), "never"
    early_stopping: Literal["heuristic", "full", "never"] = "heuristic"
    eos_at_limit: bool = False  # the last allowed token is EOS (HF forced_eos_token_id)
    # The lexical shortlist (bundles with a `shortlist`): on when a request says nothing.
    # None: the model has none, and a request asking for it is refused.
    shortlist: bool | None = None
    # Marian's max-length-factor: at most this many output tokens per source token (the
    # source's EOS included), besides max_output_tokens. None: no such rule.
    max_length_factor: float | None = Field(default=None, gt=0.0)

    @model_serializer(mode="wrap")
    def _omit_unset_marian_rules(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """Fields added for Marian NMT bundles are written only when set, so a server that
        predates them still loads every other bundle."""
        data: dict[str, object] = handler(self)
        for name in ("shortlist", "max_length_factor"):
            if data.get(name) is None:
                data.pop(name, None)
        return data


class ShortlistSpec(_Strict):
    """A lexical shortlist (Marian's binary `lex.*.s2t.bin`): per source token id its most
    likely translations. For each request the output vocabulary is the union of the
    candidates of its source tokens, the `first_num` most frequent target ids (ids below
    first_num) and, when `shared`, its source ids themselves, padded to a multiple of 8
    with the next unselected ids, as Marian's BinaryShortlistGenerator selects. The engine
    decodes a batch through `decoder_shortlist.onnx` over the union of its requests'
    selections, each row restricted to its own (outputs do not depend on batch-mates)."""

    file: str  # the shortlist file in the bundle folder
    first_num: int = Field(ge=0)  # most frequent target words always kept (header)
    best_num: int = Field(ge=0)  # candidates per source word (header)
    shared: bool  # source ids are allowed outputs too (one vocabulary for both sides)
    source_vocab_size: int = Field(ge=1)  # source ids the file covers
    decoder: str = SHORTLIST_DECODER_FILE


class ImportedFrom(_Strict):
    """Where an imported bundle's weights came from."""

    # huggingface: a save_pretrained folder; marian: Marian NMT's own model folder
    format: Literal["huggingface", "marian"] = "huggingface"
    architecture: str  # the checkpoint config's class, e.g. "MarianMTModel"
    model_type: str  # e.g. "marian", "bart", "mbart"
    files: dict[str, str]  # the checkpoint folder's file name -> sha256
    # Decoding rules of the checkpoint that the decoder graph applies at every step:
    suppressed_ids: tuple[int, ...] = ()  # never generated (Marian's pad)
    forced_bos_id: int | None = None  # always the first generated token (BART's <s>)
    ignored_generation: dict[str, object] = Field(default_factory=dict)  # not reproduced
    transformers: str = ""  # version that read the checkpoint


class DataProvenance(_Strict):
    source: str  # human description of the public text used
    snapshot: str  # e.g. "Debian bookworm main, Translation-fr fetched 2026-11-26"
    dataset_sha256: str  # sha256 of the prepared dataset manifest
    split: str = "stable hash of the package name: test 10%, valid 5%, train 85%"
    counts: dict[str, int] = Field(default_factory=dict)  # split -> examples


class Evaluation(_Strict):
    """Figures on the held-out test split, beside trivial baselines."""

    split: Literal["test"] = "test"
    num_examples: int = Field(ge=0)
    metrics: dict[str, float]  # e.g. {"bleu": 12.3, "chrf": 40.1}
    baselines: dict[str, dict[str, float]] = Field(default_factory=dict)  # name -> metrics
    # source-length bucket in words ("1-5", ..., "41+") -> metrics and "count"
    by_source_length: dict[str, dict[str, float]] = Field(default_factory=dict)
    decoding: str = "greedy"
    data: DataProvenance


class BundleManifest(_Strict):
    """Everything the server must know about a bundle before it loads a single file."""

    schema_version: Literal[1, 2] = 2  # BUNDLE_SCHEMA_VERSION
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    version: int = Field(ge=1)
    task: Task
    languages: LanguagePair | None = None
    # What the model is for and what it is not, in a sentence or two (ListModels, /v1/models
    # and the README show it), e.g. "Debian package descriptions; not everyday English".
    description: str = Field(default="", max_length=500)
    architecture: Family  # one of service.families.FAMILIES
    cell: Literal["gru", "lstm"] | None = None
    attention: AttentionSpec
    special_tokens: SpecialTokens
    vocab_size: int = Field(ge=8)
    hidden_size: int = Field(ge=1)
    max_source_length: int = Field(ge=1, description="tokens, including EOS")
    max_target_length: int = Field(ge=1, description="tokens, including EOS")
    precision: Precision = "fp32"
    states: tuple[StateTensor, ...]
    tokenizer: TokenizerSpec = TokenizerSpec()
    decoding: DecodingDefaults = DecodingDefaults()
    shortlist: ShortlistSpec | None = None  # a lexical shortlist (Marian NMT imports)
    imported_from: ImportedFrom | None = None  # set for imported checkpoints
    evaluation: Evaluation | None = None
    training: dict[str, object] = Field(default_factory=dict)  # config and run summary
    created_at: str = ""
    files: dict[str, str]  # file name -> sha256 hex digest

    @model_validator(mode="after")
    def _consistent(self) -> BundleManifest:
        if self.task == "translate" and self.languages is None:
            raise ValueError("a translate bundle must name its languages (source, target)")
        if self.task != "translate" and self.languages is not None:
            raise ValueError(f"languages is only valid for translate, not {self.task}")
        if self.architecture == "rnn" and self.cell is None:
            raise ValueError("an rnn bundle must name its cell (gru or lstm)")
        if self.task == "answer" and (
            self.special_tokens.sep_id is None or self.special_tokens.no_answer_id is None
        ):
            raise ValueError("an answer bundle needs special_tokens.sep_id and no_answer_id")
        if (self.shortlist is None) != (self.decoding.shortlist is None):
            raise ValueError("decoding.shortlist is set exactly when the bundle has a shortlist")
        shortlist_files = (self.shortlist.file, self.shortlist.decoder) if self.shortlist else ()
        needed = (*REQUIRED_FILES, *self.tokenizer.files, *shortlist_files)
        missing = [f for f in needed if f not in self.files]
        if missing:
            raise ValueError(f"files lacks checksums for {', '.join(missing)}")
        names = [s.name for s in self.states]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate state names in {names}")
        if self.schema_version < schema_version_for(self.states):
            raise ValueError("state source_axis / target_axis / constant need schema_version 2")
        return self

    @model_serializer(mode="wrap")
    def _omit_no_shortlist(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """A bundle without a shortlist is written as before the field existed."""
        data: dict[str, object] = handler(self)
        if data.get("shortlist") is None:
            data.pop("shortlist", None)
        return data

    @field_validator("files")
    @classmethod
    def _hex_digests(cls, files: dict[str, str]) -> dict[str, str]:
        for name, digest in files.items():
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"files[{name!r}] is not a lowercase sha256 hex digest")
        return files


class BundleError(ValueError):
    """A bundle that must not be served; the message names the file and the problem."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def files_bytes(bundle_dir: Path) -> int:
    """What a bundle's files weigh, bundle.json left out (so a bundle being written, which
    has no manifest yet, and a finished one are measured alike)."""
    return sum(
        p.stat().st_size for p in bundle_dir.iterdir() if p.is_file() and p.name != MANIFEST_FILE
    )


def read_manifest(bundle_dir: Path) -> BundleManifest:
    """Parse and validate `bundle.json`; raise BundleError naming the file on any problem."""
    path = bundle_dir / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(f"{path}: missing manifest")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON: {exc}") from exc
    try:
        manifest = BundleManifest.model_validate(raw)
    except ValueError as exc:
        raise BundleError(f"{path}: invalid manifest: {exc}") from exc
    if bundle_dir.name != str(manifest.version):
        raise BundleError(
            f"{path}: version {manifest.version} does not match its folder '{bundle_dir.name}'"
        )
    if bundle_dir.parent.name != manifest.name:
        raise BundleError(
            f"{path}: name '{manifest.name}' does not match its folder '{bundle_dir.parent.name}'"
        )
    return manifest


def verify_checksums(bundle_dir: Path, manifest: BundleManifest) -> None:
    """Raise BundleError naming the first file that is missing or differs from the manifest."""
    for name, expected in sorted(manifest.files.items()):
        path = bundle_dir / name
        if not path.is_file():
            raise BundleError(f"{path}: listed in {MANIFEST_FILE} but missing")
        actual = sha256_file(path)
        if actual != expected:
            raise BundleError(
                f"{path}: sha256 {actual[:12]}… differs from {MANIFEST_FILE} ({expected[:12]}…)"
            )


def write_manifest(bundle_dir: Path, manifest_fields: dict[str, object]) -> BundleManifest:
    """Checksum every file in `bundle_dir`, validate, and write `bundle.json` last.

    Writing the manifest last means a half-written bundle has no manifest and is ignored.
    """
    files = {
        p.name: sha256_file(p)
        for p in sorted(bundle_dir.iterdir())
        if p.is_file() and p.name != MANIFEST_FILE
    }
    manifest = BundleManifest.model_validate({**manifest_fields, "files": files})
    tmp = bundle_dir / (MANIFEST_FILE + ".tmp")
    tmp.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    tmp.replace(bundle_dir / MANIFEST_FILE)
    return manifest
