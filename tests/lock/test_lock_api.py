"""meshctl.client.lock against a dev server: Consul's lock and semaphore protocol, and interop
with a contender that speaks it the way the Go api does (raw HTTP, written from api/lock.go and
api/semaphore.go)."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid

import pytest
import requests

from meshctl.client import Client
from meshctl.client.lock import (
    LOCK_FLAG_VALUE,
    SEMAPHORE_FLAG_VALUE,
    LeaderElection,
    Lock,
    LockConflict,
    LockError,
    LockHeld,
    LockInUse,
    Semaphore,
    go_json,
    go_path_join,
)

pytestmark = pytest.mark.integration


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def server(shared_dev_server):
    return shared_dev_server


@pytest.fixture
def client(server):
    with Client(server.addr) as c:
        yield c


@pytest.fixture
def prefix(request):
    return f"locktest/{request.node.name}/{uuid.uuid4().hex[:6]}"


class GoStyle:
    """A contender making exactly the HTTP calls the Go api makes (api/lock.go, api/semaphore.go)."""

    def __init__(self, url: str, behavior: str | None = None, name: str = "Consul API Lock") -> None:
        self.url = url
        body = {"Name": name, "TTL": "15s"}
        if behavior:
            body["Behavior"] = behavior
        self.session = requests.put(f"{url}/v1/session/create", json=body, timeout=10).json()["ID"]

    def get(self, key: str):
        r = requests.get(f"{self.url}/v1/kv/{key}", timeout=10)
        return r.json()[0] if r.status_code == 200 else None

    def acquire(self, key: str, flags: int, value: bytes = b"") -> bool:
        r = requests.put(f"{self.url}/v1/kv/{key}", params={"acquire": self.session, "flags": str(flags)},
                         data=value, timeout=10)
        return r.json() is True

    def release(self, key: str, flags: int) -> bool:
        r = requests.put(f"{self.url}/v1/kv/{key}", params={"release": self.session, "flags": str(flags)},
                         timeout=10)
        return r.json() is True

    def cas(self, key: str, index: int, value: bytes, flags: int) -> bool:
        r = requests.put(f"{self.url}/v1/kv/{key}", params={"cas": str(index), "flags": str(flags)},
                         data=value, timeout=10)
        return r.json() is True

    def semaphore_acquire(self, prefix: str, limit: int) -> bool:
        assert self.acquire(f"{prefix}/{self.session}", SEMAPHORE_FLAG_VALUE)
        pair = self.get(f"{prefix}/.lock")
        doc = json.loads(base64_value(pair)) if pair else {"Limit": limit, "Holders": {}}
        if len(doc["Holders"]) >= limit:
            return False
        doc["Holders"][self.session] = True
        # encoding/json: fields in declaration order, map keys sorted, compact.
        holders = ",".join(f'"{k}":true' for k in sorted(doc["Holders"]))
        body = f'{{"Limit":{doc["Limit"]},"Holders":{{{holders}}}}}'.encode()
        return self.cas(f"{prefix}/.lock", pair["ModifyIndex"] if pair else 0, body, SEMAPHORE_FLAG_VALUE)

    def destroy(self) -> None:
        requests.put(f"{self.url}/v1/session/destroy/{self.session}", timeout=10)


def base64_value(pair) -> bytes:
    import base64

    return base64.b64decode(pair["Value"]) if pair and pair.get("Value") else b""


# -- helpers -----------------------------------------------------------------------------


def test_go_path_join_cleans_like_go():
    assert go_path_join("a/b/", ".lock") == "a/b/.lock"
    assert go_path_join("a//b", "sess") == "a/b/sess"
    assert go_path_join("a/./b/../c", ".lock") == "a/c/.lock"


def test_go_json_escapes_like_go():
    assert go_json({"Limit": 2, "Holders": {"a<b": True}}) == b'{"Limit":2,"Holders":{"a\\u003cb":true}}'


# -- Lock --------------------------------------------------------------------------------


def test_lock_writes_consul_lock_entry_and_session(client, prefix, server):
    key = f"{prefix}/.lock"
    lock = client.lock(key)
    assert lock.acquire()
    try:
        raw = requests.get(f"{server.url}/v1/kv/{key}", timeout=10).json()[0]
        assert raw["Flags"] == LOCK_FLAG_VALUE == 3304740253564472344
        assert raw["Session"] == lock.session_id and raw["Value"] is None and raw["LockIndex"] == 1
        sess = requests.get(f"{server.url}/v1/session/info/{lock.session_id}", timeout=10).json()[0]
        assert (sess["Name"], sess["TTL"], sess["Behavior"], sess["LockDelay"]) == (
            "Consul API Lock", "15s", "release", 15 * 10**9)
        with pytest.raises(LockHeld):
            lock.acquire()
    finally:
        lock.release()
    sid_gone = requests.get(f"{server.url}/v1/session/list", timeout=10).json()
    assert all(s["Name"] != "Consul API Lock" or s["ID"] != lock.session_id for s in sid_gone)
    assert client.kv.get(key).value.session is None


def test_context_manager_and_value(client, prefix):
    with client.lock(f"{prefix}/leader", value=b"host-a") as lock:
        pair = client.kv.get(f"{prefix}/leader").value
        assert pair.value == b"host-a" and pair.session == lock.session_id
    assert client.kv.get(f"{prefix}/leader").value.session is None


def test_second_lock_waits_until_release(client, prefix):
    # b's blocking reads and retry pauses last 120 s: getting the lock within 60 s of the release
    # means the release itself woke it (as the Go api's blocking query does)
    a, b = client.lock(f"{prefix}/k"), client.lock(f"{prefix}/k", wait_time=120, retry_time=120)
    assert a.acquire()
    got = threading.Event()
    threading.Thread(target=lambda: b.acquire() and got.set(), daemon=True).start()
    assert not got.wait(0.5)
    a.release()
    assert got.wait(60), "b was not woken by the release"
    b.release()


def test_try_once_gives_up_after_wait_time(client, prefix):
    a = client.lock(f"{prefix}/k")
    assert a.acquire()
    b = client.lock(f"{prefix}/k", try_once=True, wait_time=0.5)
    started = time.monotonic()
    assert b.acquire() is False
    assert time.monotonic() - started > 0.4  # it did wait (its give-up is the False above)
    assert b.session_id is None  # its session was destroyed
    a.release()


def test_stop_event_and_cancel_abort_acquisition(client, prefix):
    a = client.lock(f"{prefix}/k")
    assert a.acquire()
    b = client.lock(f"{prefix}/k", wait_time=1.0)
    stop = threading.Event()
    result = []
    t = threading.Thread(target=lambda: result.append(b.acquire(stop)))
    t.start()
    wait_for(lambda: b.session_id, what="b's session")
    stop.set()
    b.cancel()
    t.join(10)
    assert result == [False]
    a.release()


def test_lock_lost_when_session_destroyed(client, prefix):
    lock = client.lock(f"{prefix}/k")
    reasons = []
    lock.on_lost(reasons.append)
    assert lock.acquire()
    client.session.destroy(lock.session_id)
    assert lock.lost.wait(10)
    assert not lock.held
    wait_for(lambda: len(reasons) == 1, what="on_lost callback")
    lock.release()  # allowed after a loss, like api.Lock.Unlock


def test_lock_lost_when_key_deleted(client, prefix):
    lock = client.lock(f"{prefix}/k")
    assert lock.acquire()
    client.kv.delete(f"{prefix}/k")
    assert lock.lost.wait(10)
    lock.release()


def test_lock_conflicts_with_foreign_flags(client, prefix):
    client.kv.put(f"{prefix}/k", b"x", flags=42)
    with pytest.raises(LockConflict, match="Existing key does not match lock use"):
        client.lock(f"{prefix}/k").acquire()


def test_destroy_deletes_unheld_lock_only(client, prefix):
    a, b = client.lock(f"{prefix}/k"), client.lock(f"{prefix}/k")
    assert a.acquire()
    with pytest.raises(LockInUse):
        b.destroy()
    a.release()
    b.destroy()
    assert client.kv.get(f"{prefix}/k").value is None


def test_acquire_after_invalidation_waits_for_lock_delay(client, prefix):
    key = f"{prefix}/k"
    holder = client.lock(key, lock_delay="2s")
    assert holder.acquire()
    standby = client.lock(key, retry_time=0.1)
    got: list[float] = []
    threading.Thread(target=lambda: standby.acquire() and got.append(time.monotonic()), daemon=True).start()
    invalidated = time.monotonic()
    client.session.destroy(holder.session_id)
    assert holder.lost.wait(10)
    wait_for(lambda: got, timeout=15, what="standby acquires")
    assert got[0] - invalidated >= 1.9  # lock-delay honoured
    standby.release()
    holder.release()


def test_node_check_failure_loses_lock_and_standby_waits_lock_delay(client, prefix):
    node = f"host-{uuid.uuid4().hex[:6]}"

    def register(status: str) -> None:
        client.catalog.register({"Node": node, "Address": "127.0.0.2", "Check": {
            "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": status}})

    register("passing")
    key = f"{prefix}/k"
    holder = client.lock(key, session_node=node, lock_delay="2s")
    assert holder.acquire()
    standby = client.lock(key, retry_time=0.1)
    got: list[float] = []
    threading.Thread(target=lambda: standby.acquire() and got.append(time.monotonic()), daemon=True).start()
    failed_at = time.monotonic()
    register("critical")  # the holder's node is gone: its session is invalidated
    assert holder.lost.wait(10)
    wait_for(lambda: got, timeout=15, what="standby acquires")
    assert got[0] - failed_at >= 1.9
    standby.release()
    holder.release()


def test_lock_lost_when_agent_unreachable(dev_server):
    with Client(dev_server.addr) as c:
        lock = c.lock("k/.lock", monitor_retries=2, monitor_retry_time=0.2)
        assert lock.acquire()
        dev_server.stop(signal.SIGKILL)
        assert lock.lost.wait(15)
        assert "monitor read failed" in (lock.lost_reason or "")
        with pytest.raises(LockError):
            lock.release()


def test_lock_lost_when_agent_hangs_without_a_client_timeout(dev_server):
    """A paused agent answers nothing and closes nothing: with no client timeout (the Go api's
    default) every request to it hangs. The holder still stops believing once no renewal has
    succeeded for the hold window (the 5s lock-delay here, shorter than the TTL)."""
    with Client(dev_server.addr, timeout=None) as c:
        lock = c.lock("k/.lock", session_ttl="10s", lock_delay="5s")
        assert lock.acquire()
        dev_server.proc.send_signal(signal.SIGSTOP)
        try:
            assert lock.lost.wait(60)
            assert (lock.lost_reason or "").startswith("session not renewed for 5s")
            assert not lock.held
        finally:
            dev_server.proc.send_signal(signal.SIGCONT)


# -- interop with the Go api's way of writing -----------------------------------------------


def test_go_style_holder_excludes_meshctl(client, prefix, server):
    key = f"{prefix}/.lock"
    go = GoStyle(server.url)
    assert go.acquire(key, LOCK_FLAG_VALUE)
    try:
        assert client.lock(key, try_once=True, wait_time=0.5).acquire() is False
        mine = client.lock(key)
        got = threading.Event()
        threading.Thread(target=lambda: mine.acquire() and got.set(), daemon=True).start()
        assert not got.wait(0.3)
        assert go.release(key, LOCK_FLAG_VALUE)
        assert got.wait(10)
        assert not go.acquire(key, LOCK_FLAG_VALUE)  # and now meshctl excludes the Go contender
        mine.release()
    finally:
        go.destroy()


def test_meshctl_holder_excludes_go_style(client, prefix, server):
    key = f"{prefix}/.lock"
    with client.lock(key) as lock:
        go = GoStyle(server.url)
        try:
            pair = go.get(key)
            assert pair["Flags"] == LOCK_FLAG_VALUE and pair["Session"] == lock.session_id
            assert not go.acquire(key, LOCK_FLAG_VALUE)
        finally:
            go.destroy()


def test_semaphore_document_is_byte_for_byte_consul(client, prefix, server):
    a, b = client.semaphore(prefix, 3), client.semaphore(prefix, 3)
    assert a.acquire() and b.acquire()
    try:
        raw = requests.get(f"{server.url}/v1/kv/{prefix}/.lock", timeout=10).json()[0]
        sids = sorted([a.session_id, b.session_id])
        expected = '{"Limit":3,"Holders":{"' + sids[0] + '":true,"' + sids[1] + '":true}}'
        assert base64_value(raw) == expected.encode()
        assert raw["Flags"] == SEMAPHORE_FLAG_VALUE == 16210313421097356768 and "Session" not in raw
        contender = requests.get(f"{server.url}/v1/kv/{prefix}/{a.session_id}", timeout=10).json()[0]
        assert contender["Flags"] == SEMAPHORE_FLAG_VALUE and contender["Session"] == a.session_id
        sess = requests.get(f"{server.url}/v1/session/info/{a.session_id}", timeout=10).json()[0]
        assert (sess["Name"], sess["TTL"], sess["Behavior"]) == ("Consul API Semaphore", "15s", "delete")
    finally:
        a.release()
        b.release()
    raw = requests.get(f"{server.url}/v1/kv/{prefix}/.lock", timeout=10).json()[0]
    assert base64_value(raw) == b'{"Limit":3,"Holders":{}}'
    assert client.kv.keys(prefix).value == [f"{prefix}/.lock"]  # contender keys removed


def test_semaphore_limit_and_go_style_contenders(client, prefix, server):
    go1, go2 = GoStyle(server.url, "delete"), GoStyle(server.url, "delete")
    try:
        assert go1.semaphore_acquire(prefix, 2) and go2.semaphore_acquire(prefix, 2)
        mine = client.semaphore(prefix, 2, try_once=True, wait_time=0.5)
        assert mine.acquire() is False  # both slots taken by Go-style holders
        mine = client.semaphore(prefix, 2)
        got = threading.Event()
        threading.Thread(target=lambda: mine.acquire() and got.set(), daemon=True).start()
        assert not got.wait(0.3)
        go1.destroy()  # its contender key goes (behaviour delete): the holder is pruned
        assert got.wait(10)
        doc = json.loads(client.kv.get(f"{prefix}/.lock").value.value)
        assert doc == {"Limit": 2, "Holders": {go2.session: True, mine.session_id: True}}
        mine.release()
    finally:
        go1.destroy()
        go2.destroy()


def test_semaphore_limit_conflict_and_lock_conflict(client, prefix):
    a = client.semaphore(prefix, 2)
    assert a.acquire()
    with pytest.raises(LockError, match=r"semaphore limit conflict \(lock: 2, local: 3\)"):
        client.semaphore(prefix, 3).acquire()
    with pytest.raises(LockConflict):  # a lock on the same prefix (`consul lock` uses <prefix>/.lock)
        client.lock(f"{prefix}/.lock").acquire()
    a.release()


def test_semaphore_lost_when_session_invalidated(client, prefix):
    a = client.semaphore(prefix, 2)
    assert a.acquire()
    client.session.destroy(a.session_id)
    assert a.lost.wait(10)
    a.release()
    assert client.kv.keys(prefix).value == [f"{prefix}/.lock"]


def test_semaphore_destroy(client, prefix):
    a, b = client.semaphore(prefix, 2), client.semaphore(prefix, 2)
    assert a.acquire()
    with pytest.raises(LockInUse):
        b.destroy()
    a.release()
    b.destroy()
    assert client.kv.keys(prefix).value == []


def test_semaphore_rejects_bad_arguments(client):
    with pytest.raises(ValueError):
        Semaphore(client, "p", 0)
    with pytest.raises(ValueError):
        Lock(client, "")


# -- leader election ---------------------------------------------------------------------------


def test_leader_election_hands_over(client, prefix):
    events: list[tuple[str, str]] = []
    key = f"{prefix}/leader"

    def election(name: str) -> LeaderElection:
        return LeaderElection(client, key, value=name, on_elected=lambda: events.append(("elected", name)),
                              on_lost=lambda: events.append(("lost", name)))

    a = election("a").start()
    wait_for(lambda: ("elected", "a") in events, what="a elected")
    b = election("b").start()
    assert b.leader() == b"a" and not b.is_leader
    assert a.stop(timeout=60), "a's election thread still running"
    # stop() returned: a's term is over and its on_lost ran (before b could be elected)
    assert events[:2] == [("elected", "a"), ("lost", "a")] and not a.is_leader
    wait_for(lambda: ("elected", "b") in events, what="b elected")
    assert b.leader() == b"b" and b.is_leader
    assert b.stop(timeout=60), "b's election thread still running"
    assert events == [("elected", "a"), ("lost", "a"), ("elected", "b"), ("lost", "b")]
    assert b.leader() is None and not b.is_leader


def test_leader_election_stop_right_after_acquiring_resigns(client, prefix, monkeypatch):
    """A stop() landing between the lock being acquired and the term starting is not lost."""
    events: list[str] = []
    e = LeaderElection(client, f"{prefix}/leader", value="x", on_elected=lambda: events.append("elected"),
                       on_lost=lambda: events.append("lost"))
    acquire = e.lock.acquire

    def acquire_then_stop(stop=None):
        held = acquire(stop)
        e.stop()  # on the election's own thread: sets the flags, does not wait
        return held

    monkeypatch.setattr(e.lock, "acquire", acquire_then_stop)
    e.start()
    assert e.stop(timeout=60), "the election thread missed the stop"
    assert events == [] and not e.is_leader
    assert e.leader() is None  # the lock was released


def test_leader_election_campaigns_again_after_loss(client, prefix):
    elected = []
    e = LeaderElection(client, f"{prefix}/leader", on_elected=lambda: elected.append(1), lock_delay="0s").start()
    wait_for(lambda: e.is_leader, what="elected")
    client.session.destroy(e.lock.session_id)
    wait_for(lambda: len(elected) == 2 and e.is_leader, what="re-elected")
    e.stop(timeout=10)
