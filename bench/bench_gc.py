"""The cyclic garbage collector's share of the CPU that sending and dispatching cost.

Usage: .venv/bin/python bench/bench_gc.py [--messages 3000] [--thresholds "700,10,10 10000,20,20"]
       [--database-url URL]

For each set of thresholds, in a fresh child process: the gateway app (dispatcher on) and the
simulator (20 ms) in one process, start-up frozen out of the collector's reach as ``serve``
does, 64 concurrent callers send ``--messages`` single-recipient messages through the app
(in-process, no sockets for the API), and the run ends when the outbox is empty. Prints the
process's CPU per message, the collector's CPU per message (timed by ``gc.callbacks``) and
its share, and the collections per generation. One process holds the API, the dispatcher,
the simulator and the callers, so the shares are of all of them. Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import REPO, benchmark_database, clean_environment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--thresholds", default="700,10,10 10000,20,20")
    parser.add_argument("--database-url")
    parser.add_argument("--child", nargs=2, metavar=("DSN", "THRESHOLDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        dsn, thresholds = args.child
        asyncio.run(_measure(dsn, tuple(int(n) for n in thresholds.split(",")), args.messages))
        return
    for thresholds in args.thresholds.split():
        with benchmark_database(args.database_url) as dsn:
            child = ["--messages", str(args.messages), "--child", dsn, thresholds]
            subprocess.run(
                [sys.executable, __file__, *child],
                env=clean_environment(SMSGW_LOG_LEVEL="WARNING"),
                cwd=REPO,
                check=True,
            )


async def _measure(dsn: str, thresholds: tuple[int, ...], messages: int) -> None:
    import asyncpg

    from smsgateway.app import create_app
    from smsgateway.services.api_keys import create_api_key
    from smsgateway.simulator import SimulatorConfig
    from smsgateway.simulator.config import FaultSettings
    from smsgateway.store.schema import upgrade_to_head
    from tests.support.asgi import lifespan_client
    from tests.support.settings import MIGRATIONS_DIR, make_settings
    from tests.support.sinch_simulator import running_simulator

    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, dsn)
    pool = await asyncpg.create_pool(dsn, min_size=0, max_size=1)
    key = (await create_api_key(pool, name="gc", rate_limit="1000000/second")).key
    await pool.close()
    spent = {"seconds": 0.0, "started": 0.0, "collections": [0, 0, 0]}

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            spent["started"] = time.process_time()
        else:
            spent["seconds"] += time.process_time() - spent["started"]
            spent["collections"][info["generation"]] += 1

    config = SimulatorConfig(faults=FaultSettings(latency_ms=20))
    async with running_simulator(config) as simulator:
        settings = make_settings(
            dsn,
            dispatcher="on",
            SINCH_BASE_URL=simulator.base_url,
            SINCH_SERVICE_PLAN_ID=simulator.plan_id,
            SINCH_API_TOKEN=simulator.token,
            SINCH_NUMBER="+12025550123",
            PUBLIC_BASE_URL="https://gateway.bench.invalid",
        )
        async with lifespan_client(create_app(settings)) as client:
            gc.collect()
            gc.freeze()
            gc.set_threshold(*thresholds)
            gc.callbacks.append(timed)
            callers = asyncio.Semaphore(64)

            async def send(number: int) -> None:
                async with callers:
                    answer = await client.post(
                        "/v1/messages",
                        json={"to": ["+12015550123"], "body": f"Your code is {number:06d}"},
                        headers={"X-API-Key": key},
                    )
                    assert answer.status_code == 202, answer.text

            started = time.process_time()
            await asyncio.gather(*(send(number) for number in range(messages)))
            connection = await asyncpg.connect(dsn)
            try:
                while await connection.fetchval("SELECT count(*) FROM outbox"):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            finally:
                await connection.close()
            cpu = time.process_time() - started
            gc.callbacks.remove(timed)
    collector = spent["seconds"]
    print(
        f"thresholds {thresholds}: CPU {cpu / messages * 1e3:.3f} ms/message, of which the "
        f"collector {collector / messages * 1e3:.3f} ms ({100 * collector / cpu:.1f} %); "
        f"collections by generation {spent['collections']}",
        flush=True,
    )


if __name__ == "__main__":
    main()
