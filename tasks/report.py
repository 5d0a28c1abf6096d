"""Write a run's report (report.md with its figures beside it, report.html) and results.md."""

from __future__ import annotations

from pathlib import Path

from llmsynth_core.errors import LlmsynthError
from llmsynth_core.figures import agreement_plot, curves_plot, grouped_bars, worth_plot
from llmsynth_core.report import (
    RunData,
    build_sections,
    render_html,
    render_markdown,
    results_markdown,
)
from llmsynth_core.run_layout import RunLayout
from llmsynth_core.worth import without_curve
from tasks.run_dir import RunDir


def load_run(run: RunDir) -> RunData:
    """Every file the report reads, each checked against its declared schema."""
    if not run.exists(RunLayout.RESULTS):
        raise LlmsynthError(
            f"{run.uri(RunLayout.RESULTS)} not found; give the run directory printed by "
            "`llmsynth run` (runs/<time>-<hash> under the output directory)"
        )
    summary = run.optional_json(RunLayout.SUMMARY) or {}
    return RunData(
        name=str(summary.get("config", {}).get("name", Path(run.location).name)),
        results=run.read_frame(RunLayout.RESULTS),
        diversity=run.optional_frame(RunLayout.DIVERSITY),
        agreement_sweeps=run.optional_frame(RunLayout.AGREEMENT_SWEEPS),
        agreement_fits=run.optional_frame(RunLayout.AGREEMENT_FITS),
        curves=run.optional_frame(RunLayout.CURVES),
        subjectivity=run.optional_json(RunLayout.SUBJECTIVITY),
        generation=run.optional_json(RunLayout.GENERATION),
        summary=summary,
        runs=run.optional_frame(RunLayout.RUNS),
        size_matching=run.optional_json(RunLayout.SIZE_MATCHING),
        per_class=run.optional_frame(RunLayout.PER_CLASS),
        real_equivalent=run.optional_frame(RunLayout.REAL_EQUIVALENT),
        real_curve=run.optional_frame(RunLayout.REAL_CURVE),
        findings=run.optional_frame(RunLayout.FINDINGS),
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
    curves = None if run.curves is None else without_curve(run.curves)
    if curves is not None and not curves.empty:
        for task in sorted(set(curves["task"])):
            figures[f"curves-{task}"] = curves_plot(curves, task)
    if run.real_equivalent is not None and run.real_curve is not None:
        for task in sorted(set(run.real_equivalent["task"])):
            figures[f"worth-{task}"] = worth_plot(run.real_curve, run.real_equivalent, task)
    return figures


def write_report(run_dir: Path) -> tuple[Path, Path]:
    """Render a finished run's results.md, report.md (figures beside it) and report.html from
    one reading of its files; returns (report.md, report.html)."""
    run = RunDir(str(run_dir))
    data = load_run(run)
    figures = make_figures(data)
    sections = build_sections(data, figures)
    title = f"llmsynth report: {data.name}"
    names = {key: run.write_figure(key, png) for key, png in figures.items()}
    run.write_text(RunLayout.RESULTS_MD, results_markdown(data))
    markdown = run.write_text(RunLayout.REPORT_MD, render_markdown(title, sections, names))
    page = run.write_text(RunLayout.REPORT_HTML, render_html(title, sections, figures))
    return Path(markdown), Path(page)
