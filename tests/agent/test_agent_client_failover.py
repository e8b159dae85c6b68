"""Client agents fail over: SIGKILL the server a client agent uses, the client keeps working.

A 3-server cluster and two client agents: client1 joined to all three servers (the leader
first, so that is the one it uses), client2 joined to the leader only (it must learn the
other two through discovery). The leader is SIGKILLed; both clients' APIs must keep serving
KV, agent registrations and catalog reads from the survivors, their nodes must stay passing
(their heartbeats move with them), and /v1/agent/members on a client lists the whole pool.
"""

from __future__ import annotations

import asyncio
import base64
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import pytest
import requests
from agent_procs import start_client_agent
from aiohttp import web
from cluster.conftest import Cluster
from cluster.conftest import Server as ClusterServer
from devserver import DevServer, free_port, start_dev_server, wait_for

from meshctl.server.agent.heartbeat import HeartbeatMonitor
from meshctl.server.agent.local import LocalAgent
from meshctl.server.agent.servers import NoServers, Server, ServerPool
from meshctl.server.state import State
from meshctl.server.store import LocalStore

HEARTBEAT_FAILURE_TIMEOUT = 6.0  # meshctl.server.agent.heartbeat.FAILURE_TIMEOUT


def serf_status(server: ClusterServer, node: str) -> str | None:
    """The node's serfHealth status as this server holds it (?stale: no leader needed)."""
    checks = server.get(f"/v1/health/node/{node}?stale", timeout=2).json()
    return next((c["Status"] for c in checks if c["CheckID"] == "serfHealth"), None)


def members(agent: DevServer) -> dict[str, dict]:
    return {m["Name"]: m for m in requests.get(f"{agent.url}/v1/agent/members", timeout=10).json()}


class SerfSampler(threading.Thread):
    """Polls the nodes' serfHealth on the given servers; anything but passing is recorded."""

    def __init__(self, servers: list[ClusterServer], nodes: list[str]) -> None:
        super().__init__(daemon=True)
        self.servers, self.nodes = servers, nodes
        self.bad: list[tuple[float, str, str, str | None]] = []
        self.samples = 0
        self.halt = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self.halt.wait(0.2):
            for server in self.servers:
                for node in self.nodes:
                    try:
                        status = serf_status(server, node)
                    except requests.RequestException:
                        continue
                    self.samples += 1
                    if status != "passing":
                        self.bad.append((round(time.monotonic() - start, 2), server.name, node, status))


