"""Dropout for CPU training with masks drawn by numpy's PCG64 instead of torch's CPU generator.

Profiling the fine-tuning loop on CPU showed torch's dropout (`bernoulli_` on every hidden state
and attention-probability tensor) taking about a sixth of each step; numpy's generator writes
the same masks several times faster. The drop probability is quantised to 1/65536 (0.1 becomes
0.100006), kept elements are scaled by 1/(1 - that) in the tensor's dtype (as torch's dropout
does), and the masks follow from the training seed, so a rerun is bit-identical. Swapped in
for the duration of training only: the returned model carries the stock modules and attention
setting.

torch and transformers are imported inside the functions that use them.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

RESOLUTION = 1 << 16
# Added to the seed, so the masks are a stream apart from the batch order's default_rng(seed).
STREAM = 1
ATTENTION = "llmsynth_fast_dropout"
_RNG: ContextVar[np.random.Generator | None] = ContextVar("llmsynth_dropout_rng", default=None)


def drop_threshold(p: float) -> int:
    """How many of the 65536 16-bit values drop an element: round(p * 65536)."""
    return round(p * RESOLUTION)


def dropout_mask(
    rng: np.random.Generator, shape: tuple[int, ...], p: float, dtype: torch.dtype
) -> torch.Tensor:
    """A `dtype` tensor of `shape`: 0 where an element drops (probability
    drop_threshold(p) / 65536), else 1 / (1 - that) rounded to `dtype`, as torch's own dropout
    scales in the input's dtype. Values, not a bool mask: multiplying by a bool tensor took
    eight times as long as by one of the same dtype."""
    import torch

    threshold = drop_threshold(p)
    scale = torch.tensor(RESOLUTION / (RESOLUTION - threshold), dtype=dtype)
    width = scale.element_size()
    bits_dtype = {2: torch.int16, 4: torch.int32, 8: torch.int64}[width]
    unsigned = np.dtype(f"u{width}")
    bits = np.array(int(scale.view(bits_dtype).item()) % (1 << (8 * width)), dtype=unsigned)
    count = int(np.prod(shape))
    # The generator's raw 64-bit words as four 16-bit draws each: half the time of rng.bytes.
    draws = rng.bit_generator.random_raw(-(-count // 4)).view(np.uint16)[:count]
    # The 0/1 keep flags times the scale's bit pattern: the scale's bits, or all-zero bits.
    values = np.multiply(draws >= threshold, bits, dtype=unsigned)
    return torch.from_numpy(values).view(dtype).view(shape)


def apply_dropout(x: torch.Tensor, p: float, rng: np.random.Generator) -> torch.Tensor:
    """Training-mode dropout of `x` with a mask from `rng`."""
    threshold = drop_threshold(p)
    if threshold <= 0:
        return x
    if threshold >= RESOLUTION:
        return x * 0
    # Autograd keeps the mask (not x) for the backward pass: grad * mask.
    return x * dropout_mask(rng, tuple(x.shape), p, x.dtype)


@functools.cache
def _dropout_module() -> Any:
    import torch

    class FastDropout(torch.nn.Dropout):
        """nn.Dropout whose training-mode masks come from the active numpy generator."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            rng = _RNG.get()
            if not self.training or rng is None or self.inplace:
                return super().forward(x)
            return apply_dropout(x, self.p, rng)

    return FastDropout


def _attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention as transformers' eager path computes it, with the fast dropout on the
    probabilities; anything else (inference, causal or grouped heads) goes to sdpa unchanged."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    rng = _RNG.get()
    plain = (
        rng is None
        or not module.training
        or drop_threshold(dropout) <= 0
        or bool(is_causal if is_causal is not None else getattr(module, "is_causal", False))
        or key.shape[1] != query.shape[1]
        or kwargs.get("position_bias") is not None
    )
    if plain:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout, scaling, is_causal, **kwargs
        )
    assert rng is not None
    scale = query.size(-1) ** -0.5 if scaling is None else scaling
    # As transformers' eager attention under autocast: scores, softmax and probabilities in
    # the autocast dtype (the CPU softmax kernel accumulates bf16 in fp32). Casting the
    # (batch, heads, length, length) scores to fp32 and back cost 10% of a step here. The scale
    # goes on the query, a pass over (length, head size) instead of (length, length).
    scores = torch.matmul(query * scale, key.transpose(2, 3))
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            # In place: the score GEMM keeps its inputs, not its output, for the backward pass.
            scores.masked_fill_(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask
    probs = apply_dropout(torch.softmax(scores, dim=-1), dropout, rng)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None


@functools.cache
def _register_attention() -> bool:
    """Register `_attention` (with sdpa's masks) under ATTENTION; False where this
    transformers has no attention registry."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask
    except ImportError:
        return False
    AttentionInterface.register(ATTENTION, _attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, sdpa_mask)
    return True


def _swap_attention(model: Any) -> str | None:
    """Switch a model on sdpa attention to ATTENTION; returns what to switch back to."""
    config: Any = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa" or not _register_attention():
        return None
    try:
        model.set_attn_implementation(ATTENTION)
    except (AttributeError, ValueError):
        return None
    if config._attn_implementation != ATTENTION:
        return None
    return "sdpa"


def _swap_dropouts(model: Any, to_fast: bool) -> None:
    import torch

    fast = _dropout_module()
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if to_fast and type(child) is torch.nn.Dropout:
                replacement = fast(child.p, child.inplace)
            elif not to_fast and type(child) is fast:
                replacement = torch.nn.Dropout(child.p, child.inplace)
            else:
                continue
            replacement.train(child.training)
            setattr(parent, name, replacement)


@contextlib.contextmanager
def fast_dropout(model: Any, seed: int) -> Iterator[None]:
    """Within the block, `model`'s nn.Dropout modules and (on sdpa) its attention dropout draw
    their masks from a PCG64 generator seeded with `seed`; stock modules come back after."""
    _swap_dropouts(model, to_fast=True)
    restore_attention = _swap_attention(model)
    token = _RNG.set(np.random.default_rng([seed, STREAM]))
    try:
        yield
    finally:
        _RNG.reset(token)
        if restore_attention is not None:
            model.set_attn_implementation(restore_attention)
        _swap_dropouts(model, to_fast=False)
