"""Render an HTML file to PNG in headless Chromium (Debian's `chromium` package)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from llmsynth_core.errors import LlmsynthError

# Without the background-networking flags Chromium keeps dialling Google's hosts, which a
# closed network refuses many times a second.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str:
    """The path of a Chromium binary on PATH, or an error that says how to install one."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise LlmsynthError(
        "no Chromium found on PATH; install it (Debian: `apt-get install chromium`) to render "
        "the report to PNG"
    )


def html_to_png(
    page: Path, png: Path, width: int = 1280, height: int = 6000, timeout_s: float = 120.0
) -> Path:
    """Screenshot `page` at width x height CSS pixels into `png` (a tall window = whole page)."""
    browser = find_chromium()
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llmsynth-chromium-") as profile:
        command = [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={png.resolve()}",
            page.resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0 or not png.exists():
        raise LlmsynthError(
            f"Chromium could not render {page} (exit {done.returncode}): "
            f"{done.stderr.strip()[-500:]}"
        )
    return png
