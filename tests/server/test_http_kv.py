"""/v1/kv and /v1/txn over HTTP against a real `meshctl agent -dev` process."""

from __future__ import annotations

import base64
import threading
import time

import pytest
import requests

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(shared_dev_server):
    session = requests.Session()
    base = shared_dev_server.url

    class API:
        url = base

        def get(self, path, **kw):
            return session.get(base + path, **kw)

        def put(self, path, **kw):
            return session.put(base + path, **kw)

        def delete(self, path, **kw):
            return session.delete(base + path, **kw)

    return API()


def b64(text: bytes) -> str:
    return base64.b64encode(text).decode()


def test_put_then_get_returns_consul_shape_and_headers(api):
    assert api.put("/v1/kv/kv1/a", data=b"hello").json() is True
    r = api.get("/v1/kv/kv1/a")
    assert r.status_code == 200
    [entry] = r.json()
    assert entry["Key"] == "kv1/a" and entry["Value"] == b64(b"hello") and entry["Flags"] == 0
    assert entry["LockIndex"] == 0 and "Session" not in entry
    assert int(r.headers["X-Consul-Index"]) == entry["ModifyIndex"]
    assert r.headers["X-Consul-KnownLeader"] == "true"
    assert r.headers["X-Consul-LastContact"] == "0"
    assert r.headers["Content-Type"].startswith("application/json")


def test_missing_key_is_404_with_empty_body_and_index_headers(api):
    r = api.get("/v1/kv/kv1/missing")
    assert r.status_code == 404 and r.content == b""
    assert int(r.headers["X-Consul-Index"]) >= 1


def test_empty_put_stores_a_null_value(api):
    api.put("/v1/kv/kv1/folder/")
    assert api.get("/v1/kv/kv1/folder/").json()[0]["Value"] is None


def test_raw_returns_the_bytes(api):
    api.put("/v1/kv/kv1/raw", data=b"\x00\x01binary")
    r = api.get("/v1/kv/kv1/raw?raw")
    assert r.content == b"\x00\x01binary"
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_flags_roundtrip(api):
    api.put("/v1/kv/kv1/flagged?flags=3304740253564472344", data=b"x")
    assert api.get("/v1/kv/kv1/flagged").json()[0]["Flags"] == 3304740253564472344


@pytest.mark.parametrize("recurse", ["recurse", "recurse=", "recurse=1", "recurse=true", "recurse=True"])
def test_presence_flags_accept_any_spelling(api, recurse):
    api.put("/v1/kv/kv2/x", data=b"1")
    assert [e["Key"] for e in api.get(f"/v1/kv/kv2?{recurse}").json()] == ["kv2/x"]


def test_recurse_and_keys_with_separator(api):
    for key in ("web/bar", "web/foo", "web/subdir/a", "web/subdir/b"):
        api.put(f"/v1/kv/kv3/{key}", data=b"v")
    assert [e["Key"] for e in api.get("/v1/kv/kv3/web/?recurse").json()] == [
        "kv3/web/bar", "kv3/web/foo", "kv3/web/subdir/a", "kv3/web/subdir/b"]
    assert api.get("/v1/kv/kv3/web/?keys&separator=/").json() == [
        "kv3/web/bar", "kv3/web/foo", "kv3/web/subdir/"]
    assert api.get("/v1/kv/kv3/nothing/?keys").status_code == 404
    assert api.get("/v1/kv/kv3/nothing/?recurse").status_code == 404


def test_cas(api):
    assert api.put("/v1/kv/kv4/c?cas=0", data=b"1").json() is True
    assert api.put("/v1/kv/kv4/c?cas=0", data=b"2").json() is False
    index = api.get("/v1/kv/kv4/c").json()[0]["ModifyIndex"]
    assert api.put(f"/v1/kv/kv4/c?cas={index + 100}", data=b"3").json() is False
    assert api.put(f"/v1/kv/kv4/c?cas={index}", data=b"3").json() is True
    assert base64.b64decode(api.get("/v1/kv/kv4/c").json()[0]["Value"]) == b"3"


def test_delete_cas_and_recurse(api):
    api.put("/v1/kv/kv5/a", data=b"1")
    api.put("/v1/kv/kv5/b/c", data=b"1")
    index = api.get("/v1/kv/kv5/a").json()[0]["ModifyIndex"]
    assert api.delete(f"/v1/kv/kv5/a?cas={index + 1}").json() is False
    assert api.delete(f"/v1/kv/kv5/a?cas={index}").json() is True
    assert api.delete("/v1/kv/kv5?recurse").json() is True
    assert api.get("/v1/kv/kv5?recurse").status_code == 404


