"""`llmsynth publish`: a finished run's report, tables and figures copied out with a cover page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from llmsynth_core.errors import LlmsynthError
from llmsynth_core.run_layout import RunLayout


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "20261202-120000-abcdef12"
    (run / RunLayout.FIGURES_DIR).mkdir(parents=True)
    (run / RunLayout.REPORT_MD.name).write_text("# report\n![w](report-files/worth-t.png)\n")
    (run / RunLayout.RESULTS_MD.name).write_text("# results\n")
    (run / RunLayout.figure("worth-t")).write_bytes(b"\x89PNG worth")
    summary = {
        "config": {"name": "study"},
        "config_hash": "abcdef1234567890",
        "provenance": {"git_revision": "0123abcd", "packages": {"torch": "2.13.0+cpu"}},
    }
    (run / RunLayout.SUMMARY.name).write_text(json.dumps(summary))
    return run


def test_publish_copies_the_report_its_figures_and_writes_a_cover_page(tmp_path: Path) -> None:
    run, dest = _run(tmp_path), tmp_path / "docs" / "study"
    (dest / RunLayout.FIGURES_DIR).mkdir(parents=True)
    (dest / RunLayout.figure("stale")).write_bytes(b"from an older run")
    result = CliRunner().invoke(
        app, ["publish", str(run), str(dest), "--note", "Wall time: 84 min", "--note", "cold"]
    )
    assert result.exit_code == 0, result.output
    assert (dest / "report.md").read_text() == (run / "report.md").read_text()
    assert (dest / "results.md").read_text() == "# results\n"
    assert sorted(p.name for p in (dest / RunLayout.FIGURES_DIR).iterdir()) == ["worth-t.png"]
    cover = (dest / "README.md").read_text()
    assert cover.startswith("# llmsynth run `20261202-120000-abcdef12`: experiment `study`")
    for expected in (
        "`0123abcd`",
        "`abcdef1234567890`",
        "torch 2.13.0+cpu",
        "cores",
        "- Wall time: 84 min",
        "- cold",
    ):
        assert expected in cover


def test_publish_needs_a_rendered_report(tmp_path: Path) -> None:
    run = _run(tmp_path)
    (run / RunLayout.REPORT_MD.name).unlink()
    from tasks.report import publish_report

    with pytest.raises(LlmsynthError, match="llmsynth report"):
        publish_report(run, tmp_path / "out", [])
