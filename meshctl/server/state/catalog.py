"""The catalog (nodes, services, checks) and health: register, deregister, check updates, reads."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from meshctl.server import watchkeys as wk
from meshctl.server.commands import CheckDef, CheckUpdate, Deregister, Register, ServiceDef, StateError
from meshctl.server.fields import UnknownField, locality, service_addresses
from meshctl.server.state.base import STATUS_ORDER, Record
from meshctl.server.state.coordinates import CoordinatesMixin
from meshctl.server.state.records import agent_service_json, definition_record, has_tags, service_node_json
from meshctl.server.state.sessions import SessionsMixin


def _decoded(decode: Callable[[Any], Any], value: Any) -> Any:
    """A field decoded as Consul's decoder would (fields.py); its refusal is the command's error."""
    try:
        return decode(value)
    except UnknownField as exc:
        raise StateError(str(exc)) from None


class CatalogMixin(SessionsMixin, CoordinatesMixin):
    # ------------------------------------------------------------------ writes

    def _apply_register(self, cmd: Register) -> bool:
        """Catalog register: node (unless SkipNodeUpdate), an optional service, checks."""
        name = cmd.node
        if not name:
            raise StateError("Must provide node")
        svc = cmd.service
        checks = cmd.all_checks()
        # validate everything first: a failed registration changes nothing
        new_sid = (svc.get("ID") or svc.get("Service", "")) if svc else None
        for chk in checks:
            sid = chk.get("ServiceID", "")
            if sid and sid != new_sid and sid not in self.services.get(name, {}):
                raise StateError("Missing service registration")
            if (chk.get("Status") or "critical") not in STATUS_ORDER:
                raise StateError(f"Invalid check status: '{chk.get('Status')}'")
        if not cmd.skip_node_update or name not in self.nodes:
            if not cmd.address and name not in self.nodes:
                raise StateError("Must provide address if SkipNodeUpdate is not set")
            self._ensure_node(cmd)
        if svc:
            self._ensure_service(name, svc)
        for chk in checks:
            self._ensure_check(name, chk)
        return True

    def _ensure_node(self, cmd: Register) -> None:
        name = cmd.node
        current = self.nodes.get(name)
        record: Record = {
            "ID": cmd.id or (current or {}).get("ID", ""),
            "Node": name,
            "Address": cmd.address or (current or {}).get("Address", ""),
            "Datacenter": self.datacenter,
            "TaggedAddresses": cmd.tagged_addresses or {},
            "Meta": cmd.node_meta or {},
        }
        if current is not None and all(current[k] == record[k] for k in record):
            return
        index = self.bump(wk.NODES, wk.node(name), *self._node_service_keys(name))
        record["CreateIndex"] = current["CreateIndex"] if current else index
        record["ModifyIndex"] = index
        self.nodes[name] = record
        self.node_index[name] = index
        self._touch_node_services(name, index)

    def _ensure_service(self, node: str, svc: ServiceDef) -> None:
        name = svc.get("Service", "")
        sid = svc.get("ID") or name
        if not name:
            raise StateError("Must provide service name with ID" if sid else "Missing service name")
        current = self.services.get(node, {}).get(sid)
        weights: Any = svc.get("Weights") or {}
        passing, warning = weights.get("Passing", 1), weights.get("Warning", 1)
        if not isinstance(passing, int) or not isinstance(warning, int) or passing < 1 or warning < 0 \
                or passing > 65535 or warning > 65535:
            passing, warning = 1, 1
        record: Record = {
            "Kind": svc.get("Kind", ""),
            "ID": sid,
            "Service": name,
            "Tags": list(svc.get("Tags") or []),
            "Address": svc.get("Address", ""),
            "TaggedAddresses": _decoded(service_addresses, svc.get("TaggedAddresses")),
            "Meta": dict(svc.get("Meta") or {}),
            "Port": int(svc.get("Port") or 0),
            "Weights": {"Passing": passing, "Warning": warning},
            "EnableTagOverride": bool(svc.get("EnableTagOverride", False)),
        }
        where = _decoded(locality, svc.get("Locality"))
        if where is not None:
            record["Locality"] = where
        if current is not None and all(current.get(k) == v for k, v in record.items()) \
                and ("Locality" in current) == ("Locality" in record):
            return
        keys = [wk.SERVICES, wk.node(node), wk.service(name)]
        if current is not None and current["Service"].lower() != name.lower():
            keys.append(wk.service(current["Service"]))
        index = self.bump(*keys)
        record["CreateIndex"] = current["CreateIndex"] if current else index
        record["ModifyIndex"] = index
        self.services.setdefault(node, {})[sid] = record
        self.service_index[name.lower()] = index
        if current is not None and current["Service"].lower() != name.lower():
            self.service_index[current["Service"].lower()] = index
        # checks carry a copy of the service's name and tags
        for chk in self.checks.get(node, {}).values():
            if chk["ServiceID"] == sid:
                chk["ServiceName"], chk["ServiceTags"] = name, list(record["Tags"])

    def _ensure_check(self, node: str, chk: CheckDef) -> None:
        if node not in self.nodes:
            raise StateError("Missing node registration")
        cid = chk.get("CheckID") or chk.get("Name", "")
        if not cid:
            raise StateError("Missing check ID")
        sid = chk.get("ServiceID", "")
        svc = None
        if sid:
            svc = self.services.get(node, {}).get(sid)
            if svc is None:
                raise StateError("Missing service registration")
        status = chk.get("Status") or "critical"
        if status not in STATUS_ORDER:
            raise StateError(f"Invalid check status: '{status}'")
        current = self.checks.get(node, {}).get(cid)
        record: Record = {
            "Node": node,
            "CheckID": cid,
            "Name": chk.get("Name") or cid,
            "Status": status,
            "Notes": chk.get("Notes", ""),
            "Output": chk.get("Output", ""),
            "ServiceID": sid,
            "ServiceName": svc["Service"] if svc else "",
            "ServiceTags": list(svc["Tags"]) if svc else [],
            "Type": chk.get("Type", ""),
            "Interval": chk.get("Interval", ""),
            "Timeout": chk.get("Timeout", ""),
            "ExposedPort": 0,
            "Definition": definition_record(chk.get("Definition")),
        }
        if current is not None and all(current.get(k) == v for k, v in record.items()):
            return
        self._write_check(node, record, current)

    def _write_check(self, node: str, record: Record, current: Record | None) -> None:
        keys = [wk.CHECKS, wk.node(node)]
        keys += self._node_service_keys(node) if not record["ServiceID"] else [wk.service(record["ServiceName"])]
        index = self.bump(*keys)
        record["CreateIndex"] = current["CreateIndex"] if current else index
        record["ModifyIndex"] = index
        self.checks.setdefault(node, {})[record["CheckID"]] = record
        if record["ServiceID"]:
            self.service_index[record["ServiceName"].lower()] = index
        else:
            self._touch_node_services(node, index)
        if record["Status"] == "critical":
            self._invalidate_sessions_of_check(node, record["CheckID"])

    def _apply_check_update(self, cmd: CheckUpdate) -> bool:
        """Set a check's status/output (agent check runs, TTL pass/warn/fail, maintenance)."""
        node, cid = cmd.node, cmd.check_id
        current = self.checks.get(node, {}).get(cid)
        if current is None:
            raise StateError(f'Unknown check ID "{cid}"')
        status = current["Status"] if cmd.status is None else cmd.status
        if status not in STATUS_ORDER:
            raise StateError(f"Invalid check status: '{status}'")
        output = current["Output"] if cmd.output is None else cmd.output
        if current["Status"] == status and current["Output"] == output:
            return True
        record = dict(current, Status=status, Output=output)
        self._write_check(node, record, current)
        return True

    def _apply_deregister(self, cmd: Deregister) -> bool:
        """Catalog deregister: a check, a service (with its checks) or a whole node."""
        node = cmd.node
        if node not in self.nodes:
            return True
        if cmd.check_id:
            self._delete_check(node, cmd.check_id)
        elif cmd.service_id:
            self._delete_service(node, cmd.service_id)
        else:
            for sid in list(self.services.get(node, {})):
                self._delete_service(node, sid)
            for cid in list(self.checks.get(node, {})):
                self._delete_check(node, cid)
            self.bump(wk.NODES, wk.node(node))
            del self.nodes[node]
            self.node_index.pop(node, None)
            self.services.pop(node, None)
            self.checks.pop(node, None)
            self.drop_node_coordinate(node)
            for sid, sess in list(self.sessions.items()):
                if sess["Node"] == node:
                    self._invalidate_session(sid)
        return True

    def _delete_service(self, node: str, sid: str) -> None:
        svc = self.services.get(node, {}).pop(sid, None)
        if svc is None:
            return
        for cid, chk in list(self.checks.get(node, {}).items()):
            if chk["ServiceID"] == sid:
                self._delete_check(node, cid)
        index = self.bump(wk.SERVICES, wk.node(node), wk.service(svc["Service"]))
        self.service_index[svc["Service"].lower()] = index

    def _delete_check(self, node: str, cid: str) -> None:
        chk = self.checks.get(node, {}).pop(cid, None)
        if chk is None:
            return
        keys = [wk.CHECKS, wk.node(node)]
        keys += [wk.service(chk["ServiceName"])] if chk["ServiceID"] else self._node_service_keys(node)
        index = self.bump(*keys)
        if chk["ServiceID"]:
            self.service_index[chk["ServiceName"].lower()] = index
        else:
            self._touch_node_services(node, index)
        self._invalidate_sessions_of_check(node, cid)

    def _node_service_keys(self, node: str) -> list[str]:
        return [wk.service(s["Service"]) for s in self.services.get(node, {}).values()]

    def _touch_node_services(self, node: str, index: int) -> None:
        for svc in self.services.get(node, {}).values():
            self.service_index[svc["Service"].lower()] = index

    # ------------------------------------------------------------------ catalog reads

    def catalog_nodes(self) -> tuple[int, list[Record]]:
        nodes = [copy.deepcopy(self.nodes[n]) for n in sorted(self.nodes)]
        return self.table_index[wk.NODES], nodes

    def catalog_services(self) -> tuple[int, dict[str, list[str]]]:
        out: dict[str, set[str]] = {}
        for svcs in self.services.values():
            for svc in svcs.values():
                out.setdefault(svc["Service"], set()).update(svc["Tags"])
        return self.table_index[wk.SERVICES], {k: sorted(out[k]) for k in sorted(out)}

    def service_instances(self, name: str) -> list[tuple[Record, Record]]:
        """(node, service) pairs of a service, by node name then service ID; name is case-insensitive."""
        lname = name.lower()
        out = []
        for node_name in sorted(self.services):
            for sid in sorted(self.services[node_name]):
                svc = self.services[node_name][sid]
                if svc["Service"].lower() == lname:
                    out.append((self.nodes[node_name], svc))
        return out

    def service_index_of(self, name: str) -> int:
        """The index of one service's data (instances, their checks, their nodes)."""
        return self.service_index.get(name.lower()) or max(self.table_index[wk.SERVICES],
                                                           self.table_index[wk.CHECKS])

    def catalog_service(self, name: str, tags: list[str] | None = None) -> tuple[int, list[Record]]:
        out = [service_node_json(n, s) for n, s in self.service_instances(name) if has_tags(s, tags)]
        return self.service_index_of(name), out

    def catalog_node(self, name: str) -> tuple[int, Record | None, list[Record]]:
        node = self.nodes.get(name)
        index = max(self.table_index[wk.NODES], self.table_index[wk.SERVICES])
        if node is None:
            return index, None, []
        services = [agent_service_json(s) for _, s in sorted(self.services.get(name, {}).items())]
        return index, copy.deepcopy(node), services

    # ------------------------------------------------------------------ health reads

    def node_checks(self, node: str) -> list[Record]:
        return [copy.deepcopy(c) for _, c in sorted(self.checks.get(node, {}).items())]

    def health_node(self, node: str) -> tuple[int, list[Record]]:
        return self.table_index[wk.CHECKS], self.node_checks(node)

    def health_checks(self, service: str) -> tuple[int, list[Record]]:
        lname = service.lower()
        out = [copy.deepcopy(c) for node in sorted(self.checks) for _, c in sorted(self.checks[node].items())
               if c["ServiceID"] and c["ServiceName"].lower() == lname]
        return self.service_index_of(service), out

    def health_state(self, state: str) -> tuple[int, list[Record]]:
        out = [copy.deepcopy(c) for node in sorted(self.checks) for _, c in sorted(self.checks[node].items())
               if state == "any" or c["Status"] == state]
        return self.table_index[wk.CHECKS], out

    def health_service(self, name: str, tags: list[str] | None = None,
                       passing: bool = False) -> tuple[int, list[Record]]:
        """Consul's /v1/health/service entries: {Node, Service, Checks} per instance."""
        out = []
        for node, svc in self.service_instances(name):
            if not has_tags(svc, tags):
                continue
            checks = [copy.deepcopy(c) for _, c in sorted(self.checks.get(node["Node"], {}).items())
                      if not c["ServiceID"] or c["ServiceID"] == svc["ID"]]
            if passing and any(c["Status"] != "passing" for c in checks):
                continue
            out.append({"Node": copy.deepcopy(node), "Service": agent_service_json(svc), "Checks": checks})
        return self.service_index_of(name), out
