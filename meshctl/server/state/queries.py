"""Prepared queries: the stored definitions, name and template lookup, and local execution.

A query is stored as Consul's structs.PreparedQuery JSON (`QueryDef`, built with every default
by http/query.py). Consul's state-store rules apply when one is written: names are unique
(case-insensitively), a name may not alias another query's ID, only one template may have the
empty name, a bound session must exist, and a template must compile. A session that goes away
takes the queries bound to it along (`drop_session_queries`).

Lookup (`query_resolve`) is Consul's: an ID first (a template cannot be run by ID), then an
exact name, then the template whose name is the longest prefix of the name asked for, rendered
for that name. Templates (`Template.Type` "name_prefix_match", optional `Template.Regexp`)
interpolate HIL's `${name.full}`, `${name.prefix}`, `${name.suffix}` and `${match(N)}` in
every string of `Service`; `RemoveEmptyTags` drops tags that rendered empty.

`query_execute_local` is the execution in this datacenter only, before ACL filtering, distance
sorting and failover (those need the request and other datacenters: http/query.py): the health
entries of the service, without nodes that have a critical check (or any non-passing one with
`OnlyPassing`; `IgnoreCheckIDs` do not count), matching `NodeMeta`, `ServiceMeta` and `Tags`
(all of them, case-insensitively; `!tag` excludes).

The table's index is kept apart from `table_index` (`query_index`), so snapshots of stores that
never had a query stay what they were (see machine.py).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from meshctl.server import watchkeys as wk
from meshctl.server.commands import QueryDef, QueryDelete, QuerySet, StateError
from meshctl.server.state.base import Record, StateBase

TEMPLATE_TYPE = "name_prefix_match"
REDACTED = "<hidden>"  # a query's Token, shown to whoever may not manage ACLs
QUERY_NOT_FOUND = "Query not found"  # structs.ErrQueryNotFound: the HTTP layer answers it with 404
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_HIL = re.compile(r"\$\{([^}]*)\}")
_MATCH = re.compile(r"^match\(\s*(\d+)\s*\)$")
_VARIABLES = ("name.full", "name.prefix", "name.suffix")


def is_uuid(text: str) -> bool:
    return bool(_UUID.match(text))


def is_template(query: QueryDef | Record) -> bool:
    return bool((query.get("Template") or {}).get("Type"))


def acl_prefix(query: QueryDef | Record) -> str | None:
    """The name `query` ACL rules apply to; None: no rule applies (an unnamed, non-template query)."""
    if query.get("Name") or is_template(query):
        return str(query.get("Name") or "")
    return None


# ---------------------------------------------------------------------- templates


class TemplateError(ValueError):
    """A template that does not compile or render (Consul's words)."""


def _interpolate(text: str, path: str, values: dict[str, str], matches: list[str]) -> str:
    def one(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        if expr in values:
            return values[expr]
        found = _MATCH.match(expr)
        if found:
            i = int(found.group(1))
            return matches[i] if i < len(matches) else ""  # HIL's match(): never fails at run time
        raise TemplateError(f"Bad format '{text}' in Service{path}: unknown variable or function '{expr}'")

    return _HIL.sub(one, text)


def _walk(value: Any, path: str, render: Any) -> Any:
    """Every string of a Service structure, rendered (map keys stay as they are, as Consul's walk)."""
    if isinstance(value, str):
        return render(value, path)
    if isinstance(value, list):
        return [_walk(v, f"{path}[{i}]", render) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _walk(v, f"{path}.{k}", render) for k, v in value.items()}
    return value


def render_template(query: QueryDef | Record, name: str) -> Record:
    """The query a template gives for `name` (TemplateError if it cannot be rendered)."""
    template = query.get("Template") or {}
    kind = template.get("Type", "")
    if kind != TEMPLATE_TYPE:
        raise TemplateError(f"Bad Template.Type '{kind}'")
    matches: list[str] = []
    if template.get("Regexp"):
        try:
            found = re.search(template["Regexp"], name)
        except re.error as exc:
            raise TemplateError(f"Bad Regexp: {exc}") from None
        if found:
            matches = [found.group(0), *(g or "" for g in found.groups())]
    prefix = str(query.get("Name") or "")
    values = {"name.full": name, "name.prefix": prefix,
              "name.suffix": name[len(prefix):] if name.lower().startswith(prefix.lower()) else name}
    out: Record = copy.deepcopy(dict(query))
    out["Service"] = _walk(out.get("Service") or {}, "", lambda text, path: _interpolate(text, path, values, matches))
    if template.get("RemoveEmptyTags") and out["Service"].get("Tags"):
        out["Service"]["Tags"] = [t for t in out["Service"]["Tags"] if t]
    return out


# ---------------------------------------------------------------------- the state


class QueriesMixin(StateBase):
    def _apply_query_set(self, cmd: QuerySet) -> str:
        query: Record = copy.deepcopy(dict(cmd.query))
        qid = str(query.get("ID") or "")
        if not qid:
            raise StateError("Missing query ID")
        existing = self.queries.get(qid)
        if cmd.create and existing is not None:
            raise StateError(f"query ID '{qid}' already exists")
        if not cmd.create and existing is None:
            raise StateError(f"Cannot modify non-existent prepared query: '{qid}'")
        name = str(query.get("Name") or "")
        for other in self.queries.values():
            if other["ID"] == qid:
                continue
            if name and str(other.get("Name") or "").lower() == name.lower():
                raise StateError(f"name '{name}' aliases an existing query name")
            if not name and is_template(query) and is_template(other) and not other.get("Name"):
                raise StateError("a query template with an empty name already exists")
        if is_uuid(name) and name.lower() in (q.lower() for q in self.queries):
            raise StateError(f"name '{name}' aliases an existing query ID")
        session = query.get("Session") or ""
        if session and session not in self.sessions:
            raise StateError(f'invalid session "{session}"')
        if is_template(query):
            try:
                render_template(query, name)
            except TemplateError as exc:
                raise StateError(f"failed compiling template: {exc}") from None
        index = self.bump(wk.QUERIES)
        query["CreateIndex"] = existing["CreateIndex"] if existing is not None else index
        query["ModifyIndex"] = index
        self.queries[qid] = query
        self.query_index = index
        return qid

    def _apply_query_delete(self, cmd: QueryDelete) -> bool:
        if self.queries.pop(cmd.id, None) is not None:
            self.query_index = self.bump(wk.QUERIES)
        return True

    def drop_session_queries(self, sid: str) -> None:
        """A session went away: the queries bound to it go too (as Consul's session invalidation)."""
        bound = [qid for qid, q in self.queries.items() if q.get("Session") == sid]
        for qid in bound:
            del self.queries[qid]
        if bound:
            self.query_index = self.bump(wk.QUERIES)

    # reads --------------------------------------------------------------------------

    def query_list(self) -> tuple[int, list[Record]]:
        """Every query, by ID (Consul's id index order)."""
        return self.query_index, [copy.deepcopy(self.queries[q]) for q in sorted(self.queries)]

    def query_get(self, qid: str) -> tuple[int, Record | None]:
        query = self.queries.get(qid)
        return self.query_index, copy.deepcopy(query) if query is not None else None

    def query_resolve(self, id_or_name: str) -> Record | None:
        """The query an ID or name runs (templates rendered); None: no such query.

        Raises StateError for a template asked by ID and for a template that does not render.
        """
        if not id_or_name:
            raise StateError("Missing query ID")
        if is_uuid(id_or_name):
            query = self.queries.get(id_or_name) or self.queries.get(id_or_name.lower())
            if query is not None:
                if is_template(query):
                    raise StateError("prepared query templates can only be resolved up by name, not by ID")
                return copy.deepcopy(query)
        lowered = id_or_name.lower()
        best: Record | None = None
        for query in self.queries.values():
            name = str(query.get("Name") or "")
            if name.lower() == lowered:
                best = query
                break
            if is_template(query) and lowered.startswith(name.lower()) and (
                    best is None or len(name) > len(best.get("Name") or "")):
                best = query
        if best is None:
            return None
        if not is_template(best):
            return copy.deepcopy(best)
        try:
            return render_template(best, id_or_name)
        except TemplateError as exc:
            raise StateError(str(exc)) from None

    def query_execute_local(self, query: Record) -> list[Record]:
        """The health entries a query selects here (see the module docstring); not yet ACL-filtered."""
        svc = query.get("Service") or {}
        if svc.get("Connect"):  # no service mesh here: no instance is Connect-capable (as /v1/health/connect)
            return []
        _, entries = self.health_service(str(svc.get("Service") or ""))  # type: ignore[attr-defined]
        ignore = set(svc.get("IgnoreCheckIDs") or [])
        only_passing = bool(svc.get("OnlyPassing"))
        node_meta = svc.get("NodeMeta") or {}
        service_meta = svc.get("ServiceMeta") or {}
        tags = [t.lower() for t in svc.get("Tags") or []]
        must = {t for t in tags if not t.startswith("!")}
        must_not = {t[1:] for t in tags if t.startswith("!")}
        out = []
        for entry in entries:
            statuses = [c["Status"] for c in entry["Checks"] if c["CheckID"] not in ignore]
            if "critical" in statuses or (only_passing and any(s != "passing" for s in statuses)):
                continue
            if any(entry["Node"]["Meta"].get(k) != v for k, v in node_meta.items()):
                continue
            if any((entry["Service"].get("Meta") or {}).get(k) != v for k, v in service_meta.items()):
                continue
            have = {t.lower() for t in entry["Service"]["Tags"]}
            if not must <= have or must_not & have:
                continue
            out.append(entry)
        return out
