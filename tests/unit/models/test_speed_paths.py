"""Speed paths of decoding (issue 6) give the same numbers as the plain computation."""

import torch
from tiny_models import EOS, SRC_VOCAB, TGT_VOCAB, random_tokens, tiny_model

from nmt_preln.models.decoder_cache import DecoderCache


def _reorder(cache: DecoderCache, order: torch.Tensor) -> None:
    """Any reordering: new row i is old row order[i], each with its own sentence's source."""
    cache.reorder_beams(order, torch.div(order, cache.group, rounding_mode="floor"))


def _steps(model, prev, cache) -> torch.Tensor:  # type: ignore[no-untyped-def]
    return torch.stack([model.decode_step(prev[:, t], cache) for t in range(prev.size(1))], 1)


def test_shrinking_reorder_reuses_the_buffer_and_keeps_the_numbers() -> None:
    model = tiny_model()
    src = random_tokens([9, 4, 6, 5], vocab=SRC_VOCAB)  # (4, 9)
    prev = random_tokens([6, 6, 6, 6], vocab=TGT_VOCAB, first=EOS)  # (4, 6)
    keep = torch.tensor([3, 1])  # two sentences finished and left the batch
    with torch.no_grad():
        enc = model.encode(src)
        cache = model.init_cache(enc, max_len=prev.size(1))
        _steps(model, prev[:, :1], cache)
        _reorder(cache, torch.arange(4))  # the first reorder allocates the spare buffers
        _steps(model, prev[:, 1:2], cache)
        storage = {cache.self_k.data_ptr(), cache._spare[0].data_ptr()}  # type: ignore[index]
        _reorder(cache, keep)
        assert cache.self_k.data_ptr() in storage and cache.self_k.shape[1] == 2
        rest = _steps(model, prev[keep, 2:], cache)
        full = model(src[keep], prev[keep])
    torch.testing.assert_close(rest, full[:, 2:], atol=1e-5, rtol=1e-5)


def test_cached_fused_projection_follows_weight_updates() -> None:
    model = tiny_model()
    src = random_tokens([5, 3], vocab=SRC_VOCAB)
    prev = random_tokens([4, 4], vocab=TGT_VOCAB, first=EOS)
    with torch.no_grad():
        before = model(src, prev)  # fills the cache of stacked q/k/v weights
        for layer in model.decoder.layers:
            layer.self_attn.k_proj.weight.mul_(1.5)  # an in-place update, as optimizers do
        after = model(src, prev)
    reference = model(src, prev)  # with autograd: stacked afresh on every call
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, reference.detach(), atol=1e-6, rtol=1e-6)


def test_cpu_dropout_rate_scale_and_gradient() -> None:
    from nmt_preln.models.layers import Dropout

    dropout = Dropout(0.3).train()
    torch.manual_seed(0)
    x = torch.full((400, 500), 2.0, requires_grad=True)
    y = dropout(x)
    dropped = y == 0
    assert abs(dropped.float().mean().item() - 0.3) < 0.005  # 200k draws: sd ~0.001
    kept = y[~dropped]
    torch.testing.assert_close(kept, torch.full_like(kept, 2.0 / 0.7), rtol=1e-4, atol=0)
    y.sum().backward()
    assert x.grad is not None
    assert torch.equal(x.grad == 0, dropped)  # the same mask forward and backward
    assert torch.equal(dropout.eval()(x), x) and torch.equal(Dropout(0.0).train()(x), x)


def test_bf16_attention_on_cpu_matches_float32() -> None:
    model = tiny_model()
    src = random_tokens([7, 4], vocab=SRC_VOCAB)
    prev = random_tokens([5, 5], vocab=TGT_VOCAB, first=EOS)
    with torch.no_grad():
        reference = model(src, prev)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(src, prev)
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), reference, atol=0.05, rtol=0.05)
