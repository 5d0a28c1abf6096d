"""The study-style report of one run, as Markdown (figures beside it) and self-contained HTML."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from llmsynth_core.agreement import panel_notes, uses_estimate
from llmsynth_core.findings import RULE, findings_summary
from llmsynth_core.results import (
    gap_cells,
    to_markdown,
    train_counts_table,
    wide_table,
    with_ci,
)
from llmsynth_core.run_layout import RunLayout
from llmsynth_core.schemas import METRICS
from llmsynth_core.size_matching import REAL, LabelSizes, SizePolicy, imbalance
from llmsynth_core.subjectivity import AUTHOR_LEVELS, SPEARMAN_TEXT, too_few_tasks
from llmsynth_core.verdict import TaskVerdict, task_verdicts, verdict_sentences
from llmsynth_core.worth import without_curve

SECTIONS = (
    "Verdict",
    "The study's three findings on this run",
    "Results on the real test split",
    "Task subjectivity and the performance gap",
    "Diversity and similarity to real data",
    "Accuracy vs annotator agreement",
    "Training curves",
    "Generation volume, quality gates and cost",
    "Per-class scores and every training run",
    "Provenance",
)
# Only in runs that trained a real learning curve (training.real_curve); after the results.
WORTH = "What the synthetic data is worth in real labels"
# results.md: the sections that need no figure, rendered by the same functions as report.md.
TEXT_SECTIONS = tuple(title for title in SECTIONS if title != "Training curves")


@dataclass
class RunData:
    """What a run directory holds; every part but `results` may be missing."""

    name: str
    results: pd.DataFrame
    diversity: pd.DataFrame | None = None
    agreement_sweeps: pd.DataFrame | None = None
    agreement_fits: pd.DataFrame | None = None
    curves: pd.DataFrame | None = None
    subjectivity: dict[str, Any] | None = None
    generation: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    runs: pd.DataFrame | None = None
    size_matching: dict[str, Any] | None = None
    per_class: pd.DataFrame | None = None
    # What each synthetic set is worth in real rows per label, and the real and mixed curves
    # behind it (llmsynth_core/worth.py); the verdict quotes the former's `text`.
    real_equivalent: pd.DataFrame | None = None
    real_curve: pd.DataFrame | None = None
    # The study's three findings tested on this run (llmsynth_core/findings.py).
    findings: pd.DataFrame | None = None


@dataclass
class Block:
    """One piece of a section: a paragraph, a list (led by `text`), a table or a figure."""

    kind: str  # "text" | "list" | "table" | "figure"
    text: str = ""
    table: pd.DataFrame | None = None
    figure: str = ""  # key into the figures mapping
    items: list[str] = field(default_factory=list)


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


def _text(value: str) -> Block:
    return Block("text", text=value)


def _table(frame: pd.DataFrame) -> Block:
    return Block("table", table=frame)


def _figure(key: str) -> Block:
    return Block("figure", figure=key)


def build_sections(run: RunData, figures: dict[str, bytes]) -> list[Section]:
    """The report's sections in SECTIONS order, WORTH after the results where the run trained
    a real learning curve; a missing part says so instead of vanishing."""
    worth = _worth(run, figures)
    return [
        _verdict(run),
        _findings(run),
        _results(run),
        *([worth] if worth else []),
        _subjectivity(run),
        _diversity(run, figures),
        _agreement(run, figures),
        _curves(run, figures),
        _generation(run),
        _details(run),
        _provenance(run),
    ]


def results_markdown(run: RunData) -> str:
    """results.md: the report's TEXT_SECTIONS, without figures."""
    texts = (*TEXT_SECTIONS, WORTH)
    sections = [section for section in build_sections(run, {}) if section.title in texts]
    return render_markdown(f"llmsynth results: {run.name}", sections, {})


def run_verdicts(run: RunData) -> list[TaskVerdict]:
    """The verdict per task from every table of the run that speaks to it."""
    return task_verdicts(
        run.results,
        per_class=run.per_class,
        agreement_sweeps=run.agreement_sweeps,
        generation=run.generation,
        size_matching=run.size_matching,
        real_equivalent=run.real_equivalent,
    )


