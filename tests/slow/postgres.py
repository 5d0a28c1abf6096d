"""Debian's PostgreSQL in a temporary directory: the stack tests' Prefect database.

initdb refuses to run as root and CI runs as root, so there every server command runs as the
`postgres` user (runuser) in a directory it owns. The server listens on 127.0.0.1 (or a test
host's address, its commands run on that host) on a free port with its socket directory
inside the temporary directory, so the system's own cluster, if any, is never touched.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.slow.stack import free_port
from tests.system_deps import require_system

OWNER = "postgres"  # the Debian package's system user; also the cluster's superuser name


def _server_bin(name: str) -> str:
    """`name` from the newest PostgreSQL under /usr/lib/postgresql (Debian keeps it off PATH)."""
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda path: int(Path(path).parts[-3]),
    )
    if not found:
        raise AssertionError(f"no /usr/lib/postgresql/*/bin/{name}")
    return found[-1]


@dataclass
class Postgres:
    root: Path
    port: int = field(default_factory=free_port)
    database: str = "prefect"
    started: bool = False
    host: str = "127.0.0.1"
    # How a command runs where the server runs (a test host's network namespace); as is here.
    on_host: Callable[[list[str]], list[str]] = list

    @property
    def url(self) -> str:
        # Trust auth: the cluster exists only for this test session, on a test network.
        return f"postgresql+asyncpg://{OWNER}@{self.host}:{self.port}/{self.database}"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def _run(self, name: str, *args: str, network: bool = True) -> None:
        command = [_server_bin(name), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", OWNER, "--", *command]
        if network:
            command = self.on_host(command)
        done = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise AssertionError(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
                f"--- server log ---\n{log}"
            )

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, OWNER, OWNER)
        # No fsync anywhere: a test cluster that a crash may lose is fine, a slow one is not.
        self._run("initdb", "-D", str(self.data), "-U", OWNER, "--auth=trust", "--no-sync")
        if self.host != "127.0.0.1":
            # initdb lets in loopback only; on a test host its clients come from its subnet.
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.write("host all all samenet trust\n")
        options = (
            f"-h {self.host} -p {self.port} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self.started = True  # from here on stop() must run, even if start does not finish
        where = ("-D", str(self.data), "-l", str(self.log), "-o", options)
        self._run("pg_ctl", *where, "-w", "-t", "120", "start")
        self._run("createdb", "-h", self.host, "-p", str(self.port), "-U", OWNER, self.database)

    def stop(self) -> None:
        if self.started and (self.data / "postmaster.pid").exists():
            # pg_ctl stop signals the server by its pid file: no network needed, so it works
            # even after the test host's namespace is gone.
            stop = ("-D", str(self.data), "-m", "fast", "-w", "stop")
            self._run("pg_ctl", *stop, network=False)
        self.started = False

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@contextlib.contextmanager
def running_postgres(
    host: str = "127.0.0.1", on_host: Callable[[list[str]], list[str]] = list
) -> Iterator[Postgres]:
    """A started cluster with an empty database; stopped and deleted on exit, also on failure.

    `host` and `on_host`: the address it listens on and how to run a command there (a test
    host's `Host.command`); loopback here by default.
    """
    require_system("postgresql")
    # Not under pytest's tmp_path: that sits in a root-only directory the postgres user
    # cannot enter.
    root = Path(tempfile.mkdtemp(prefix="llmsynth-pg-"))
    postgres = Postgres(root, host=host, on_host=on_host)
    try:
        postgres.start()
        yield postgres
    finally:
        try:
            postgres.stop()
        finally:
            shutil.rmtree(postgres.root, ignore_errors=True)