@pytest.fixture
def cluster(tmp_path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, 3)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.mark.integration
def test_client_agents_fail_over_when_their_server_is_killed(cluster: Cluster, tmp_path) -> None:
    leader = cluster.leader()
    survivors = [s for s in cluster.servers if s is not leader]
    serf = {s.name: f"127.0.0.1:{s.serf_port}" for s in cluster.servers}
    retry_join = [a for s in survivors for a in ("-retry-join", serf[s.name])]
    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(start_client_agent, tmp_path, serf[leader.name], *retry_join, "-ae-interval", "1s",
                          node="client1")
        two = pool.submit(start_client_agent, tmp_path, serf[leader.name], node="client2")
        client1, client2 = one.result(), two.result()
    clients = [client1, client2]
    try:
        # both use the leader (the first join address that answers); client2 learned all three servers
        for client in clients:
            assert f"joined server http://127.0.0.1:{leader.http_port}" in client.log()
        stats = requests.get(f"{client2.url}/v1/agent/self", timeout=5).json()["Stats"]["consul"]
        assert stats["known_servers"] == "3" and stats["server"] == "false"

        # a client's members: the whole LAN pool, in a server's shape
        everyone = {s.name for s in cluster.servers} | {"client1", "client2"}
        wait_for(lambda: set(members(client1)) == everyone, 15, "client1 lists every member", client1.log)
        view = members(client1)
        assert all(view[s.name]["Tags"]["role"] == "consul" and view[s.name]["Status"] == 1
                   for s in cluster.servers)
        assert view["client1"]["Tags"]["role"] == "node" and view["client1"]["Status"] == 1
        from_server = {m["Name"]: m for m in leader.get("/v1/agent/members").json()}
        assert set(view) == set(from_server) and set(view["client1"]) == set(from_server["client1"])

        requests.put(f"{client1.url}/v1/agent/service/register", timeout=10,
                     json={"Name": "web", "Port": 80, "Check": {"TTL": "60s", "Status": "passing"}}).raise_for_status()
        wait_for(lambda: all(serf_status(s, c) == "passing" for s in survivors for c in ("client1", "client2")),
                 15, "clients passing")

        sampler = SerfSampler(survivors, ["client1", "client2"])
        sampler.start()
        leader.signal(signal.SIGKILL)
        killed = time.monotonic()

        # KV through the client: the write waits out the election on the survivor it fails over to
        def put() -> bool:
            r = requests.put(f"{client1.url}/v1/kv/failover/key", data=b"after-kill", timeout=15)
            return r.status_code == 200 and r.json() is True

        wait_for(put, 20, "a KV write through client1 after the kill", client1.log)
        for client in clients:
            entry = requests.get(f"{client.url}/v1/kv/failover/key", timeout=15).json()[0]
            assert base64.b64decode(entry["Value"]) == b"after-kill"
            assert requests.get(f"{client.url}/v1/kv/failover/key?raw", timeout=15).content == b"after-kill"

        # an agent registration reaches the catalog, read back through the client
        requests.put(f"{client1.url}/v1/agent/service/register", timeout=15,
                     json={"Name": "after", "Port": 81, "Check": {"TTL": "60s", "Status": "passing"}}
                     ).raise_for_status()
        entries = requests.get(f"{client1.url}/v1/catalog/service/after", timeout=15).json()
        assert [(e["Node"], e["ServicePort"]) for e in entries] == [("client1", 81)]
        healthy = requests.get(f"{client2.url}/v1/health/service/after?passing", timeout=15).json()
        assert [e["Node"]["Node"] for e in healthy] == ["client1"]
        nodes = {n["Node"] for n in requests.get(f"{client2.url}/v1/catalog/nodes", timeout=15).json()}
        assert nodes == everyone

        # anti-entropy runs against the new server too: a deregistered service comes back
        survivors[0].put("/v1/catalog/deregister", json={"Node": "client1", "ServiceID": "web"}).raise_for_status()
        wait_for(lambda: requests.get(f"{client1.url}/v1/catalog/service/web", timeout=5).json(), 10,
                 "web restored by anti-entropy", client1.log)

        # the clients' nodes never turned critical: their heartbeats moved to a survivor
        time.sleep(max(0.0, killed + HEARTBEAT_FAILURE_TIMEOUT + 2.5 - time.monotonic()))
        sampler.halt.set()
        sampler.join(5)
        assert sampler.samples > 20 and sampler.bad == [], sampler.bad
        for client in clients:
            assert "now using server" in client.log()

        # members from a client after the kill: still everyone; the dead server seen as failed
        wait_for(lambda: members(client1)[leader.name]["Status"] == 4, 15, "the killed server failed in members")
        view = members(client1)
        assert set(view) == everyone
        assert all(view[s.name]["Status"] == 1 for s in survivors) and view["client1"]["Status"] == 1
    finally:
        for client in clients:
            client.stop()


@pytest.mark.integration
def test_client_members_fall_back_to_itself_without_servers(tmp_path) -> None:
    server = start_dev_server(tmp_path, node="solo")
    client = start_client_agent(tmp_path, server.addr, node="lonely")
    try:
        wait_for(lambda: set(members(client)) == {"solo", "lonely"}, 15, "the server's member list", client.log)
        server.stop(signal.SIGKILL)
        view = requests.get(f"{client.url}/v1/agent/members", timeout=30).json()
        assert [m["Name"] for m in view] == ["lonely"] and view[0]["Status"] == 1
        r = requests.put(f"{client.url}/v1/kv/nowhere", data=b"x", timeout=30)
        assert r.status_code == 500 and "No known Consul servers" in r.text
    finally:
        client.stop()
        server.stop()


