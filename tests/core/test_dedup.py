from __future__ import annotations

import random

import pytest

from llmsynth_core import digests
from llmsynth_core.config import GenerationConfig
from llmsynth_core.dedup import (
    NearDuplicateIndex,
    containment,
    jaccard,
    lsh_bands,
    shingles,
)
from llmsynth_core.gates import QualityGates

BASE = "The central bank raised interest rates by half a point on Tuesday to fight inflation."


def test_shingles_ignore_case_and_punctuation_and_cover_short_texts() -> None:
    assert shingles("Stocks rose, sharply!") == shingles("stocks rose sharply")
    assert shingles("Stocks rose") == frozenset({"stocks rose"})
    assert shingles("  ...  ") == frozenset()


def test_jaccard_and_containment_known_values() -> None:
    a, b = frozenset({"x", "y"}), frozenset({"y", "z", "w"})
    assert jaccard(a, b) == pytest.approx(1 / 4)
    assert containment(a, b) == pytest.approx(1 / 2)
    assert jaccard(a, a) == 1.0


def test_index_finds_a_one_word_edit_but_not_an_unrelated_text() -> None:
    index = NearDuplicateIndex(threshold=0.6)
    index.add(index.fingerprint(BASE))
    edited = BASE.replace("Tuesday", "Wednesday")
    assert jaccard(shingles(edited), shingles(BASE)) >= 0.6
    assert index.find(index.fingerprint(edited))
    assert not index.find(index.fingerprint("A local team won the cup after extra time."))


def test_index_confirms_candidates_with_exact_jaccard() -> None:
    """Thousands of random texts: none is reported as a near duplicate of another."""
    rng = random.Random(0)
    words = [f"w{i}" for i in range(2000)]
    index = NearDuplicateIndex(threshold=0.5)
    found = 0
    for _ in range(2000):
        fingerprint = index.fingerprint(" ".join(rng.choice(words) for _ in range(20)))
        found += index.find(fingerprint)
        index.add(fingerprint)
    assert found == 0
    assert len(index) == 2000


