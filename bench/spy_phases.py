"""Sort a py-spy profile of a generation run into phases: where a request's CPU goes.

    py-spy record --pid PID --rate 200 --nonblocking --format raw --duration 30 -o run.txt
    .venv/bin/python -m bench.spy_phases run.txt --cpu-ms 2.57

Each sample (a collapsed stack and its count) goes to the first phase whose function names
occur in its stack; a stack py-spy could not unwind to its root goes by its innermost frame's
module. `--cpu-ms` (the side's process CPU a request, from bench/generation.py) turns shares
into milliseconds. Used for the table in bench/README.md.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterable

HTTP = "HTTP client: openai SDK build, send, receive, parse"
LOOP = "event loop (select, scheduling)"
GATES = "quality gates, row, Parquet"
CACHE = "request cache (lookup, durable write)"
RENDER = "prompt rendering and hashes"
OTHER = "other (threads, Prefect client, unattributed)"

# Functions whose presence anywhere in a stack decides its phase, in this order.
BY_FRAME: tuple[tuple[str, tuple[str, ...]], ...] = (
    (CACHE, ("Coalescer._answer", "RequestCache.")),
    (GATES, ("LabelRun.add",)),
    (RENDER, ("LabelRun.plan", "plan_request", "request_hash")),
    (
        HTTP,
        (
            "AsyncAPIClient.post",
            "send_chat",
            "LLMClient.",
            "ClientRequest.write_bytes",
            "_SelectorSocketTransport._read_ready",
        ),
    ),
    (LOOP, ("EpollSelector.select", "_run_once", "Handle._run")),
)
# Modules of the innermost frame, for stacks that did not unwind to a known function.
BY_LEAF_MODULE: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        HTTP,
        ("aiohttp/", "httpx2/", "httpcore2/", "openai/", "h11/", "anyio/", "json/", "pydantic/"),
    ),
    (CACHE, ("tasks/state_db", "tasks/request_cache", "tasks/coalesce")),
    (
        GATES,
        ("llmsynth_core/dedup", "llmsynth_core/gates", "llmsynth_core/digests", "datasketch/"),
    ),
    (RENDER, ("llmsynth_core/prompts", "llmsynth_core/sampling", "llmsynth_core/hashing")),
    (LOOP, ("asyncio/", "selectors.py")),
)


def phase_of(stack: str) -> str:
    for phase, names in BY_FRAME:
        if any(name in stack for name in names):
            return phase
    leaf = stack.rsplit(";", 1)[-1]
    for phase, modules in BY_LEAF_MODULE:
        if any(f"({module}" in leaf for module in modules):
            return phase
    return OTHER


def phase_shares(lines: Iterable[str]) -> dict[str, float]:
    """Each phase's share of the samples in py-spy's raw format ("frame;frame;... count")."""
    counts: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if stack:
            counts[phase_of(stack)] += int(count)
    total = sum(counts.values())
    return {phase: n / total for phase, n in counts.most_common()} if total else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", help="py-spy record --format raw output")
    parser.add_argument("--cpu-ms", type=float, help="The side's process CPU ms a request.")
    args = parser.parse_args()
    with open(args.profile) as lines:
        shares = phase_shares(lines)
    for phase, share in shares.items():
        ms = f"  {share * args.cpu_ms:.2f} ms" if args.cpu_ms else ""
        print(f"{share * 100:5.1f}%{ms}  {phase}")


if __name__ == "__main__":
    main()
