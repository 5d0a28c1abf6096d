"""The local Prefect server's start-up wait: a generous default that a user's value overrides,
which Prefect itself reads, and an error that says what to set when even that is not enough."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

from flows.local_server import (
    DEFAULT_STARTUP_TIMEOUT_S,
    STARTUP_TIMEOUT_ENV,
    apply_defaults,
    start_owned,
)
from llmsynth_core.errors import LlmsynthError
from tests.slow.stack import free_port

REPO = Path(__file__).resolve().parents[1]


def test_the_default_is_applied_and_a_users_value_is_kept() -> None:
    unset: dict[str, str] = {}
    apply_defaults(unset)
    assert unset == {STARTUP_TIMEOUT_ENV: str(DEFAULT_STARTUP_TIMEOUT_S)}
    chosen = {STARTUP_TIMEOUT_ENV: "600"}
    apply_defaults(chosen)
    assert chosen == {STARTUP_TIMEOUT_ENV: "600"}


@pytest.mark.parametrize("user_value", [None, "7"])
def test_prefect_reads_the_wait_we_set(user_value: str | None, tmp_path: Path) -> None:
    """The variable is the one Prefect's ephemeral server start reads (a typo would be ignored)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    if user_value is not None:
        env[STARTUP_TIMEOUT_ENV] = user_value
    script = (
        "import os; from flows.local_server import apply_defaults; apply_defaults(os.environ)\n"
        "from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as s\n"
        "print(s.value())"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split()[-1] == (user_value or str(DEFAULT_STARTUP_TIMEOUT_S))


def test_a_server_that_never_answers_is_an_error_naming_the_setting_and_is_stopped() -> None:
    from prefect.server.api.server import SubprocessASGIServer

    class NeverAnswers(SubprocessASGIServer):
        started: ClassVar[list[subprocess.Popen[Any]]] = []

        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
            self.started.append(process)
            return process

    # Its own port: not the key Prefect's clients look up, so nothing else in this process sees it.
    server = NeverAnswers(port=free_port())
    with pytest.raises(LlmsynthError) as raised:
        start_owned(server, timeout_s=1)
    message = str(raised.value)
    assert f"{STARTUP_TIMEOUT_ENV}=1" in message
    assert f"export {STARTUP_TIMEOUT_ENV}=600" in message
    assert "PREFECT_API_URL" in message
    assert "Timed out while attempting to connect" in message, "Prefect's own reason is kept"
    (process,) = NeverAnswers.started
    assert process.poll() is not None, "the server that never answered must not be left running"