VERDICT_TEXT = (
    "Per task and synthetic source: the share of the way from chance to the real-trained "
    "model's Macro-F1 that training on synthetic data closed, (synthetic - chance) / (real - "
    "chance) = 1 - normalised gap, with its 95% paired bootstrap interval; chance-normalised so "
    "that a model guessing at random on a 2-class task does not read as most of the way to "
    "real. The tables below hold every number."
)


def _verdict(run: RunData) -> Section:
    section = Section(SECTIONS[0])
    verdicts = run_verdicts(run)
    if not verdicts:
        section.blocks.append(
            _text(
                "No verdict: these results carry no paired gap between a synthetic source and "
                "real (a run without a real baseline, or from before the paired gap)."
            )
        )
        return section
    section.blocks.append(_text(VERDICT_TEXT))
    section.blocks += [
        Block("list", text=f"{verdict.task}:", items=verdict_sentences(verdict))
        for verdict in verdicts
    ]
    return section


def _findings(run: RunData) -> Section:
    """The rule, then per finding the tasks where it holds and its comparisons."""
    section = Section(SECTIONS[1])
    frame = run.findings
    if frame is None or frame.empty:
        section.blocks.append(_text("Not computed for this run."))
        return section
    section.blocks.append(_text(RULE))
    for finding, sentence in enumerate(findings_summary(frame), start=1):
        section.blocks.append(_text(sentence))
        rows = frame[frame["finding"] == finding]
        if not rows.empty:
            section.blocks.append(_table(findings_cells(rows)))
            section.blocks += [_text(note) for note in findings_notes(rows)]
    return section


def findings_notes(rows: pd.DataFrame) -> list[str]:
    """What the estimates of one finding are and how their intervals were drawn: one line if
    every row says the same, else one per task (per comparison where a task has several)."""
    notes = list(dict.fromkeys(str(note) for note in rows["note"]))
    if len(notes) == 1:
        return notes
    per_task = bool((rows.groupby("task")["note"].nunique() == 1).all())
    labels = rows["task"] if per_task else rows["comparison"]
    return list(dict.fromkeys(f"{k}: {n}" for k, n in zip(labels, rows["note"], strict=True)))


def findings_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Task, (model where several), comparison, "estimate [low, high]" and holds yes/no
    (not tested where the run could not test it)."""
    cells = pd.DataFrame(
        {
            "task": frame["task"],
            "model": frame["model"],
            "comparison": frame["comparison"],
            "estimate [95% CI]": [
                "n/a" if pd.isna(e) else f"{e:.3f} [{lo:.3f}, {hi:.3f}]"
                for e, lo, hi in zip(frame["estimate"], frame["low"], frame["high"], strict=True)
            ],
            "holds": [
                "not tested" if pd.isna(h) else ("yes" if h else "no") for h in frame["holds"]
            ],
        }
    )
    if frame["model"].nunique() == 1:
        cells = cells.drop(columns="model")
    return cells.reset_index(drop=True)


def _summary_stats(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean (and spread when several seeds ran) per task, model and source."""
    keys = ["task", "subjectivity", "model", "source"]
    grouped = results.groupby(keys, sort=False)[metric]
    table = grouped.agg(["mean", "count"]).reset_index()
    if (table["count"] > 1).any():
        table["std"] = grouped.std().to_numpy()
    return table.rename(columns={"mean": metric, "count": "runs"})


