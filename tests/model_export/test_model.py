"""model_export.model and train: shapes, masking, padding invariance, training, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model_export.base import source_mask
from model_export.config import ModelConfig
from model_export.model import Seq2Seq
from model_export.train import (
    CheckpointError,
    evaluate_loss,
    load_checkpoint,
    save_checkpoint,
    train,
)
from tests.model_export.factories import (
    make_pairs,
    tiny_examples,
    tiny_model_config,
    tiny_tokenizer,
    tiny_train_config,
)


def _batch(vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    src = torch.randint(6, vocab, (3, 7))
    lengths = torch.tensor([7, 4, 1])
    return src, lengths


@pytest.mark.parametrize(
    ("cell", "score"),
    [
        ("gru", "dot"),
        ("gru", "general"),
        ("gru", "additive"),
        ("gru", "cosine"),
        ("lstm", "general"),
    ],
)
def test_step_shapes_and_masked_attention(cell: str, score: str) -> None:
    torch.manual_seed(0)
    config = tiny_model_config(50, attention_score=score, cell=cell)
    model = Seq2Seq(config).eval()
    assert model.state_names() == (
        ("hidden", "cell", "context") if cell == "lstm" else ("hidden", "context")
    )
    src, lengths = _batch(50)
    memory, *states = model.encoder(src, lengths)
    assert memory.shape == (3, 7, 32) and [s.shape for s in states] == [(3, 32)] * len(states)
    mask = source_mask(src, lengths)
    mask[2] = False  # a fully masked row must stay finite
    log_probs, attention, *new_states = model.decoder(
        torch.tensor([1, 1, 1]), memory, mask, *states
    )
    assert log_probs.shape == (3, 50) and attention.shape == (3, 7)
    assert [s.shape for s in new_states] == [(3, 32)] * len(states)
    assert torch.isfinite(log_probs).all() and torch.isfinite(attention).all()
    torch.testing.assert_close(attention.sum(1), torch.ones(3))
    torch.testing.assert_close(log_probs.exp().sum(1), torch.ones(3))
    assert attention[1, 4:].abs().max() < 1e-12 and attention[0].min() > 0


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_encoder_ignores_padding(cell: str) -> None:
    torch.manual_seed(0)
    model = Seq2Seq(tiny_model_config(50, cell=cell)).eval()
    src, lengths = _batch(50)
    padded = torch.cat([src, torch.randint(6, 50, (3, 5))], dim=1)
    with torch.no_grad():
        short, h1, *_ = model.encoder(src, lengths)
        long, h2, *_ = model.encoder(padded, lengths)
        alone, h3, *_ = model.encoder(src[1:2, :4], lengths[1:2])
    torch.testing.assert_close(short, long[:, :7])
    assert long[:, 7:].abs().max() == 0 and short[1, 4:].abs().max() == 0
    torch.testing.assert_close(h1, h2)
    torch.testing.assert_close(alone[0], short[1, :4], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h3[0], h1[1], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cell": "rnn"}, "cell"),
        ({"hidden_size": 33}, "must be even"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_model_config_is_rejected(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelConfig(**fields)


def test_training_lowers_the_loss_and_keeps_the_best(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = tiny_model_config(tiny_tokenizer().get_vocab_size())
    train_set = tiny_examples(make_pairs(50), cfg)
    valid_set = tiny_examples(make_pairs(10, seed=9), cfg)
    model = Seq2Seq(cfg)
    before = evaluate_loss(model, valid_set)
    result = train(model, train_set, valid_set, tiny_train_config(tmp_path / "ckpt"))
    after = evaluate_loss(model, valid_set)
    assert after < before * 0.6, (before, after)
    assert after == pytest.approx(result.best_valid_loss, rel=1e-5)
    assert result.steps == 60 and result.stopped_by == "max_steps"
    assert (tmp_path / "ckpt" / "best.pt").is_file()
    assert (tmp_path / "ckpt" / "model_config.json").is_file()


def test_checkpoint_of_another_config_is_refused(tmp_path: Path) -> None:
    model = Seq2Seq(tiny_model_config(50))
    path = save_checkpoint(model, tmp_path)
    again = load_checkpoint(path, tiny_model_config(50))
    for a, b in zip(again.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(CheckpointError, match=r"hidden_size: checkpoint 32 != requested 64"):
        load_checkpoint(path, tiny_model_config(50, hidden_size=64))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a model_export checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
