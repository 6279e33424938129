"""The real app in a child process on a loopback port, for the benches that time it as users do.

A bench's data directory is a scratch folder (its own database, accounts and transcripts) that
links to the converted model, serving engines and caches of the default data directory when
that has been provisioned, so a bench does not convert them again.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tutor.config import default_data_dir
from tutor.ui.access import SESSION_COOKIE

ROOT = Path(__file__).resolve().parent.parent
SHARED = ("models", "engines", "cache")  # what provisioning writes besides the database


def scratch_data_dir(scratch: Path, source: Path | None = None) -> Path:
    """A fresh data directory in `scratch` sharing the provisioned files of `source`."""
    source = source or default_data_dir()
    data_dir = scratch / "data"
    data_dir.mkdir()
    for name in SHARED:
        if (source / name).is_dir():
            (data_dir / name).symlink_to(source / name, target_is_directory=True)
    return data_dir


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_app(data_dir: Path, *options: str, ready_within: float = 600):
    """`python app.py` on a free loopback port: yields (base URL, process, seconds until it
    answered its login page), and stops it afterwards."""
    port = free_port()
    log = open(data_dir / "app.log", "w")
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--data-dir", str(data_dir), "--host", "127.0.0.1",
         "--port", str(port), "--no-demo", *options],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        ready = wait_until_serving(url, process, started + ready_within) - started
        yield url, process, ready
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def wait_until_serving(url: str, process: subprocess.Popen, deadline: float) -> float:
    """Poll the login page; the time it first answered."""
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with {process.returncode}: see its app.log")
        try:
            if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                return time.perf_counter()
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the app did not serve in time")


def add_learners(data_dir: Path, count: int, password: str) -> list[str]:
    """`count` learner accounts in the bench's database (before the app starts)."""
    from tutor.accounts import AccountService
    from tutor.config import Settings
    from tutor.storage.store import Store

    accounts = AccountService(Store(Settings(data_dir).database_path))
    names = [f"learner{i:02d}" for i in range(count)]
    for name in names:
        accounts.add_user(None, name, "learner", password)
    return names


def session_cookie(url: str, name: str, password: str) -> str:
    """Log in through the login form, as a browser does; the session cookie's value."""
    with httpx.Client(base_url=url, timeout=30) as client:
        form = re.search(r'name=csrf value="([^"]*)"', client.get("/login").text).group(1)  # the form's token
        response = client.post("/login", data={"name": name, "password": password, "csrf": form})
        if response.status_code != 303 or SESSION_COOKIE not in client.cookies:
            raise RuntimeError(f"login as {name} failed: {response.status_code}")
        return client.cookies[SESSION_COOKIE]


def family(pid: int) -> list[int]:
    """A process and its descendants (the serving engine runs in a child of the app's)."""
    found, index = [pid], 0
    while index < len(found):
        for task in Path(f"/proc/{found[index]}/task").glob("*/children"):
            found += [int(child) for child in task.read_text().split()]
        index += 1
    return found


def resident_mib(pid: int) -> tuple[float, float]:
    """(resident now, peak resident) of a process and its descendants, in MiB (Linux /proc): the
    peak is the sum of each one's own peak, which their peak together does not exceed."""
    now = peak = 0.0
    for member in family(pid):
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{member}/status").read_text().splitlines()
                      if ":" in line)
        now += int(fields["VmRSS"].split()[0]) / 1024
        peak += int(fields["VmHWM"].split()[0]) / 1024
    return now, peak


def cpu_seconds(pid: int) -> float:
    """CPU time a process and its descendants have used so far, all their threads, user and
    system (Linux /proc)."""
    total = 0
    for member in family(pid):
        fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")