def _results(run: RunData) -> Section:
    section = Section(SECTIONS[2])
    section.blocks.append(
        _text(
            "Macro-F1 and accuracy of classifiers fine-tuned on real, zero-shot and few-shot "
            "data, evaluated on the real test split; gap = real minus synthetic. Tasks run from "
            "most objective to most subjective."
        )
    )
    section.blocks.append(_text("Macro-F1:"))
    section.blocks.append(_table(wide_table(run.results, "macro_f1")))
    section.blocks += _sizes(run)
    section.blocks.append(_text("Accuracy:"))
    section.blocks.append(_table(wide_table(run.results, "accuracy")))
    if "macro_f1_ci_low" in run.results.columns:
        for metric, title in (("macro_f1", "Macro-F1"), ("accuracy", "Accuracy")):
            section.blocks.append(
                _text(
                    f"{title} over seeds: mean ± std [95% bootstrap CI, seeds and test "
                    "instances resampled]:"
                )
            )
            section.blocks.append(_table(with_ci(run.results, metric)))
    elif run.results.duplicated(["task", "model", "source"]).any():
        section.blocks.append(_table(_summary_stats(run.results, "macro_f1")))
    if "gap_macro_f1" in run.results.columns:
        section.blocks += [
            _text(GAP_TEXT),
            _table(gap_cells(run.results)),
            _text(NORMALISED_GAP_TEXT),
            _table(gap_cells(run.results, normalised=True)),
        ]
    return section


GAP_TEXT = (
    "Gap = real minus synthetic Macro-F1 [95% paired bootstrap CI: the same resampled test "
    "rows and seeds for both sides and, with generation.replicates > 1, resampled synthetic "
    "sets]:"
)
NORMALISED_GAP_TEXT = (
    "Normalised gap = gap / (real minus chance), the share of the real model's skill above "
    "chance that training on synthetic data loses; chance is the expected Macro-F1 of a "
    "classifier guessing uniformly at random (1/K for K balanced classes), so 2-class and "
    "28-class tasks compare. n/a where real is not above chance:"
)


def _sizes(run: RunData) -> list[Block]:
    """How many rows each source trained on, and every label where some source fell short."""
    info = run.size_matching or {}
    policy: SizePolicy = info.get("policy", "equal")
    blocks = []
    if info and policy == "none":
        blocks.append(
            _text(
                "Sources differ in size (training.size_matching: none): real takes up to "
                f"{info.get('per_label')} rows per label and each mode all it accepted, so a "
                "gap mixes data quality with data quantity."
            )
        )
    elif info:
        blocks.append(
            _text(
                "Size-matched (training.size_matching: equal): per label, every source trains "
                "on the same number of rows, the minimum of generation.per_label, the real rows "
                "and each mode's accepted rows."
            )
        )
    sizes = [LabelSizes.model_validate(raw) for raw in info.get("labels", [])]
    blocks += [_text(f"Shortfall: {size.describe(policy)}.") for size in sizes if size.capped]
    for task in dict.fromkeys(size.task for size in sizes):
        mine = [size for size in sizes if size.task == task]
        for source in mine[0].used if policy == "none" else ["real"]:
            note = imbalance(mine, source)
            if note:
                who = f"the {source} data" if policy == "none" else "every source"
                blocks.append(_text(f"{task}: {who} trains on imbalanced classes ({note})."))
    counts = pd.DataFrame() if run.runs is None else train_counts_table(without_curve(run.runs))
    if not counts.empty:
        blocks.append(_text("Training rows per label and source (before the validation carve):"))
        blocks.append(_table(counts))
    return blocks


WORTH_TEXT = (
    "Real-equivalent size: the real training rows per label at which classifiers trained on "
    "real data (the learning curve of training.real_curve, mean over seeds, made "
    "non-decreasing) reach the synthetic set's Macro-F1, interpolated on log(rows) between "
    "curve points; '< k' and '> k' lie outside the curve and are not extrapolated. [95% "
    "interval: test instances and seeds resampled, the crossing recomputed each draw.]"
)
MIXED_TEXT = (
    "Macro-F1 [95% interval] at k real rows per label: real alone, and with synthetic rows "
    "added (training.mixtures):"
)


def _worth(run: RunData, figures: dict[str, bytes]) -> Section | None:
    """The real-equivalent table, the curves beside the mixtures and a figure per task; None
    for a run without a real learning curve."""
    table = run.real_equivalent
    if table is None or table.empty:
        return None
    section = Section(WORTH, [_text(WORTH_TEXT), _table(worth_table(table))])
    mixed = mixed_table(run.real_curve)
    if not mixed.empty:
        section.blocks += [_text(MIXED_TEXT), _table(mixed)]
    section.blocks += [_figure(key) for key in figures if key.startswith("worth-")]
    return section


