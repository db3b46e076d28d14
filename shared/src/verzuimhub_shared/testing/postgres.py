"""A PostgreSQL server for tests and benchmarks, whatever state the machine is in.

1. ``VZH_TEST_PG_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``) answers: use it.
2. It does not, and a Debian cluster is installed but stopped: start it (``pg_ctlcluster``).
3. Still nothing: create a throw-away cluster with the installed ``initdb`` in a temporary
   directory on a free port, and remove it afterwards.

Every run then works in fresh databases of its own (:func:`create_database`), dropped at the
end, so no run depends on state left by an earlier one.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class PostgresServer:
    dsn: str
    cleanup_dir: Path | None = None
    _databases: list[str] = field(default_factory=list)

    def url_for(self, database: str, driver: str = "postgresql+asyncpg") -> str:
        parts = urlsplit(self.dsn)
        return urlunsplit((driver, parts.netloc, "/" + database, parts.query, ""))

    async def create_database(self, prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}".replace("-", "_")
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self._databases.append(name)
        return name

    async def drop_databases(self) -> None:
        if not self._databases:
            return
        conn = await asyncpg.connect(self.dsn)
        try:
            for name in self._databases:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        self._databases.clear()

    def stop(self) -> None:
        if self.cleanup_dir is None:
            return
        pg_ctl = _pg_binary("pg_ctl")
        data = self.cleanup_dir / "data"
        if pg_ctl:
            _as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"], check=False)
        shutil.rmtree(self.cleanup_dir, ignore_errors=True)


async def _answers(dsn: str, connect_timeout: float = 3.0) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=connect_timeout)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


def _pg_binary(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _as_postgres(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[bytes]:
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            raise RuntimeError("running as root and no runuser to become postgres")
        cmd = [runuser, "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=check, capture_output=True, timeout=120)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_debian_cluster() -> bool:
    lsclusters = shutil.which("pg_lsclusters")
    ctl = shutil.which("pg_ctlcluster")
    if not lsclusters or not ctl:
        return False
    out = subprocess.run([lsclusters, "-h"], capture_output=True, text=True).stdout
    started = False
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[3] != "online":
            result = subprocess.run(
                [ctl, "--skip-systemctl-redirect", parts[0], parts[1], "start"],
                capture_output=True,
                timeout=120,
            )
            started = started or result.returncode == 0
    return started


def _throwaway_cluster() -> PostgresServer:
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError(
            "PostgreSQL is not reachable and not installed: install the postgresql package "
            "or set VZH_TEST_PG_DSN"
        )
    base = Path(tempfile.mkdtemp(prefix="vzh-pg-"))
    os.chmod(base, 0o777)
    data = base / "data"
    port = _free_port()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    _as_postgres([initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"])
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    _as_postgres([pg_ctl, "-D", str(data), "-o", opts, "-w", "-l", str(base / "log"), "start"])
    return PostgresServer(f"postgresql://postgres@127.0.0.1:{port}/postgres", cleanup_dir=base)


async def ensure_server() -> PostgresServer:
    dsn = os.environ.get("VZH_TEST_PG_DSN", DEFAULT_DSN)
    if await _answers(dsn):
        return PostgresServer(dsn)
    if dsn == DEFAULT_DSN and _start_debian_cluster():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if await _answers(dsn):
                return PostgresServer(dsn)
            await asyncio.sleep(0.5)
    server = _throwaway_cluster()
    if not await _answers(server.dsn, connect_timeout=10):
        server.stop()
        raise RuntimeError("the throw-away PostgreSQL cluster did not start")
    return server
