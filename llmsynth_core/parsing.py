"""Turning raw completions into training texts; failures become reasons, not exceptions."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_PREAMBLE = re.compile(
    r"^(sure|okay|ok|certainly|of course|absolutely|here('s| is| are)|below is)\b[^\n]*?[:!.]\s*",
    re.IGNORECASE,
)
# Bumped whenever cleaning or judging changes, so stored generation artifacts are re-judged
# (from the request cache: no call is repeated).
GATES_VERSION = "gates@3"  # 3: near-duplicate MinHash on CRC-32 shingle hashes
_FIELD = (
    r"(article|text|review|tweet|message|sms|headline|sentence|comment|joke|example|output|"
    r"story|post|title)s?"
)
# A field label, possibly after a few describing words: "Tweet:", "Example 2:", "Original
# text:", "The world news article is:", "The new science and technology news articles:".
_FIELD_PREFIX = re.compile(
    rf"^(?:[\w/&'’-]+\s+){{0,6}}?{_FIELD}(\s*\d+)?(\s+(is|are|reads))?\s*:\s*",
    re.IGNORECASE,
)
_NUMBERING = re.compile(r"^\s*(\d+[.)]|[-*•])\s+")
_QUOTES = "\"'“”‘’«»`"
_REFUSAL = re.compile(
    r"\b(i(['’]m| am) sorry|i can(['’]|no)t (help|assist|write|create|provide)|as an ai\b|"
    r"i(['’]m| am) (not able|unable) to)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Verdict:
    """A cleaned text, and why it was rejected (None when accepted)."""

    text: str
    reason: str | None


def clean_completion(raw: str) -> str:
    """Strip chat preambles, field prefixes, list numbering, wrapping quotes and whitespace."""
    text = raw.strip()
    # Chat models stack preambles ("Sure! Here's a tweet:"), so strip up to a few in turn.
    for _ in range(3):
        stripped = _PREAMBLE.sub("", text, count=1).strip()
        if stripped == text:
            break
        text = stripped
    for _ in range(3):  # "Articles: Example 1: ..."
        stripped = _FIELD_PREFIX.sub("", text, count=1).strip()
        if stripped == text:
            break
        text = stripped
    text = _NUMBERING.sub("", text, count=1).strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return " ".join(text.split())


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
    seen: set[str],
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
    if _REFUSAL.search(text):
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
        if reason is not None:
            counts[reason] = counts.get(reason, 0) + 1
    return counts
