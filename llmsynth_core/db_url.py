"""Checks on a state database URL, which must never carry a secret.

A password in a URL would reach configs, Prefect parameters and logs; PostgreSQL's own
PGPASSWORD and PGPASSFILE keep it in the environment instead. Errors never repeat the URL.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")
PASSWORD_FIX = (
    "put the password in PGPASSWORD or a PGPASSFILE (~/.pgpass) on each host instead, e.g. "
    "postgresql+psycopg://llmsynth@db-host:5432/llmsynth"
)
REDACTED = "<a URL with a password, not shown>"


def has_password(url: str) -> bool:
    """Whether the URL holds a password (in its user part or as a `password=` query)."""
    try:
        parts = urlsplit(url)
        return parts.password is not None or "password" in parse_qs(parts.query)
    except ValueError:  # unparsable (a bad port): refused unless it cannot hold one
        return "@" in url or "password=" in url


def redact(value: object) -> object:
    """The value, or a placeholder if it is a URL with a password (run before anything can
    echo it)."""
    return REDACTED if isinstance(value, str) and has_password(value) else value


def check_state_db_url(url: str, source: str = "runtime.state_db") -> str:
    """The URL if it names a supported database without a password; a ValueError otherwise."""
    if url == REDACTED or has_password(url):
        raise ValueError(f"{source} must not hold a password; {PASSWORD_FIX}")
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in SCHEMES:
        raise ValueError(
            f"{source} must be a sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB URL, "
            f"got scheme {scheme!r}"
        )
    return url
