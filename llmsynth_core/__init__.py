"""Pure domain logic of llmsynth: no Prefect, no network, no environment reads."""

__version__ = "0.1.0"
