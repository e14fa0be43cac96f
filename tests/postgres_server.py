"""A throw-away PostgreSQL server for the tests, from the Debian packages.

The server lives in a temporary directory, listens on 127.0.0.1 (free port) and on a Unix socket
inside that directory, trusts every local connection and runs without fsync. As root (initdb
refuses to run as root) it runs as the ``postgres`` user via ``runuser`` and the directory is
chowned to that user.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

PG_ROOT = Path("/usr/lib/postgresql")
SKIP_ENV = "FACEKEY_SKIP_POSTGRES"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries, or the server did not start."""


def find_bin_dir(root: Path = PG_ROOT) -> Path | None:
    """The ``bin`` directory of the highest installed PostgreSQL version, or None."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    candidates = [path.parent for path in root.glob("*/bin/initdb")]
    candidates = [path for path in candidates if (path / "pg_ctl").exists()]
    return max(candidates, key=version) if candidates else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A running temporary server; :meth:`stop` removes everything."""

    bin_dir: Path
    base_dir: Path
    port: int

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.base_dir / "data"

    @classmethod
    def start(cls, bin_dir: Path) -> PostgresServer:
        """initdb a new cluster in a temporary directory and start it."""
        base_dir = Path(tempfile.mkdtemp(prefix="facekey-pg-"))
        server = cls(bin_dir=bin_dir, base_dir=base_dir, port=free_port())
        try:
            server._init_and_start()
        except BaseException:
            server.stop()
            raise
        return server

    def _command(self, tool: str, *args: str) -> list[str]:
        argv = [str(self.bin_dir / tool), *args]
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def _run(self, tool: str, *args: str) -> None:
        completed = subprocess.run(
            self._command(tool, *args), capture_output=True, text=True, check=False, timeout=120
        )
        if completed.returncode != 0:
            log = self.base_dir / "server.log"
            server_log = log.read_text(errors="replace") if log.exists() else ""
            raise PostgresUnavailable(
                f"{tool} failed ({completed.returncode}):\n{completed.stdout}\n"
                f"{completed.stderr}\n{server_log}"
            )

    def _init_and_start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.base_dir, user="postgres", group="postgres")
        self._run("initdb", "-D", str(self.data_dir), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        options = (
            f"-k {self.base_dir} -p {self.port} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self.base_dir / "server.log")
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", log, "-w", "-o", options, "start")

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3) to ``database``."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """Create a new empty database ``test_<random>`` and return its URL."""
        name = f"test_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server at once and delete its directory."""
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(
                self._command("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"),
                capture_output=True,
                check=False,
                timeout=60,
            )
        shutil.rmtree(self.base_dir, ignore_errors=True)