def test_acquire_and_release_with_a_session(api):
    sid = api.put("/v1/session/create", json={"Name": "t"}).json()["ID"]
    other = api.put("/v1/session/create", json={"Name": "t2"}).json()["ID"]
    assert api.put(f"/v1/kv/kv6/lock?acquire={sid}", data=b"mine").json() is True
    entry = api.get("/v1/kv/kv6/lock").json()[0]
    assert entry["Session"] == sid and entry["LockIndex"] == 1
    assert api.put(f"/v1/kv/kv6/lock?acquire={other}", data=b"theirs").json() is False
    assert api.put(f"/v1/kv/kv6/lock?release={other}").json() is False
    assert api.put(f"/v1/kv/kv6/lock?release={sid}", data=b"done").json() is True
    entry = api.get("/v1/kv/kv6/lock").json()[0]
    assert "Session" not in entry and entry["LockIndex"] == 1
    r = api.put("/v1/kv/kv6/lock?acquire=not-a-session")
    assert r.status_code == 500 and 'invalid session "not-a-session"' in r.text


def test_destroying_the_holder_starts_lock_delay(api):
    sid = api.put("/v1/session/create", json={"LockDelay": "2s"}).json()["ID"]
    other = api.put("/v1/session/create", json={"LockDelay": "0s"}).json()["ID"]
    assert api.put(f"/v1/kv/kv7/lock?acquire={sid}").json() is True
    api.put(f"/v1/session/destroy/{sid}")
    assert api.put(f"/v1/kv/kv7/lock?acquire={other}").json() is False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if api.put(f"/v1/kv/kv7/lock?acquire={other}").json():
            break
        time.sleep(0.1)
    else:
        pytest.fail("lock-delay never ended")


def test_blocking_get_wakes_on_write(api):
    api.put("/v1/kv/kv8/watched", data=b"1")
    index = int(api.get("/v1/kv/kv8/watched").headers["X-Consul-Index"])
    result = {}

    def wait():
        r = requests.get(f"{api.url}/v1/kv/kv8/watched?index={index}&wait=30s")
        result["r"] = r

    t = threading.Thread(target=wait)
    started = time.monotonic()
    t.start()
    time.sleep(0.3)
    assert t.is_alive(), "a blocking query returned before any change"
    api.put("/v1/kv/kv8/watched", data=b"2")
    t.join(10)
    assert not t.is_alive()
    assert time.monotonic() - started < 10
    r = result["r"]
    assert int(r.headers["X-Consul-Index"]) > index
    assert base64.b64decode(r.json()[0]["Value"]) == b"2"


def test_blocking_prefix_query_is_not_woken_by_other_prefixes(api):
    api.put("/v1/kv/kv9/a", data=b"1")
    index = int(api.get("/v1/kv/kv9/?recurse").headers["X-Consul-Index"])
    done = threading.Event()
    result = {}

    def wait():
        result["r"] = requests.get(f"{api.url}/v1/kv/kv9/?recurse&index={index}&wait=2s")
        done.set()

    threading.Thread(target=wait).start()
    time.sleep(0.2)
    api.put("/v1/kv/elsewhere/x", data=b"1")
    assert not done.wait(0.8), "a write outside the prefix woke the query"
    api.delete("/v1/kv/kv9/a")
    assert done.wait(5)
    assert result["r"].status_code == 404
    assert int(result["r"].headers["X-Consul-Index"]) > index


def test_blocking_wait_times_out_with_current_data(api):
    api.put("/v1/kv/kv10/a", data=b"1")
    index = int(api.get("/v1/kv/kv10/a").headers["X-Consul-Index"])
    started = time.monotonic()
    r = api.get(f"/v1/kv/kv10/a?index={index}&wait=500ms")
    elapsed = time.monotonic() - started
    assert r.status_code == 200 and int(r.headers["X-Consul-Index"]) == index
    assert 0.45 <= elapsed < 5


def test_txn_applies_atomically_and_409_on_failure(api):
    ok = api.put("/v1/txn", json=[{"KV": {"Verb": "set", "Key": "kv11/a", "Value": b64(b"1")}},
                                  {"KV": {"Verb": "get", "Key": "kv11/a"}}])
    assert ok.status_code == 200
    body = ok.json()
    assert body["Errors"] is None and body["Results"][1]["KV"]["Value"] == b64(b"1")
    bad = api.put("/v1/txn", json=[{"KV": {"Verb": "set", "Key": "kv11/b", "Value": b64(b"1")}},
                                   {"KV": {"Verb": "cas", "Key": "kv11/a", "Value": b64(b"2"), "Index": 1}}])
    assert bad.status_code == 409
    assert bad.json()["Results"] is None
    assert bad.json()["Errors"] == [{"OpIndex": 1, "What": 'failed to set key "kv11/a", index is stale'}]
    assert api.get("/v1/kv/kv11/b").status_code == 404


def test_read_only_txn(api):
    api.put("/v1/kv/kv12/a", data=b"x")
    r = api.put("/v1/txn", json=[{"KV": {"Verb": "get-tree", "Key": "kv12/"}}])
    assert r.status_code == 200 and r.json()["Results"][0]["KV"]["Key"] == "kv12/a"
    assert r.headers["X-Consul-KnownLeader"] == "true"
