"""What the CLI prints reads at 80 columns: ids whole, no line wider than the terminal.

The summary `llmsynth run` prints is rendered from a results frame made the way a run makes
it (summarise_seeds over one seed's predictions), with the study's longest task ids and the
embedded encoder's long id; `tasks list` from the registry itself.
"""

from __future__ import annotations

import io
import itertools
import re

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from flows import cli
from flows.summary import print_summary
from llmsynth_core.registry import load_registry
from llmsynth_core.report import RunData
from llmsynth_core.results import summarise_seeds

TASKS = {"tweet_emotions": 4, "relation_classification": 4, "sarcasm_headlines": 2}
ENCODER = "embedded:all-MiniLM-L6-v2"
# How often each source's predictions are right; the rest are drawn at random.
SKILL = {"real": 0.8, "zero_shot": 0.4, "few_shot": 0.6}
MIXTURE = "few_shot+real8xall"  # a training.mixtures source: the widest source id


def _results(models: list[str], skill: dict[str, float]) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    runs, predictions = [], []
    for subjectivity, (task, k) in enumerate(TASKS.items()):
        truth = rng.integers(0, k, 120)
        for model in models:
            for source, right in skill.items():
                pred = np.where(rng.random(truth.size) < right, truth, rng.integers(0, k, 120))
                runs.append(
                    {"task": task, "subjectivity": subjectivity, "model": model,
                     "source": source, "seed": 42, "n_train": 24 * k, "n_test": truth.size,
                     "best_epoch": 2, "train_seconds": 3.0,
                     "label_names": [f"label{i}" for i in range(k)]}
                )  # fmt: skip
                predictions += [
                    {"task": task, "model": model, "source": source, "seed": 42, "row": row,
                     "label_id": int(y), "pred_id": int(p)}
                    for row, (y, p) in enumerate(zip(truth, pred, strict=True))
                ]  # fmt: skip
    return summarise_seeds(pd.DataFrame(runs), pd.DataFrame(predictions), draws=200)


def _printed(results: pd.DataFrame, report: str) -> str:
    console = Console(width=80, record=True, file=io.StringIO())
    print_summary(console, RunData(name="study", results=results), report)
    return console.export_text()


def _whole(identifier: str, text: str) -> bool:
    return re.search(rf"(?<![\w:]){re.escape(identifier)}(?![\w-])", text) is not None


@pytest.mark.parametrize(
    ("models", "skill", "one_line"),
    [
        ([ENCODER], SKILL, True),
        # Too wide for one line per row: each interval moves under its number.
        ([ENCODER, "roberta-base"], {**SKILL, MIXTURE: 0.7}, False),
    ],
)
def test_the_run_summary_is_one_table_with_whole_ids_within_80_columns(
    models: list[str], skill: dict[str, float], one_line: bool
) -> None:
    results = _results(models, skill)
    report = "llmsynth-output/runs/20250101-abcdef/report.html"
    text = _printed(results, report)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    for identifier in [*TASKS, *models, *skill]:
        assert _whole(identifier, text), f"{identifier} is cut:\n{text}"
    assert "…" not in text and "± 0.000" not in text  # one seed: an interval, never a spread
    # Every Macro-F1 and gap with its interval, as the results hold them: beside its number
    # where one line per row fits, else on the line under it.
    for row in results.to_dict("records"):
        cells = [(row["macro_f1"], row["macro_f1_ci_low"], row["macro_f1_ci_high"])]
        if row["source"] != "real":
            cells.append((row["gap_macro_f1"], row["gap_low"], row["gap_high"]))
        for point, low, high in cells:
            interval = f"[{low:.3f}, {high:.3f}]"
            assert (f"{point:.3f} {interval}" in text) == one_line
            assert one_line or any(
                f"{point:.3f}" in line and interval in below
                for line, below in itertools.pairwise(lines)
            )
    compact = " ".join(text.split())
    assert "of the way from chance to real Macro-F1" in compact
    assert lines[-1] == f"report: {report}"
    # One table: the verdict and the path follow it, no second table header.
    assert len([line for line in lines if re.match(r"task\b.*\bsource\b", line)]) == 1


def test_tasks_list_never_cuts_a_task_id(monkeypatch: pytest.MonkeyPatch) -> None:
    console = Console(width=80, record=True, file=io.StringIO())
    monkeypatch.setattr(cli, "console", console)
    cli.tasks_list(task_dir=None)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    ids = list(load_registry([]))
    assert "tweet_emotions" in ids and "relation_classification" in ids
    for identifier in ids:
        assert _whole(identifier, text), f"{identifier} is cut:\n{text}"
    assert "…" not in text
