"""How long a reply may be: each task's effective max_tokens, and the words its length slots ask.

A length slot ("about 300 words") that asks for more than max_tokens allows makes the model
stop mid-text: the reply is trimmed or dropped and the data skews short. Words are counted at
TOKENS_PER_WORD tokens each, a common figure for English with GPT-style tokenizers.
"""

from __future__ import annotations

import math
import re

from llmsynth_core.config import LLMConfig
from llmsynth_core.taskspec import TaskSpec

TOKENS_PER_WORD = 1.4
# Mean words per sentence of the real train splits written in full sentences (measured:
# ag_news 24.6, imdb 21.8, financial_phrasebank 21.2); a slot counted in sentences is
# converted at this rate.
WORDS_PER_SENTENCE = 22
# "a few words": the most that "a few" plausibly means.
_FEW = 5
_NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
}


def effective_max_tokens(spec: TaskSpec, llm: LLMConfig) -> int:
    """The reply limit sent for this task: the spec's own `prompts.max_tokens` where it sets
    one (a task that needs long texts, such as IMDB reviews), else `llm.max_tokens`."""
    return spec.prompts.max_tokens if spec.prompts.max_tokens is not None else llm.max_tokens


def words_asked(slot: str) -> int | None:
    """The most words a length slot asks for ("50-100 words": 100; "two or three sentences":
    3 * WORDS_PER_SENTENCE); None when it names no count in words or sentences."""
    tokens = re.findall(r"\d+|[a-z]+", slot.lower())
    if any(token.startswith("word") for token in tokens):
        per_unit = 1
    elif any(token.startswith("sentence") for token in tokens):
        per_unit = WORDS_PER_SENTENCE
    else:
        return None
    counts = _numbers(tokens)
    return max(counts) * per_unit if counts else None


def _numbers(tokens: list[str]) -> list[int]:
    """Numbers in digits or words; "forty five" is 45, "two hundred" 200, "a few" _FEW."""
    found: list[int] = []
    current: int | None = None
    for token in tokens:
        value = int(token) if token.isdigit() else _NUMBER_WORDS.get(token)
        if token == "few":
            current = _FEW  # replaces the "a" of "a few"
        elif value is None:
            if current is not None:
                found.append(current)
            current = None
        elif current is not None and token == "hundred":
            current *= 100
        elif current is not None and current >= 20 and current % 10 == 0 and value < 10:
            current += value
        else:
            if current is not None:
                found.append(current)
            current = value
    if current is not None:
        found.append(current)
    return found


def length_overruns(spec: TaskSpec, llm: LLMConfig) -> list[str]:
    """The task's length slots that ask for more words than its effective max_tokens allows,
    or that name no count at all, each with the reason."""
    max_tokens = effective_max_tokens(spec, llm)
    allowed = math.floor(max_tokens / TOKENS_PER_WORD)
    problems = []
    for slot in spec.prompts.lengths:
        words = words_asked(slot)
        if words is None:
            problems.append(f"{spec.id}: length {slot!r} names no count of words or sentences")
        elif words > allowed:
            problems.append(
                f"{spec.id}: length {slot!r} asks for up to {words} words, but max_tokens="
                f"{max_tokens} allows about {allowed}; shorten the slot or set "
                f"prompts.max_tokens >= {math.ceil(words * TOKENS_PER_WORD)} in the spec"
            )
    return problems
