"""A checkpoint's generation config -> how the bundle decides its outputs.

Hugging Face's `generate()` applies logits processors that come from the checkpoint's
config. Those that hold at every step for every request are built into the exported
decoder step (suppressed ids, a forced first token); the rest become the manifest's
`DecodingDefaults` (HF beam scoring and stopping, EOS forced at the length limit). Settings we
do not reproduce are recorded in the manifest (`imported_from.ignored_generation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.bundle import DecodingDefaults

_EARLY_STOPPING = {False: "heuristic", True: "full", "never": "never"}
# generate() settings and the value at which they change nothing
_NEUTRAL: dict[str, Any] = {
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "min_length": 0,
    "min_new_tokens": None,
    "begin_suppress_tokens": None,
    "exponential_decay_length_penalty": None,
    "sequence_bias": None,
    "do_sample": False,  # its temperature / top_k / top_p only matter with it
    "num_beam_groups": 1,
    "diversity_penalty": 0.0,
    "renormalize_logits": False,
}


@dataclass(frozen=True)
class ImportedRules:
    decoder_start_id: int
    suppressed_ids: tuple[int, ...]  # built into the decoder step
    forced_bos_id: int | None  # built into the decoder step
    decoding: DecodingDefaults  # the manifest's `decoding`
    defaults: dict[str, Any]  # the checkpoint's own num_beams / max_length, for the record
    ignored: dict[str, Any]  # settings generate() would apply that the bundle does not


def imported_rules(generation: Any, vocab_size: int) -> ImportedRules:
    """From a transformers GenerationConfig (the model's, config.json merged with
    generation_config.json)."""
    suppressed: list[int] = []
    ignored: dict[str, Any] = {}
    for words in generation.bad_words_ids or []:
        if len(words) == 1:
            suppressed.append(int(words[0]))
        else:
            ignored.setdefault("bad_words_ids (multi-token)", []).append(list(words))
    suppressed += [int(i) for i in generation.suppress_tokens or []]
    for name, neutral in _NEUTRAL.items():
        value = getattr(generation, name, neutral)
        if value != neutral and value is not None:
            ignored[name] = value
    forced_bos = generation.forced_bos_token_id
    forced_eos = generation.forced_eos_token_id
    eos = generation.eos_token_id
    if forced_eos is not None and forced_eos != eos:
        ignored["forced_eos_token_id"] = forced_eos  # forcing anything but THE EOS: not done
    named = [*suppressed, forced_bos]
    out_of_range = [i for i in named if i is not None and not 0 <= i < vocab_size]
    if out_of_range:
        raise ValueError(f"token ids {out_of_range} are outside the vocabulary of {vocab_size}")
    # transformers 5 leaves unset values None and resolves them in generate()
    early = _EARLY_STOPPING.get(generation.early_stopping or False, "heuristic")
    penalty = 1.0 if generation.length_penalty is None else float(generation.length_penalty)
    return ImportedRules(
        decoder_start_id=int(generation.decoder_start_token_id),
        suppressed_ids=tuple(sorted(set(suppressed))),
        forced_bos_id=None if forced_bos is None else int(forced_bos),
        decoding=DecodingDefaults(
            beam="hf",
            length_penalty=penalty,
            early_stopping=early,  # type: ignore[arg-type]
            eos_at_limit=forced_eos is not None and "forced_eos_token_id" not in ignored,
        ),
        defaults={"num_beams": generation.num_beams, "max_length": generation.max_length},
        ignored=ignored,
    )
