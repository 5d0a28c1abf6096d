"""An LLM annotator panel: k labelling calls per test instance give an *estimated* agreement
a_i where no human annotations exist. Reports must call it an estimate, never human agreement."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pandas as pd

from llmsynth_core.config import LLMConfig
from llmsynth_core.llm_types import ChatMessage, LLMRequest
from llmsynth_core.sampling import request_rng, stratified_subsample
from llmsynth_core.taskspec import TaskSpec

ANNOTATION_PROMPT_VERSION = "annotate@1"
# The sample and the agreement rule behind an annotation artifact. Bumping it re-scores every
# annotation artifact; the request cache (keyed on the prompt version) still serves the replies.
PANEL_VERSION = "panel@2"  # 2: stratified seeded sample; majority over k calls, thin ones dropped
_MAX_TEXT_CHARS = 1500


def _instruction(spec: TaskSpec, text: str) -> str:
    options = "\n".join(f"- {label.name}: {label.description}" for label in spec.labels)
    return (
        f"Task: {spec.description}\nLabels:\n{options}\n\n"
        f"Text: {text[:_MAX_TEXT_CHARS]}\n\n"
        "Answer with exactly one label name from the list and nothing else."
    )


def annotation_request(
    spec: TaskSpec, llm: LLMConfig, text: str, instance: int, annotator: int
) -> LLMRequest:
    """Annotator `annotator` of the panel labelling test instance `instance` (own seed each)."""
    rng = request_rng(
        llm.seed, spec.id, ANNOTATION_PROMPT_VERSION, "annotate", str(instance), annotator
    )
    instruction = _instruction(spec, text)
    common = {
        "model": llm.model,
        "temperature": llm.temperature,
        "top_p": llm.top_p,
        "max_tokens": 12,
        "seed": rng.randrange(2**31),
        "prompt_version": ANNOTATION_PROMPT_VERSION,
    }
    if llm.prompt_style == "chat":
        return LLMRequest(
            style="chat", messages=(ChatMessage(role="user", content=instruction),), **common
        )
    return LLMRequest(style="completion", prompt=f"{instruction}\nLabel:", stop=("\n",), **common)


def parse_label(reply: str, labels: Sequence[str]) -> str | None:
    """The label named in a reply: an exact match first, else the earliest label mentioned."""
    cleaned = reply.strip().strip(".\"'`*").lower()
    by_name = {label.lower(): label for label in labels}
    if cleaned in by_name:
        return by_name[cleaned]
    found = []
    for label in labels:
        match = re.search(rf"(?<![\w]){re.escape(label.lower())}(?![\w])", cleaned)
        if match:
            found.append((match.start(), -len(label), label))
    return min(found)[2] if found else None


def estimated_agreement(annotations: Sequence[str | None]) -> float | None:
    """Majority count over the k calls made (an unparsable reply is a call that did not agree);
    None, and the instance dropped, when fewer than half of the calls gave a label."""
    parsed = [label for label in annotations if label is not None]
    if not parsed or 2 * len(parsed) < len(annotations):
        return None
    return Counter(parsed).most_common(1)[0][1] / len(annotations)


def annotation_sample(test: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """About n test rows, seeded and stratified by gold label, in test-set order; `row` is each
    one's position in `test`, the key that predictions carry."""
    positioned = test.reset_index(drop=True).assign(row=range(len(test)))
    sample = stratified_subsample(positioned, n, seed)
    return sample.sort_values("row", kind="stable").reset_index(drop=True)


def sample_columns(sample: pd.DataFrame) -> tuple[list[int], list[str], list[str]]:
    """An `annotation_sample`'s positions, row ids and texts, as the plain lists the panel key
    and the requests take."""
    return (
        sample["row"].astype(int).tolist(),
        sample["row_id"].astype(str).tolist(),
        sample["text"].astype(str).tolist(),
    )


def panel_frame(
    task_id: str,
    rows: Sequence[int],
    row_ids: Sequence[str],
    replies: Sequence[Sequence[str]],
    labels: Sequence[str],
    model: str,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The annotations artifact (one row per instance, raw replies kept) and its counts:
    instances, dropped (agreement_estimate null) and unparsable replies."""
    records: list[dict[str, Any]] = []
    unparsable = dropped = 0
    for row, row_id, raw in zip(rows, row_ids, replies, strict=True):
        parsed = [parse_label(reply, labels) for reply in raw]
        estimate = estimated_agreement(parsed)
        unparsable += sum(label is None for label in parsed)
        dropped += estimate is None
        records.append(
            {
                "task": task_id,
                "row": int(row),
                "row_id": str(row_id),
                "annotations": parsed,
                "raw": list(raw),
                "agreement_estimate": estimate,
                "model": model,
            }
        )
    counts = {"instances": len(records), "dropped": dropped, "unparsable": unparsable}
    columns = ["task", "row", "row_id", "annotations", "raw", "agreement_estimate", "model"]
    return pd.DataFrame(records, columns=columns), counts