def worth_table(table: pd.DataFrame) -> pd.DataFrame:
    """Task, (model where several), source, real-equivalent rows per label with interval,
    and the synthetic set it came from: its rows per label and Macro-F1."""
    ordered = table.sort_values(["subjectivity", "task"], kind="stable")
    frame = pd.DataFrame(
        {
            "task": ordered["task"],
            "model": ordered["model"],
            "source": ordered["source"],
            "real rows per label [95% CI]": ordered["text"],
            "synthetic rows per label": [f"{n:.0f}" for n in ordered["synthetic_per_label"]],
            "synthetic Macro-F1": ordered["synthetic_macro_f1"],
        }
    )
    if frame["model"].nunique() == 1:
        frame = frame.drop(columns="model")
    return frame.reset_index(drop=True)


def mixed_table(curve: pd.DataFrame | None) -> pd.DataFrame:
    """One row per mixture point: task, k, the mixture, its Macro-F1 [low, high] and the real
    curve's at the same k (n/a where the curve has no such k); empty without mixtures."""
    if curve is None or curve.empty or not (curve["curve"] == "mixed").any():
        return pd.DataFrame()
    cells = curve.assign(
        cell=[
            f"{m:.3f} [{lo:.3f}, {hi:.3f}]"
            for m, lo, hi in zip(
                curve["macro_f1"], curve["macro_f1_low"], curve["macro_f1_high"], strict=True
            )
        ]
    )
    keys = ["task", "model", "per_label"]
    real = cells[cells["curve"] == REAL].set_index(keys)["cell"]
    mixed = cells[cells["curve"] == "mixed"].sort_values(["subjectivity", *keys], kind="stable")
    frame = pd.DataFrame(
        {
            "task": mixed["task"],
            "model": mixed["model"],
            "k": mixed["per_label"],
            "real alone": [
                real.get(key, "n/a")
                for key in zip(mixed["task"], mixed["model"], mixed["per_label"], strict=True)
            ],
            "mixture": mixed["source"],
            "synthetic + k real": mixed["cell"],
        }
    )
    if frame["model"].nunique() == 1:
        frame = frame.drop(columns="model")
    return frame.reset_index(drop=True)


def _subjectivity(run: RunData) -> Section:
    section = Section(SECTIONS[3])
    info = run.subjectivity
    if not info:
        section.blocks.append(_text("Not computed for this run."))
        return section
    section.blocks.append(_text(f"Subjectivity: {info.get('source', AUTHOR_LEVELS)}."))
    levels = pd.DataFrame(
        [{"task": task, "subjectivity": level} for task, level in info["subjectivity"].items()]
    )
    section.blocks.append(_table(levels))
    spearman = info.get("spearman") or {}
    if spearman:
        section.blocks.append(_text(SPEARMAN_TEXT))
        section.blocks.append(_table(pd.DataFrame([{"mode": m, **v} for m, v in spearman.items()])))
    else:
        section.blocks.append(_text(info.get("note") or too_few_tasks(len(levels))))
    return section


def _diversity(run: RunData, figures: dict[str, bytes]) -> Section:
    section = Section(SECTIONS[4])
    if run.diversity is None or run.diversity.empty:
        section.blocks.append(_text("Not computed for this run."))
        return section
    section.blocks.append(
        _text(
            "Remote-Clique: mean embedding distance to all other texts; Chamfer: mean distance "
            "to the nearest other text (higher = more diverse). Similarity: for each real text, "
            "the mean cosine similarity of its top-k synthetic neighbours, averaged. All "
            "sources of a task are measured on the same number of texts (n), the real ones "
            "sampled to the synthetic label distribution; '(before gates)' rows: all non-empty "
            "replies, before the quality gates dropped any."
        )
    )
    section.blocks.append(_table(run.diversity))
    section.blocks += [_figure(key) for key in figures if key.startswith("diversity")]
    return section


