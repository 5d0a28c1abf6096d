"""What `llmsynth run` prints when it finishes: one compact results table that reads at 80
columns, the verdict's headlines, and where the report is. The report holds every table."""

from __future__ import annotations

import pandas as pd
from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from llmsynth_core.report import RunData, run_verdicts
from llmsynth_core.results import summary_cells
from llmsynth_core.verdict import verdict_sentences

TITLE = "Macro-F1 on the real test split and gap = real minus source, [95% CIs]"


def results_table(results: pd.DataFrame, console: Console) -> Table:
    """Per task and source: Macro-F1 with its interval, and the gap to real with its paired
    interval. Ids never wrap; each interval moves under its number when one line per row
    would not fit the console, and the classifier is named under each task when several ran."""
    cells = summary_cells(results)
    table = _table(cells, one_line=True)
    # Measured unbounded: a measurement within the console's width is clamped to it.
    natural = console.measure(table, options=console.options.update(width=10 * console.width))
    if natural.maximum > console.width:
        table = _table(cells, one_line=False)
    return table


def _table(cells: pd.DataFrame, one_line: bool) -> Table:
    models = list(dict.fromkeys(cells["model"]))
    several = len(models) > 1
    title = TITLE if several else f"{TITLE}; classifier {models[0]}"
    table = Table(
        title=title, box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True
    )
    # The ids fold only where one is wider than the whole terminal: never an ellipsis.
    table.add_column("task / classifier" if several else "task", no_wrap=True, overflow="fold")
    table.add_column("source", no_wrap=True, overflow="fold")
    table.add_column("Macro-F1", justify="right", no_wrap=True, overflow="fold")
    table.add_column("gap", justify="right", no_wrap=True, overflow="fold")
    joint = " " if one_line else "\n"
    previous = None
    for row in cells.to_dict("records"):
        group = (row["task"], row["model"])
        label = ""
        if group != previous:
            label = f"{row['task']}\n{row['model']}" if several else row["task"]
            if previous is not None and (several or previous[0] != row["task"]):
                table.add_section()
        previous = group
        scores = [
            joint.join(filter(None, (row["macro_f1"], row["macro_f1_ci"]))),
            joint.join(filter(None, (row["gap"], row["gap_ci"]))),
        ]
        # Text, not markup: an interval such as [0.790, 0.834] is data, never a style tag.
        table.add_row(*(Text(cell) for cell in (label, row["source"], *scores)))
    return table


def print_summary(console: Console, run: RunData, report: str) -> None:
    """The compact table, each task's verdict headlines, then the report's location."""
    console.print(results_table(run.results, console))
    verdicts = run_verdicts(run)
    if verdicts:
        console.print()
    for verdict in verdicts:
        console.print(Text(verdict.task, style="bold"))
        for sentence in verdict_sentences(verdict, details=False):
            console.print(Padding(Text(sentence), (0, 0, 0, 2)))
    if verdicts:
        console.print(
            "Weakest classes and low-agreement instances: see the report's verdict.",
            highlight=False,
        )
    # soft_wrap: a long path stays one copyable string rather than being folded by rich.
    console.print(Text(f"report: {report}"), soft_wrap=True)
