"""The tombstone reaper: checkpoints of the index, reaped once older than the TTL."""

from __future__ import annotations

import asyncio

from meshctl.server.reaper import TombstoneReaper
from meshctl.server.state import State
from meshctl.server.store import LocalStore


def test_tombstones_are_reaped_only_after_the_ttl():
    async def scenario() -> None:
        store = LocalStore(State())
        reaper = TombstoneReaper(store, ttl=900)
        await store.apply({"Op": "kv", "Verb": "set", "Key": "k", "Value": b"1"})
        await store.apply({"Op": "kv", "Verb": "delete", "Key": "k"})
        await reaper.reap_once(now=0.0)
        await store.apply({"Op": "kv", "Verb": "set", "Key": "j", "Value": b"1"})
        await store.apply({"Op": "kv", "Verb": "delete", "Key": "j"})
        await reaper.reap_once(now=600.0)
        assert set(store.state.tombstones) == {"k", "j"}
        await reaper.reap_once(now=900.0)  # the first checkpoint is now 15 minutes old
        assert set(store.state.tombstones) == {"j"}
        await reaper.reap_once(now=1500.0)
        assert store.state.tombstones == {}

    asyncio.run(scenario())
