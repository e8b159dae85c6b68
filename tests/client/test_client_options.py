"""QueryOptions, QueryMeta and the snapshot area: what goes on the wire and what comes back.

Against the scripted 127.0.0.1 server of conftest.py, so every header can be produced and seen.
"""

from __future__ import annotations

import pytest

from meshctl.client import Client, QueryMeta, QueryOptions, Reply


def test_options_object_and_keywords_combine_keywords_winning(fake_server):
    fake_server.script(200, "[]", X_Consul_Index="8")
    base = QueryOptions(consistency="stale", dc="dc2", index=3)
    Client(fake_server.addr).catalog.nodes(options=base, index=7, wait="5s")
    assert fake_server.last.path == "/v1/catalog/nodes?index=7&wait=5s&stale=&dc=dc2"
    assert base.index == 3  # the caller's options are not changed


def test_scope_and_cache_options_are_query_parameters(fake_server):
    fake_server.script(200, "[]")
    opts = QueryOptions(cached=True, namespace="team", partition="p1", peer="west", filter="Service == web")
    Client(fake_server.addr).health.service("web", passing=True, options=opts)
    assert fake_server.last.path == ("/v1/health/service/web?filter=Service+%3D%3D+web&cached=&ns=team"
                                     "&partition=p1&peer=west&passing=1")


def test_request_token_is_a_header_overriding_the_clients_never_in_the_url(fake_server):
    fake_server.script(404)
    c = Client(fake_server.addr, token="client-token")
    c.kv.get("k", token="request-token")
    assert fake_server.last.headers["X-Consul-Token"] == "request-token"
    assert "request-token" not in fake_server.last.path
    c.kv.get("k")
    assert fake_server.last.headers["X-Consul-Token"] == "client-token"


def test_max_age_is_sent_as_cache_control(fake_server):
    fake_server.script(200, "{}")
    Client(fake_server.addr).catalog.services(cached=True, max_age="1m")
    assert fake_server.last.headers["Cache-Control"] == "max-age=60"


def test_options_repr_hides_the_token():
    text = repr(QueryOptions(token="s3cret", dc="dc1"))
    assert "s3cret" not in text and "dc='dc1'" in text


def test_unknown_consistency_is_rejected():
    with pytest.raises(ValueError):
        QueryOptions(consistency="eventual")  # type: ignore[arg-type]


def test_reply_meta_carries_the_query_headers(fake_server):
    fake_server.script(200, "[]", X_Consul_Index="42", X_Consul_KnownLeader="true", X_Consul_LastContact="1500",
                       X_Cache="HIT", Age="12")
    meta = Client(fake_server.addr).catalog.nodes(cached=True).meta
    assert meta == QueryMeta(last_index=42, known_leader=True, last_contact=1.5, cache_hit=True, cache_age=12.0)


def test_reply_without_cache_headers_says_so(fake_server):
    fake_server.script(200, "[]", X_Consul_Index="1")
    meta = Client(fake_server.addr).catalog.nodes().meta
    assert (meta.last_index, meta.cache_hit, meta.cache_age) == (1, None, None)


def test_with_value_keeps_the_metadata():
    reply = Reply(value=[1, 2], index=9, known_leader=True, last_contact=0.5, found=False)
    other = reply.with_value("two")
    assert (other.value, other.index, other.known_leader, other.last_contact, other.found) == (
        "two", 9, True, 0.5, False)


def test_snapshot_save_returns_archive_and_index(fake_server):
    fake_server.script(200, b"\x1f\x8barchive", X_Consul_Index="77", X_Consul_KnownLeader="true")
    archive = Client(fake_server.addr).snapshot.save(stale=True)
    assert (archive.data, archive.index, archive.meta.known_leader) == (b"\x1f\x8barchive", 77, True)
    assert (fake_server.last.method, fake_server.last.path) == ("GET", "/v1/snapshot?stale=")


def test_snapshot_restore_puts_the_archive(fake_server):
    fake_server.script(200)
    Client(fake_server.addr).snapshot.restore(b"archive-bytes")
    assert (fake_server.last.method, fake_server.last.path, fake_server.last.body) == (
        "PUT", "/v1/snapshot", b"archive-bytes")
