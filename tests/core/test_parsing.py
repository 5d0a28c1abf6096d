"""Cleaning and judging raw completions: every failure is a reason, never an exception."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from llmsynth_core.parsing import (
    Verdict,
    clean_completion,
    drop_counts,
    judge,
    normalise,
    trim_to_sentence,
)


def _judge(
    raw: str, finish: str | None = "stop", seen: set[str] | None = None, **kw: Any
) -> Verdict:
    kw.setdefault("min_chars", 10)
    kw.setdefault("max_chars", 500)
    return judge(raw, finish, seen=set() if seen is None else seen, **kw)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Sure, here is a tweet: What a match tonight!", "What a match tonight!"),
        (
            "Here's a news article:\n\nStocks fell sharply on Monday.",
            "Stocks fell sharply on Monday.",
        ),
        (
            "Certainly! Here is the article: The council approved the budget.",
            "The council approved the budget.",
        ),
        ("Sure, here you go: What a match tonight!", "What a match tonight!"),
        ("Sure! Here's my attempt:\n\nWhat a match tonight!", "What a match tonight!"),
        (
            'Of course! Here is a sarcastic tweet about Mondays:\n\n"Love Mondays."',
            "Love Mondays.",
        ),
        ('Sure! Here\'s a tweet about the game:\n\n"What a match!"', "What a match!"),
        ("Of course. Here is the review:\nA moving, funny film.", "A moving, funny film."),
        ("Tweet: can't wait for the weekend", "can't wait for the weekend"),
        ("Article 2: Stocks fell.", "Stocks fell."),
        ("HEADLINE: Area man wins lottery", "Area man wins lottery"),
        ("1. Stocks fell sharply today.", "Stocks fell sharply today."),
        ("1. Stocks fell 2.5% today.", "Stocks fell 2.5% today."),
        ("2) Stocks fell.", "Stocks fell."),
        ("- Stocks fell.", "Stocks fell."),
        ("• Stocks fell.", "Stocks fell."),
        ('"Quoted text here"', "Quoted text here"),
        ("“Curly quoted text”", "Curly quoted text"),
        ("'single quoted'", "single quoted"),
        ("  spread \n\n over\tlines  ", "spread over lines"),
        # Field labels after a few describing words, seen from SmolLM2-135M.
        ("The world news article is: Sudan talks resume.", "Sudan talks resume."),
        ("Original text: Stocks fell.", "Stocks fell."),
        (
            "The new science and technology news articles: Example 1: Linux grows.",
            "Linux grows.",
        ),
    ],
)
def test_clean_completion_strips_wrappers(raw: str, clean: str) -> None:
    assert clean_completion(raw) == clean


@pytest.mark.parametrize(
    "text",
    [
        "I am sure it will rain on the parade.",
        'He said "hi" and left.',
        "Stocks: a primer on how markets work.",
        "10 reasons the market fell today.",
        "Markets fell 2.5% on Monday.",
        "Breaking news: stocks fell.",
        "Apple stock rises: investors cheer the text message feature.",
        # Ironic openers are content: cutting them flips what the text means (issue 11).
        "Of course the train is late again. Love it.",
        "Absolutely love waiting two hours at the DMV. #blessed",
        "Sure, I'd love to work this weekend. Best news ever.",
        "Certainly one of the dozen or so worst movies ever released.",
        "Ok lar... Joking wif u oni...",
        "Okay, that was actually shocking.",
        "Here's the thing: nobody reads the manual.",
        "Here's a great essay on the topic that I've just run across:",
        # A colon after a run of words is a headline's, not a field label's.
        "John kelly's solution for trump tweets: ignore them",
        "Here are the first 'american horror story: hotel' character names",
        # Quotes that open and close two quotations, or are not a pair, wrap nothing.
        "'modern family' appears at 9 p.m. just as prophesied in 'tv guide'",
        '"Three words, no subtlety. ""Dude. Stop. Seriously."""',
        "`` The purchase is part of YIT 's strategy . ''",
        # A numbered list is content; only a single numbered item loses its number.
        "1. Be handsome. 2. Be attractive. 3. Don't be unattractive",
        "2009. What a year to be a 10 year old",
        "* hugs you * there you go bro.",
    ],
)
def test_clean_completion_leaves_ordinary_text_alone(text: str) -> None:
    assert clean_completion(text) == text


