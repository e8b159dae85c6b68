"""The store as the HTTP, DNS and agent layers see it: reads from `state`, writes via `apply`.

`LocalStore` applies commands directly (the `-dev` server and a single server). The Raft
store (`raft.py`) offers the same interface, replicating each command before applying it.
Commands are the typed ones of `commands.py` (a wire dict is accepted too); a store stamps the
command's time (`Now`) when the builder left it unset, and whatever crosses a process boundary
(Raft, a client agent's internal apply) goes as `to_wire()`.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from meshctl.server.commands import Command, with_now
from meshctl.server.state import State
from meshctl.server.watch import WatchHub

log = logging.getLogger(__name__)


class Store(Protocol):
    """What the endpoints need from a store, local or replicated."""

    state: State
    hub: WatchHub

    async def apply(self, command: Command | dict[str, Any]) -> Any: ...

    async def barrier(self) -> None: ...

    @property
    def known_leader(self) -> bool: ...

    @property
    def is_leader(self) -> bool: ...

    @property
    def last_contact_ms(self) -> int: ...

    def leader_address(self) -> str: ...

    def peers(self) -> list[str]: ...

    def leader_info(self) -> dict[str, Any] | None:
        """What the leader published of itself (node name, HTTP address); None when not known."""
        ...


class FixedLeader:
    """The leadership half of `Store` where the leader never moves: no elections, nothing to wait for.

    `leader` is the leader's address (the only peer); `is_leader` says whether it is this process.
    """

    leader: str
    is_leader: bool
    # the Raft log index of the configuration in force (Consul's raft/configuration Index): a
    # configuration that never changes is the one bootstrapped at index 1
    config_index = 1

    async def barrier(self) -> None:
        return None

    @property
    def known_leader(self) -> bool:
        return True

    @property
    def last_contact_ms(self) -> int:
        return 0

    def leader_address(self) -> str:
        return self.leader

    def peers(self) -> list[str]:
        return [self.leader]

    def leader_info(self) -> dict[str, Any] | None:
        return None  # requests are never forwarded to a fixed leader by address


class LocalStore(FixedLeader):
    """One in-process state machine, always its own leader."""

    is_leader = True

    def __init__(self, state: State, server_address: str = "127.0.0.1:8300") -> None:
        self.state = state
        self.hub = WatchHub()
        self.leader = server_address

    async def apply(self, command: Command | dict[str, Any]) -> Any:
        """Apply a command now; wake the blocking queries whose data it changed."""
        if isinstance(command, Command):
            command = with_now(command, time.time())
        else:
            command.setdefault("Now", time.time())
        try:
            return self.state.apply(command)
        finally:
            self.hub.notify(self.state.drain_changes())
