"""/v1/operator/raft/*, /v1/operator/autopilot/* and /v1/snapshot: the Raft configuration, peer
removal, leadership transfer, autopilot (configuration, health, state), and whole-state snapshots (a gzipped tar archive, as Consul's clients expect:
meta.json, state.bin, SHA256SUMS).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import time
import uuid
import zlib
from typing import Any, cast

from aiohttp import web

from meshctl.server import autopilot
from meshctl.server import watchkeys as wk
from meshctl.server.autopilot import AutopilotConfig
from meshctl.server.commands import AutopilotSet, Restore, SnapshotData
from meshctl.server.http.common import (
    HTTPError,
    Request,
    Result,
    Route,
    Watch,
    blocking,
    check_dc,
    meta_headers,
    respond,
    route,
)
from meshctl.server.http.limits import MAX_SNAPSHOT_EXPANDED

ROUTES: list[Route] = []


def _servers(req: Request) -> list[dict[str, Any]]:
    store = req.ctx.store
    directory = dict(getattr(store, "members", {}) or {})
    leader = store.leader_address() if store.known_leader else ""
    out = []
    for addr in store.peers():
        info = directory.get(addr, {})
        if addr == store.leader_address() and not info and not hasattr(store, "replica"):
            info = {"Node": req.ctx.agent.node_name, "ID": req.ctx.agent.node_id}
        out.append({"ID": info.get("ID") or addr, "Node": info.get("Node") or addr, "Address": addr,
                    "Leader": addr == leader, "Voter": True, "ProtocolVersion": "3",
                    "LastIndex": store.state.index})
    return out


@route(ROUTES, "GET", "/v1/operator/raft/configuration")
async def configuration(req: Request) -> web.Response:
    check_dc(req)
    req.authorize("operator", "", "read")
    store = req.ctx.store
    # Index: the Raft index of the configuration (Consul's future.Index()), not of the last write
    index = getattr(store, "applied_index", 0) or store.state.index
    return respond(req, {"Servers": _servers(req), "Index": getattr(store, "config_index", 1)},
                   headers=meta_headers(req, index))


CONNECT_KINDS = ("api-gateway", "connect-native", "connect-proxy", "ingress-gateway", "mesh-gateway",
                 "terminating-gateway")


@route(ROUTES, "GET", "/v1/operator/usage")
async def usage(req: Request) -> web.Response:
    """Consul's usage report: services, instances and nodes of this datacenter (operator:read; blocking)."""
    req.authorize("operator", "", "read")
    state = req.ctx.store.state

    def run() -> Result:
        instances = [svc for svcs in state.services.values() for svc in svcs.values()]
        connect = dict.fromkeys(CONNECT_KINDS, 0)
        for svc in instances:
            kind = svc.get("Kind") or ("connect-native" if (svc.get("Connect") or {}).get("Native") else "")
            if kind in connect:
                connect[kind] += 1
        # billable: what Consul bills, every instance but the servers' own "consul" and connect proxies
        billable = sum(1 for s in instances if s["Service"] != "consul" and not s.get("Kind"))
        dc = {"Services": len({s["Service"] for s in instances}), "ServiceInstances": len(instances),
              "ConnectServiceInstances": connect, "BillableServiceInstances": billable, "Nodes": len(state.nodes)}
        index = max(state.table_index[wk.NODES], state.table_index[wk.SERVICES])
        return Result(index, {"Usage": {req.ctx.datacenter: dc}, "Index": index, "LastContact": 0,
                              "KnownLeader": req.ctx.store.known_leader, "ResultsFilteredByACLs": False})

    return await blocking(req, run, Watch(keys=[wk.NODES, wk.SERVICES]))


