"""The local Prefect server `llmsynth run` and `generate` use when no PREFECT_API_URL is set.

Prefect would start the same server by itself (its ephemeral mode), but that one is stopped only
by an atexit hook, so a `kill -9` of the CLI leaves it running, and it gets 20 s to start, which
a busy machine can miss. This starts it first, as the server Prefect's own code then finds and
reuses (its test harness does the same), with a parent-death signal and a longer wait.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from llmsynth_core.errors import LlmsynthError
from tasks.child_process import die_with_parent

if TYPE_CHECKING:
    from prefect.server.api.server import SubprocessASGIServer

STARTUP_TIMEOUT_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
# Prefect's default is 20 s; the server took 6 s on an idle 2-core machine and over 20 s while
# another job used the CPUs.
DEFAULT_STARTUP_TIMEOUT_S = 120


def apply_defaults(environ: MutableMapping[str, str]) -> None:
    """Give the local server a generous start-up wait unless the user chose one (before Prefect
    is imported: it reads its settings once)."""
    environ.setdefault(STARTUP_TIMEOUT_ENV, str(DEFAULT_STARTUP_TIMEOUT_S))


def startup_error(timeout_s: int, cause: str) -> LlmsynthError:
    return LlmsynthError(
        f"the local Prefect server did not answer within {timeout_s} s "
        f"({STARTUP_TIMEOUT_ENV}={timeout_s}); on a busy machine set it higher, e.g. "
        f"`export {STARTUP_TIMEOUT_ENV}=600`, or run `prefect server start` yourself and "
        f"`export PREFECT_API_URL=http://127.0.0.1:4200/api`. Prefect said: {cause[:1000]}"
    )


def _server_class() -> type[SubprocessASGIServer]:
    from prefect.server.api.server import SubprocessASGIServer

    class ServerThatDiesWithUs(SubprocessASGIServer):
        """Prefect's ephemeral server, started with a parent-death signal."""

        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            import prefect
            from prefect.settings import get_current_settings

            # Prefect's own command and environment (SubprocessASGIServer, prefect 3.9).
            settings = get_current_settings().to_environment_variables(exclude_unset=True)
            return subprocess.Popen(
                [
                    *(sys.executable, "-m", "uvicorn", "--app-dir"),
                    str(prefect.__module_path__.parent),
                    *("--factory", "prefect.server.api.server:create_app"),
                    *("--host", "127.0.0.1", "--port", str(self.port)),
                    *("--log-level", "error", "--lifespan", "on"),
                ],
                env={
                    **os.environ,
                    "PREFECT_UI_ENABLED": "0",
                    "PREFECT__SERVER_EPHEMERAL": "1",
                    "PREFECT__SERVER_FINAL": "1",
                    **settings,
                },
                preexec_fn=die_with_parent(),
            )

    return ServerThatDiesWithUs


def start_owned(server: SubprocessASGIServer, timeout_s: int) -> str:
    """Start `server`, waiting up to `timeout_s`; its API URL, or an error that says what to set
    (and no server left behind)."""
    try:
        server.start(timeout=timeout_s)
    except RuntimeError as exc:
        server.stop()
        raise startup_error(timeout_s, str(exc)) from exc
    return server.api_url


def ensure_local_server() -> str | None:
    """Start the local server unless the settings name one; the API URL of the one started.

    It is registered where Prefect looks for its ephemeral server, so every Prefect client in
    this process uses it; it stops at exit as Prefect's would, and with this process if killed.
    """
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    )

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return None  # a server of the user's, or ephemeral mode off: Prefect says what to do
    # Port None: the key under which Prefect's clients look up their ephemeral server.
    server = _server_class()(port=None)
    return start_owned(server, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
