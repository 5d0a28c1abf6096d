"""The report's figures as PNG bytes (matplotlib, no display needed)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

from llmsynth_core.agreement import panel_of, uses_estimate

SOURCE_COLOURS = {"real": "#1b7837", "zero_shot": "#c2a5cf", "few_shot": "#762a83"}


def _figure(width: float = 7.0, height: float = 3.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    return fig, ax


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
    estimated = uses_estimate(fits, task) or uses_estimate(sweeps, task)
    what = "LLM-estimated agreement" if estimated else "agreement"
    panel = panel_of(sweeps, task)
    # Short lines: a long task name cut the one-line title off at the figure's edge.
    ax.set_title(
        f"{task}: accuracy on instances with\n{what} ≥ threshold" + (f"\n{panel}" if panel else ""),
        fontsize=10,
    )
    ax.set_xlabel("agreement threshold")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7)
    return _png(fig)


CURVE_PANELS = (
    ("train_loss", "training loss"),
    ("validation_macro_f1", "validation Macro-F1"),
    ("test_macro_f1", "test Macro-F1"),
)


def curves_plot(curves: pd.DataFrame, task: str) -> bytes:
    """Training loss, validation and test Macro-F1 per epoch (mean over seeds), one line per
    data source: the study's training-curve figure."""
    import matplotlib.pyplot as plt

    mine = curves[curves["task"] == task]
    panels = [(c, t) for c, t in CURVE_PANELS if c in mine and mine[c].notna().any()]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.2), dpi=110)
    for ax, (column, title) in zip(np.atleast_1d(axes), panels, strict=True):
        for source, group in mine.groupby("source"):
            mean = group.groupby("epoch")[column].mean()
            colour = SOURCE_COLOURS.get(str(source))
            ax.plot(mean.index, mean.values, "o-", color=colour, label=source)
        ax.set_title(f"{task}: {title}", fontsize=9)
        ax.set_xlabel("epoch")
    np.atleast_1d(axes)[-1].legend(fontsize=7)
    return _png(fig)


def worth_plot(curve: pd.DataFrame, equivalents: pd.DataFrame, task: str) -> bytes:
    """The real learning curve (mean and 95% band, k on a log axis), a line at each synthetic
    source's Macro-F1 with a marker where it crosses the curve (an arrow at the bound where it
    does not), and the mixed points (synthetic + k real): the real-equivalent figure."""
    mine = curve[curve["task"] == task]
    model = sorted(set(mine["model"]))[0]  # one encoder in the study; the first otherwise
    mine = mine[mine["model"] == model]
    real = mine[mine["curve"] == "real"].sort_values("per_label")
    fig, ax = _figure(5.2, 3.3)
    colour = SOURCE_COLOURS["real"]
    ax.fill_between(
        real["per_label"], real["macro_f1_low"], real["macro_f1_high"], color=colour, alpha=0.2
    )
    ax.plot(real["per_label"], real["macro_f1"], "o-", color=colour, label="real (k per label)")
    rows = equivalents[(equivalents["task"] == task) & (equivalents["model"] == model)]
    for row in rows.itertuples(index=False):
        tint = SOURCE_COLOURS.get(str(row.source))
        ax.axhline(row.synthetic_macro_f1, color=tint, linestyle="--", linewidth=1)
        if pd.isna(row.censored):
            x, marker = row.real_equivalent, "X"
        else:
            x, marker = (row.smallest, "<") if row.censored == "below" else (row.largest, ">")
        # One point with a dashed style: the legend shows the marker on the line.
        ax.plot(
            [x],
            [row.synthetic_macro_f1],
            marker=marker,
            linestyle="--",
            color=tint,
            markersize=9,
            label=f"{row.source}: {row.text}",
        )
    for mode, group in mine[mine["curve"] == "mixed"].groupby("mode"):
        group = group.sort_values("per_label")
        tint = SOURCE_COLOURS.get(str(mode))
        ax.errorbar(
            group["per_label"],
            group["macro_f1"],
            yerr=[
                group["macro_f1"] - group["macro_f1_low"],
                group["macro_f1_high"] - group["macro_f1"],
            ],
            fmt="s",
            color=tint,
            capsize=2,
            label=f"{mode} + k real",
        )
    ax.set_xscale("log", base=2)
    ticks = sorted(set(mine["per_label"]))
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(k) for k in ticks])
    ax.set_xlabel("real training rows per label (k)")
    ax.set_ylabel("test Macro-F1")
    ax.set_title(f"{task}: synthetic data in real labels ({model})", fontsize=9)
    ax.legend(fontsize=7)
    return _png(fig)
