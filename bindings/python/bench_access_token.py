"""Times `await client.access_token()` on the hot path (a fresh token in memory) from
Python: the figure for docs/PERFORMANCE.md (target under 30 microseconds).

    HOLDFAST_SERVER_BIN=target/release/holdfast-server \
        target/py-venv/bin/python bindings/python/bench_access_token.py

Starts holdfast-server, signs up, then runs 7 rounds of 20,000 calls in one asyncio loop
and prints each round's mean and the median round.
"""

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "tests"))
from conftest import Server  # noqa: E402

from holdfast import AuthClient, ClientConfig, KeySource  # noqa: E402

CALLS = 20_000
ROUNDS = 7


async def bench(server_url, folder):
    client = AuthClient(
        ClientConfig(
            server_url=server_url,
            storage_path=f"{folder}/bench.db",
            key_source=KeySource.PASSPHRASE(passphrase="bench"),
        )
    )
    await client.initialize()
    await client.sign_up(f"bench-{uuid.uuid4().hex[:8]}@example.com", "correct horse battery staple")
    token = await client.access_token()
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(CALLS):
            if await client.access_token() != token:
                raise SystemExit("the token changed during the benchmark")
        rounds.append((time.perf_counter() - started) / CALLS * 1e6)
    for i, mean in enumerate(rounds, 1):
        print(f"round {i}: {mean:.2f} us per call")
    print(f"access_token() from Python: median of {ROUNDS} rounds {statistics.median(rounds):.2f} us per call")


def main():
    server = Server()
    try:
        with tempfile.TemporaryDirectory() as folder:
            asyncio.run(bench(server.url, folder))
    finally:
        server.close()


if __name__ == "__main__":
    main()
