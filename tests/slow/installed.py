"""llmsynth as a worker host gets it: the project's wheel installed in a virtual environment
from which the checkout is not importable.

The wheel is built the way the README says (`pip wheel --no-deps -w dist .`), from a copy of
the package sources, so that the build leaves nothing in the checkout. The venv holds the wheel
itself (`pip install --no-deps`); its third-party dependencies (torch, Prefect, ...) come from
the test's own environment through a .pth file listing that environment's site-packages, which
saves installing them again and adds none of the checkout: a plain path line in a .pth puts
that one directory on sys.path, and the .pth files inside it (the editable install's hook
among them) are not processed.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "llmsynth_core", "tasks", "flows")


@dataclass(frozen=True)
class InstalledEnv:
    root: Path
    wheel: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    @property
    def site_packages(self) -> Path:
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        return self.root / "lib" / version / "site-packages"

    def where_is(self, module: str) -> str:
        """The file `module` is imported from by this environment's python, from an empty
        directory and with no PYTHONPATH, as a worker host starts it."""
        done = subprocess.run(
            [str(self.python), "-c", f"import {module}; print({module}.__file__)"],
            cwd=self.root,
            env={"PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(self.root)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"import {module} failed in {self.root}:\n{done.stderr}")
        return done.stdout.strip()

    def sys_path(self) -> list[str]:
        done = subprocess.run(
            [str(self.python), "-c", "import sys; print('\\n'.join(sys.path))"],
            cwd=self.root,
            env={"PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(self.root)},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.splitlines()


def build_wheel(out: Path) -> Path:
    """`pip wheel --no-deps -w out .` on a copy of the package sources; the wheel's path."""
    source = out / "source"
    source.mkdir(parents=True)
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    dist = out / "dist"
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    # The build backend (setuptools) from this environment: no index needed.
    command += ["--no-build-isolation", "-w", str(dist), str(source)]
    _run(command)
    (wheel,) = dist.glob("llmsynth-*.whl")
    return wheel


def installed_env(root: Path, wheel: Path) -> InstalledEnv:
    """A venv at `root` with `wheel` installed and this environment's third-party packages."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
    env = InstalledEnv(root, wheel)
    # This environment may sit inside the checkout (.venv/): its site-packages holds
    # third-party packages and llmsynth's editable-install hook, never llmsynth's sources.
    (env.site_packages / "llmsynth-test-dependencies.pth").write_text(
        "".join(f"{path}\n" for path in site.getsitepackages())
    )
    _run([sys.executable, "-m", "pip", "--python", str(env.python), "install", "--quiet",
          "--no-deps", "--no-index", str(wheel)])  # fmt: skip
    return env


def _run(command: list[str]) -> None:
    # Without PYTHONPATH: a checkout on it (as a developer may have it) holds llmsynth's
    # egg-info, and pip would take llmsynth as installed there and skip the wheel.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, env=env
    )
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
