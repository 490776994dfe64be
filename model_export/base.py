"""What every family member shares: the model contract, the shared embedding, the source mask.

The family modules (model.py: rnn, transformer.py) import this; nothing here imports them,
and the registry (families.py) picks the member a config names.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from model_export.config import ModelConfig
from service.bundle import StateTensor


def source_mask(src_ids: Tensor, src_lengths: Tensor) -> Tensor:
    """(B, S) bool, True at real source positions."""
    pos = torch.arange(src_ids.shape[1], device=src_ids.device).unsqueeze(0)  # (1, S)
    return pos < src_lengths.unsqueeze(1)


def shared_embedding(config: ModelConfig) -> nn.Embedding:
    """The one token table of encoder, decoder and output layer (shared vocabulary)."""
    embedding = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_id)
    nn.init.normal_(embedding.weight, std=config.embedding_size**-0.5)
    with torch.no_grad():
        embedding.weight[config.pad_id].zero_()
    return embedding


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class EncoderDecoder(nn.Module):
    """What training, export and parity need of every family member.

    encode(src_ids (B, S), src_lengths (B,)) -> memory (B, S, H), then the initial states
    (the exported encoder graph);
    decoder(prev_ids (B,), memory, src_mask (B, S) bool, *states) -> log_probs (B, V),
    attention (B, S), then the new states (the exported decoder step), states in
    `state_specs()` order, each laid out by its axes;
    forward(src_ids, src_lengths, tgt_in (B, T)) -> log_probs (B, T, V) (teacher forcing).
    """

    config: ModelConfig
    encoder: nn.Module
    decoder: nn.Module

    def encode(self, src_ids: Tensor, src_lengths: Tensor) -> tuple[Tensor, ...]:
        """memory (B, S, H), then the decoder's initial states."""
        return self.encoder(src_ids, src_lengths)

    def state_specs(self) -> tuple[StateTensor, ...]:
        """The decoder's state tensors in graph order, with their axes (the manifest's)."""
        raise NotImplementedError

    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.state_specs())

    def export_problems(self) -> list[str]:
        """What the exported fp32 graphs could not represent, in words; empty when none."""
        dtypes = sorted({str(p.dtype) for p in self.parameters()} - {str(torch.float32)})
        return [f"parameters must be float32 to export, found {dtypes}"] if dtypes else []

    def example_states(self, batch: int, source_length: int) -> tuple[Tensor, ...]:
        """Decoder states of the right shapes and dtypes, for tracing the export."""
        src_ids = torch.full((batch, source_length), self.config.eos_id, dtype=torch.long)
        lengths = torch.full((batch,), source_length, dtype=torch.long)
        with torch.no_grad():
            _, *states = self.encode(src_ids, lengths)
        return tuple(torch.randn_like(s) if s.is_floating_point() else s for s in states)

    @torch.no_grad()
    def greedy(self, src_ids: Tensor, src_lengths: Tensor, *, max_length: int) -> list[list[int]]:
        """Greedy decode; each row's ids end at (and include) EOS or stop at max_length."""
        memory, *states = self.encode(src_ids, src_lengths)
        mask = source_mask(src_ids, src_lengths)
        batch = src_ids.shape[0]
        prev = torch.full((batch,), self.config.bos_id, dtype=torch.long)
        finished = torch.zeros(batch, dtype=torch.bool)
        out: list[list[int]] = [[] for _ in range(batch)]
        for _ in range(max_length):
            log_probs, _, *states = self.decoder(prev, memory, mask, *states)
            prev = log_probs.argmax(dim=1)
            for b in torch.nonzero(~finished).flatten().tolist():
                out[b].append(int(prev[b]))
            finished |= prev == self.config.eos_id
            if bool(finished.all()):
                break
        return out
