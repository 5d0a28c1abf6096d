"""Turning raw completions into training texts; failures become reasons, not exceptions."""

from __future__ import annotations

import re
from collections.abc import Container, Iterable
from dataclasses import dataclass

# Bumped whenever cleaning or judging changes, so stored generation artifacts are re-judged
# (from the request cache: no call is repeated).
# 4: strip only a lead-in that introduces the text ("Sure! Here is a tweet:"), never a sentence
#    of content ("Of course the train is late again."); wrapping quotes only when they wrap the
#    whole text; a leading "1." only when no list follows; a refusal needs an inability clause
#    or an AI disclaimer in the opening, not just "I'm sorry".
GATES_VERSION = "gates@4"
_FIELD = (
    r"(article|text|review|tweet|message|sms|headline|sentence|comment|joke|example|output|"
    r"story|post|title)s?"
)
_ACK = r"(sure|okay|ok|certainly|of course|absolutely|alright)"
# A lead-in introduces the text after it and ends at a colon: inline it must say what follows
# ("Sure, here is a tweet:", "Of course. Here's the review:", "Here you go:"); on a line of its
# own it may be any acknowledgement or "here" clause ("Sure! Here's my attempt:\n\n..."). Humans
# open with "Of course ..." or "Here's the thing: ..." too, so nothing without a colon, and no
# inline "here" clause that names no text, is cut.
_LEAD_IN = re.compile(
    rf"^(({_ACK}\b[^\n:.!?]{{0,60}}[.!,]\s*)*"
    rf"(here|below)(['’]s)?([\s,]+[\w-]+){{0,8}}?[\s,]+({_FIELD}|go|it is|one)\b[^\n:]{{0,60}}:\s*"
    rf"|({_ACK}|here|below)\b[^\n]{{0,160}}:[ \t]*\n\s*)",
    re.IGNORECASE,
)
# A field label, after at most one describing word or after an article and a few: "Tweet:",
# "Example 2:", "Original text:", "The world news article is:", "The new science and
# technology news articles:". Free runs of words are content ("John Kelly's solution for
# Trump tweets: ignore them").
_FIELD_PREFIX = re.compile(
    rf"^(?:(?:the|an?)\s+(?:[\w/&'’-]+\s+){{0,5}}?|[\w/&'’-]+\s+)?"
    rf"{_FIELD}(\s*\d+)?(\s+(is|are|reads))?\s*:\s*",
    re.IGNORECASE,
)
# One list marker: not a year ("1958. The sleepy town"), nor an asterisk that another one
# closes ("* hugs you *"); and none where a numbered list follows ("1. Denial 2. Anger").
_NUMBERING = re.compile(r"^\s*(\d{1,2}[.)]|[-•]|\*(?=[^*]*$))\s+")
_LIST_ITEM = re.compile(r"\s\d+[.)]\s")
# Opening and closing quote of each pair that may wrap a whole reply.
_QUOTE_PAIRS = {'"': '"', "“": "”", "‘": "’", "'": "'", "«": "»", "`": "`"}
_QUOTES = "\"“”‘’'«»`"
# A quote mark not between two letters (an apostrophe, as in "can't", is between letters).
_QUOTE_MARK = re.compile(rf"(?<![^\W\d_])[{_QUOTES}]|[{_QUOTES}](?![^\W\d_])")
# A refusal is how a reply opens: an AI disclaimer ("As an AI language model"), or a first
# person inability to produce the text ("I'm sorry, but I can't write that", "I am unable to
# create ..."), within its first sentences. An apology alone is no refusal (people write "I'm
# sorry for your loss", "Lmao I'm sorry"), nor is "I can't help but laugh".
_REFUSAL_OPENING_CHARS = 160
_AI_DISCLAIMER = r"as an ai\b|as an? (ai )?language model|i(['’]m| am) (just )?an ai\b"
_CANNOT = r"i (can(['’]t|not| not)|won['’]t|will not)|i(['’]m| am) (unable|not able) to"
_PRODUCE = (
    r"(write|create|provide|generate|produce|fulfill?|comply|complete|assist|help (you )?with)"
)
_REFUSAL = re.compile(
    rf"\b({_AI_DISCLAIMER}|({_CANNOT})\s+(\w+\s+){{0,3}}?{_PRODUCE}\b)", re.IGNORECASE
)


@dataclass(frozen=True)
class Verdict:
    """A cleaned text, and why it was rejected (None when accepted)."""

    text: str
    reason: str | None


def clean_completion(raw: str) -> str:
    """Strip chat lead-ins, field prefixes, list numbering, wrapping quotes and whitespace."""
    text = raw.strip()
    # Chat models stack lead-ins ("Sure! Here's a tweet:\n\nHere it is:"), so strip a few.
    for _ in range(3):
        stripped = _LEAD_IN.sub("", text, count=1).strip()
        if stripped == text:
            break
        text = stripped
    for _ in range(3):  # "Articles: Example 1: ..."
        stripped = _FIELD_PREFIX.sub("", text, count=1).strip()
        if stripped == text:
            break
        text = stripped
    marker = _NUMBERING.match(text)
    if marker and not _LIST_ITEM.search(text):
        text = text[marker.end() :].strip()
    return " ".join(_unquote(text).split())


def _unquote(text: str) -> str:
    """The text inside quotes that wrap all of it; unchanged when they open and close two
    quotations ('"Yes" and "no"') or are not a pair."""
    if len(text) < 2 or _QUOTE_PAIRS.get(text[0]) != text[-1]:
        return text
    inner = text[1:-1]
    if _QUOTE_MARK.search(inner):
        return text
    return inner.strip()


def is_refusal(text: str) -> bool:
    """Whether a cleaned reply opens by declining to write the text."""
    return _REFUSAL.search(text[:_REFUSAL_OPENING_CHARS]) is not None


_SENTENCE_END = re.compile(r"[.!?…][\"'”’)]*(?=\s|$)")


def trim_to_sentence(text: str) -> str:
    """The text up to its last complete sentence ('' if it has none)."""
    ends = list(_SENTENCE_END.finditer(text))
    return text[: ends[-1].end()].strip() if ends else ""


def judge(
    raw: str,
    finish_reason: str | None,
    min_chars: int,
    max_chars: int,
    seen: Container[str],
    trim_truncated: bool = True,
) -> Verdict:
    """Clean one completion and decide whether it is a usable training example."""
    text = clean_completion(raw)
    if not text:
        return Verdict(text, "empty")
    if finish_reason == "length":
        text = trim_to_sentence(text) if trim_truncated else ""
        if not text:
            return Verdict(clean_completion(raw), "truncated")
    if is_refusal(text):
        return Verdict(text, "refusal")
    if len(text) < min_chars:
        return Verdict(text, "too_short")
    if len(text) > max_chars:
        return Verdict(text, "too_long")
    if normalise(text) in seen:
        return Verdict(text, "duplicate")
    return Verdict(text, None)


def normalise(text: str) -> str:
    """Lower-cased alphanumerics only: the key for exact-duplicate detection."""
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def drop_counts(reasons: Iterable[str | None]) -> dict[str, int]:
    """How many rows each gate rejected."""
    counts: dict[str, int] = {}
    for reason in reasons:
        # A kept row's reason is missing: None, or NaN once pandas stores the column as strings.
        if isinstance(reason, str):
            counts[reason] = counts.get(reason, 0) + 1
    return counts
