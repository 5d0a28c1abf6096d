"""The quality gates one label's replies pass through, in order, with what they have accepted.

Cleaning and the stateless checks live in `parsing.judge`; this adds the gates that compare a
reply with others: exact and near duplicates of accepted rows, and few-shot replies that copy
an example they were shown.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence

from llmsynth_core.config import GenerationConfig
from llmsynth_core.dedup import Fingerprint, NearDuplicateIndex, max_containment, shingles
from llmsynth_core.digests import TextSet
from llmsynth_core.parsing import Verdict, judge, normalise

# Few-shot examples whose shingles a label's gates keep for the copy check (a few MB).
EXAMPLE_SHINGLES_CACHED = 1024


class QualityGates:
    """Judge replies in index order; `accept` records a passed reply for the later checks."""

    def __init__(self, generation: GenerationConfig, examples: Mapping[str, str]) -> None:
        self._config = generation
        self._examples = examples
        self._example_shingles: OrderedDict[str, frozenset[str]] = OrderedDict()
        # The accepted texts (normalised): exact duplicates are looked up here, and the
        # near-duplicate index compares with the same copy.
        self._seen = TextSet()
        threshold = generation.near_duplicate_jaccard
        self._near = NearDuplicateIndex(threshold, self._seen) if threshold is not None else None
        self._pending: tuple[str, Fingerprint] | None = None

    def judge(self, raw: str, finish_reason: str | None, example_ids: Sequence[str]) -> Verdict:
        config = self._config
        verdict = judge(
            raw,
            finish_reason,
            config.min_chars,
            config.max_chars,
            self._seen,
            trim_truncated=config.on_truncated == "trim",
        )
        if verdict.reason is not None:
            return verdict
        fingerprint = self._near.fingerprint(verdict.text) if self._near is not None else None
        if config.copy_containment is not None and example_ids:
            text_shingles = fingerprint.shingles if fingerprint else shingles(verdict.text)
            shown = [self._shingles_of(example_id) for example_id in example_ids]
            if max_containment(text_shingles, shown) >= config.copy_containment:
                return Verdict(verdict.text, "copied_example")
        if self._near is not None and fingerprint is not None:
            if self._near.find(fingerprint):
                return Verdict(verdict.text, "near_duplicate")
            self._pending = (verdict.text, fingerprint)
        return verdict

    def accept(self, text: str) -> None:
        if self._near is None:
            self._seen.add(normalise(text))
        else:
            pending = self._pending
            fingerprint = (
                pending[1]
                if pending is not None and pending[0] == text
                else self._near.fingerprint(text)
            )
            self._near.add(fingerprint)  # keeps the text in self._seen too
        self._pending = None

    def _shingles_of(self, example_id: str) -> frozenset[str]:
        # The most recently shown examples only: kept for the whole pool, a few KB each, the
        # cache grew with the requests to the pool's size (30,000 texts a label in AG News).
        cache = self._example_shingles
        found = cache.get(example_id)
        if found is None:
            found = cache[example_id] = shingles(self._examples.get(example_id, ""))
            if len(cache) > EXAMPLE_SHINGLES_CACHED:
                cache.popitem(last=False)
        else:
            cache.move_to_end(example_id)
        return found
