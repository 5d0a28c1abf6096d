"""Sentence embeddings the way sentence-transformers makes them for MiniLM-style models:
mean pooling over tokens, then L2 normalisation. Texts are batched by length."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def embed_texts(
    model_dir: str,
    texts: Sequence[str],
    batch_size: int = 64,
    max_length: int = 256,
    device: str | None = None,
) -> npt.NDArray[np.float32]:
    """One unit-length row per text, in input order."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).to(device).eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            encoded = tokenizer(
                [texts[i] for i in batch],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(device)
            hidden = model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=1)
            out[batch] = pooled.float().cpu().numpy()
    return out
