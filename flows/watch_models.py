"""Watch an endpoint's models; a change emits llmsynth.model.changed, which reruns `pipeline`."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.watch import check_models_task


@flow(name="watch-models", log_prints=True)
def watch_models(
    endpoint: str, api_key_env: str = "OPENAI_API_KEY", fingerprint: str | None = None
) -> dict[str, Any] | None:
    """Emit llmsynth.model.changed when the endpoint's model list (or fingerprint) changes.

    The first run for an endpoint only records what it sees.

    Args:
        endpoint: OpenAI-compatible base URL, e.g. http://vllm:8000/v1.
        api_key_env: Name of the environment variable holding the API key (never the key).
        fingerprint: Compare this string instead of the /v1/models list, e.g. a checkpoint
            hash that changes when weights are replaced under the same model id.

    Returns:
        The change (model, models, previous, current), or null when nothing changed.
    """
    change = check_models_task(endpoint, api_key_env, fingerprint)
    return None if change is None else change.model_dump()
