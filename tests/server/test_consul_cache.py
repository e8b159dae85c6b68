"""Agent caching (`?cached`), as Consul's "Agent caching" docs describe it, against a real dev agent.

Background-refresh endpoints answer MISS, then HIT (Age 0 while the refresh is healthy) and
show a write once the agent's own blocking refresh saw it; the simple-cache endpoint honours
`Cache-Control: max-age`.
"""

from __future__ import annotations

import pytest
import requests
from devserver import DevServer, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def url(shared_dev_server: DevServer) -> str:
    return shared_dev_server.url


def register(url: str, node: str, service: str, port: int) -> None:
    r = requests.put(f"{url}/v1/catalog/register", timeout=10, json={
        "Node": node, "Address": "127.0.0.2", "Service": {"ID": f"{service}-{port}", "Service": service, "Port": port}})
    assert r.status_code == 200, r.text


def cached(url: str, path: str, **headers: str) -> requests.Response:
    r = requests.get(f"{url}{path}", params={"cached": ""}, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return r


@pytest.mark.parametrize("path", ["/v1/catalog/service/{s}", "/v1/health/service/{s}", "/v1/catalog/services"])
def test_cached_read_misses_then_hits_and_follows_writes(url: str, path: str) -> None:
    name = "cache-" + path.split("/")[2] + "-" + path.split("/")[3]
    register(url, "cache-n1", name, 8001)
    path = path.format(s=name)
    first = cached(url, path)
    assert first.headers["X-Cache"] == "MISS" and "Age" not in first.headers
    second = cached(url, path)
    assert second.headers["X-Cache"] == "HIT"
    assert second.headers["Age"] == "0"  # refreshed in the background and in contact with the servers
    assert second.json() == first.json() and int(second.headers["X-Consul-Index"]) >= 1
    listing = path == "/v1/catalog/services"
    register(url, "cache-n2", name + "-new" if listing else name, 8002)

    def shows_write() -> bool:
        r = cached(url, path)
        seen = name + "-new" in r.json() if listing else len(r.json()) == 2
        return r.headers["X-Cache"] == "HIT" and seen

    wait_for(shows_write, timeout=60, what="the cached answer to show the new instance")
    # the plain read agrees with the refreshed cache, and carries no X-Cache
    plain = requests.get(f"{url}{path}", timeout=10)
    assert "X-Cache" not in plain.headers and plain.json() == cached(url, path).json()


def test_cached_with_index_blocks_until_the_entry_changes(url: str) -> None:
    register(url, "cache-b1", "cache-block", 8001)
    path = "/v1/catalog/service/cache-block"
    index = cached(url, path).headers["X-Consul-Index"]
    register(url, "cache-b2", "cache-block", 8002)  # the refresh wakes, then the blocked read
    r = requests.get(f"{url}{path}", params={"cached": "", "index": index, "wait": "120s"}, timeout=150)
    assert r.headers["X-Cache"] == "HIT" and len(r.json()) == 2
    assert int(r.headers["X-Consul-Index"]) > int(index)


def test_simple_cache_honours_max_age(url: str) -> None:
    """catalog/datacenters is a simple-cache type: kept as fetched; max-age=0 asks for a fresh one."""
    path = "/v1/catalog/datacenters"
    cached(url, path)
    hit = cached(url, path)
    assert hit.headers["X-Cache"] == "HIT" and hit.json() == ["dc1"] and int(hit.headers["Age"]) >= 0
    assert cached(url, path, **{"Cache-Control": "max-age=0"}).headers["X-Cache"] == "MISS"
    r = requests.get(f"{url}{path}", params={"cached": ""}, headers={"Cache-Control": "max-age=x"}, timeout=10)
    assert r.status_code == 400


def test_cached_and_consistent_conflict(url: str) -> None:
    r = requests.get(f"{url}/v1/catalog/services", params={"cached": "", "consistent": ""}, timeout=10)
    assert (r.status_code, r.text) == (400, "Cannot specify ?cached with ?consistent, conflicting semantics.")


def test_endpoints_consul_does_not_cache_ignore_cached(url: str) -> None:
    r = requests.get(f"{url}/v1/catalog/nodes", params={"cached": ""}, timeout=10)
    assert r.status_code == 200 and "X-Cache" not in r.headers
