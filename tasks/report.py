"""Write a run's report: report.md with its figures in report-files/, and report.html."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from llmsynth_core.errors import LlmsynthError
from llmsynth_core.figures import agreement_plot, curves_plot, grouped_bars
from llmsynth_core.report import RunData, build_sections, render_html, render_markdown

FIGURES_DIR = "report-files"


def _parquet(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.exists() else None


def _json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def load_run(run_dir: Path) -> RunData:
    results = run_dir / "results.parquet"
    if not results.exists():
        raise LlmsynthError(
            f"{results} not found; give the run directory printed by `llmsynth run` "
            "(runs/<time>-<hash> under the output directory)"
        )
    summary = _json(run_dir / "summary.json") or {}
    return RunData(
        name=str(summary.get("config", {}).get("name", run_dir.name)),
        results=pd.read_parquet(results),
        diversity=_parquet(run_dir / "diversity.parquet"),
        agreement_sweeps=_parquet(run_dir / "agreement_sweeps.parquet"),
        agreement_fits=_parquet(run_dir / "agreement_fits.parquet"),
        curves=_parquet(run_dir / "curves.parquet"),
        subjectivity=_json(run_dir / "subjectivity.json"),
        generation=_json(run_dir / "generation.json"),
        summary=summary,
        runs=_parquet(run_dir / "runs.parquet"),
        size_matching=_json(run_dir / "size_matching.json"),
    )


def make_figures(run: RunData) -> dict[str, bytes]:
    figures: dict[str, bytes] = {}
    if run.diversity is not None and not run.diversity.empty:
        figures["diversity-remote-clique"] = grouped_bars(
            run.diversity, "remote_clique", "Remote-Clique diversity", "mean distance"
        )
        figures["diversity-chamfer"] = grouped_bars(
            run.diversity, "chamfer", "Chamfer diversity", "nearest-neighbour distance"
        )
        synthetic = run.diversity[run.diversity["source"] != "real"]
        if not synthetic.empty:
            figures["diversity-similarity"] = grouped_bars(
                synthetic, "similarity_to_real", "Similarity to real data", "cosine (top-k)"
            )
    if run.agreement_sweeps is not None and run.agreement_fits is not None:
        for task in sorted(set(run.agreement_sweeps["task"])):
            key = f"agreement-{task}"
            figures[key] = agreement_plot(run.agreement_sweeps, run.agreement_fits, task)
    if run.curves is not None and not run.curves.empty:
        for task in sorted(set(run.curves["task"])):
            figures[f"curves-{task}"] = curves_plot(run.curves, task)
    return figures


def write_report(run_dir: Path) -> tuple[Path, Path]:
    """Render the report of a finished run; returns (report.md, report.html)."""
    run = load_run(run_dir)
    figures = make_figures(run)
    sections = build_sections(run, figures)
    title = f"llmsynth report: {run.name}"
    files = run_dir / FIGURES_DIR
    files.mkdir(exist_ok=True)
    names = {}
    for key, png in figures.items():
        (files / f"{key}.png").write_bytes(png)
        names[key] = f"{FIGURES_DIR}/{key}.png"
    markdown = run_dir / "report.md"
    markdown.write_text(render_markdown(title, sections, names), encoding="utf-8")
    page = run_dir / "report.html"
    page.write_text(render_html(title, sections, figures), encoding="utf-8")
    return markdown, page