@route(ROUTES, "GET", "/v1/operator/keyring")
async def keyring(req: Request) -> web.Response:
    """The -encrypt key as Consul lists its keyring: a WAN and a LAN entry (keyring:read).

    meshctl's key encrypts server-to-server (Raft) traffic, so the servers are the nodes holding it.
    Changing keys at run time (POST/PUT/DELETE) is not offered: restart with another -encrypt.
    """
    check_dc(req)
    req.authorize("keyring", "", "read")
    key = req.ctx.encrypt_key
    if not key:
        raise HTTPError(500, "Keyring operations are not available: this agent runs without -encrypt")
    servers = max(len(req.ctx.store.peers()), 1)
    wan_servers = max(len(req.ctx.wan.members()), servers) if req.ctx.wan is not None else servers
    return respond(req, [{"WAN": wan, "Datacenter": req.ctx.datacenter, "Segment": "", "Partition": "",
                          "Keys": {key: count}, "PrimaryKeys": {key: count}, "NumNodes": count}
                         for wan, count in ((True, wan_servers), (False, servers))])


@route(ROUTES, "POST,PUT,DELETE", "/v1/operator/keyring")
async def keyring_change(req: Request) -> web.Response:
    check_dc(req)
    req.authorize("keyring", "", "write")
    raise HTTPError(400, "Changing the keyring at run time is not supported by meshctl: restart the servers "
                         "with another -encrypt key")


def _find_peer(req: Request) -> str:
    address, ident = req.param("address"), req.param("id")
    if not address and not ident:
        raise HTTPError(400, "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove")
    for server in _servers(req):
        if (address and server["Address"] == address) or (ident and server["ID"] == ident):
            return str(server["Address"])
    raise HTTPError(500, f"address {address!r} was not found in the Raft configuration" if address
                    else f"id {ident!r} was not found in the Raft configuration")


@route(ROUTES, "DELETE", "/v1/operator/raft/peer")
async def remove_peer(req: Request) -> web.Response:
    check_dc(req)
    req.authorize("operator", "", "write")
    address = _find_peer(req)
    store = req.ctx.store
    if not hasattr(store, "remove_peer"):
        raise HTTPError(500, "cannot remove the only server of a dev agent")
    await store.remove_peer(address)
    return respond(req, None)


@route(ROUTES, "POST,PUT", "/v1/operator/raft/transfer-leader")
async def transfer_leader(req: Request) -> web.Response:
    check_dc(req)
    req.authorize("operator", "", "write")
    store = req.ctx.store
    if not hasattr(store, "transfer_leadership"):
        raise HTTPError(500, "cannot transfer leadership: only one server")
    target = _find_peer(req) if (req.param("id") or req.param("address")) else None
    await store.transfer_leadership(target)
    return respond(req, {"Success": True})


# ---------------------------------------------------------------------- autopilot


def _autopilot_config(req: Request) -> AutopilotConfig:
    cluster = req.ctx.cluster
    defaults = cluster.autopilot.defaults if cluster is not None else AutopilotConfig()
    return AutopilotConfig.from_record(req.ctx.store.state.autopilot, defaults)


async def _autopilot_servers(req: Request) -> list[autopilot.ServerState]:
    cluster = req.ctx.cluster
    if cluster is None:  # -dev: the only server
        agent = req.ctx.agent
        return autopilot.single_server(agent.node_name, agent.node_id, req.ctx.store.leader_address(),
                                       req.ctx.store.state.index)
    return await cluster.autopilot.servers()


@route(ROUTES, "GET", "/v1/operator/autopilot/configuration")
async def autopilot_get_configuration(req: Request) -> web.Response:
    check_dc(req)
    req.authorize("operator", "", "read")
    return respond(req, _autopilot_config(req).to_json())


@route(ROUTES, "PUT", "/v1/operator/autopilot/configuration")
async def autopilot_set_configuration(req: Request) -> web.Response:
    check_dc(req)
    req.authorize("operator", "", "write")
    cas = req.uint("cas", error="Error parsing cas value")
    body = await req.json(default={})
    try:
        config = AutopilotConfig.from_json(body, AutopilotConfig())  # missing fields: the documented defaults
    except ValueError as exc:
        raise HTTPError(400, str(exc)) from None
    ok = await req.ctx.store.apply(AutopilotSet(config.to_record(), cas))
    return respond(req, bool(ok))


