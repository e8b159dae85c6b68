"""Blocking queries wake for their own key only: a write to key A answers A's waiters, while the
waiters on key B stay parked (their requests do not return, the agent still counts them in
`consul.rpc.queries_blocking`) until B itself changes."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
import requests
from devserver import start_dev_server, wait_for

pytestmark = pytest.mark.integration
WAITERS = 200  # per key
DEADLINE = 120.0  # a loaded machine may be slow to park and answer 400 requests


def _parked(url: str) -> float:
    gauges = requests.get(f"{url}/v1/agent/metrics", timeout=10).json()["Gauges"]
    return next(g["Value"] for g in gauges if g["Name"] == "consul.rpc.queries_blocking")


async def _scenario(url: str) -> None:
    index = {}
    for key in ("A", "B"):
        r = requests.put(f"{url}/v1/kv/waiters/{key}", data=b"before", timeout=10)
        assert r.json() is True
        index[key] = requests.get(f"{url}/v1/kv/waiters/{key}", timeout=10).headers["X-Consul-Index"]
    timeout = aiohttp.ClientTimeout(total=DEADLINE * 3)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        async def wait(key: str) -> bytes:
            async with session.get(f"{url}/v1/kv/waiters/{key}?raw&index={index[key]}&wait=5m") as resp:
                assert resp.status == 200
                return await resp.read()

        a = [asyncio.create_task(wait("A")) for _ in range(WAITERS)]
        b = [asyncio.create_task(wait("B")) for _ in range(WAITERS)]
        await asyncio.to_thread(wait_for, lambda: _parked(url) >= 2 * WAITERS, DEADLINE, "all waiters parked")

        await asyncio.to_thread(requests.put, f"{url}/v1/kv/waiters/A", data=b"after", timeout=10)
        done, _ = await asyncio.wait(a, timeout=DEADLINE)
        assert len(done) == WAITERS, f"only {len(done)} of A's {WAITERS} waiters answered"
        assert {t.result() for t in a} == {b"after"}

        # A's answers are all in: B's waiters are still parked, none of them returned
        assert not any(t.done() for t in b), "a write to A answered waiters of B"
        assert await asyncio.to_thread(_parked, url) >= WAITERS

        await asyncio.to_thread(requests.put, f"{url}/v1/kv/waiters/B", data=b"after", timeout=10)
        done, _ = await asyncio.wait(b, timeout=DEADLINE)
        assert len(done) == WAITERS
        assert {t.result() for t in b} == {b"after"}


def test_a_write_wakes_only_the_waiters_of_its_key(tmp_path):
    server = start_dev_server(tmp_path)
    try:
        asyncio.run(_scenario(server.url))
        assert server.proc.poll() is None
    finally:
        server.stop()