def _agreement(run: RunData, figures: dict[str, bytes]) -> Section:
    section = Section(SECTIONS[5])
    if run.agreement_fits is None or run.agreement_sweeps is None or run.agreement_sweeps.empty:
        section.blocks.append(
            _text(
                "No task in this run has per-instance agreement (e.g. financial_phrasebank's "
                "agreement levels), so there is no instance-level fit."
            )
        )
        return section
    analysis = (run.summary or {}).get("config", {}).get("analysis", {})
    minimum = analysis.get("min_instances_per_threshold")
    unfitted = "" if minimum is None else f"; thresholds with fewer than {minimum} instances"
    section.blocks.append(
        _text(
            "Accuracy on test instances whose annotator agreement is at least the threshold, "
            f"with a linear fit (slope, R²) and Spearman's rho per data source{unfitted}"
            + (" are not fitted." if unfitted else ".")
            + " n counts test instances; accuracy is pooled over the seeds' predictions."
        )
    )
    if uses_estimate(run.agreement_fits) or uses_estimate(run.agreement_sweeps):
        section.blocks.append(
            _text(
                "Rows with agreement_source llm-estimate use agreement *estimated* by an LLM "
                "annotator panel (analysis.annotator_panel calls per instance); it is an "
                "estimate, not human annotator agreement."
            )
        )
        section.blocks += [_text(note) for note in panel_notes(run.agreement_sweeps)]
    section.blocks.append(_table(run.agreement_fits))
    few = few_points_note(run.agreement_fits)
    if few:
        section.blocks.append(_text(few))
    section.blocks += [_figure(key) for key in figures if key.startswith("agreement")]
    section.blocks.append(_table(run.agreement_sweeps))
    section.blocks += [_text(note) for note in [panel_off_note(run, analysis)] if note]
    return section


def few_points_note(fits: pd.DataFrame) -> str | None:
    """What a fit over a handful of thresholds can and cannot claim; None for larger fits."""
    if fits.empty or "thresholds" not in fits.columns or int(fits["thresholds"].max()) > 5:
        return None
    points = int(fits["thresholds"].max())
    return (
        f"These fits rest on at most {points} thresholds, and the subsets are nested (each "
        "threshold keeps every instance of the higher ones), so the points are not "
        "independent: read the slope's sign and size and the n behind each point, not a "
        f"significance. With {points} points Spearman's rho takes only a few values, and its "
        "exact p-value cannot fall below "
        f"{2 / math.factorial(points):.3f}."
    )


def panel_off_note(run: RunData, analysis: dict[str, Any]) -> str | None:
    """Which tasks have no instance-level analysis, and how to get one; None if all have."""
    if analysis.get("annotator_panel") or run.agreement_sweeps is None:
        return None
    missing = sorted(set(run.results["task"]) - set(run.agreement_sweeps["task"]))
    if not missing:
        return None
    return (
        f"No instance-level analysis for {', '.join(missing)}: their data has no annotator "
        "agreement and the LLM annotator panel is off (analysis.annotator_panel: 0). To "
        "estimate agreement for them, set analysis.annotator_panel: 5 and analysis.annotator_llm "
        "to a model much stronger than a 135M generator, whose labels would measure its own "
        "noise rather than human disagreement."
    )


def _curves(run: RunData, figures: dict[str, bytes]) -> Section:
    section = Section(SECTIONS[6])
    keys = [key for key in figures if key.startswith("curves")]
    if not keys:
        section.blocks.append(_text("No per-epoch curves were recorded for this run."))
        return section
    section.blocks.append(
        _text(
            "Per epoch, mean over seeds: training loss, Macro-F1 on the validation split carved "
            "from the training data (drives early stopping) and on the real test split."
        )
    )
    section.blocks += [_figure(key) for key in keys]
    return section


