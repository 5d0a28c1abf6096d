"""A process of its own that books on a shared budget ledger, so tests can run two at once or
kill one.

Usage: python -m tests.tasks.ledger_child ARGS.json, where ARGS.json holds `command`:
- "spend": send requests (`name`-numbered) through a Requester to `base_url`, `concurrency`
  at a time, until the cap refuses one; waits for `go` (a file) after touching `ready`, and
  writes {"sent": n, "cost_usd": what the replies cost, "refused": message or null} to `out`.
- "hold": reserve `estimate` with a reservation that lives `ttl_s` past each heartbeat, touch
  `ready`, then sleep until killed.
Both book on `state_db` under `run_key` against `cap`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from llmsynth_core.config import LLMConfig
from llmsynth_core.errors import BudgetExceeded
from llmsynth_core.llm_types import ChatMessage, LLMRequest
from tasks.budget import BudgetLedger
from tasks.llm_client import LLMClient
from tasks.ratelimit import RateLimiter
from tasks.request_cache import RequestCache
from tasks.requester import Requester
from tasks.state_db import state_engine

# 20 tokens booked at $1000 per million output tokens: $0.02 a request, as test_requester's.
LLM = LLMConfig(output_price_per_mtok=1000.0)


def request(name: str, i: int) -> LLMRequest:
    return LLMRequest(
        style="chat",
        model="fake-model",
        messages=(ChatMessage(role="user", content=f"{name}: write sentence number {i}"),),
        max_tokens=20,
    )


def _wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(0.01)


async def spend(args: dict[str, Any], ledger: BudgetLedger) -> dict[str, Any]:
    client = LLMClient(args["base_url"], timeout_s=30)
    requester = Requester(
        client, RequestCache(args["state_db"]), ledger, RateLimiter(None, None), LLM
    )
    numbers = iter(range(10_000))
    refused: list[str] = []

    async def worker() -> None:
        for i in numbers:
            if refused:
                return
            try:
                await requester(request(args["name"], i))
            except BudgetExceeded as exc:
                refused.append(str(exc))
                return

    Path(args["ready"]).touch()
    _wait_for(Path(args["go"]))
    try:
        await asyncio.gather(*(worker() for _ in range(args["concurrency"])))
    finally:
        await client.aclose()
    stats = requester.stats
    return {
        "sent": stats.sent,
        "cost_usd": stats.cost_usd,
        "refused": refused[0] if refused else None,
    }


def main(args_path: str) -> None:
    args = json.loads(Path(args_path).read_text(encoding="utf-8"))
    engine = state_engine(args["state_db"])
    ledger = BudgetLedger(args["cap"], engine, args["run_key"], ttl_s=args.get("ttl_s", 60.0))
    if args["command"] == "spend":
        result = asyncio.run(spend(args, ledger))
        Path(args["out"]).write_text(json.dumps(result), encoding="utf-8")
    elif args["command"] == "hold":
        ledger.reserve(args["estimate"])
        Path(args["ready"]).touch()
        time.sleep(3600)
    else:
        raise SystemExit(f"unknown command {args['command']!r}")


if __name__ == "__main__":
    main(sys.argv[1])


def spend_together(
    state_db: str, run_key: str, cap: float, base_url: str, root: Path, concurrency: int = 2
) -> list[dict[str, Any]]:
    """Two spending processes on one ledger, started together; what each sent and why it
    stopped (the parent's side of "spend")."""
    import subprocess

    repo = Path(__file__).resolve().parents[2]
    go, children = root / "go", []
    for name in ("a", "b"):
        args = {
            "command": "spend",
            "state_db": state_db,
            "run_key": run_key,
            "cap": cap,
            "base_url": base_url,
            "name": name,
            "concurrency": concurrency,
            "ready": str(root / f"ready-{name}"),
            "go": str(go),
            "out": str(root / f"out-{name}.json"),
        }
        (root / f"args-{name}.json").write_text(json.dumps(args), encoding="utf-8")
        log = (root / f"{name}.log").open("wb")
        command = [
            sys.executable,
            "-m",
            "tests.tasks.ledger_child",
            str(root / f"args-{name}.json"),
        ]
        children.append(subprocess.Popen(command, cwd=repo, stdout=log, stderr=subprocess.STDOUT))
    try:
        deadline = time.monotonic() + 180
        while not all((root / f"ready-{name}").exists() for name in ("a", "b")):
            failed = [child.returncode for child in children if child.poll() is not None]
            assert not failed and time.monotonic() < deadline, (root / "a.log").read_text()
            time.sleep(0.05)
        go.touch()
        codes = [child.wait(timeout=180) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    logs = "\n".join((root / f"{name}.log").read_text() for name in ("a", "b"))
    assert codes == [0, 0], logs
    return [json.loads((root / f"out-{name}.json").read_text()) for name in ("a", "b")]
