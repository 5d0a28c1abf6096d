"""Rendering the study's prompts: determinism, few-shot examples, conversations, hashing."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmsynth_core.config import GenerationConfig, LLMConfig, parse_experiment, preset_path
from llmsynth_core.llm_types import LLMRequest
from llmsynth_core.prompts import Example, PromptContext, Turn, last_user_message, plan_request
from llmsynth_core.registry import BUILTIN_DIR, load_registry
from llmsynth_core.taskspec import TaskSpec
from tests.core.pools import ag_news_pool

# Marker templates make it unambiguous which template a request used.
MARKED = {
    "generation": "GEN-TEMPLATE {label} as {style}, {length}",
    "diversity": "DIV-TEMPLATE {label} as {style}, {length}",
}


@pytest.fixture(scope="module")
def marked(ag_news: TaskSpec) -> TaskSpec:
    chat = ag_news.prompts.chat.model_copy(update=MARKED)
    return ag_news.model_copy(update={"prompts": ag_news.prompts.model_copy(update={"chat": chat})})


@pytest.fixture(scope="module")
def sports_pool(sample_dir: Path) -> list[Example]:
    return ag_news_pool(sample_dir, "Sports", 40)


def _ctx(
    spec: TaskSpec, mode: str = "zero_shot", label: str = "Sports", **kw: Any
) -> PromptContext:
    llm = kw.pop("llm", LLMConfig())
    examples = kw.pop("examples", ())
    return PromptContext(
        spec=spec,
        llm=llm,
        generation=GenerationConfig(**kw),
        mode=mode,  # type: ignore[arg-type]
        label=label,
        examples=examples,
    )


def _squash(text: str) -> str:
    return " ".join(text.split())


def test_plan_request_is_deterministic(ag_news: TaskSpec, sports_pool: list[Example]) -> None:
    for mode in ("zero_shot", "few_shot"):
        first = [plan_request(_ctx(ag_news, mode, examples=sports_pool), i) for i in range(12)]
        again = [plan_request(_ctx(ag_news, mode, examples=sports_pool), i) for i in range(12)]
        assert first == again
        assert [p.request.request_hash() for p in first] == [
            p.request.request_hash() for p in again
        ]


def test_plan_request_varies_across_indices(ag_news: TaskSpec) -> None:
    planned = [plan_request(_ctx(ag_news), i) for i in range(30)]
    assert len({p.request.seed for p in planned}) == 30
    assert len({p.style for p in planned}) > 1
    assert len({p.length for p in planned}) > 1
    assert {p.style for p in planned} <= set(ag_news.prompts.styles)
    assert {p.length for p in planned} <= set(ag_news.prompts.lengths)
    for p in planned:
        user = p.request.messages[-1].content
        assert p.style in user and p.length in user
        assert "sports" in user  # the label's prompt_name, not its data name


def test_plan_request_depends_on_label_and_llm_seed(ag_news: TaskSpec) -> None:
    base = plan_request(_ctx(ag_news), 3).request
    assert plan_request(_ctx(ag_news, label="World"), 3).request.seed != base.seed
    assert plan_request(_ctx(ag_news, llm=LLMConfig(seed=1)), 3).request.seed != base.seed


@pytest.mark.parametrize("k", [1, 3, 5])
def test_few_shot_shows_k_examples_from_the_label_pool(
    ag_news: TaskSpec, sports_pool: list[Example], k: int
) -> None:
    by_id = {example.id: example for example in sports_pool}
    chosen_sets = set()
    for index in range(8):
        planned = plan_request(
            _ctx(ag_news, "few_shot", examples=sports_pool, few_shot_k=k, few_shot_max_chars=5000),
            index,
        )
        ids = planned.example_ids
        assert len(ids) == k and len(set(ids)) == k
        assert set(ids) <= set(by_id)
        system, user = planned.request.messages
        assert system.role == "system" and user.role == "user"
        assert len(re.findall(r"^Example \d+: ", user.content, flags=re.MULTILINE)) == k
        for example_id in ids:
            assert _squash(by_id[example_id].text) in user.content
        shown = [e for e in sports_pool if _squash(e.text) in user.content]
        assert len(shown) == k
        chosen_sets.add(frozenset(ids))
    assert len(chosen_sets) > 1  # a fresh draw per request


def test_few_shot_examples_are_clipped(ag_news: TaskSpec) -> None:
    pool = [Example(id="long", text="word " * 400)]
    planned = plan_request(
        _ctx(ag_news, "few_shot", examples=pool, few_shot_k=3, few_shot_max_chars=100), 0
    )
    assert planned.example_ids == ("long",)  # pool smaller than k: all of it
    line = next(
        line for line in planned.request.messages[-1].content.splitlines() if "Example 1:" in line
    )
    shown = line.split("Example 1: ", 1)[1]
    assert len(shown) <= 100 and shown.endswith("...")


def test_zero_shot_chat_asks_for_diversity_every_n_turns(marked: TaskSpec) -> None:
    ctx = _ctx(marked, conversation_length=10, diversity_every=3)
    diverse = set()
    for index in range(25):
        planned = plan_request(ctx, index)
        user = planned.request.messages[-1].content
        assert user.startswith(("GEN-TEMPLATE", "DIV-TEMPLATE"))
        if user.startswith("DIV-TEMPLATE"):
            diverse.add(index)
        assert (planned.conversation, planned.turn) == divmod(index, 10)
    # Turns 3, 6, 9 of each ten-turn conversation; turn 0 always starts fresh.
    assert diverse == {3, 6, 9, 13, 16, 19, 23}


def test_zero_shot_history_is_capped_at_history_turns(marked: TaskSpec) -> None:
    history = [Turn(user=f"asked {i}", assistant=f"answered {i}") for i in range(6)]
    planned = plan_request(_ctx(marked, history_turns=4, conversation_length=10), 6, history)
    messages = planned.request.messages
    assert [m.role for m in messages] == ["system"] + ["user", "assistant"] * 4 + ["user"]
    # The newest four turns are kept, oldest first.
    assert [m.content for m in messages[1:-1]] == [
        "asked 2",
        "answered 2",
        "asked 3",
        "answered 3",
        "asked 4",
        "answered 4",
        "asked 5",
        "answered 5",
    ]
    assert messages[-1].content.startswith(("GEN-TEMPLATE", "DIV-TEMPLATE"))

    short = plan_request(_ctx(marked, history_turns=4), 2, history[:2]).request.messages
    assert len(short) == 1 + 2 * 2 + 1

    none = plan_request(_ctx(marked, history_turns=0), 6, history).request.messages
    assert [m.role for m in none] == ["system", "user"]


def test_few_shot_chat_ignores_history(ag_news: TaskSpec, sports_pool: list[Example]) -> None:
    history = [Turn(user="asked", assistant="answered")]
    ctx = _ctx(ag_news, "few_shot", examples=sports_pool)
    assert plan_request(ctx, 1, history) == plan_request(ctx, 1)


def test_completion_style_uses_a_prompt_and_the_specs_stop_list(
    ag_news: TaskSpec, sports_pool: list[Example]
) -> None:
    raw = yaml.safe_load((BUILTIN_DIR / "ag_news.yaml").read_text(encoding="utf-8"))
    stop = tuple(raw["prompts"]["completion"]["stop"])
    llm = LLMConfig(prompt_style="completion", model="gpt2-large")
    planned = plan_request(_ctx(ag_news, llm=llm), 0)
    zero = planned.request
    assert zero.style == "completion" and zero.messages == ()
    assert zero.stop == stop
    assert zero.prompt is not None
    assert zero.prompt.endswith(
        f"Topic: sports\nStyle: {planned.style}\nLength: {planned.length}\nArticle:"
    )

    few = plan_request(_ctx(ag_news, "few_shot", llm=llm, examples=sports_pool), 0)
    assert few.request.messages == () and few.request.stop == stop
    assert few.request.prompt is not None
    assert few.request.prompt.count("Topic: sports\nArticle: ") == 3
    for example in sports_pool:
        if example.id in few.example_ids:
            assert _squash(example.text)[:80] in few.request.prompt

    chat = plan_request(_ctx(ag_news), 0).request
    assert chat.prompt is None and chat.stop == ()


def test_zero_shot_completion_prompts_get_the_style_and_length_slots() -> None:
    """Base models get the slots too, as lines before the cue they continue; a template that
    places a slot itself keeps it there, and each request draws its own slots."""
    llm = LLMConfig(prompt_style="completion")
    for spec in load_registry().values():
        planned = [
            plan_request(_ctx(spec, label=spec.label_names[0], llm=llm), i) for i in range(8)
        ]
        for one in planned:
            prompt = one.request.prompt or ""
            lines = prompt.split("\n")
            assert lines[-3:-1] == [f"Style: {one.style}", f"Length: {one.length}"], spec.id
        assert len({(one.style, one.length) for one in planned}) > 1, spec.id

    tweet = load_registry()["tweet_irony"]
    own = tweet.prompts.completion.model_copy(
        update={"zero_shot": "A tweet, {length}, that is {label}:"}
    )
    placed = tweet.model_copy(
        update={"prompts": tweet.prompts.model_copy(update={"completion": own})}
    )
    one = plan_request(_ctx(placed, label="irony", llm=llm), 0)
    assert one.request.prompt == f"Style: {one.style}\nA tweet, {one.length}, that is ironic:"


def test_request_hash_tracks_prompt_version(ag_news: TaskSpec) -> None:
    bumped = ag_news.model_copy(
        update={"prompts": ag_news.prompts.model_copy(update={"version": "2"})}
    )
    old = plan_request(_ctx(ag_news), 0).request
    new = plan_request(_ctx(bumped), 0).request
    assert old.prompt_version == "ag_news@1" and new.prompt_version == "ag_news@2"
    assert old.request_hash() != new.request_hash()
    # The version alone changes the hash, even with identical messages and seed.
    same_text = old.model_copy(update={"prompt_version": "ag_news@2"})
    assert same_text.messages == old.messages
    assert same_text.request_hash() != old.request_hash()


def test_request_hash_ignores_runtime_config() -> None:
    raw = yaml.safe_load(preset_path("quick").read_text(encoding="utf-8"))
    other = copy.deepcopy(raw)
    other["runtime"] = {"concurrency": 64, "request_timeout_s": 1.0, "inference_batch_size": 2}
    registry = load_registry()
    hashes = []
    for config in (parse_experiment(raw, "a"), parse_experiment(other, "b")):
        ctx = PromptContext(
            spec=registry[config.tasks[0]],
            llm=config.llm,
            generation=config.generation,
            mode="zero_shot",
            label="World",
        )
        hashes.append([plan_request(ctx, i).request.request_hash() for i in range(5)])
    assert hashes[0] == hashes[1]


def test_request_hash_changes_with_sampling_parameters() -> None:
    request = LLMRequest(style="completion", model="m", prompt="p", temperature=1.0)
    assert (
        request.request_hash()
        == LLMRequest(style="completion", model="m", prompt="p", temperature=1.0).request_hash()
    )
    assert request.request_hash() != request.model_copy(update={"temperature": 0.7}).request_hash()
    assert request.request_hash() != request.model_copy(update={"seed": 3}).request_hash()


def test_last_user_message(ag_news: TaskSpec) -> None:
    history = [Turn(user="asked before", assistant="answered before")]
    request = plan_request(_ctx(ag_news), 1, history).request
    assert last_user_message(request) == request.messages[-1].content
    assert last_user_message(request) != "asked before"


def test_prompt_hash_ignores_sampling_but_not_the_prompt() -> None:
    base = LLMRequest(style="completion", model="m", prompt="p")
    assert base.model_copy(update={"temperature": 0.1}).prompt_hash() == base.prompt_hash()
    assert base.model_copy(update={"prompt": "q"}).prompt_hash() != base.prompt_hash()
