"""The HTML report renders in headless Chromium (Debian's `chromium`) to a non-blank PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llmsynth_core.run_layout import RunLayout
from tasks.report import write_report
from tasks.run_dir import RunDir
from tasks.screenshot import html_to_png
from tests.system_deps import require_system


@pytest.mark.slow
def test_report_html_renders_to_png(tmp_path: Path) -> None:
    require_system("chromium")
    rows = [("real", 0.9), ("zero_shot", 0.7), ("few_shot", 0.8)]
    run = RunDir(str(tmp_path))
    results = RunLayout.RESULTS.schema
    assert results is not None
    run.write_frame(
        RunLayout.RESULTS,
        pd.DataFrame(
            [
                {
                    **dict.fromkeys(results.names, 0.0),
                    "task": "t",
                    "subjectivity": 1,
                    "model": "m",
                    "source": s,
                    "n_seeds": 1,
                    "n_replicates": 1,
                    "n_train": 10,
                    "n_test": 10,
                    "macro_f1": f,
                    "accuracy": f,
                }
                for s, f in rows
            ]
        ),
    )
    run.write_frame(
        RunLayout.CURVES,
        pd.DataFrame(
            [
                {
                    "task": "t",
                    "model": "m",
                    "source": s,
                    "seed": 1,
                    "replicate": 0,
                    "epoch": e,
                    "train_loss": 1.0 / e,
                    "validation_macro_f1": f * e / 3,
                    "test_macro_f1": f * e / 3,
                    "seconds": 1.0,
                }
                for s, f in rows
                for e in (1, 2, 3)
            ]
        ),
    )
    _, page = write_report(tmp_path)
    png = html_to_png(page, tmp_path / "report.png", width=1000, height=1600)

    import matplotlib.image

    pixels = matplotlib.image.imread(png)
    assert pixels.shape[:2] == (1600, 1000)
    # Text, tables and the curves figure: far from a blank page.
    dark = (pixels[..., :3].mean(axis=2) < 0.5).mean()
    assert 0.005 < dark < 0.5
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 50
