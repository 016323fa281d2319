"""Hand-built models for the search tests: fixed log-prob tables and a tiny real Transformer."""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from nmt_preln.config import ModelConfig, SearchConfig
from nmt_preln.models.transformer import Transformer
from nmt_preln.search.beam_search import Specials

PAD, EOS, UNK = 1, 2, 3
SPECIALS = Specials(pad=PAD, eos=EOS, unk=UNK)


def gen_cfg(**overrides: object) -> SearchConfig:
    """The search settings for tests: small limits, the given overrides."""
    values: dict[str, object] = {"max_len_b": 10}
    values.update(overrides)
    return SearchConfig(**values)  # type: ignore[arg-type]


@dataclass
class RowsEnc:
    """An 'encoder output' that only remembers which source row each row came from."""

    rows: Tensor  # (batch,)

    def reorder(self, order: Tensor) -> RowsEnc:
        return RowsEnc(self.rows.index_select(0, order))


@dataclass
class StepCache:
    step: int = 0

    def reorder_beams(self, order: Tensor, kept: Tensor | None) -> None:
        del order, kept  # a table model keeps no per-row state


class TableModel:
    """Next-token log-probs read from ``table[step, last_token]`` (the same for every source).

    Implements the DecodingModel protocol; ``decode`` gives the same numbers teacher-forced.
    """

    def __init__(self, table: Tensor) -> None:
        self.table = table  # (steps, vocab, vocab) log-probs

    def encode(self, src_tokens: Tensor) -> RowsEnc:
        return RowsEnc(torch.arange(src_tokens.size(0)))

    def init_cache(self, enc: RowsEnc, *, max_len: int) -> StepCache:
        del enc, max_len
        return StepCache()

    def decode_step(self, tokens: Tensor, cache: StepCache) -> Tensor:
        step = min(cache.step, self.table.size(0) - 1)
        cache.step += 1
        return self.table[step, tokens]  # (rows, V)

    def decode(self, prev: Tensor, enc: RowsEnc) -> Tensor:
        del enc
        steps = torch.arange(prev.size(1)).clamp(max=self.table.size(0) - 1)
        return self.table[steps[None, :], prev]  # (rows, T, V)


def uniform_table(steps: int, vocab: int, *, low: float = -20.0) -> Tensor:
    """A table of very unlikely tokens, to be filled in by a test."""
    return torch.full((steps, vocab, vocab), low)


def tiny_transformer(vocab: int = 24, *, seed: int = 0, d_model: int = 16) -> Transformer:
    """A 2+2-layer Transformer with random weights and no dropout (eval mode)."""
    torch.manual_seed(seed)
    cfg = ModelConfig(
        encoder_layers=2,
        decoder_layers=2,
        d_model=d_model,
        ffn_dim=2 * d_model,
        num_heads=2,
        dropout=0.0,
        max_positions=64,
    )
    return Transformer(cfg, src_vocab_size=vocab, tgt_vocab_size=vocab, pad=PAD).eval()


@functools.cache
def _trained_state(vocab: int, steps: int) -> dict[str, Tensor]:
    model = tiny_transformer(vocab)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for i in range(steps):
        sources = random_sources(16, vocab=vocab, seed=100 + i)
        src, _ = pad_batch(sources)
        tgt, _ = pad_batch([torch.cat([s[:-1].flip(0), s[-1:]]) for s in sources])
        prev = torch.cat([torch.full((tgt.size(0), 1), EOS), tgt[:, :-1]], dim=1)
        logits = model(src, prev)  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return copy.deepcopy(model.state_dict())


def trained_transformer(vocab: int = 24, *, steps: int = 40) -> Transformer:
    """A tiny Transformer half-trained to reverse its input (~1 s, cached).

    Random weights almost never predict </s>; a little training gives varied lengths and
    peaked but imperfect distributions, where beam search and greedy can differ.
    """
    model = tiny_transformer(vocab)
    model.load_state_dict(_trained_state(vocab, steps))
    return model.eval()


def random_sources(n: int, *, vocab: int = 24, seed: int = 0, max_len: int = 7) -> list[Tensor]:
    """``n`` source sentences of random length, ending in </s>."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, max_len, (n,), generator=gen)
    return [
        torch.cat([torch.randint(4, vocab, (int(length),), generator=gen), torch.tensor([EOS])])
        for length in lengths
    ]


def pad_batch(sentences: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Right-pad into ``(batch, src_len)``; also return the lengths ``(batch,)``."""
    lengths = torch.tensor([s.numel() for s in sentences])
    batch = torch.full((len(sentences), int(lengths.max())), PAD, dtype=torch.long)
    for i, s in enumerate(sentences):
        batch[i, : s.numel()] = s
    return batch, lengths


def forced_score(model: Transformer, src: Tensor, hyp: list[int], *, lenpen: float) -> float:
    """Teacher-forced full forward: sum of log p(hyp_t | hyp_<t, src) / len(hyp) ** lenpen."""
    target = torch.tensor(hyp)[None, :]
    prev = torch.cat([torch.tensor([[EOS]]), target[:, :-1]], dim=1)
    with torch.no_grad():
        lprobs = torch.log_softmax(model(src[None, :], prev).float(), dim=-1)
    total = lprobs.gather(2, target[:, :, None]).sum().item()
    return total / len(hyp) ** lenpen
