"""Prefect flows of llmsynth and the `llmsynth` command line."""
