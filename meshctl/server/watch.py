"""Who waits on what: blocking queries park an asyncio future here until their data changes.

A waiter registers under exact watch keys (tables, one KV key, one service...) and/or KV
prefixes. `notify()` gets the set of keys a write changed and wakes only the waiters
registered on them; a changed KV key also wakes the waiters on each of its prefixes, found
by looking up every prefix of the key (cost: the key's length, not the number of waiters).
No thread per waiter and no polling: an idle waiter is one future in a few sets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from meshctl.server import watchkeys as wk


class WatchHub:
    """Registry of parked blocking queries."""

    def __init__(self) -> None:
        self._by_key: dict[str, set[asyncio.Future[None]]] = {}
        self._by_prefix: dict[str, set[asyncio.Future[None]]] = {}

    def __len__(self) -> int:
        return sum(len(s) for s in self._by_key.values()) + sum(len(s) for s in self._by_prefix.values())

    async def wait(self, keys: Iterable[str], prefixes: Iterable[str], timeout: float) -> bool:
        """Park until one of the keys/prefixes changes (True) or the timeout passes (False)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        keys, prefixes = list(keys), list(prefixes)
        for key in keys:
            self._by_key.setdefault(key, set()).add(fut)
        for prefix in prefixes:
            self._by_prefix.setdefault(prefix, set()).add(fut)
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._forget(fut, keys, self._by_key)
            self._forget(fut, prefixes, self._by_prefix)

    @staticmethod
    def _forget(fut: asyncio.Future[None], names: list[str], table: dict[str, set[asyncio.Future[None]]]) -> None:
        for name in names:
            waiters = table.get(name)
            if waiters is not None:
                waiters.discard(fut)
                if not waiters:
                    del table[name]

    def notify(self, changed: Iterable[str]) -> None:
        """Wake the waiters of every changed key (and of every prefix of changed KV keys)."""
        for key in changed:
            if key == wk.EVERYTHING:
                for table in (self._by_key, self._by_prefix):
                    for waiters in table.values():
                        _wake(waiters)
                continue
            _wake(self._by_key.get(key, ()))
            if key.startswith(wk.KV_PREFIX) and self._by_prefix:
                kv_key = key[len(wk.KV_PREFIX):]
                for end in range(len(kv_key) + 1):
                    prefix_waiters = self._by_prefix.get(kv_key[:end])
                    if prefix_waiters:
                        _wake(prefix_waiters)


def _wake(waiters: Iterable[asyncio.Future[None]]) -> None:
    for fut in waiters:
        if not fut.done():
            fut.set_result(None)
