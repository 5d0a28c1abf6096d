"""Prefect task: notice when an endpoint's models change and say so with a Prefect event.

The last value seen lives in a Prefect Variable per endpoint. First sight only records it:
a watch that is deployed (or whose variable is reset) must not rerun every experiment.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

import openai
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.variables import Variable
from pydantic import BaseModel, ConfigDict

from llmsynth_core.errors import LlmsynthError
from tasks.llm_client import NO_KEY_PLACEHOLDER

EVENT = "llmsynth.model.changed"


class ModelChange(BaseModel):
    """What changed: the model the event carries, the ids now served, the values compared."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    models: list[str]
    previous: str
    current: str


def endpoint_resource(endpoint: str) -> str:
    """The event's resource id: llmsynth.endpoint.<host[:port]>."""
    return f"llmsynth.endpoint.{urlsplit(endpoint).netloc or endpoint}"


def variable_name(endpoint: str) -> str:
    """A Prefect Variable name (lower-case letters, digits, '_') for this endpoint."""
    slug = re.sub(r"[^a-z0-9]+", "_", (urlsplit(endpoint).netloc or endpoint).lower())
    return f"llmsynth_models_{slug.strip('_')}"


def list_models(endpoint: str, api_key_env: str, timeout_s: float = 30.0) -> list[str]:
    """The ids the endpoint serves (GET /v1/models), sorted."""
    if not endpoint.startswith(("http://", "https://")):
        raise LlmsynthError(
            f"watch-models: endpoint {endpoint!r} is not an http(s) URL; set the deployment's "
            "endpoint parameter (LLMSYNTH_LLM_ENDPOINT at deploy time), e.g. http://vllm:8000/v1"
        )
    client = openai.OpenAI(
        base_url=endpoint,
        api_key=os.environ.get(api_key_env) or NO_KEY_PLACEHOLDER,
        max_retries=2,
        timeout=timeout_s,
    )
    try:
        return sorted(model.id for model in client.models.list())
    except openai.APIError as exc:
        raise LlmsynthError(
            f"cannot list models at {endpoint}: {type(exc).__name__}; check the endpoint "
            f"parameter and that {api_key_env} holds a valid key"
        ) from None
    finally:
        client.close()


def detect_change(previous: str | None, current: str, models: list[str]) -> ModelChange | None:
    """None on first sight or when nothing changed; else the change, naming one model.

    The model is the first id that is new since the last list, else the first listed id;
    a fingerprint (not a comma-joined list) names itself.
    """
    if previous is None or previous == current:
        return None
    before = set(previous.split(","))
    new = [model for model in models if model not in before]
    model = (new or models or [current])[0]
    return ModelChange(model=model, models=models, previous=previous, current=current)


@task(name="check-models", cache_policy=NO_CACHE)
def check_models_task(
    endpoint: str, api_key_env: str = "OPENAI_API_KEY", fingerprint: str | None = None
) -> ModelChange | None:
    """Compare the endpoint's models (or the fingerprint) with the last seen; emit on change."""
    logger = get_run_logger()
    models = [] if fingerprint else list_models(endpoint, api_key_env)
    current = fingerprint or ",".join(models)
    name = variable_name(endpoint)
    previous = Variable.get(name, default=None)
    change = detect_change(None if previous is None else str(previous), current, models)
    if previous is None:
        logger.info("first sight of %s: %s (recorded, no event)", endpoint, current)
    Variable.set(name, current, overwrite=True)
    if change is None:
        return None
    emit_event(
        event=EVENT,
        resource={
            "prefect.resource.id": endpoint_resource(endpoint),
            "prefect.resource.name": endpoint,
        },
        payload=change.model_dump(),
    )
    logger.info("%s: models changed from %s to %s; emitted %s", endpoint, previous, current, EVENT)
    return change
