"""The RNN members of the family: GRU/LSTM encoder-decoder with Luong attention (input
feeding), soft or hard, global or local, any score; or no attention at all (the Transformer
lives in `transformer.py`; `families.build_model` picks the member a config names).

Small modules, one job each. The decoder is ONE step (`DecoderStep`): training loops it over
target positions (teacher forcing) and export traces it once, so both share one code path.

Decoder state carried from step to step (names as in the bundle manifest, batch axis 0):
  hidden  (B, H): the recurrent cell's hidden state
  cell    (B, H): the LSTM cell state (LSTM only; zeros at step 0)
  context (B, H): the attentional vector h~ = tanh(W_c [h; c]) of the previous step, fed
                  back into the next step's input (Luong's input feeding); zeros at step 0
  src_ids (B, S) int64, source axis 1 (copy attention only): the source token ids, passed
                  through unchanged, so that the step can scatter its attention onto them
                  while the graph contract keeps its fixed inputs; the engine pads it at the
                  end with zeros like `memory`, and the step masks padding with `src_mask`

Copy attention (pointer-generator, See et al. 2017): with p_gen = sigmoid(w [c; h; x] + b)
from the attention context c, the cell output h and the input embedding x,
  P(w) = p_gen P_vocab(w) + (1 - p_gen) sum_{s: src_s = w} a_s,
so a name, URL or rare word of the source can be produced by pointing at it. log_probs stay
log-probabilities over the vocabulary (B, V): no extended vocabulary (the BPE vocabulary
spells every source word, so there are no out-of-vocabulary source tokens to add).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model_export.base import EncoderDecoder, shared_embedding, source_mask
from model_export.config import ModelConfig
from service.bundle import StateTensor

COPY_STATE = "src_ids"  # copy attention's state: the source ids (B, S), source axis 1
# a copied probability below this is treated as this (log 1e-38 = -87.3), so log_probs stay
# finite where the vocabulary softmax underflows
MIN_PROBABILITY = torch.finfo(torch.float32).tiny


def reverse_within_length(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row's first `lengths[b]` positions; padding stays where it is.

    x: (B, S, D), lengths: (B,) int64. Its own inverse. Gather-based, so it exports to ONNX
    without pack_padded_sequence.
    """
    seq_len = x.shape[1]
    pos = torch.arange(seq_len, device=x.device).unsqueeze(0)  # (1, S)
    lens = lengths.unsqueeze(1)  # (B, 1)
    index = torch.where(pos < lens, lens - 1 - pos, pos)  # (B, S)
    index = index.unsqueeze(2).expand(-1, -1, x.shape[2])  # (B, S, D)
    return torch.gather(x, 1, index)


class Encoder(nn.Module):
    """Embeddings -> bidirectional RNN (two unidirectional ones) -> memory and initial state."""

    def __init__(self, *, config: ModelConfig, embedding: nn.Embedding) -> None:
        super().__init__()
        half = config.hidden_size // 2
        self.embedding = embedding
        self.dropout = nn.Dropout(config.dropout)
        rnn = nn.LSTM if config.cell == "lstm" else nn.GRU
        self.lstm = config.cell == "lstm"
        self.forward_rnn = rnn(config.embedding_size, half, batch_first=True)
        self.backward_rnn = rnn(config.embedding_size, half, batch_first=True)
        self.to_memory = nn.Linear(2 * half, config.hidden_size)
        self.to_init_hidden = nn.Linear(config.hidden_size, config.hidden_size)
        self.copy = config.copy_attention
        self.init_from_final = config.init_state == "final"
        self.pad_id = config.pad_id

    def forward(self, src_ids: Tensor, src_lengths: Tensor) -> tuple[Tensor, ...]:
        """src_ids (B, S) int64, src_lengths (B,) int64 -> memory (B, S, H), then the initial
        decoder states (B, H) in state_specs() order (and, for copy, src_ids (B, S) with
        padding set to pad_id)."""
        mask = source_mask(src_ids, src_lengths).unsqueeze(2)  # (B, S, 1)
        emb = self.dropout(self.embedding(src_ids))  # (B, S, E)
        fwd, _ = self.forward_rnn(emb)  # (B, S, H/2); padding only follows real tokens
        bwd, _ = self.backward_rnn(reverse_within_length(emb, src_lengths))  # (B, S, H/2)
        bwd = reverse_within_length(bwd, src_lengths)  # back to source order
        memory = self.to_memory(torch.cat([fwd, bwd], dim=2))  # (B, S, H)
        memory = memory * mask.to(memory.dtype)  # padding positions are exactly zero
        if self.init_from_final:  # forward RNN at the last token, backward at the first
            last = (src_lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, fwd.shape[2])
            summary = torch.cat([fwd.gather(1, last).squeeze(1), bwd[:, 0]], dim=1)  # (B, H)
        else:
            count = mask.sum(dim=1).clamp(min=1).to(memory.dtype)  # (B, 1)
            summary = memory.sum(dim=1) / count  # (B, H): the mean of the memory
        init_hidden = torch.tanh(self.to_init_hidden(summary))  # (B, H)
        zeros = torch.zeros_like(init_hidden)  # (B, H)
        states = (init_hidden, zeros, zeros) if self.lstm else (init_hidden, zeros)
        if self.copy:
            pad = torch.full_like(src_ids, self.pad_id)
            states = (*states, torch.where(mask.squeeze(2), src_ids, pad))  # (B, S)
        return memory, *states  # hidden, [cell], context, [src_ids]


