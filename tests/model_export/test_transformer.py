"""model_export.transformer, and export + parity over every member of the family."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch

from model_export.base import source_mask
from model_export.config import ModelConfig
from model_export.export import ExportError, export_onnx
from model_export.families import build_model
from model_export.parity import ParityError, check_parity
from model_export.train import evaluate_loss, load_checkpoint, save_checkpoint, train
from model_export.transformer import TransformerSeq2Seq
from service.bundle import DECODER_FILE, ENCODER_FILE, StateTensor
from tests.model_export.factories import (
    make_pairs,
    tiny_examples,
    tiny_model_config,
    tiny_tokenizer,
    tiny_train_config,
)

TRANSFORMER = {"architecture": "transformer", "layers": 2, "heads": 2, "ffn_size": 64}


def tiny_transformer(vocab_size: int = 50, **overrides: object) -> ModelConfig:
    return tiny_model_config(vocab_size, **(TRANSFORMER | overrides))


def _decode_steps(model, src, lengths, tgt_in) -> tuple[torch.Tensor, torch.Tensor]:
    """One-step decoder over tgt_in (B, T) -> log_probs (B, T, V), attention (B, T, S)."""
    memory, *states = model.encode(src, lengths)
    mask = source_mask(src, lengths)
    log_probs, attention = [], []
    for t in range(tgt_in.shape[1]):
        lp, att, *states = model.decoder(tgt_in[:, t], memory, mask, *states)
        log_probs.append(lp)
        attention.append(att)
    return torch.stack(log_probs, 1), torch.stack(attention, 1)


def test_incremental_decoding_equals_the_parallel_pass() -> None:
    torch.manual_seed(0)
    cfg = tiny_transformer(max_target_length=12)
    model = build_model(cfg).eval()
    assert isinstance(model, TransformerSeq2Seq)
    assert [(s.name, s.source_axis, s.target_axis) for s in model.state_specs()] == [
        ("cross_keys_0", 2, None),
        ("cross_values_0", 2, None),
        ("cross_keys_1", 2, None),
        ("cross_values_1", 2, None),
        ("self_keys_0", None, 2),
        ("self_values_0", None, 2),
        ("self_keys_1", None, 2),
        ("self_values_1", None, 2),
        ("position", None, None),
    ]
    src = torch.randint(6, 50, (3, 7))
    lengths = torch.tensor([7, 4, 1])
    tgt_in = torch.randint(6, 50, (3, 12))
    tgt_in[:, 0] = cfg.bos_id
    with torch.no_grad():
        parallel = model(src, lengths, tgt_in)
        stepped, attention = _decode_steps(model, src, lengths, tgt_in)
        memory, *initial = model.encode(src, lengths)
        mask = source_mask(src, lengths)
        states = initial
        for t in range(5):
            _, _, *states = model.decoder(tgt_in[:, t], memory, mask, *states)
    assert memory.shape == (3, 7, 32) and memory[1, 4:].abs().max() == 0
    heads, head_size = 2, 16
    assert [tuple(s.shape) for s in initial[:-1]] == [(3, heads, 7, head_size)] * 4 + [
        (3, heads, 0, head_size)
    ] * 4
    assert initial[-1].tolist() == [0, 0, 0]
    assert all(a is b for a, b in zip(states[:4], initial[:4], strict=True))  # computed once
    assert [tuple(s.shape) for s in states[4:8]] == [(3, heads, 5, head_size)] * 4
    assert states[-1].tolist() == [5, 5, 5]
    torch.testing.assert_close(stepped, parallel, atol=1e-5, rtol=0)
    torch.testing.assert_close(attention.sum(2), torch.ones(3, 12))
    assert attention[1, :, 4:].abs().max() == 0 and attention[2, :, 1:].abs().max() == 0


def _pad(x: torch.Tensor, axis: int, length: int, *, at_start: bool) -> torch.Tensor:
    """`axis` of `x` padded to `length` with junk (not zeros), before or after the data:
    the model must never read it."""
    shape = list(x.shape)
    shape[axis] = length - x.shape[axis]
    junk = torch.randn(shape) * 100 if x.is_floating_point() else torch.ones(shape, dtype=x.dtype)
    return torch.cat([junk, x] if at_start else [x, junk], dim=axis)


def _join(a: torch.Tensor, b: torch.Tensor, spec: StateTensor) -> torch.Tensor:
    """Rows of `a` then `b`, laid out as the engine joins a state: the source axis padded
    at the end, the target axis at the start."""
    for axis, at_start in ((spec.source_axis, False), (spec.target_axis, True)):
        if axis is not None:
            length = max(a.shape[axis], b.shape[axis])
            a, b = (_pad(x, axis, length, at_start=at_start) for x in (a, b))
    return torch.cat([a, b])


def _trim(x: torch.Tensor, spec: StateTensor, source: int, target: int) -> torch.Tensor:
    """The first `source` positions of a source axis, the last `target` slots of a target
    axis (what the engine keeps when the longest row leaves)."""
    if spec.source_axis is not None:
        x = x.narrow(spec.source_axis, 0, source)
    if spec.target_axis is not None:
        x = x.narrow(spec.target_axis, x.shape[spec.target_axis] - target, target)
    return x


def test_rows_at_different_positions_share_a_batch() -> None:
    """What the engine does: a request joins a running batch (source axes padded at the end,
    the growing caches padded at the start), then rows are gathered and the axes trimmed
    when one leaves; every row still decodes as it does alone."""
    torch.manual_seed(1)
    model = build_model(tiny_transformer()).eval()
    src_a, len_a = torch.randint(6, 50, (1, 7)), torch.tensor([7])
    src_b, len_b = torch.randint(6, 50, (1, 3)), torch.tensor([3])
    tgt_a, tgt_b = torch.randint(6, 50, (1, 6)), torch.randint(6, 50, (1, 5))
    with torch.no_grad():
        alone_a, _ = _decode_steps(model, src_a, len_a, tgt_a)
        alone_b, _ = _decode_steps(model, src_b, len_b, tgt_b)
        memory_a, *states_a = model.encode(src_a, len_a)
        mask_a = source_mask(src_a, len_a)
        for t in range(3):  # A runs alone for three steps
            _, _, *states_a = model.decoder(tgt_a[:, t], memory_a, mask_a, *states_a)
        memory_b, *states_b = model.encode(src_b, len_b)
        memory = _join(memory_a, memory_b, StateTensor(name="memory", batch_axis=0, source_axis=1))
        mask = torch.cat([mask_a, torch.nn.functional.pad(source_mask(src_b, len_b), (0, 4))])
        specs = model.state_specs()
        states = [_join(a, b, spec) for a, b, spec in zip(states_a, states_b, specs, strict=True)]
        assert states[4].shape[2] == 3  # B's cache: three leading junk slots, then nothing
        for t in range(3):  # A at positions 3..5, B at 0..2, in one batch
            prev = torch.cat([tgt_a[:, 3 + t], tgt_b[:, t]])
            log_probs, _, *states = model.decoder(prev, memory, mask, *states)
            torch.testing.assert_close(log_probs[0], alone_a[0, 3 + t], atol=1e-5, rtol=0)
            torch.testing.assert_close(log_probs[1], alone_b[0, t], atol=1e-5, rtol=0)
        assert states[4].shape[2] == 6 and states[-1].tolist() == [6, 3]
        # A leaves: B's row alone, source axes trimmed to 3, the caches to B's 3 slots
        kept = [_trim(x[1:], spec, 3, 3) for x, spec in zip(states, specs, strict=True)]
        for t in range(3, 5):
            log_probs, _, *kept = model.decoder(tgt_b[:, t], memory[1:, :3], mask[1:, :3], *kept)
            torch.testing.assert_close(log_probs[0], alone_b[0, t], atol=1e-5, rtol=0)


def test_a_tiny_transformer_learns(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = tiny_transformer(tiny_tokenizer().get_vocab_size(), layers=1)
    train_set = tiny_examples(make_pairs(50), cfg)
    valid_set = tiny_examples(make_pairs(10, seed=9), cfg)
    model = build_model(cfg)
    before = evaluate_loss(model, valid_set)
    settings = tiny_train_config(tmp_path / "ckpt", max_steps=30, eval_every=30, lr=5e-3)
    result = train(model, train_set, valid_set, settings)
    after = evaluate_loss(model, valid_set)
    print(f"transformer valid loss {before:.3f} -> {after:.3f} in {result.seconds:.1f} s")
    assert after < before * 0.6, (before, after)
    assert result.steps == 30


def test_transformer_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = tiny_transformer()
    model = build_model(cfg).eval()
    again = load_checkpoint(save_checkpoint(model, tmp_path), cfg)
    assert isinstance(again, TransformerSeq2Seq)
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    src, lengths = torch.randint(6, 50, (2, 5)), torch.tensor([5, 3])
    assert model.greedy(src, lengths, max_length=8) == again.greedy(src, lengths, max_length=8)


def test_export_refuses_what_the_graphs_cannot_represent(tmp_path: Path) -> None:
    model = build_model(tiny_transformer())
    model.decoder.layers = model.decoder.layers[:1]  # the cache layout now lies
    with pytest.raises(ExportError, match="decoder has 1 layers but the config 2"):
        export_onnx(model, tmp_path)
    half = build_model(tiny_transformer()).half()
    with pytest.raises(ExportError, match="must be float32"):
        export_onnx(half, tmp_path)
    bypassed = tiny_transformer().model_copy(update={"attention_kind": "hard"})
    with pytest.raises(ValueError, match="soft, global and scaled_dot"):
        build_model(bypassed)
    assert not list(tmp_path.iterdir())


# Every member that must export and pass parity (tiny, untrained: the graphs are what is
# checked). test_export.py also trains and exports gru, lstm and gru-hard.
VARIANTS = {
    "gru-soft": {"cell": "gru"},
    "gru-hard": {"cell": "gru", "attention_kind": "hard"},
    "lstm-soft": {"cell": "lstm"},
    "lstm-hard": {"cell": "lstm", "attention_kind": "hard"},
    "local-soft": {"attention_scope": "local", "attention_window": 2},
    "local-hard": {"attention_scope": "local", "attention_window": 2, "attention_kind": "hard"},
    "no-attention": {"attention_kind": "none"},
    "score-dot": {"attention_score": "dot"},
    "score-general": {"attention_score": "general"},
    "score-additive": {"attention_score": "additive"},
    "score-cosine": {"attention_score": "cosine"},
    "copy-gru-soft": {"copy_attention": True},
    "copy-lstm-hard": {"cell": "lstm", "attention_kind": "hard", "copy_attention": True},
    "copy-local": {"attention_scope": "local", "attention_window": 2, "copy_attention": True},
    "init-final": {"init_state": "final", "copy_attention": True},
    "transformer": TRANSFORMER,
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_exports_and_passes_parity(variant: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = tiny_model_config(
        tiny_tokenizer().get_vocab_size(), max_target_length=8, **VARIANTS[variant]
    )
    model = build_model(cfg).eval()
    test_set = tiny_examples(make_pairs(8, seed=7), cfg)
    export_onnx(model, tmp_path)
    report = check_parity(model, tmp_path, test_set, steps=6, batch_size=8, greedy_examples=8)
    print(f"{variant}: max abs diff log-probs {report['max_abs_diff_log_probs']:.1e}")
    assert report["max_abs_diff_log_probs"] < 1e-5
    assert report["greedy_mismatches"] == 0 and report["greedy_examples"] == 8


def test_transformer_graphs_and_a_drifted_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = tiny_transformer(tiny_tokenizer().get_vocab_size(), max_target_length=8)
    model = build_model(cfg).eval()
    export_onnx(model, tmp_path)

    def dims(path: Path, which: str) -> dict[str, list]:
        graph = onnx.load(str(path)).graph
        return {
            v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in getattr(graph, which)
        }

    cross = ["batch", 2, "src_len", 16]  # (B, heads, S, d) per layer
    past = ["batch", 2, "past_len", 16]  # (B, heads, T, d) per layer
    states = [s.name for s in model.state_specs()]
    encoder_out = dims(tmp_path / ENCODER_FILE, "output")
    assert list(encoder_out) == ["memory", *(f"init_{s}" for s in states)]
    assert encoder_out["memory"] == ["batch", "src_len", 32]
    assert encoder_out["init_cross_values_1"] == cross
    assert encoder_out["init_self_keys_0"][:2] == ["batch", 2]  # then T (0 when run), d
    dec_in = dims(tmp_path / DECODER_FILE, "input")
    # memory is not read by the step, and kept for the contract
    assert list(dec_in) == ["prev_ids", "memory", "src_mask", *(f"state_{s}" for s in states)]
    assert dec_in["memory"] == ["batch", "src_len", 32]
    assert dec_in["state_cross_keys_0"] == cross and dec_in["state_position"] == ["batch"]
    assert dec_in["state_self_keys_1"] == past
    dec_out = dims(tmp_path / DECODER_FILE, "output")
    assert dec_out["new_state_self_values_0"] == ["batch", 2, "past_len_next", 16]
    test_set = tiny_examples(make_pairs(8, seed=7), cfg)
    drifted = build_model(cfg).eval()
    drifted.load_state_dict(model.state_dict())
    with torch.no_grad():
        drifted.decoder.layers[0].self_attention.value.weight.mul_(1.1)
    with pytest.raises(ParityError, match="disagree"):
        check_parity(drifted, tmp_path, test_set, steps=4, batch_size=8, greedy_examples=8)


def test_the_dynamo_exporter_exports_the_transformer_too(tmp_path: Path) -> None:
    """The selectable exporter handles the step's `*states` signature (its dynamic_axes
    conversion cannot; export.py passes dynamic_shapes)."""
    torch.manual_seed(0)
    cfg = tiny_transformer(tiny_tokenizer().get_vocab_size(), max_target_length=8)
    model = build_model(cfg).eval()
    export_onnx(model, tmp_path, exporter="dynamo")
    test_set = tiny_examples(make_pairs(8, seed=7), cfg)
    report = check_parity(model, tmp_path, test_set, steps=4, batch_size=8, greedy_examples=8)
    assert report["max_abs_diff_log_probs"] < 1e-5 and report["greedy_mismatches"] == 0
