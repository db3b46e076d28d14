"""Start the whole hub as separate processes and stop it again: what ``verzuimhub up`` and
``verzuimhub demo`` share.

``running_hub`` migrates the databases, starts every service as ``python -m verzuimhub serve
<name>`` with the settings it is given, waits until every ``/health/ready`` answers 200, yields
a :class:`Hub` and stops the processes (SIGTERM, then SIGKILL after a grace period) however the
block ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from verzuimhub.services import DATABASE_SERVICES, service

UP_ORDER = ("mock-duo", "ingest", "melding", "swv-aggregate")


class HubNotReady(RuntimeError):
    """A service exited or did not answer /health/ready in time."""

    def __init__(self, name: str, log_file: Path | None) -> None:
        where = f"; see {log_file}" if log_file else ""
        super().__init__(f"{name} did not become ready{where}")
        self.name = name
        self.log_file = log_file


@dataclass
class Hub:
    """A running hub: its processes and their base URLs."""

    procs: dict[str, subprocess.Popen[bytes]]
    urls: dict[str, str]
    log_dir: Path | None

    def exited(self) -> str | None:
        """The name of a service whose process has exited, if any."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                return name
        return None


def migrate_all(envs: Mapping[str, Mapping[str, str]], report: Callable[[str], None]) -> None:
    """Alembic upgrade to head of every service database named in ``envs``."""
    from verzuimhub_shared.migrations import upgrade_blocking

    for name in DATABASE_SERVICES:
        entry = service(name)
        assert entry.migrations_package
        url = envs[name][f"{entry.env_prefix}DATABASE_URL"]
        upgrade_blocking(entry.migrations_package, url)
        report(name)


def wait_ready(
    procs: Mapping[str, subprocess.Popen[bytes]], urls: Mapping[str, str], timeout: float
) -> str | None:
    """None when every service answers /health/ready; else the name of one that failed."""
    deadline = time.monotonic() + timeout
    pending = dict(urls)
    with httpx.Client(timeout=2.0) as client:
        while pending:
            for name, base in list(pending.items()):
                if procs[name].poll() is not None:
                    return name
                try:
                    if client.get(base + "/health/ready").status_code == 200:
                        del pending[name]
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                return next(iter(pending))
            time.sleep(0.2)
    return None


def stop_all(procs: Mapping[str, subprocess.Popen[bytes]], grace: float = 15.0) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_services(
    envs: Mapping[str, Mapping[str, str]], log_dir: Path | None
) -> dict[str, subprocess.Popen[bytes]]:
    """One ``verzuimhub serve`` process per service, in ``UP_ORDER``; output to ``log_dir``."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in UP_ORDER:
            if name not in envs:
                continue
            if log_dir is not None:
                with (log_dir / f"{name}.log").open("ab") as log_file:
                    procs[name] = _spawn(name, envs[name], log_file.fileno())
            else:
                procs[name] = _spawn(name, envs[name], subprocess.DEVNULL)
    except BaseException:
        stop_all(procs)
        raise
    return procs


def _spawn(name: str, env: Mapping[str, str], output: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "verzuimhub", "serve", name],
        env={**os.environ, **env},
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches the parent; it stops the children in order
    )


@contextmanager
def running_hub(
    envs: Mapping[str, Mapping[str, str]],
    urls: Mapping[str, str],
    *,
    log_dir: Path | None,
    timeout: float = 60.0,
    migrate: bool = True,
    on_migrated: Callable[[str], None] = lambda name: None,
) -> Iterator[Hub]:
    """Migrate, start every service of ``envs``, wait until ready; stop them on exit.

    Raises :class:`HubNotReady` (after stopping what was started) when a service exits or is
    not ready within ``timeout`` seconds.
    """
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
    if migrate:
        migrate_all(envs, on_migrated)
    procs = start_services(envs, log_dir)
    try:
        failed = wait_ready(procs, urls, timeout)
        if failed:
            raise HubNotReady(failed, log_dir / f"{failed}.log" if log_dir else None)
        yield Hub(procs, dict(urls), log_dir)
    finally:
        stop_all(procs)
