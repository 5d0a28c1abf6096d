"""What generation costs: each reply from its reported usage, a whole experiment up front.

The up-front estimate renders real prompts with `plan_request` and counts tokens as
characters / 4, the usual rule of thumb for English with GPT-style tokenizers; no tokenizer
is loaded, so it works offline for any model. It is an upper bound per request (every reply
is assumed to run to the task's effective `max_tokens`, every few-shot example to
`few_shot_max_chars`) times an expected number of attempts per accepted example.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from llmsynth_core.config import ExperimentConfig, GenerationConfig, LLMConfig, Mode
from llmsynth_core.lengths import effective_max_tokens
from llmsynth_core.llm_types import LLMRequest, LLMResponse
from llmsynth_core.prompts import Example, PromptContext, Turn, last_user_message, plan_request
from llmsynth_core.taskspec import TaskSpec

CHARS_PER_TOKEN = 4
# Per-message framing tokens of chat formats (role markers, separators), as OpenAI counts them.
MESSAGE_OVERHEAD_TOKENS = 4
# Requests per accepted example: most replies pass the filters; refusals, duplicates and
# truncations cost the rest. Capped by generation.max_attempts_factor, as generation is.
EXPECTED_ATTEMPTS = 1.2
# Seconds per request when no rate limit binds: a short completion from a hosted model.
ASSUMED_LATENCY_S = 2.0
# Requests rendered per label to average prompt size when no conversation spans them.
_SAMPLED_REQUESTS = 8

Pace = Literal["requests_per_minute", "tokens_per_minute", "concurrency"]


def request_cost(prompt_tokens: int, completion_tokens: int, llm: LLMConfig) -> float:
    """USD for one request at the configured per-million-token prices."""
    return (
        prompt_tokens * llm.input_price_per_mtok + completion_tokens * llm.output_price_per_mtok
    ) / 1_000_000


def reply_cost(response: LLMResponse, llm: LLMConfig) -> float:
    """USD paid for a reply: list price, or the batch price when a Batch API answered it."""
    cost = request_cost(response.prompt_tokens, response.completion_tokens, llm)
    return cost * llm.batch_price_factor if response.batch else cost


def request_estimate(request: LLMRequest, llm: LLMConfig, batch: bool = False) -> float:
    """Worst-case USD of a request (its prompt, a reply of max_tokens), as budgets book it."""
    cost = request_cost(request_tokens(request), request.max_tokens, llm)
    return cost * llm.batch_price_factor if batch else cost


def approx_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def request_tokens(request: LLMRequest) -> int:
    """Approximate prompt tokens of a request, chat framing included."""
    if request.style == "chat":
        return sum(approx_tokens(m.content) + MESSAGE_OVERHEAD_TOKENS for m in request.messages)
    return approx_tokens(request.prompt or "")


@dataclass(frozen=True)
class LineEstimate:
    """One task and mode, summed over its labels."""

    task: str
    mode: Mode
    labels: int
    requests: int
    input_tokens: int
    output_tokens: int
    usd: float


@dataclass(frozen=True)
class Estimate:
    """Every line, the hours it takes, and which limit sets that pace."""

    lines: tuple[LineEstimate, ...]
    hours: float
    pace: Pace

    @property
    def requests(self) -> int:
        return sum(line.requests for line in self.lines)

    @property
    def input_tokens(self) -> int:
        return sum(line.input_tokens for line in self.lines)

    @property
    def output_tokens(self) -> int:
        return sum(line.output_tokens for line in self.lines)

    @property
    def usd(self) -> float:
        return sum(line.usd for line in self.lines)

    def batch_usd(self, llm: LLMConfig) -> float:
        """The same requests through a Batch API (runtime.batch)."""
        return self.usd * llm.batch_price_factor


def requests_per_label(generation: GenerationConfig, attempts: float = EXPECTED_ATTEMPTS) -> int:
    budget = math.ceil(generation.per_label * generation.max_attempts_factor)
    return min(budget, math.ceil(generation.per_label * attempts))


def estimate(
    config: ExperimentConfig,
    specs: Sequence[TaskSpec],
    *,
    attempts: float = EXPECTED_ATTEMPTS,
    latency_s: float = ASSUMED_LATENCY_S,
) -> Estimate:
    """Requests, tokens, dollars and hours for generating every task, mode and label."""
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1 request per accepted example; got {attempts!r}")
    if latency_s <= 0:
        raise ValueError(f"latency_s must be > 0 seconds; got {latency_s!r}")
    lines = tuple(
        _line(config, spec, mode, attempts) for spec in specs for mode in config.generation.modes
    )
    hours, pace = _hours(config, lines, latency_s)
    return Estimate(lines=lines, hours=hours, pace=pace)


def _line(config: ExperimentConfig, spec: TaskSpec, mode: Mode, attempts: float) -> LineEstimate:
    per_label = requests_per_label(config.generation, attempts)
    examples = _placeholder_examples(config.generation) if mode == "few_shot" else ()
    input_tokens = 0
    for label in spec.label_names:
        ctx = PromptContext(spec, config.llm, config.generation, mode, label, examples)
        input_tokens += round(mean_prompt_tokens(ctx, per_label) * per_label)
    # Each of generation.replicates synthetic sets makes the same number of requests.
    replicates = config.generation.replicates
    input_tokens *= replicates
    requests = per_label * len(spec.labels) * replicates
    output_tokens = requests * effective_max_tokens(spec, config.llm)
    return LineEstimate(
        task=spec.id,
        mode=mode,
        labels=len(spec.labels),
        requests=requests,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        usd=request_cost(input_tokens, output_tokens, config.llm),
    )


def mean_prompt_tokens(ctx: PromptContext, requests: int) -> float:
    """Mean prompt size of a label's first requests: one whole conversation when chained."""
    chained = ctx.mode == "zero_shot" and ctx.llm.prompt_style == "chat"
    count = min(requests, ctx.generation.conversation_length if chained else _SAMPLED_REQUESTS)
    reply = _filler(effective_max_tokens(ctx.spec, ctx.llm) * CHARS_PER_TOKEN)
    history: list[Turn] = []
    sizes = []
    for index in range(count):
        request = plan_request(ctx, index, history).request
        sizes.append(request_tokens(request))
        if chained:
            history.append(Turn(user=last_user_message(request), assistant=reply))
    return sum(sizes) / len(sizes)