@route(ROUTES, "GET", "/v1/operator/autopilot/health")
async def autopilot_health(req: Request) -> web.Response:
    check_dc(req)
    req.authorize("operator", "", "read")
    body = autopilot.health_json(await _autopilot_servers(req))
    return respond(req, body, status=200 if body["Healthy"] else 429)  # Consul: 429 when unhealthy


@route(ROUTES, "GET", "/v1/operator/autopilot/state")
async def autopilot_state(req: Request) -> web.Response:
    check_dc(req)
    req.authorize("operator", "", "read")
    return respond(req, autopilot.state_json(await _autopilot_servers(req)))


# ---------------------------------------------------------------------- snapshots


def make_archive(snapshot: dict[str, Any], index: int, term: int, servers: list[dict[str, Any]]) -> bytes:
    """A Consul-style snapshot archive: gzip(tar(meta.json, state.bin, SHA256SUMS))."""
    state_bin = json.dumps(snapshot, separators=(",", ":")).encode()
    meta = {"Version": 1, "ID": f"{term}-{index}-{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}",
            "Index": index, "Term": term, "Configuration": {"Servers": servers}, "ConfigurationIndex": index,
            "Size": len(state_bin)}
    meta_json = json.dumps(meta, indent=2).encode()
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n"
                   for name, data in (("meta.json", meta_json), ("state.bin", state_bin))).encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in (("meta.json", meta_json), ("state.bin", state_bin), ("SHA256SUMS", sums)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=6)


def read_archive(data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """(meta, state snapshot) of an archive; ValueError if it is damaged."""
    try:
        inflate = zlib.decompressobj(wbits=31)  # gzip; stop where a bomb would go on expanding
        raw = inflate.decompress(data, MAX_SNAPSHOT_EXPANDED)
        if inflate.unconsumed_tail:
            raise ValueError(f"snapshot archive expands past {MAX_SNAPSHOT_EXPANDED} bytes")
        files: dict[str, bytes] = {}
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r") as tar:
            for member in tar.getmembers():
                f = tar.extractfile(member)
                if f is not None:
                    files[member.name] = f.read()
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        raise ValueError(f"failed to read snapshot archive: {exc}") from None
    for name in ("meta.json", "state.bin", "SHA256SUMS"):
        if name not in files:
            raise ValueError(f"snapshot archive has no {name}")
    for line in files["SHA256SUMS"].decode().splitlines():
        digest, _, name = line.partition("  ")
        if name in files and hashlib.sha256(files[name]).hexdigest() != digest:
            raise ValueError(f"snapshot archive: checksum mismatch for {name}")
    return json.loads(files["meta.json"]), json.loads(files["state.bin"])


@route(ROUTES, "GET", "/v1/snapshot")
async def snapshot_save(req: Request) -> web.Response:
    check_dc(req)
    req.authorize("operator", "", "write")
    req.authorize("acl", "", "write")  # a snapshot holds every token's secret: management only
    store = req.ctx.store
    if not req.flag("stale"):
        await store.barrier()
    term = getattr(getattr(store, "replica", None), "raftCurrentTerm", 1) or 1
    index = store.state.index
    body = make_archive(cast(dict[str, Any], store.state.snapshot()), index, term, _servers(req))
    headers = meta_headers(req, index)
    return respond(req, body, headers=headers, content_type="application/x-gzip")


@route(ROUTES, "PUT", "/v1/snapshot")
async def snapshot_restore(req: Request) -> web.Response:
    check_dc(req)
    req.authorize("operator", "", "write")
    req.authorize("acl", "", "write")  # a snapshot holds every token's secret: management only
    data = await req.body()
    try:
        _meta, snap = read_archive(data)
    except ValueError as exc:
        raise HTTPError(500, str(exc)) from None
    await req.ctx.store.apply(Restore(cast(SnapshotData, snap)))
    return respond(req, None)
