"""This process's heartbeat on its budget reservations: while it holds any, a thread moves
their expiry forward, so that only a process that stopped (killed, hung up, cut off) loses them.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections import Counter

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tasks.state_db import budget_reservations, db_now, writing

logger = logging.getLogger(__name__)
_owner: tuple[int, str] | None = None


def owner_id() -> str:
    """This process, as the owner of its reservations: host, pid and a nonce (pids recur)."""
    global _owner
    if _owner is None or _owner[0] != os.getpid():
        _owner = (os.getpid(), f"{socket.gethostname()} pid {os.getpid()} {secrets.token_hex(4)}")
    return _owner[1]


class _Heartbeat:
    """Extends this process's reservations from a thread while it holds any: each reservation
    lives `ttl_s` past the last beat, which comes every quarter of that."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: Counter[Engine] = Counter()
        self._period: dict[Engine, float] = {}
        self._thread: threading.Thread | None = None

    def opened(self, engine: Engine, ttl_s: float) -> None:
        with self._lock:
            self._open[engine] += 1
            self._period[engine] = min(self._period.get(engine, ttl_s / 4), ttl_s / 4)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="budget-heartbeat")
                self._thread.daemon = True
                self._thread.start()

    def closed(self, engine: Engine) -> None:
        with self._lock:
            self._open[engine] -= 1
            if self._open[engine] <= 0:
                self._open.pop(engine, None)
                self._period.pop(engine, None)

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._open:
                    self._thread = None
                    return
                engines, period = list(self._open), min(self._period.values())
            time.sleep(period)
            for engine in engines:
                try:
                    _extend(engine)
                except sa.exc.SQLAlchemyError as exc:  # the next beat may get through
                    logger.warning("could not extend budget reservations: %s", type(exc).__name__)


def _extend(engine: Engine) -> None:
    held = budget_reservations.c
    with writing(engine) as connection:
        now = db_now(connection)
        connection.execute(
            sa.update(budget_reservations)
            .where(held.owner == owner_id())
            .values(expires_at=now + held.ttl_s)
        )


_heartbeat = _Heartbeat()


def hold(engine: Engine, ttl_s: float) -> None:
    """A reservation of this process on `engine` opened: beat until it is released."""
    _heartbeat.opened(engine, ttl_s)


def release(engine: Engine) -> None:
    """That reservation settled."""
    _heartbeat.closed(engine)


def _after_fork() -> None:
    """A forked child holds no reservations, no heartbeat thread, and maybe a copied lock."""
    global _heartbeat
    _heartbeat = _Heartbeat()


os.register_at_fork(after_in_child=_after_fork)
