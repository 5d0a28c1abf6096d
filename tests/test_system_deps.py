"""The system-package gate: a missing package skips with the install command, and
LLMSYNTH_REQUIRE_STACK=1 turns that skip into a failure with the same line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.system_deps import PACKAGES, REQUIRE_ENV, SystemPackage, require_root, require_system


@pytest.fixture
def packages(tmp_path: Path) -> dict[str, SystemPackage]:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "present").touch()
    return {
        "present-pkg": SystemPackage("present-pkg", (str(tmp_path / "bin" / "pres*"),)),
        "absent-pkg": SystemPackage("absent-pkg", (str(tmp_path / "bin" / "absent"),)),
    }


def test_an_installed_package_lets_the_test_run(
    packages: dict[str, SystemPackage], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REQUIRE_ENV, "1")
    require_system("present-pkg", packages=packages)


def test_a_missing_package_skips_with_the_install_command(
    packages: dict[str, SystemPackage], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_system("present-pkg", "absent-pkg", packages=packages)
    message = str(skipped.value)
    assert "needs Debian's present-pkg and absent-pkg" in message
    # Only what is missing is named in the command.
    assert message.count("sudo apt-get install absent-pkg ") == 1
    assert "install present-pkg" not in message


def test_require_stack_turns_the_skip_into_a_failure(
    packages: dict[str, SystemPackage], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception) as failed:
        require_system("absent-pkg", packages=packages)
    assert "sudo apt-get install absent-pkg" in str(failed.value)
    assert REQUIRE_ENV in str(failed.value)


def test_any_other_value_still_skips(
    packages: dict[str, SystemPackage], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REQUIRE_ENV, "0")
    with pytest.raises(pytest.skip.Exception):
        require_system("absent-pkg", packages=packages)


def test_an_unknown_name_is_an_error_not_a_skip() -> None:
    with pytest.raises(
        KeyError, match="known: \\['chromium', 'chromium-driver', 'iproute2', 'postgresql'\\]"
    ):
        require_system("chromium-browser", packages=PACKAGES)


def test_require_root_skips_or_fails_as_the_packages_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs root: ip netns"):
        require_root("ip netns")
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=REQUIRE_ENV):
        require_root("ip netns")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    require_root("ip netns")
