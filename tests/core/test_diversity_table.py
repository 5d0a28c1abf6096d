"""The diversity artifact from tiny frames and hand-made embeddings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmsynth_core.config import AnalysisConfig
from llmsynth_core.diversity_table import diversity_frame, generation_sources
from llmsynth_core.registry import load_registry
from llmsynth_core.schemas import DIVERSITY, to_table

SPEC = load_registry()["tweet_irony"]


def test_generation_sources_split_accepted_from_every_non_empty_reply() -> None:
    few = pd.DataFrame(
        {
            "text": ["a", "", None, "  ", "b"],
            "label": ["x", "x", "y", "y", "y"],
            "accepted": [True, False, False, False, False],
        }
    )
    zero = pd.DataFrame({"text": ["c"], "label": ["x"], "accepted": [True]})
    accepted, before = generation_sources({"zero_shot": zero, "few_shot": few})
    assert list(accepted) == ["few_shot", "zero_shot"]  # sorted, as the samples are drawn
    assert accepted["few_shot"]["text"].tolist() == ["a"]
    assert list(accepted["few_shot"].columns) == ["text", "label"]
    assert before["few_shot (before gates)"]["text"].tolist() == ["a", "b"]
    assert before["zero_shot (before gates)"]["text"].tolist() == ["c"]


def test_diversity_frame_rows_fit_the_schema_and_small_sources_are_skipped() -> None:
    rng = np.random.default_rng(0)
    sources = {
        "real": ["the cat sat", "a dog ran", "birds fly high"],
        "zero_shot": ["the cat sat", "the cat sat again", "a cat"],
        "few_shot": ["alone"],
    }
    embeddings = {s: rng.normal(size=(len(t), 4)).astype(np.float32) for s, t in sources.items()}
    frame, skipped = diversity_frame(SPEC, sources, embeddings, AnalysisConfig())
    assert skipped == ["few_shot"]
    assert frame["source"].tolist() == ["real", "zero_shot"]
    assert frame["n"].tolist() == [3, 3]
    real, zero = frame.to_dict("records")
    assert pd.isna(real["similarity_to_real"])
    assert -1.0 <= zero["similarity_to_real"] <= 1.0
    assert real["distinct_1"] == pytest.approx(1.0)  # nine words, all different
    assert zero["distinct_1"] < 1.0
    assert to_table(frame, DIVERSITY, "diversity").num_rows == 2
