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
    fast_dropout,
    keep_mask,
)


def test_masks_drop_at_the_quantised_rate_and_follow_the_seed() -> None:
    shape = (64, 1000)
    mask = keep_mask(np.random.default_rng(3), shape, 0.1)
    assert tuple(mask.shape) == shape
    assert drop_threshold(0.1) == 6554
    dropped = 1 - float(mask.float().mean())
    # 64,000 draws: the standard error of the rate is about 0.0012.
    assert dropped == pytest.approx(6554 / RESOLUTION, abs=0.005)
    same = keep_mask(np.random.default_rng(3), shape, 0.1)
    other = keep_mask(np.random.default_rng(4), shape, 0.1)
    assert bool((mask == same).all()) and not bool((mask == other).all())


def test_kept_elements_are_scaled_in_both_passes() -> None:
    import torch

    x = torch.randn(8, 50, requires_grad=True)
    out = apply_dropout(x, 0.25, np.random.default_rng(0))
    keep = keep_mask(np.random.default_rng(0), (8, 50), 0.25)
    scale = RESOLUTION / (RESOLUTION - drop_threshold(0.25))
    assert torch.allclose(out, x.detach() * keep * scale)
    out.sum().backward()
    assert x.grad is not None
    assert torch.allclose(x.grad, keep.float() * scale)


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