def _generation(run: RunData) -> Section:
    section = Section(SECTIONS[7])
    info = run.generation
    if not info:
        section.blocks.append(
            _text(f"No generation record ({RunLayout.GENERATION.name}) in this run.")
        )
        return section
    section.blocks.append(
        _text(
            f"{info.get('accepted', 0):,} accepted and {info.get('rejected', 0):,} rejected "
            f"rows; total cost ${info.get('cost_usd', 0.0):.4f}."
        )
    )
    for message in info.get("shortfalls", []):
        section.blocks.append(_text(f"Quota shortfall: {message}"))
    section.blocks.append(_table(pd.DataFrame(info.get("labels", []))))
    return section


def _details(run: RunData) -> Section:
    section = Section(SECTIONS[8])
    if run.per_class is not None:
        section.blocks += [_text("Per-class scores, mean over seeds:"), _table(run.per_class)]
    if run.runs is not None:
        lists = [column.name for column in METRICS if pa.types.is_list(column.type)]
        runs = run.runs[[column for column in run.runs.columns if column not in lists]]
        section.blocks += [_text("Every training run:"), _table(runs)]
    if not section.blocks:
        section.blocks.append(_text("This run directory holds no per-run tables."))
    return section


def _provenance(run: RunData) -> Section:
    section = Section(SECTIONS[9])
    summary = run.summary or {}
    config = summary.get("config", {})
    llm, training = config.get("llm", {}), config.get("training", {})
    rows = [
        {"item": "experiment", "value": run.name},
        {"item": "config hash", "value": summary.get("config_hash", "unknown")},
        {"item": "generator", "value": f"{llm.get('model', '?')} ({llm.get('prompt_style', '?')})"},
        {"item": "classifiers", "value": ", ".join(training.get("models", []))},
        {
            "item": "examples per label",
            "value": str(config.get("generation", {}).get("per_label", "?")),
        },
        {"item": "seeds", "value": str(training.get("seeds", "?"))},
    ]
    for package, version in (summary.get("provenance", {}).get("packages") or {}).items():
        rows.append({"item": package, "value": str(version)})
    revision = summary.get("provenance", {}).get("git_revision")
    if revision:
        rows.append({"item": "git revision", "value": revision})
    section.blocks.append(_table(pd.DataFrame(rows)))
    assumed = summary.get("assumed")
    if assumed:
        section.blocks.append(
            _text(
                "Settings the study does not report, and the values this run used "
                "(max_tokens: the limit sent with each task's requests):"
            )
        )
        section.blocks.append(_table(pd.DataFrame(assumed)))
    else:
        section.blocks.append(
            _text(f"This run's {RunLayout.SUMMARY.name} does not list the settings it assumed.")
        )
    return section


def render_markdown(title: str, sections: list[Section], figure_files: dict[str, str]) -> str:
    parts = [f"# {title}"]
    for section in sections:
        parts.append(f"## {section.title}")
        for block in section.blocks:
            if block.kind == "text":
                parts.append(block.text)
            elif block.kind == "list":
                parts.append("\n".join([block.text, "", *(f"- {item}" for item in block.items)]))
            elif block.kind == "table" and block.table is not None:
                parts.append(to_markdown(block.table))
            elif block.kind == "figure":
                parts.append(f"![{block.figure}]({figure_files[block.figure]})")
    return "\n\n".join(parts) + "\n"


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { border-bottom: 2px solid #762a83; } h2 { margin-top: 2em; color: #762a83; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f2eef5; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; display: block; margin: 0.8em 0; }
"""


def render_html(title: str, sections: list[Section], figures: dict[str, bytes]) -> str:
    """One self-contained file: styles inline, figures as data URIs."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            if block.kind == "text":
                parts.append(f"<p>{html.escape(block.text)}</p>")
            elif block.kind == "list":
                items = "".join(f"<li>{html.escape(item)}</li>" for item in block.items)
                parts.append(f"<p>{html.escape(block.text)}</p><ul>{items}</ul>")
            elif block.kind == "table" and block.table is not None:
                parts.append(block.table.to_html(index=False, float_format=lambda v: f"{v:.3f}"))
            elif block.kind == "figure":
                data = base64.b64encode(figures[block.figure]).decode("ascii")
                alt = html.escape(block.figure)
                parts.append(f"<img alt='{alt}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)
