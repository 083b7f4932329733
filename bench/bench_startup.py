"""Start-up figures: `make run` from a fresh clone to ready, the app alone, and idle memory.

Usage: .venv/bin/python bench/bench_startup.py [--skip-clone]

Prints seconds from command start to the first `/readyz` 200, the gateway's idle RSS, and
whether any Postgres process outlived the gateway. The fresh-clone figure includes creating
the virtualenv and installing every package, so it depends on the package cache.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from harness import clean_environment, free_port

REPO = Path(__file__).resolve().parents[1]


def startup_environment(**extra: str) -> dict[str, str]:
    """Ours dropped, and the virtualenv's and the caller's database and port too: ``make run``
    must find its own."""
    environment = clean_environment(drop=("VIRTUAL_ENV",))
    environment.pop("DATABASE_URL", None)
    environment.pop("PORT", None)
    environment.update(extra)
    return environment


def time_to_ready(
    command: list[str], cwd: Path, port: int, deadline: float, **extra_env: str
) -> tuple[float, int]:
    """Runs ``command``; returns (seconds to /readyz 200, RSS in bytes of the gateway)."""
    environment = startup_environment(PORT=str(port), **extra_env)
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while time.monotonic() - started < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise SystemExit(f"{command} exited with {process.returncode}")
            time.sleep(0.02)
        else:
            raise SystemExit(f"{command} not ready within {deadline} s")
        elapsed = time.monotonic() - started
        time.sleep(2)  # let it settle before reading idle memory
        return elapsed, gateway_rss(process.pid)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)


def gateway_rss(root_pid: int) -> int:
    root = psutil.Process(root_pid)
    for candidate in [root, *root.children(recursive=True)]:
        if "smsgateway" in " ".join(candidate.cmdline()) and candidate.name() != "make":
            return int(candidate.memory_info().rss)
    return 0


def leftover_postgres(data_dir: Path) -> int:
    return sum(
        1
        for process in psutil.process_iter(["name", "cmdline"])
        if process.info["name"] == "postgres"
        and str(data_dir) in " ".join(process.info["cmdline"] or [])
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-clone", action="store_true")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")

    with tempfile.TemporaryDirectory() as workspace:
        if not args.skip_clone:
            clone = Path(workspace) / "clone"
            subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
            seconds, rss = time_to_ready(["make", "run"], clone, free_port(), deadline=600)
            print(f"make run, fresh clone to /readyz 200 (venv, install, initdb): {seconds:.1f} s")
            print(f"  leftover postgres processes after Ctrl+C: {leftover_postgres(clone)}")
            seconds, rss = time_to_ready(["make", "run"], clone, free_port(), deadline=120)
            print(f"make run, second start (installed, data kept): {seconds:.2f} s")

        data_dir = Path(workspace) / "data"
        command = [sys.executable, "-m", "smsgateway", "serve", "--migrate"]
        data = {"SMSGW_DATA_DIR": str(data_dir)}
        cold, _ = time_to_ready(command, REPO, free_port(), deadline=120, **data)
        warm, rss = time_to_ready(command, REPO, free_port(), deadline=120, **data)
        print(f"app alone, new data dir (initdb + migrate) to /readyz 200: {cold:.2f} s")
        print(f"app alone, existing data dir to /readyz 200: {warm:.2f} s")
        print(f"idle RSS of the gateway process: {rss / 2**20:.1f} MiB")
        print(f"leftover postgres processes: {leftover_postgres(data_dir)}")


if __name__ == "__main__":
    main()
