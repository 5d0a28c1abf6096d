"""The py-spy phase split behind bench/README.md's table of a request's CPU."""

from __future__ import annotations

import pytest

from bench.spy_phases import CACHE, GATES, HTTP, LOOP, OTHER, RENDER, phase_of, phase_shares

ROOT = ("_run_module_as_main (<frozen runpy>:198)", "Handle._run (asyncio/events.py:80)")
CHAIN = (*ROOT, "run_chain (llmsynth_core/generation.py:172)")


def stack(*frames: str) -> str:
    return ";".join(frames)


def test_a_stack_goes_to_the_first_phase_whose_function_it_holds() -> None:
    lookup = (
        "Requester.__call__ (tasks/requester.py:83)",
        "Coalescer._answer (tasks/coalesce.py:41)",
        "RequestCache.get_many (tasks/request_cache.py:43)",
    )
    assert phase_of(stack(*CHAIN, *lookup)) == CACHE
    judged = (
        "LabelRun.add (llmsynth_core/generation.py:89)",
        "shingles (llmsynth_core/dedup.py:33)",
    )
    assert phase_of(stack(*CHAIN, *judged)) == GATES
    planned = (
        "LabelRun.plan (llmsynth_core/generation.py:68)",
        "draw (llmsynth_core/sampling.py:70)",
    )
    assert phase_of(stack(*CHAIN, *planned)) == RENDER
    sent = (
        "LLMClient._post (tasks/llm_client.py:290)",
        "AsyncAPIClient.post (openai/_base_client.py:1)",
    )
    assert phase_of(stack(*CHAIN, *sent)) == HTTP
    read = "_SelectorSocketTransport._read_ready (asyncio/selector_events.py:995)"
    assert phase_of(stack(*ROOT, read)) == HTTP
    assert phase_of(stack(*ROOT)) == LOOP


def test_a_stack_cut_short_goes_by_its_innermost_module() -> None:
    assert phase_of("StreamWriter.write (aiohttp/http_writer.py:211)") == HTTP
    assert phase_of("driver_cursor (tasks/state_db.py:209)") == CACHE
    assert phase_of("NearDuplicateIndex.fingerprint (llmsynth_core/dedup.py:115)") == GATES
    waiting = stack("Thread._bootstrap (threading.py:1002)", "Condition.wait (threading.py:327)")
    assert phase_of(waiting) == OTHER


def test_shares_weigh_each_stack_by_its_sample_count() -> None:
    lines = [
        f"{stack(*ROOT, 'AsyncAPIClient.post (openai/_base_client.py:2085)')} 6\n",
        f"{stack(*ROOT, 'LabelRun.add (llmsynth_core/generation.py:89)')} 3\n",
        "Thread._bootstrap (threading.py:1002) 1\n",
        "\n",
    ]
    shares = phase_shares(lines)
    assert shares == pytest.approx({HTTP: 0.6, GATES: 0.3, OTHER: 0.1})
    assert list(shares) == [HTTP, GATES, OTHER]
    assert phase_shares([]) == {}