def _placeholder_examples(generation: GenerationConfig) -> tuple[Example, ...]:
    text = _filler(generation.few_shot_max_chars)
    return tuple(Example(id=f"placeholder-{i}", text=text) for i in range(generation.few_shot_k))


def _filler(chars: int) -> str:
    """Exactly `chars` characters of word-like text that prompt clipping leaves whole."""
    return ("lorem " * (chars // 6 + 1))[: chars - 1] + "."


def _hours(
    config: ExperimentConfig, lines: Sequence[LineEstimate], latency_s: float
) -> tuple[float, Pace]:
    # The slowest limit wins: in-flight requests (concurrency per chunk times chunks at once),
    # then the endpoint's request and token rate limits where configured.
    runtime = config.runtime
    chunks = sum(line.labels for line in lines)
    in_flight = runtime.concurrency * max(1, min(runtime.parallel_chunks, chunks))
    requests = sum(line.requests for line in lines)
    tokens = sum(line.input_tokens + line.output_tokens for line in lines)
    minutes: dict[Pace, float] = {"concurrency": requests * latency_s / 60 / in_flight}
    if runtime.requests_per_minute is not None:
        minutes["requests_per_minute"] = requests / runtime.requests_per_minute
    if runtime.tokens_per_minute is not None:
        minutes["tokens_per_minute"] = tokens / runtime.tokens_per_minute
    pace = max(minutes, key=lambda name: minutes[name])
    return minutes[pace] / 60, pace
