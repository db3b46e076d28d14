"""`verzuimhub up`: starts every service, becomes ready, stops cleanly, resumes its data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from verzuimhub.testing import registratie
from verzuimhub_shared import devkeys

pytestmark = pytest.mark.slow


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start(data_dir: Path, ports: list[int]) -> subprocess.Popen[str]:
    names = ["ingest", "melding", "swv-aggregate", "mock-duo"]
    args = [sys.executable, "-m", "verzuimhub", "up", "--data-dir", str(data_dir)]
    for name, port in zip(names, ports, strict=True):
        args += [f"--{name}-port", str(port)]
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy()
    )


def _wait_for_ready_line(proc: subprocess.Popen[str], timeout: float = 90) -> str:
    assert proc.stdout is not None
    output = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        output.append(line)
        if line.startswith("Ready."):
            return "".join(output)
    proc.kill()
    proc.wait()
    _close(proc)
    raise AssertionError("verzuimhub up did not become ready:\n" + "".join(output))


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_up_starts_ready_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "hub"
    ports = _free_ports(4)
    proc = _start(data_dir, ports)
    output = _wait_for_ready_line(proc)
    children = _children_of(proc.pid)
    assert len(children) == 4
    for port in ports:
        ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5)
        assert ready.status_code == 200, ready.text
    assert "school " in output
    assert "admin:" in output
    admin = devkeys.mint("admin", data_dir / "keys")
    cursors = httpx.get(
        f"http://127.0.0.1:{ports[1]}/v1/feed-cursors",
        headers={"Authorization": f"Bearer {admin}"},
        timeout=5,
    )
    assert cursors.status_code == 200
    school = {
        "Authorization": f"Bearer {devkeys.mint('school', data_dir / 'keys', brins=['99AA'])}"
    }
    created = httpx.post(
        f"http://127.0.0.1:{ports[0]}/v1/registraties",
        json=registratie(),
        headers=school,
        timeout=10,
    )
    assert created.status_code == 201, created.text

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    _close(proc)
    for child in children:
        assert not Path(f"/proc/{child}").exists() or _is_zombie(child)
    for name in ("ingest", "melding", "swv-aggregate"):
        assert (data_dir / f"{name}.db").exists()

    # A second `up` on the same data dir resumes: same keys, same databases.
    proc = _start(data_dir, ports)
    _wait_for_ready_line(proc)
    again = httpx.get(
        f"http://127.0.0.1:{ports[1]}/v1/feed-cursors",
        headers={"Authorization": f"Bearer {admin}"},
        timeout=5,
    )
    assert again.status_code == 200
    kept = httpx.get(
        f"http://127.0.0.1:{ports[0]}/v1/scholen/99AA/registraties/reg-1",
        headers=school,
        timeout=10,
    )
    assert kept.status_code == 200  # the data survived the restart
    assert kept.json()["registratieId"] == created.json()["registratieId"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    _close(proc)


def _close(proc: subprocess.Popen[str]) -> None:
    if proc.stdout is not None:
        proc.stdout.read()
        proc.stdout.close()


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True
