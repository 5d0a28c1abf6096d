"""The report's figures as PNG bytes (matplotlib, no display needed)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

SOURCE_COLOURS = {"real": "#1b7837", "zero_shot": "#c2a5cf", "few_shot": "#762a83"}


def _figure(width: float = 7.0, height: float = 3.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=110)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def grouped_bars(frame: pd.DataFrame, value: str, title: str, ylabel: str) -> bytes:
    """One group of bars per task (most objective first), one bar per source."""
    tasks = list(dict.fromkeys(frame.sort_values(["subjectivity", "task"])["task"]))
    sources = [s for s in SOURCE_COLOURS if s in set(frame["source"])]
    sources += sorted(set(frame["source"]) - set(sources))
    fig, ax = _figure()
    width = 0.8 / max(len(sources), 1)
    for i, source in enumerate(sources):
        values = [
            frame.loc[(frame["task"] == t) & (frame["source"] == source), value].mean()
            for t in tasks
        ]
        ax.bar(
            np.arange(len(tasks)) + i * width,
            values,
            width,
            label=source,
            color=SOURCE_COLOURS.get(source),
        )
    ax.set_xticks(np.arange(len(tasks)) + width * (len(sources) - 1) / 2)
    ax.set_xticklabels(tasks, rotation=20, ha="right")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return _png(fig)


def agreement_plot(sweeps: pd.DataFrame, fits: pd.DataFrame, task: str) -> bytes:
    """Accuracy against agreement threshold per source, with the fitted lines."""
    fig, ax = _figure(6.0, 3.6)
    for (model, source), group in sweeps[sweeps["task"] == task].groupby(["model", "source"]):
        kept = group[group["kept"]]
        colour = SOURCE_COLOURS.get(str(source))
        ax.plot(kept["threshold"], kept["accuracy"], "o", color=colour, label=f"{source}")
        fit = fits[(fits["task"] == task) & (fits["model"] == model) & (fits["source"] == source)]
        if not fit.empty:
            row = fit.iloc[0]
            x = np.linspace(kept["threshold"].min(), kept["threshold"].max(), 20)
            ax.plot(
                x,
                row["intercept"] + row["slope"] * x,
                "-",
                color=colour,
                label=f"fit R²={row['r_squared']:.2f}, ρ={row['rho']:.2f}",
            )
    ax.set_title(f"{task}: accuracy on instances with agreement ≥ threshold")
    ax.set_xlabel("agreement threshold")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7)
    return _png(fig)


def curves_plot(curves: pd.DataFrame, task: str, value: str) -> bytes:
    """A metric per epoch, one line per data source (the study's training-curve figure)."""
    fig, ax = _figure(6.0, 3.6)
    for source, group in curves[curves["task"] == task].groupby("source"):
        mean = group.groupby("epoch")[value].mean()
        ax.plot(mean.index, mean.values, "o-", color=SOURCE_COLOURS.get(str(source)), label=source)
    ax.set_title(f"{task}: {value} per epoch")
    ax.set_xlabel("epoch")
    ax.set_ylabel(value)
    ax.legend(fontsize=8)
    return _png(fig)