# ---------------------------------------------------------------------- in-process: what is retried where


class Counting:
    """A tiny HTTP server on 127.0.0.1 that answers 200 and counts what it got."""

    def __init__(self) -> None:
        self.hits: list[str] = []

    async def start(self) -> str:
        async def any_request(request: web.Request) -> web.Response:
            self.hits.append(f"{request.method} {request.path}")
            return web.json_response(True)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", any_request)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        return f"127.0.0.1:{port}"


async def dropping_server() -> tuple[asyncio.Server, str]:
    """Reads a request, then closes the connection unanswered: did the write happen? Nobody knows."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"127.0.0.1:{server.sockets[0].getsockname()[1]}"


def test_writes_move_on_only_when_unsent_reads_always() -> None:
    async def run() -> None:
        good = Counting()
        good_addr = await good.start()
        dropper, drop_addr = await dropping_server()
        refused = f"127.0.0.1:{free_port()}"
        async with aiohttp.ClientSession() as session:
            pool = ServerPool(session, [])
            pool.servers = [Server(refused), Server(good_addr)]
            pool.current = pool.servers[0]
            # refused: nothing was sent, so even a write goes on; the server that answered is kept
            reply = await pool.call("PUT", "/v1/kv/a", body=b"1")
            assert reply.status == 200 and reply.json() is True
            assert pool.current.http == good_addr and good.hits == ["PUT /v1/kv/a"]
            assert [s.http for s in pool.ordered()] == [good_addr, refused]
            # a write the server may have applied is not sent again
            pool.servers = [Server(drop_addr), Server(good_addr)]
            pool.current = pool.servers[0]
            with pytest.raises(NoServers) as err:
                await pool.call("PUT", "/v1/kv/b", body=b"2")
            assert err.value.unsent is False and good.hits == ["PUT /v1/kv/a"]
            assert pool.current.http == drop_addr
            # a read is, and so is a write its caller marks safe (a heartbeat)
            assert (await pool.call("GET", "/v1/kv/b")).status == 200
            pool.current = pool.servers[0]
            assert (await pool.call("PUT", "/v1/internal/meshctl/heartbeat", json_body={}, safe=True)).status == 200
            assert good.hits[1:] == ["GET /v1/kv/b", "PUT /v1/internal/meshctl/heartbeat"]
            # nobody reachable
            pool.servers = [Server(refused)]
            pool.current = pool.servers[0]
            with pytest.raises(NoServers, match="No known Consul servers") as err:
                await pool.call("PUT", "/v1/kv/c", body=b"3")
            assert err.value.unsent is True
            pool.stop()
        dropper.close()
        await good.runner.cleanup()

    asyncio.run(run())


def test_a_node_marked_failed_is_forgotten_so_a_failed_over_node_does_not_flap() -> None:
    async def run() -> None:
        store = LocalStore(State())
        await LocalAgent(store, "c1", server=False).start()
        old, new = HeartbeatMonitor(store, timeout=5), HeartbeatMonitor(store, timeout=5)
        await old.beat("c1")  # the client used `old`, then failed over to `new`
        now = time.monotonic()
        await new.beat("c1")
        assert await old.scan(now + 6) == ["c1"]  # `old` still thinks it silent: marked once...
        assert store.state.checks["c1"]["serfHealth"]["Status"] == "critical"
        await new.beat("c1")  # ...revived by the server it talks to now...
        assert store.state.checks["c1"]["serfHealth"]["Status"] == "passing"
        assert await old.scan(now + 12) == []  # ...and never marked again by the old one
        assert store.state.checks["c1"]["serfHealth"]["Status"] == "passing"
        assert await new.scan(time.monotonic() + 6) == ["c1"]  # the one it talks to still detects silence

    asyncio.run(run())