class AttentionScore(nn.Module):
    """score(h, m) for every source position: h (B, H), memory (B, S, H) -> (B, S)."""

    def __init__(self, *, kind: str, hidden_size: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "general":
            self.w = nn.Linear(hidden_size, hidden_size, bias=False)
        elif kind == "additive":
            self.w_query = nn.Linear(hidden_size, hidden_size, bias=False)
            self.w_memory = nn.Linear(hidden_size, hidden_size)
            self.v = nn.Linear(hidden_size, 1, bias=False)
        elif kind == "cosine":
            self.scale = nn.Parameter(torch.tensor(10.0))  # cosines are in [-1, 1]: sharpen
        elif kind != "dot":
            raise ValueError(f"unknown attention score {kind!r}")

    def forward(self, h: Tensor, memory: Tensor) -> Tensor:
        if self.kind == "dot":
            return torch.bmm(memory, h.unsqueeze(2)).squeeze(2)  # (B, S)
        if self.kind == "general":
            return torch.bmm(memory, self.w(h).unsqueeze(2)).squeeze(2)  # (B, S)
        if self.kind == "additive":
            q = self.w_query(h).unsqueeze(1)  # (B, 1, H)
            return self.v(torch.tanh(q + self.w_memory(memory))).squeeze(2)  # (B, S)
        h_n = F.normalize(h, dim=1, eps=1e-6)  # (B, H)
        m_n = F.normalize(memory, dim=2, eps=1e-6)  # (B, S, H)
        return self.scale * torch.bmm(m_n, h_n.unsqueeze(2)).squeeze(2)  # (B, S)


class LocalWindow(nn.Module):
    """Luong's local-p scope: predict a centre p_t in [0, len - 1] from h, then add a Gaussian
    log-prior (sigma = D / 2) to the scores and allow only positions with |s - p_t| <= D.

    round(p_t) is always a real source position inside the window, so no row is ever fully
    masked.
    """

    def __init__(self, *, window: int, hidden_size: int) -> None:
        super().__init__()
        self.window = window
        self.predict = nn.Sequential(  # v_p^T tanh(W_p h)
            nn.Linear(hidden_size, hidden_size), nn.Tanh(), nn.Linear(hidden_size, 1)
        )

    def forward(self, h: Tensor, scores: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        """-> scores with the prior added (B, S), allowed positions (B, S) bool."""
        lengths = src_mask.sum(dim=1, keepdim=True).to(scores.dtype)  # (B, 1)
        centre = (lengths - 1) * torch.sigmoid(self.predict(h))  # (B, 1)
        positions = torch.arange(scores.size(1), device=scores.device)  # (S,)
        distance = positions.unsqueeze(0).to(scores.dtype) - centre  # (B, S)
        sigma = self.window / 2
        prior = distance * distance / (2 * sigma * sigma)  # (B, S)
        allowed = src_mask & (distance.abs() <= self.window)  # (B, S)
        return scores - prior, allowed


class Attention(nn.Module):
    """Attention over the masked source: soft (softmax) or hard (one position), global or
    local (a window around a predicted centre).

    Hard attention puts all weight on the best-scoring allowed position. Training uses a
    straight-through estimator (the forward value is exactly one-hot, the gradient flows
    through the softmax); in eval mode, and so in the exported graph, only the argmax runs.
    """

    def __init__(self, *, kind: str, score: str, hidden_size: int, window: int | None) -> None:
        super().__init__()
        if kind not in ("soft", "hard"):
            raise ValueError(f"unknown attention kind {kind!r}")
        self.kind = kind
        self.score = AttentionScore(kind=score, hidden_size=hidden_size)
        self.local = None if window is None else LocalWindow(window=window, hidden_size=hidden_size)

    def forward(self, h: Tensor, memory: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        """-> attention (B, S) summing to 1, context (B, H)."""
        scores = self.score(h, memory)  # (B, S)
        allowed = src_mask
        if self.local is not None:
            scores, allowed = self.local(h, scores, src_mask)
        lowest = torch.finfo(scores.dtype).min  # never -inf: fully masked rows stay finite
        scores = scores.masked_fill(~allowed, lowest)
        if self.kind == "soft":
            attention = torch.softmax(scores, dim=1)  # (B, S)
        else:
            best = scores.argmax(dim=1, keepdim=True)  # (B, 1)
            positions = torch.arange(scores.size(1), device=scores.device).unsqueeze(0)  # (1, S)
            attention = (positions == best).to(scores.dtype)  # (B, S) one-hot
            if self.training:  # straight-through: one-hot value, softmax gradient
                soft = torch.softmax(scores, dim=1)
                attention = attention + soft - soft.detach()
        context = torch.bmm(attention.unsqueeze(1), memory).squeeze(1)  # (B, H)
        return attention, context


def copy_mix(
    vocab_log_probs: Tensor, attention: Tensor, p_gen: Tensor, src_ids: Tensor, src_mask: Tensor
) -> Tensor:
    """log(p_gen P_vocab + (1 - p_gen) attention scattered onto the source ids).

    vocab_log_probs (B, T, V), attention (B, T, S), p_gen (B, T, 1), src_ids (B, S) int64,
    src_mask (B, S) bool -> log_probs (B, T, V). Padded positions (src_mask False) add
    nothing, whatever id the padding holds.
    """
    weights = attention * src_mask.unsqueeze(1).to(attention.dtype)  # (B, T, S)
    index = src_ids.unsqueeze(1).expand(-1, attention.shape[1], -1)  # (B, T, S)
    copied = torch.zeros_like(vocab_log_probs).scatter_add(2, index, weights)  # (B, T, V)
    mixed = p_gen * vocab_log_probs.exp() + (1 - p_gen) * copied  # (B, T, V)
    return torch.log(mixed.clamp_min(MIN_PROBABILITY))


class DecoderStep(nn.Module):
    """One decoding step: previous token and state in; log-probs, attention and state out."""

    def __init__(self, *, config: ModelConfig, embedding: nn.Embedding) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.embedding = embedding
        self.dropout = nn.Dropout(config.dropout)
        cell = nn.LSTMCell if config.cell == "lstm" else nn.GRUCell
        self.lstm = config.cell == "lstm"
        self.cell = cell(config.embedding_size + hidden, hidden)
        self.attention: Attention | None = None
        if config.attention_kind != "none":
            self.attention = Attention(
                kind=config.attention_kind,
                score=str(config.attention_score),
                hidden_size=hidden,
                window=config.attention_window,
            )
        # W_c of h~ = tanh(W_c [h; c]); without attention there is no c: h~ = tanh(W_c h)
        combined = hidden if self.attention is None else 2 * hidden
        self.combine = nn.Linear(combined, hidden, bias=False)
        self.to_embedding = nn.Linear(hidden, config.embedding_size, bias=False)
        self.output_bias = nn.Parameter(torch.zeros(config.vocab_size))
        # copy: p_gen from [attention context; cell output; input embedding]
        self.copy_gate: nn.Linear | None = None
        if config.copy_attention:
            self.copy_gate = nn.Linear(2 * hidden + config.embedding_size, 1)

    def recur(
        self, prev_ids: Tensor, memory: Tensor, src_mask: Tensor, states: tuple[Tensor, ...]
    ) -> tuple[Tensor, tuple[Tensor, ...], Tensor | None]:
        """The recurrent half of a step -> attention (B, S), new recurrent states, p_gen
        (B, 1) (None without copy); the last state is the attentional vector h~ (B, H),
        which `project` turns into log-probs."""
        emb = self.dropout(self.embedding(prev_ids))  # (B, E)
        step_input = torch.cat([emb, states[-1]], dim=1)  # (B, E + H): input feeding
        if self.lstm:
            h, c = self.cell(step_input, (states[0], states[1]))  # (B, H) each
        else:
            h = self.cell(step_input, states[0])  # (B, H)
        if self.attention is None:  # no attention: all-zero weights, h~ from h alone
            # `memory` is not read; export.py keeps it in the graph (the contract's inputs).
            attention = torch.zeros_like(src_mask, dtype=memory.dtype)  # (B, S)
            attentional = torch.tanh(self.combine(h))  # (B, H)
        else:
            attention, attn_context = self.attention(h, memory, src_mask)  # (B, S), (B, H)
            attentional = torch.tanh(self.combine(torch.cat([h, attn_context], dim=1)))  # (B, H)
        new_states = (h, c, attentional) if self.lstm else (h, attentional)
        p_gen = None
        if self.copy_gate is not None:
            gate_input = torch.cat([attn_context, h, emb], dim=1)  # (B, 2H + E)
            p_gen = torch.sigmoid(self.copy_gate(gate_input)).float()  # (B, 1)
        return attention, new_states, p_gen

    def project(self, attentional: Tensor) -> Tensor:
        """h~ (..., H) -> log_probs (..., V) float32; tied to the shared embedding."""
        projected = self.to_embedding(self.dropout(attentional))  # (..., E)
        logits = F.linear(projected, self.embedding.weight, self.output_bias)  # (..., V)
        return torch.log_softmax(logits.float(), dim=-1)

    def forward(
        self, prev_ids: Tensor, memory: Tensor, src_mask: Tensor, *states: Tensor
    ) -> tuple[Tensor, ...]:
        """prev_ids (B,), memory (B, S, H), src_mask (B, S) bool, states (B, H) each (and,
        for copy, src_ids (B, S) last) -> log_probs (B, V), attention (B, S), then the new
        states (src_ids passed through)."""
        if self.copy_gate is None:
            attention, new_states, _ = self.recur(prev_ids, memory, src_mask, states)
            return self.project(new_states[-1]), attention.float(), *new_states
        *recurrent, src_ids = states
        attention, new_states, p_gen = self.recur(prev_ids, memory, src_mask, tuple(recurrent))
        assert p_gen is not None
        attention = attention.float()
        log_probs = copy_mix(
            self.project(new_states[-1]).unsqueeze(1),  # (B, 1, V)
            attention.unsqueeze(1),  # (B, 1, S)
            p_gen.unsqueeze(1),  # (B, 1, 1)
            src_ids,
            src_mask,
        ).squeeze(1)  # (B, V)
        return log_probs, attention, *new_states, src_ids.clone()


class Seq2Seq(EncoderDecoder):
    """RNN encoder + decoder step sharing one embedding table (shared vocabulary)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.architecture != "rnn":
            raise ValueError(
                f"Seq2Seq is the rnn family; use families.build_model for {config.architecture}"
            )
        self.config = config
        self.embedding = shared_embedding(config)
        self.encoder = Encoder(config=config, embedding=self.embedding)
        self.decoder = DecoderStep(config=config, embedding=self.embedding)

    def state_specs(self) -> tuple[StateTensor, ...]:
        """Each recurrent state is (B, H), batch axis only; copy attention adds the source
        ids (B, S) with source axis 1."""
        cell = ("cell",) if self.config.cell == "lstm" else ()
        recurrent = tuple(StateTensor(name=n, batch_axis=0) for n in ("hidden", *cell, "context"))
        if not self.config.copy_attention:
            return recurrent
        return (*recurrent, StateTensor(name=COPY_STATE, batch_axis=0, source_axis=1))

    def forward(self, src_ids: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: tgt_in (B, T) starts with BOS -> log_probs (B, T, V).

        The decoder's own step, split in its two halves: the recurrent half runs once per
        position, the vocabulary projection once for all positions (the same modules).
        """
        memory, *init = self.encoder(src_ids, src_lengths)
        copy = self.config.copy_attention
        states = tuple(init[:-1] if copy else init)  # the recurrent states
        mask = source_mask(src_ids, src_lengths)  # (B, S)
        steps, attentions, gates = [], [], []
        for t in range(tgt_in.shape[1]):
            attention, states, p_gen = self.decoder.recur(tgt_in[:, t], memory, mask, states)
            steps.append(states[-1])  # h~ (B, H)
            attentions.append(attention)  # (B, S)
            gates.append(p_gen)  # (B, 1) or None
        log_probs = self.decoder.project(torch.stack(steps, dim=1))  # (B, T, V)
        if not copy:
            return log_probs
        return copy_mix(
            log_probs,
            torch.stack(attentions, dim=1).float(),  # (B, T, S)
            torch.stack(gates, dim=1),  # (B, T, 1)
            init[-1],  # src_ids (B, S), padding = pad_id
            mask,
        )
