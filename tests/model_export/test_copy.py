"""Copy attention (pointer-generator): the mixture, the source-id state, and that it copies."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from model_export.base import source_mask
from model_export.config import ModelConfig
from model_export.families import build_model
from model_export.model import COPY_STATE, copy_mix
from model_export.train import Example, evaluate_loss, train
from tests.model_export.factories import tiny_model_config, tiny_train_config

MARKER = 6  # the token after which the answer stands
VOCAB = 60
SEEN = range(7, 40)  # answer ids the training set uses
UNSEEN = range(40, VOCAB)  # answer ids only the test set uses


def pick_the_marked_token(n: int, answers: range, *, seed: int) -> list[Example]:
    """Sources of 4-8 random tokens with MARKER before the answer; the target is the answer.
    Tested on answers never seen in training, only copying can get them right."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(4, 8)
        src = [rng.choice(SEEN) for _ in range(length)]
        where = rng.randrange(length - 1)
        answer = rng.choice(answers)
        src[where], src[where + 1] = MARKER, answer
        out.append(Example(src=[*src, 2], tgt=[answer, 2]))
    return out


def test_copy_mix_is_a_distribution_that_ignores_padding() -> None:
    torch.manual_seed(0)
    vocab = torch.log_softmax(torch.randn(2, 3, 10), dim=-1)  # (B, T, V)
    attention = torch.softmax(torch.randn(2, 3, 4), dim=-1)  # (B, T, S)
    p_gen = torch.full((2, 3, 1), 0.25)
    src_ids = torch.tensor([[7, 8, 7, 2], [9, 2, 0, 0]])
    mask = src_ids != 0
    mixed = copy_mix(vocab, attention * mask.unsqueeze(1), p_gen, src_ids, mask).exp()
    # row 1's padding holds id 0 (and, as the engine pads it, could hold anything): no mass
    padded = copy_mix(vocab, attention * mask.unsqueeze(1), p_gen, src_ids + ~mask * 5, mask)
    torch.testing.assert_close(padded.exp(), mixed)
    torch.testing.assert_close(mixed.sum(-1)[0], torch.ones(3))  # row 0 has no padding
    expected_7 = 0.25 * vocab[0, :, 7].exp() + 0.75 * (attention[0, :, 0] + attention[0, :, 2])
    torch.testing.assert_close(mixed[0, :, 7], expected_7)


def test_the_source_ids_are_a_state_with_a_source_axis() -> None:
    cfg = tiny_model_config(VOCAB, copy_attention=True)
    model = build_model(cfg).eval()
    specs = {s.name: s for s in model.state_specs()}
    assert specs[COPY_STATE].source_axis == 1 and specs["hidden"].source_axis is None
    src = torch.tensor([[9, 10, 11, 2], [12, 2, 0, 0]])
    lengths = torch.tensor([4, 2])
    memory, *states = model.encoder(src, lengths)
    assert torch.equal(states[-1], src)
    _, _, *after = model.decoder(torch.tensor([1, 1]), memory, source_mask(src, lengths), *states)
    assert torch.equal(after[-1], src)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"copy_attention": True, "attention_kind": "none"}, "copy_attention needs attention"),
        ({"copy_attention": True, "architecture": "transformer"}, "copy attention is an rnn"),
        ({"init_state": "final", "architecture": "transformer"}, "init_state 'final' is for"),
    ],
    ids=["copy-no-attention", "copy-transformer", "final-init-transformer"],
)
def test_impossible_configs_are_refused(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelConfig(**overrides)


def test_the_final_init_state_is_the_encoders_final_states() -> None:
    """init_state 'final': tanh(W [forward RNN at each row's last real token; backward RNN
    at its first]), padding ignored."""
    torch.manual_seed(0)
    model = build_model(tiny_model_config(VOCAB, init_state="final")).eval()
    src = torch.tensor([[9, 10, 11, 12, 2], [13, 14, 2, 0, 0]])
    lengths = torch.tensor([5, 3])
    with torch.no_grad():
        _, hidden, _ = model.encoder(src, lengths)
        encoder = model.encoder
        for row, length in enumerate(lengths.tolist()):
            emb = encoder.embedding(src[row : row + 1, :length])  # (1, L, E)
            fwd, _ = encoder.forward_rnn(emb)
            bwd, _ = encoder.backward_rnn(emb.flip(1))
            final = torch.cat([fwd[0, -1], bwd[0, -1]])  # backward's last step = first token
            expected = torch.tanh(encoder.to_init_hidden(final))
            torch.testing.assert_close(hidden[row], expected, atol=1e-6, rtol=0)


def _accuracy(model, examples: list[Example]) -> float:
    src = torch.tensor([e.src for e in examples if len(e.src) == len(examples[0].src)])
    lengths = torch.full((src.shape[0],), src.shape[1])
    answers = [e.tgt[0] for e in examples if len(e.src) == len(examples[0].src)]
    out = model.greedy(src, lengths, max_length=2)
    return sum(o[0] == a for o, a in zip(out, answers, strict=True)) / len(answers)


def test_copy_attention_copies_tokens_it_never_produced_in_training(tmp_path: Path) -> None:
    """Same data, steps and seed with and without copy: only the copy model names answers
    it never saw as a target."""
    train_set = pick_the_marked_token(400, SEEN, seed=1)
    valid_set = pick_the_marked_token(40, SEEN, seed=2)
    unseen = [e for e in pick_the_marked_token(400, UNSEEN, seed=3) if len(e.src) == 9]
    accuracy = {}
    for copy in (False, True):
        torch.manual_seed(0)
        model = build_model(tiny_model_config(VOCAB, copy_attention=copy))
        settings = tiny_train_config(tmp_path / str(copy), max_steps=60, eval_every=30, threads=1)
        train(model, train_set, valid_set, settings)
        accuracy[copy] = _accuracy(model.eval(), unseen)
        print(
            f"copy={copy}: valid loss {evaluate_loss(model, valid_set):.3f}, "
            f"unseen answers right {accuracy[copy]:.0%}"
        )
    assert accuracy[True] >= 0.8 and accuracy[False] <= 0.2, accuracy
