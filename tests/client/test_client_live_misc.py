"""client.session, event, status, operator and the blocking watch() against `meshctl agent -dev`."""

from __future__ import annotations

import threading

import pytest

from meshctl.client import Backoff, Client, event_payload, watch

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def c(shared_dev_server) -> Client:
    return Client(shared_dev_server.addr)


def test_status_leader_and_peers(c):
    leader = c.status.leader()
    assert leader and ":" in leader
    assert leader in c.status.peers()


def test_operator_raft_configuration(c, shared_dev_server):
    config = c.operator.raft_configuration()
    assert [s["Node"] for s in config["Servers"]] == [shared_dev_server.node]
    assert config["Servers"][0]["Leader"] is True


def test_session_lifecycle(c, shared_dev_server):
    sid = c.session.create(name="s1", ttl="15s", lock_delay=0, behavior="delete")
    info = c.session.info(sid).value
    assert (info["ID"], info["Name"], info["Node"], info["Behavior"], info["TTL"]) == (
        sid, "s1", shared_dev_server.node, "delete", "15s")
    assert info["LockDelay"] == 0
    assert sid in [s["ID"] for s in c.session.list_all().value]
    assert sid in [s["ID"] for s in c.session.node(shared_dev_server.node).value]
    assert c.session.renew(sid)["ID"] == sid
    assert c.session.destroy(sid) is True
    assert c.session.info(sid).value is None
    assert c.session.renew(sid) is None


def test_session_lock_acquire_release(c):
    sid = c.session.create(name="locker", lock_delay="0s")
    other = c.session.create(name="other", lock_delay="0s")
    try:
        assert c.kv.put("lock1/.lock", "me", acquire=sid) is True
        pair = c.kv.get("lock1/.lock").value
        assert (pair.session, pair.lock_index) == (sid, 1)
        assert c.kv.put("lock1/.lock", "them", acquire=other) is False
        assert c.kv.put("lock1/.lock", "", release=sid) is True
        assert c.kv.get("lock1/.lock").value.session is None
    finally:
        c.session.destroy(sid)
        c.session.destroy(other)


def test_destroying_session_releases_its_keys(c):
    sid = c.session.create(lock_delay=0)
    c.kv.put("lock2/k", "v", acquire=sid)
    c.session.destroy(sid)
    assert c.kv.get("lock2/k").value.session is None


def test_event_fire_and_list(c):
    ev = c.event.fire("ev-deploy", b"v42", service="web", tag="blue")
    assert ev["Name"] == "ev-deploy" and ev["ServiceFilter"] == "web" and ev["TagFilter"] == "blue"
    assert event_payload(ev) == b"v42"
    listed = c.event.list_recent("ev-deploy").value
    assert ev["ID"] in [e["ID"] for e in listed]
    assert event_payload(listed[-1]) == b"v42"
    assert all(e["Name"] == "ev-deploy" for e in listed)


def test_event_without_payload(c):
    assert c.event.fire("ev-empty")["Payload"] is None


def test_watch_yields_initial_value_then_each_change(c):
    c.kv.put("w1/k", "0")
    stop = threading.Event()
    seen: list[bytes] = []
    ready = threading.Event()

    def consume():
        for reply in watch(lambda i, w: c.kv.get("w1/k", index=i, wait=w), wait="5s", stop=stop):
            seen.append(reply.value.value)
            ready.set()
            if len(seen) == 3:
                stop.set()

    t = threading.Thread(target=consume)
    t.start()
    assert ready.wait(5)
    writer = Client(c.config.address)
    writer.kv.put("w1/k", "1")
    for _ in range(100):
        if len(seen) >= 2:
            break
        threading.Event().wait(0.02)
    writer.kv.put("w1/k", "2")
    t.join(10)
    assert not t.is_alive()
    assert seen == [b"0", b"1", b"2"]


def test_watch_on_prefix_sees_deletes(c):
    c.kv.put("w2/a", "1")
    replies = watch(lambda i, w: c.kv.list_prefix("w2/", index=i, wait=w), wait="5s")
    first = next(replies)
    assert [p.key for p in first.value] == ["w2/a"]
    threading.Timer(0.2, lambda: Client(c.config.address).kv.delete("w2/a")).start()
    second = next(replies)
    assert second.value == [] and second.index > first.index
    replies.close()


def test_watch_rides_out_server_errors_with_backoff(fake_server):
    """Errors from a real HTTP round trip are retried with growing delays, then data flows."""
    fake_server.script(500, "No cluster leader")
    client = Client(fake_server.addr)
    delays: list[float] = []

    def on_error(exc, delay):
        delays.append(delay)
        if len(delays) == 3:
            fake_server.script(200, "[]", X_Consul_Index="7")

    replies = watch(lambda i, w: client.catalog.nodes(index=i, wait=w), wait="1s", on_error=on_error,
                    backoff=Backoff(base=0.01, cap=1, rand=lambda: 1.0))
    first = next(replies)
    replies.close()
    assert first.index == 7
    assert delays == [0.01, 0.02, 0.04]


def test_watch_gives_up_after_max_retries_when_unreachable():
    import socket

    from meshctl.client import Unreachable

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = Client(f"127.0.0.1:{port}")
    with pytest.raises(Unreachable):
        next(watch(lambda i, w: client.kv.get("k", index=i, wait=w), max_retries=2,
                   backoff=Backoff(base=0.01, cap=0.05)))
