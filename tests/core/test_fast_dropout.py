"""CPU training's dropout with numpy-drawn masks: the drop rate, the scaling of kept elements in
both passes, seeding, and that a model gets its stock modules and attention back afterwards."""

from __future__ import annotations

import numpy as np
import pytest

from llmsynth_core.fast_dropout import (
    ATTENTION,
    RESOLUTION,
    apply_dropout,
    drop_threshold,
    dropout_mask,
    fast_dropout,
)


def test_masks_drop_at_the_quantised_rate_and_follow_the_seed() -> None:
    import torch

    shape = (64, 1000)
    mask = dropout_mask(np.random.default_rng(3), shape, 0.1, torch.float32)
    assert tuple(mask.shape) == shape and mask.dtype == torch.float32
    assert drop_threshold(0.1) == 6554
    scale = RESOLUTION / (RESOLUTION - 6554)
    assert mask.unique().tolist() == [0.0, pytest.approx(scale)]
    dropped = float((mask == 0).float().mean())
    # 64,000 draws: the standard error of the rate is about 0.0012.
    assert dropped == pytest.approx(6554 / RESOLUTION, abs=0.005)
    same = dropout_mask(np.random.default_rng(3), shape, 0.1, torch.float32)
    other = dropout_mask(np.random.default_rng(4), shape, 0.1, torch.float32)
    assert torch.equal(mask, same) and not torch.equal(mask, other)
    # In bf16 the same draws keep the same elements, scaled by the bf16 nearest to `scale`.
    half = dropout_mask(np.random.default_rng(3), shape, 0.1, torch.bfloat16)
    assert torch.equal(half == 0, mask == 0)
    assert half.max().item() == torch.tensor(scale, dtype=torch.bfloat16).item()


def test_kept_elements_are_scaled_in_both_passes() -> None:
    import torch

    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(8, 50, dtype=dtype, requires_grad=True)
        out = apply_dropout(x, 0.25, np.random.default_rng(0))
        mask = dropout_mask(np.random.default_rng(0), (8, 50), 0.25, dtype)
        assert out.dtype == dtype
        assert torch.equal(out, x.detach() * mask)
        out.sum().backward()
        assert x.grad is not None
        assert torch.equal(x.grad, mask)


def test_no_drop_is_the_identity_and_certain_drop_zeroes() -> None:
    import torch

    x = torch.randn(4, 4)
    assert apply_dropout(x, 0.0, np.random.default_rng(0)) is x
    assert not bool(apply_dropout(x, 1.0, np.random.default_rng(0)).any())


def test_model_gets_stock_modules_and_attention_back(tiny_encoder_dir: str) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_encoder_dir, num_labels=2, local_files_only=True
    )
    batch = tokenizer(
        ["a short one", "a somewhat longer text here"], padding=True, return_tensors="pt"
    )
    model.eval()
    with torch.no_grad():
        before = model(**batch).logits
    stock = {name for name, m in model.named_modules() if type(m) is torch.nn.Dropout}
    assert stock
    with fast_dropout(model, seed=7):
        assert model.config._attn_implementation == ATTENTION
        assert not any(type(m) is torch.nn.Dropout for m in model.modules())
        with torch.no_grad():
            assert torch.allclose(model(**batch).logits, before, atol=1e-6)  # eval: no dropout
        model.train()
        first = model(**batch).logits
        second = model(**batch).logits
        assert not torch.allclose(first, second)  # fresh masks each call
        first.sum().backward()
    assert model.config._attn_implementation == "sdpa"
    assert {name for name, m in model.named_modules() if type(m) is torch.nn.Dropout} == stock
