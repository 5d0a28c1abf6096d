"""The Debian packages some tests need (chromium, chromium-driver, postgresql, iproute2), in one
place, and root for the tests that build network namespaces.

A test calls `require_system("chromium")`: without the package it is skipped with one line that
names the install command, and with LLMSYNTH_REQUIRE_STACK=1 (CI) it fails instead, so CI can
never go green with those tests skipped. `make test` runs `python -m tests.system_deps --install`
first, which installs whatever is missing with apt when it runs as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import pytest

REQUIRE_ENV = "LLMSYNTH_REQUIRE_STACK"


@dataclass(frozen=True)
class SystemPackage:
    """A Debian package and the files (glob patterns) whose presence says it is installed."""

    package: str
    files: tuple[str, ...]

    def installed(self) -> bool:
        return all(glob.glob(pattern) for pattern in self.files)


PACKAGES: dict[str, SystemPackage] = {
    package.package: package
    for package in (
        SystemPackage("chromium", ("/usr/bin/chromium",)),
        SystemPackage("chromium-driver", ("/usr/bin/chromedriver",)),
        # Debian's server binaries live outside PATH, one directory per major version.
        SystemPackage(
            "postgresql",
            ("/usr/lib/postgresql/*/bin/initdb", "/usr/lib/postgresql/*/bin/pg_ctl"),
        ),
        # `ip netns` and veth pairs: the test hosts of tests/slow/hosts.py.
        SystemPackage("iproute2", ("/sbin/ip",)),
    )
}


def install_command(packages: list[str]) -> str:
    return f"sudo apt-get install {' '.join(packages)}"


def missing_message(names: tuple[str, ...], packages: Mapping[str, SystemPackage]) -> str | None:
    """One line naming the missing packages and how to install them, or None if all are here."""
    for name in names:
        if name not in packages:
            raise KeyError(f"unknown system package {name!r}; known: {sorted(packages)}")
    missing = [name for name in names if not packages[name].installed()]
    if not missing:
        return None
    return (
        f"needs Debian's {' and '.join(names)}: {install_command(missing)} "
        "(`make test` as root installs them)"
    )


def require_system(*names: str, packages: Mapping[str, SystemPackage] = PACKAGES) -> None:
    """Skip the calling test unless every named package is installed; fail under REQUIRE_ENV=1."""
    message = missing_message(names, packages)
    if message is not None:
        skip_or_fail(message)


def require_root(why: str) -> None:
    """Skip the calling test unless it runs as root (`why` says what needs it); fail under
    REQUIRE_ENV=1, as CI runs as root."""
    if os.geteuid() != 0:
        skip_or_fail(f"needs root: {why} (CI runs as root; so does `sudo make test`)")


def skip_or_fail(message: str) -> None:
    """One line: a skip, or under REQUIRE_ENV=1 a failure that says so."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} [{REQUIRE_ENV}=1 turns this skip into a failure]", pytrace=False)
    pytest.skip(message)


def install_missing(packages: Mapping[str, SystemPackage] = PACKAGES) -> int:
    """Install the missing packages with apt as root; otherwise say which tests will skip."""
    missing = [name for name, package in packages.items() if not package.installed()]
    if not missing:
        return 0
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(
            f"system packages missing ({', '.join(missing)}): the tests that need them will be "
            f"skipped; install them with: {install_command(missing)}"
        )
        return 0
    print(f"installing the system packages the tests need: {' '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        done = subprocess.run(command, env=env, check=False)
        if done.returncode != 0:
            print(f"{' '.join(command)} failed (exit {done.returncode})")
            return done.returncode
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["--install"]:
        sys.exit("usage: python -m tests.system_deps --install")
    sys.exit(install_missing())
