"""`kill -9` of `llmsynth run` while it generates leaves no process behind: the local Prefect
server it started (and anything else it started) ends with it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from tests.fakes.openai_server import FakeOpenAIServer
from tests.flows.configs import small_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SERVER_APP = "prefect.server.api.server:create_app"


def _server_port(cli: psutil.Process) -> int | None:
    """The port of the Prefect server among the CLI's descendants, once it answers."""
    for child in cli.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            argv = child.cmdline()
            if SERVER_APP in argv:
                port = int(argv[argv.index("--port") + 1])
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).is_success:
                        return port
    return None


def _running(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running: a zombie has ended, whether or not its new parent reaped it yet."""
    running = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
    return running


def _describe(processes: list[psutil.Process]) -> str:
    lines = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            lines.append(f"{process.pid}: {' '.join(process.cmdline())[:200]}")
    return "\n".join(lines)


def test_sigkill_of_llmsynth_run_leaves_no_process_behind(tmp_path: Path, sample_dir: Path) -> None:
    log = tmp_path / "run.log"
    with FakeOpenAIServer(models=["fake-model"], latency_s=0.2) as llm:
        # Enough slow requests that generation is still running at the kill.
        config = small_config(llm.base_url, tasks=("ag_news",), per_label=30)
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env |= {"PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONPATH": str(REPO)}
        argv = [sys.executable, "-m", "flows.cli", "run", "--config", str(tmp_path / "config.yaml")]
        argv += ["--data-dir", str(sample_dir), "--output-dir", str(tmp_path / "out")]
        with log.open("wb") as out:
            # Its own session: no terminal hang-up reaches what it started, so only what the
            # CLI arranged can stop them; and the test can clean up after a failure.
            cli = subprocess.Popen(
                argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        try:
            parent = psutil.Process(cli.pid)
            deadline = time.monotonic() + 240
            while not (_server_port(parent) and llm.requests):
                assert cli.poll() is None, f"the run ended early:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"never generating:\n{log.read_text()[-3000:]}"
                time.sleep(0.5)
            descendants = parent.children(recursive=True)
            os.kill(cli.pid, signal.SIGKILL)
            cli.wait(timeout=30)
            deadline = time.monotonic() + 60
            while _running(descendants) and time.monotonic() < deadline:
                time.sleep(0.5)
            alive = _running(descendants)
            assert descendants and not alive, (
                "left running after kill -9 of the CLI:\n" + _describe(alive)
            )
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(cli.pid, signal.SIGKILL)