@pytest.mark.parametrize(
    "raw",
    [
        "I'm sorry, but I can't help with that request.",
        "I’m sorry, but I can’t help with that request.",  # typographic apostrophes
        "As an AI language model, I cannot write that.",
        "I cannot create content like this about real people.",
        "I am unable to produce sarcastic content here.",
        "Sure! I'm not able to write that kind of joke.",
        "I'm sorry, but as an AI language model I must decline.",
        "I apologize, but I cannot generate sarcastic content about real people.",
        "I'm sorry, but I won't be able to fulfill this request.",
    ],
)
def test_refusals_are_detected(raw: str) -> None:
    assert _judge(raw).reason == "refusal"


@pytest.mark.parametrize(
    "raw",
    [
        "I can't believe the Lakers won again!",
        "Sorry not sorry: pizza for breakfast again.",
        # Human apologies and "can't help" are no refusal (59 of 353 real `remorse` comments
        # in reddit_emotions open with "I'm sorry").
        "I'm sorry for your loss. He was a good man.",
        "Lmao I'm sorry!",
        "I'm sorry OP but this is all on you.",
        "I see Barca fans saying he is better and I can't help but laugh.",
        "Sorry, I can't help you on this.",
    ],
)
def test_refusal_words_in_ordinary_text_are_accepted(raw: str) -> None:
    assert _judge(raw).reason is None


def test_truncated_reply_is_trimmed_to_its_last_sentence() -> None:
    raw = "The market rallied today. Investors cheered as the index climbed and"
    verdict = _judge(raw, "length", trim_truncated=True)
    assert (verdict.text, verdict.reason) == ("The market rallied today.", None)


def test_truncated_reply_keeps_closing_quotes_of_its_last_sentence() -> None:
    raw = 'He said "We won!" The crowd then'
    assert _judge(raw, "length").text == 'He said "We won!"'


def test_truncated_reply_is_rejected_with_drop() -> None:
    raw = "The market rallied today. Investors cheered as the index climbed and"
    verdict = _judge(raw, "length", trim_truncated=False)
    assert verdict.reason == "truncated"
    assert verdict.text == raw  # the raw text is kept for inspection


def test_truncated_reply_without_a_full_sentence_is_rejected_even_with_trim() -> None:
    verdict = _judge("Investors cheered as the index climbed and", "length")
    assert verdict.reason == "truncated"


def test_finished_reply_without_final_period_is_kept_whole() -> None:
    assert _judge("Investors cheered as the index climbed", "stop").reason is None


def test_trim_to_sentence() -> None:
    assert trim_to_sentence("One. Two! Three? Four") == "One. Two! Three?"
    assert trim_to_sentence("no end here") == ""
    assert trim_to_sentence("Version 2.5 is out and") == ""  # a decimal point ends no sentence


def test_normalise_is_case_and_punctuation_insensitive() -> None:
    assert normalise("Hello, World!") == "hello world"
    assert normalise("  HELLO world ") == "hello world"


def test_duplicates_are_rejected_case_and_punctuation_insensitively() -> None:
    seen = {normalise("Stocks fell sharply today.")}
    assert _judge("stocks fell, sharply TODAY!", seen=seen).reason == "duplicate"
    assert _judge('"Stocks fell sharply today."', seen=seen).reason == "duplicate"
    assert _judge("Stocks rose sharply today.", seen=seen).reason is None
    assert seen == {"stocks fell sharply today"}  # judge does not record: the caller does


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("Too short", "too_short"),  # 9 characters
        ("Ten chars.", None),  # exactly min_chars
        ("x" * 20, None),  # exactly max_chars
        ("x" * 21, "too_long"),
        ("   ", "empty"),
        ('""', "empty"),
        ("Sure, here you go:", "empty"),
    ],
)
def test_length_bounds(raw: str, reason: str | None) -> None:
    assert _judge(raw, min_chars=10, max_chars=20).reason == reason


def test_drop_counts() -> None:
    reasons = [None, "refusal", "duplicate", None, "refusal", "too_short"]
    assert drop_counts(reasons) == {"refusal": 2, "duplicate": 1, "too_short": 1}
    assert drop_counts([None, None]) == {}
    # pandas' string dtype stores a missing reason as NaN, not None.
    assert drop_counts(pd.Series([None, "refusal", None]).tolist()) == {"refusal": 1}
