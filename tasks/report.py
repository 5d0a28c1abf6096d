"""Write a run's report (report.md with its figures beside it, report.html) and results.md."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

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


# What `llmsynth publish` copies: the text a reader opens first, and the figures it links.
PUBLISHED = (RunLayout.REPORT_MD, RunLayout.RESULTS_MD)


def publish_report(run_dir: Path, dest: Path, notes: list[str]) -> Path:
    """Copy a finished run's report.md, results.md and figures to `dest` (e.g. docs/study/),
    with a README.md naming the run, its commit, the machine and `notes` (e.g. wall time)."""
    run = RunDir(str(run_dir))
    if not run.exists(RunLayout.REPORT_MD):
        raise LlmsynthError(
            f"{run.uri(RunLayout.REPORT_MD)} not found; run `llmsynth report {run_dir}` first"
        )
    figures = dest / RunLayout.FIGURES_DIR
    figures.mkdir(parents=True, exist_ok=True)
    for old in figures.glob("*.png"):
        old.unlink()  # figures of an earlier publication that this run does not have
    for png in sorted((run_dir / RunLayout.FIGURES_DIR).glob("*.png")):
        (figures / png.name).write_bytes(png.read_bytes())
    for file in PUBLISHED:
        (dest / file.name).write_text(run.read_text(file), encoding="utf-8")
    summary = run.optional_json(RunLayout.SUMMARY) or {}
    readme = dest / "README.md"
    readme.write_text(publication_readme(run_dir.name, summary, machine(), notes), encoding="utf-8")
    return readme


def publication_readme(run: str, summary: dict[str, Any], host: str, notes: list[str]) -> str:
    """The published run's cover page: what it is, where it ran, on which commit."""
    provenance = summary.get("provenance", {})
    config = summary.get("config", {})
    packages = ", ".join(f"{k} {v}" for k, v in provenance.get("packages", {}).items())
    lines = [
        f"# llmsynth run `{run}`: experiment `{config.get('name', '?')}`",
        "",
        "- [report.md](report.md): the verdict per task, then every table and figure; "
        "[results.md](results.md): the same tables without figures.",
        f"- Config hash `{summary.get('config_hash', '?')}`, commit "
        f"`{provenance.get('git_revision', 'unknown')}`.",
        f"- Machine: {host}.",
        f"- Packages: {packages}." if packages else "",
        *(f"- {note}" for note in notes),
    ]
    return "\n".join(line for line in lines if line) + "\n"


def machine() -> str:
    """CPU model, cores and memory of this machine, in one line."""
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB memory"
    return f"{cpu}, {os.cpu_count()} cores{memory}, {platform.system()} {platform.release()}"