@pytest.mark.parametrize("merge_every", [8192, 7])
def test_candidates_are_those_of_datasketchs_lsh_on_the_same_signatures(
    merge_every: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our band digests stand in for `MinHashLSH`; they must propose exactly what it would,
    from the sorted array as from the texts added since its last merge."""
    import zlib

    from datasketch import MinHash, MinHashLSH

    monkeypatch.setattr(digests, "MERGE_EVERY", merge_every)
    rng = random.Random(1)
    words = [f"w{i}" for i in range(5)]  # a tiny vocabulary: many shared bands
    texts = [" ".join(rng.choice(words) for _ in range(8)) for _ in range(300)]
    index = NearDuplicateIndex(threshold=0.5)
    bands, rows = lsh_bands(0.3)
    lsh = MinHashLSH(num_perm=64, params=(bands, rows))
    proposed = 0
    for position, text in enumerate(texts):
        minhash = MinHash(num_perm=64, seed=1, hashfunc=zlib.crc32, scheme="affine32")
        minhash.update_batch([s.encode("utf-8") for s in shingles(text)])
        fingerprint = index.fingerprint(text)
        expected = {int(key) for key in lsh.query(minhash)}
        assert index.candidates(fingerprint) == expected
        proposed += len(expected)
        lsh.insert(str(position), minhash)
        index.add(fingerprint)
    assert 200 < proposed < 300 * 299 // 4, (
        "too few or too many candidates for the comparison to mean anything"
    )


def test_band_digest_collisions_never_change_a_verdict() -> None:
    """With every band digest colliding, each text is a digest match of every other: the
    verdicts and candidates must still be those of the exact bands and Jaccard."""
    rng = random.Random(2)
    words = [f"w{i}" for i in range(40)]
    bases = [[rng.choice(words) for _ in range(16)] for _ in range(30)]
    texts = []
    for _ in range(120):  # one word changed in a base text, or none: many near duplicates
        text = list(rng.choice(bases))
        text[rng.randrange(16)] = rng.choice(words)
        texts.append(" ".join(text))
    exact, colliding = NearDuplicateIndex(threshold=0.6), NearDuplicateIndex(threshold=0.6)
    colliding._mix[:] = 0  # every band's digest is its band's salt alone
    verdicts = []
    for text in texts:
        mine, theirs = exact.fingerprint(text), colliding.fingerprint(text)
        assert len(colliding._digest_matches(theirs)) == len(colliding)
        assert colliding.candidates(theirs) == exact.candidates(mine)
        verdicts.append(exact.find(mine))
        assert colliding.find(theirs) == verdicts[-1]
        if not verdicts[-1]:
            exact.add(mine)
            colliding.add(theirs)
    assert 10 < sum(verdicts) < 110, "the comparison needs both verdicts"


def test_gates_hold_a_few_hundred_bytes_per_accepted_text() -> None:
    import tracemalloc

    rng = random.Random(3)
    words = [f"word{i}" for i in range(3000)]
    texts = [" ".join(rng.choice(words) for _ in range(20)) for _ in range(2000)]
    gates = _gates()
    for text in texts[:10]:  # imports and first allocations, untraced
        gates.accept(gates.judge(text, "stop", ()).text)
    tracemalloc.start()
    for text in texts[10:]:
        verdict = gates.judge(text, "stop", ())
        assert verdict.reason is None
        gates.accept(verdict.text)
    # What is left once the latest entries are merged (the dicts before a merge are bounded).
    gates._seen._digests.merge()
    assert gates._near is not None
    gates._near._digests.merge()
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Its text (~130 bytes here), an 8-byte end, a 12-byte digest entry for exact duplicates
    # and 16 bands x 8 bytes; a str in a set plus dicts of bands and shingle sets took 6.5 KB.
    assert held / len(texts) < 400, held / len(texts)


def _gates(**overrides: object) -> QualityGates:
    config = GenerationConfig.model_validate(overrides)
    return QualityGates(config, {"ex1": BASE, "ex2": "Shares of the carmaker fell after a recall."})


def test_gates_drop_near_duplicates_of_accepted_rows_only() -> None:
    gates = _gates()
    first = gates.judge(BASE, "stop", ())
    assert first.reason is None
    # Judged but not accepted (e.g. surplus): not held against later replies.
    assert gates.judge(BASE.replace("Tuesday", "Monday"), "stop", ()).reason is None
    gates.accept(first.text)
    assert gates.judge(BASE, "stop", ()).reason == "duplicate"
    assert gates.judge(BASE.replace("Tuesday", "Monday"), "stop", ()).reason == "near_duplicate"


def test_gates_drop_few_shot_copies_of_the_shown_examples() -> None:
    gates = _gates()
    copy = "Breaking: " + BASE
    assert gates.judge(copy, "stop", ("ex1",)).reason == "copied_example"
    # The same text is no copy when that example was not shown.
    assert gates.judge(copy, "stop", ("ex2",)).reason is None


def test_gates_can_be_switched_off() -> None:
    gates = _gates(near_duplicate_jaccard=None, copy_containment=None)
    gates.accept(gates.judge(BASE, "stop", ("ex1",)).text)
    assert gates.judge(BASE.replace("Tuesday", "Monday"), "stop", ("ex1",)).reason is None


@pytest.mark.parametrize("merge_every", [8192, 3])
def test_text_set_is_a_set_of_strings_in_order(
    merge_every: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digests, "MERGE_EVERY", merge_every)
    texts = digests.TextSet()
    words = ["", "a", "ünïcode ✓", "a b", "b a", "a"]
    positions = [texts.add(word) for word in words]
    assert positions == list(range(6)) and len(texts) == 6
    assert [texts[i] for i in positions] == words
    assert all(word in texts for word in words)
    assert "a b " not in texts and "c" not in texts and 3 not in texts


def test_digest_map_finds_every_position_of_a_digest_across_merges() -> None:
    found = digests.DigestMap(merge_every=4)
    for position in range(10):
        found.add([position % 3, 100 + position], position)
    import numpy as np

    keys = np.array([1, 105, 7], dtype=np.uint64)
    assert found.find(keys) == {1, 4, 7, 5}


def test_copy_check_keeps_the_shingles_of_recent_examples_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import llmsynth_core.gates as gates_module

    monkeypatch.setattr(gates_module, "EXAMPLE_SHINGLES_CACHED", 2)
    examples = {
        f"ex{i}": f"Report {i}: the summit in city {i} ended without a deal." for i in range(6)
    }
    gates = QualityGates(GenerationConfig(), examples)
    for i in range(6):
        copy = "Breaking: " + examples[f"ex{i}"]
        assert gates.judge(copy, "stop", (f"ex{i}",)).reason == "copied_example"
        assert gates.judge(copy, "stop", ("ex0",)).reason == (None if i else "copied_example")
    assert list(gates._example_shingles) == ["ex5", "ex0"]
