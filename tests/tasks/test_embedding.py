"""Sentence embeddings from the embedded MiniLM: unit length, input order, meaning."""

from __future__ import annotations

import numpy as np
import pytest

from llmsynth_core.embedding import embed_texts
from tasks.encoders import resolve_encoder

TEXTS = [
    "The central bank raised interest rates to fight inflation.",
    "A short one.",
    "Interest rates went up as the bank tried to curb rising prices.",
    "The striker scored twice in the cup final.",
]

pytestmark = pytest.mark.training  # runs the real encoder


def test_embeddings_are_unit_length_in_input_order_and_meaningful() -> None:
    model_dir = resolve_encoder("embedded:all-MiniLM-L6-v2")
    vectors = embed_texts(model_dir, TEXTS, batch_size=2)
    assert vectors.shape == (4, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 2] > sims[0, 3] + 0.2  # paraphrase beats a different topic
    # Batching and length-sorting do not change a text's vector.
    alone = embed_texts(model_dir, [TEXTS[2]], batch_size=1)
    assert np.allclose(alone[0], vectors[2], atol=1e-5)
