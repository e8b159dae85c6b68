"""The web UI in a real browser (headless Chromium) against real dev stores.

Every wait is on a DOM condition, with a generous bound; no test reloads a page to see a change.
Screenshots of the main pages land in the test's tmp dir (the `shots` fixture).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from devserver import DevServer, start_dev_server, wait_for

pytestmark = pytest.mark.integration

BOUND = 20.0  # seconds: generous; the UI follows blocking queries and answers in well under one
ROOT = "root-" + uuid.uuid4().hex
TOKEN_KEY = "meshctl.ui.token"


def api(srv: DevServer, method: str, path: str, token: str | None = None, **kw: Any) -> requests.Response:
    headers = {"X-Consul-Token": token} if token else {}
    r = requests.request(method, srv.url + path, headers=headers, timeout=30, **kw)
    assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text}"
    return r


def wait(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = BOUND) -> Any:
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        TimeoutException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(
            condition)
    except TimeoutException:
        page = driver.execute_script("return document.getElementById('main')?.innerText || document.body.innerText")
        raise AssertionError(f"timed out waiting for {what} at {driver.current_url}; the page says:\n{page}") from None


def css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def shown(selector: str) -> Callable[[Any], Any]:
    def find(d: Any) -> Any:
        el = css(d, selector)
        return el if el.is_displayed() else None

    return find


def text_of(selector: str, wanted: str) -> Callable[[Any], Any]:
    return lambda d: wanted in css(d, selector).text


def open_page(driver: Any, srv: DevServer, path: str, token: str | None = None) -> None:
    """Load a page of the UI (the token, if any, stored first as the login page would)."""
    driver.get(srv.url + "/ui/login")
    wait(driver, shown("#login-form"), "the login page")
    if token:
        driver.execute_script("localStorage.setItem(arguments[0], arguments[1])", TOKEN_KEY, token)
    else:
        driver.execute_script("localStorage.removeItem(arguments[0])", TOKEN_KEY)
    driver.get(srv.url + path)


def mark_document(driver: Any) -> None:
    driver.execute_script("window.__sameDocument = 'not reloaded'")


def same_document(driver: Any) -> bool:
    return driver.execute_script("return window.__sameDocument") == "not reloaded"


def screenshot(driver: Any, shots: Path, name: str) -> Path:
    path = shots / f"{name}.png"
    driver.execute_script("window.scrollTo(0, 0); document.activeElement && document.activeElement.blur()")
    assert driver.save_screenshot(str(path)), path
    assert path.stat().st_size > 1000
    return path


def set_text(el: Any, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(Keys.DELETE)
    el.send_keys(text)


def kv_raw(srv: DevServer, key: str, token: str | None = None) -> requests.Response:
    headers = {"X-Consul-Token": token} if token else {}
    return requests.get(f"{srv.url}/v1/kv/{key}?raw", headers=headers, timeout=30)


# ---------------------------------------------------------------------- a dev store without ACLs


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Any:
    srv = start_dev_server(tmp_path_factory.mktemp("ui-browser"), node="dev-node-1")
    wait_for(lambda: requests.get(srv.url + "/v1/catalog/node/dev-node-1", timeout=5).json(), what="node registered")
    # a few services to look at
    api(srv, "PUT", "/v1/agent/service/register", json={
        "Name": "web", "ID": "web-1", "Port": 8080, "Address": "127.0.0.1", "Tags": ["http", "v2"],
        "Meta": {"version": "2.4.1"}, "Check": {"CheckID": "web-ttl", "Name": "web heartbeat", "TTL": "30m"}})
    api(srv, "PUT", "/v1/agent/check/pass/web-ttl?note=200 OK in 3ms")
    api(srv, "PUT", "/v1/agent/service/register", json={
        "Name": "api", "ID": "api-1", "Port": 9090, "Tags": ["grpc"],
        "Check": {"CheckID": "api-ttl", "Name": "api readiness", "TTL": "30m"}})
    api(srv, "PUT", "/v1/agent/check/warn/api-ttl?note=slow responses: p99 1.8s")
    api(srv, "PUT", "/v1/catalog/register", json={
        "Node": "db-host", "Address": "127.0.0.5",
        "Service": {"ID": "postgres-1", "Service": "postgres", "Port": 5432, "Tags": ["primary"]},
        "Check": {"CheckID": "pg", "Name": "postgres accepting", "Status": "passing", "ServiceID": "postgres-1",
                  "Output": "accepting connections"}})
    api(srv, "PUT", "/v1/kv/app/config/port", data=b"8080")
    api(srv, "PUT", "/v1/kv/app/config/log-level", data=b"info")
    api(srv, "PUT", "/v1/kv/app/feature-flags", data=b'{"new-checkout": true}')
    yield srv
    srv.stop()


def test_a_failing_check_turns_its_row_red_without_reload(server, browser, shots) -> None:
    open_page(browser, server, "/ui/services")
    row = 'tr.service-row[data-service="web"]'
    wait(browser, lambda d: css(d, row).get_attribute("data-status") == "passing", "web passing")
    wait(browser, shown('tr.service-row[data-service="api"][data-status="warning"]'), "api warning")
    wait(browser, text_of('tr[data-failing-for="api"]', "slow responses: p99 1.8s"), "api's check output")
    passing_bg = css(browser, row + " td").value_of_css_property("background-color")
    mark_document(browser)

    api(server, "PUT", "/v1/agent/check/fail/web-ttl?note=connection refused on :8080")

    wait(browser, lambda d: css(d, row).get_attribute("data-status") == "critical", "web's row turning critical")
    assert same_document(browser), "the page was reloaded"
    cell = css(browser, row + " td")
    red = cell.value_of_css_property("background-color")
    assert red != passing_bg and red.startswith("rgba(253, 236, 236"), red
    assert "rgba(198, 40, 40" in cell.value_of_css_property("border-left-color")
    wait(browser, text_of('tr[data-failing-for="web"]', "connection refused on :8080"), "the failing check's output")
    assert "1 critical" in css(browser, row).text
    screenshot(browser, shots, "services")

    # and back to passing, still without a reload; a new instance shows up the same way
    api(server, "PUT", "/v1/agent/check/pass/web-ttl?note=200 OK in 2ms")
    wait(browser, lambda d: css(d, row).get_attribute("data-status") == "passing", "web passing again")
    api(server, "PUT", "/v1/catalog/register", json={"Node": "web-host-2", "Address": "127.0.0.6",
                                                     "Service": {"ID": "web-2", "Service": "web", "Port": 8080}})
    wait(browser, text_of(row, "2 instances"), "the second web instance")
    assert same_document(browser)
    api(server, "PUT", "/v1/catalog/deregister", json={"Node": "web-host-2"})
    wait(browser, text_of(row, "1 instance"), "the second web instance gone")
    api(server, "PUT", "/v1/agent/check/fail/web-ttl?note=connection refused on :8080")


def test_one_services_instances_with_their_checks(server, browser, shots) -> None:
    open_page(browser, server, "/ui/services")
    wait(browser, shown('tr.service-row[data-service="api"] a'), "the services list").click()
    card = '[data-instance="api-1"]'
    wait(browser, shown(card), "api's instance")
    assert browser.current_url.endswith("/ui/services/api")
    wait(browser, lambda d: css(d, card).get_attribute("data-status") == "warning", "api-1 warning")
    check = css(browser, card + ' tr[data-check="api-ttl"]')
    assert check.get_attribute("data-status") == "warning"
    assert "slow responses" in check.text and "api readiness" in check.text
    assert "grpc" in css(browser, card).text and "9090" in css(browser, card).text
    screenshot(browser, shots, "service")


def test_nodes_with_their_checks(server, browser, shots) -> None:
    open_page(browser, server, "/ui/nodes")
    wait(browser, shown('tr.node-row[data-node="db-host"][data-status="passing"]'), "db-host")
    wait(browser, shown('tr.node-row[data-node="dev-node-1"]'), "the dev node")
    screenshot(browser, shots, "nodes")
    css(browser, 'tr.node-row[data-node="db-host"] a').click()
    wait(browser, shown('#node-checks tr[data-check="pg"][data-status="passing"]'), "db-host's check")
    wait(browser, text_of("#node-services", "postgres"), "db-host's services")
    screenshot(browser, shots, "node")


def test_a_kv_edit_lands(server, browser, shots) -> None:
    api(server, "PUT", "/v1/kv/edit/port", data=b"8080")
    open_page(browser, server, "/ui/kv/edit/port")
    value = wait(browser, shown("#kv-value"), "the editor")
    assert value.get_attribute("value") == "8080"
    set_text(value, "9090")
    set_text(css(browser, "#kv-flags"), "42")
    css(browser, "#kv-save").click()
    wait(browser, text_of("#kv-status", "Saved."), "the save to be acknowledged")
    assert kv_raw(server, "edit/port").content == b"9090"
    entry = requests.get(server.url + "/v1/kv/edit/port", timeout=10).json()[0]
    assert entry["Flags"] == 42
    # a second edit is based on the new ModifyIndex: it lands too, with no conflict
    wait(browser, lambda d: css(d, "#kv-modify-index").text == str(entry["ModifyIndex"]), "the new modify index")
    set_text(value, "9191")
    css(browser, "#kv-save").click()
    wait(browser, lambda d: kv_raw(server, "edit/port").content == b"9191", "the second save")
    assert not browser.find_elements("css selector", "#kv-conflict")


def test_browse_create_and_delete_keys(server, browser, shots) -> None:
    open_page(browser, server, "/ui/kv/")
    wait(browser, shown('tr.kv-folder[data-key="app/"] a'), "the app/ folder").click()
    wait(browser, shown('tr.kv-folder[data-key="app/config/"]'), "app/config/")
    assert css(browser, 'tr.kv-key[data-key="app/feature-flags"]').is_displayed()
    mark_document(browser)
    css(browser, "#kv-create-details summary").click()
    set_text(wait(browser, shown("#kv-new-key"), "the create form"), "created-in-ui")
    set_text(css(browser, "#kv-new-value"), "hello from the browser")
    screenshot(browser, shots, "kv-folder")
    css(browser, "#kv-create-submit").click()
    value = wait(browser, shown("#kv-value"), "the new key's editor")
    assert browser.current_url.endswith("/ui/kv/app/created-in-ui")
    assert value.get_attribute("value") == "hello from the browser"
    assert kv_raw(server, "app/created-in-ui").content == b"hello from the browser"
    # creating it again is refused (cas=0), not an overwrite
    browser.back()
    css(browser, "#kv-create-details summary").click()
    set_text(wait(browser, shown("#kv-new-key"), "the create form"), "created-in-ui")
    set_text(css(browser, "#kv-new-value"), "second")
    css(browser, "#kv-create-submit").click()
    wait(browser, text_of("#kv-new-status", "already exists"), "the refusal")
    assert kv_raw(server, "app/created-in-ui").content == b"hello from the browser"
    # delete
    browser.get(server.url + "/ui/kv/app/created-in-ui")
    wait(browser, shown("#kv-delete"), "the editor").click()
    wait(browser, shown("#kv-delete-yes"), "the confirmation").click()
    wait(browser, lambda d: d.current_url.endswith("/ui/kv/app/"), "back to the folder")
    assert kv_raw(server, "app/created-in-ui").status_code == 404


def test_a_cas_conflict_is_shown_not_lost(server, browser, shots) -> None:
    api(server, "PUT", "/v1/kv/cas/setting", data=b"first")
    open_page(browser, server, "/ui/kv/cas/setting")
    value = wait(browser, shown("#kv-value"), "the editor")
    assert value.get_attribute("value") == "first"
    api(server, "PUT", "/v1/kv/cas/setting", data=b"changed over HTTP")  # another editor, after the page loaded
    set_text(value, "my edit in the browser")
    css(browser, "#kv-save").click()

    wait(browser, shown("#kv-conflict"), "the conflict")
    assert css(browser, "#kv-current").text == "changed over HTTP"
    assert "Not saved" in css(browser, "#kv-conflict").text
    assert value.get_attribute("value") == "my edit in the browser"  # the user's text is kept
    assert kv_raw(server, "cas/setting").content == b"changed over HTTP"  # and nothing was overwritten
    screenshot(browser, shots, "kv-conflict")

    css(browser, "#kv-overwrite").click()  # the user decides: their text wins, on the index they have now seen
    wait(browser, text_of("#kv-status", "Saved."), "the overwrite")
    assert kv_raw(server, "cas/setting").content == b"my edit in the browser"


def test_sessions_and_the_locks_they_hold(server, browser, shots) -> None:
    sid = api(server, "PUT", "/v1/session/create", json={"Name": "deploy-lock", "TTL": "300s"}).json()["ID"]
    assert api(server, "PUT", f"/v1/kv/locks/deploy?acquire={sid}", data=b"holder").json() is True
    open_page(browser, server, "/ui/sessions")
    lock = wait(browser, shown(f'#locks tr[data-key="locks/deploy"][data-session="{sid}"]'), "the held lock")
    assert "deploy-lock" in lock.text
    session = css(browser, f'#sessions tr[data-session="{sid}"]')
    assert "locks/deploy" in session.text and "300s" in session.text
    screenshot(browser, shots, "sessions")
    mark_document(browser)
    api(server, "PUT", f"/v1/kv/locks/deploy?release={sid}", data=b"")
    wait(browser, lambda d: not d.find_elements("css selector", '#locks tr[data-key="locks/deploy"]'), "the release")
    assert same_document(browser)


def test_servers_leader_and_raft(server, browser, shots) -> None:
    open_page(browser, server, "/ui/servers")
    wait(browser, lambda d: css(d, "#leader code").text.count(":") == 1, "the leader")
    wait(browser, shown("#raft-servers tr.is-leader"), "the Raft configuration")
    wait(browser, shown("#autopilot *"), "the autopilot section")
    screenshot(browser, shots, "servers")


# ---------------------------------------------------------------------- with ACLs


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory) -> Any:
    srv = start_dev_server(tmp_path_factory.mktemp("ui-acl"), "-acl-enabled", "-acl-default-policy", "deny",
                           "-acl-initial-management", ROOT, node="acl-node")
    wait_for(lambda: requests.get(srv.url + "/v1/acl/token/self", headers={"X-Consul-Token": ROOT},
                                  timeout=5).status_code == 200, what="ACL bootstrap")
    api(srv, "PUT", "/v1/kv/team/config", ROOT, data=b"original")
    api(srv, "PUT", "/v1/catalog/register", ROOT, json={
        "Node": "billing-host", "Address": "127.0.0.7",
        "Service": {"ID": "billing-1", "Service": "billing", "Port": 7000},
        "Check": {"CheckID": "billing-chk", "Name": "billing", "Status": "passing", "ServiceID": "billing-1"}})

    def token(description: str, rules: str) -> str:
        policy = api(srv, "PUT", "/v1/acl/policy", ROOT, json={"Name": description.replace(" ", "-"),
                                                                "Rules": rules}).json()
        return api(srv, "PUT", "/v1/acl/token", ROOT, json={"Description": description,
                                                             "Policies": [{"ID": policy["ID"]}]}).json()["SecretID"]

    srv.tokens = {  # type: ignore[attr-defined]
        "read-only": token("read only", 'key_prefix "" { policy = "read" }\nservice_prefix "" { policy = "read" }\n'
                                        'node_prefix "" { policy = "read" }'),
        "kv-only": token("kv only", 'key_prefix "" { policy = "read" }'),
    }
    yield srv
    srv.stop()


def test_a_read_only_token_cannot_save(acl_server, browser, shots) -> None:
    browser.get(acl_server.url + "/ui/login?next=/ui/kv/team/config")
    set_text(wait(browser, shown("#token-input"), "the login form"), acl_server.tokens["read-only"])
    screenshot(browser, shots, "login")
    css(browser, "#login-submit").click()
    wait(browser, text_of("#who", "read only"), "logged in as the read-only token")
    value = wait(browser, shown("#kv-value"), "the editor")
    assert browser.current_url.endswith("/ui/kv/team/config")
    assert value.get_attribute("value") == "original"
    set_text(value, "changed by a reader")
    css(browser, "#kv-save").click()
    wait(browser, text_of("#kv-status", "Permission denied"), "the refusal")
    assert value.get_attribute("value") == "changed by a reader"  # the form keeps the user's text
    assert kv_raw(acl_server, "team/config", ROOT).content == b"original"
    screenshot(browser, shots, "acl-denied")
    # the token is kept in localStorage and sent with every call: a reload still reads as that token
    assert browser.execute_script("return localStorage.getItem(arguments[0])", TOKEN_KEY) == \
        acl_server.tokens["read-only"]
    browser.get(acl_server.url + "/ui/services")
    wait(browser, shown('tr.service-row[data-service="billing"]'), "services as the read-only token")


def test_a_token_that_cannot_read_services_sees_none(acl_server, browser, shots) -> None:
    open_page(browser, acl_server, "/ui/services", ROOT)  # the management token sees it: the data is there
    wait(browser, shown('tr.service-row[data-service="billing"]'), "billing as the management token")
    open_page(browser, acl_server, "/ui/services", acl_server.tokens["kv-only"])
    wait(browser, shown("#no-services"), "the empty services page")
    assert "billing" not in browser.page_source
    screenshot(browser, shots, "services-token-without-service-read")
    open_page(browser, acl_server, "/ui/kv/team/config", acl_server.tokens["kv-only"])
    value = wait(browser, shown("#kv-value"), "the key this token may read")
    assert value.get_attribute("value") == "original"
    open_page(browser, acl_server, "/ui/services")  # no token at all: anonymous, which may read nothing
    wait(browser, shown("#no-services"), "the empty services page for anonymous")
    assert "billing" not in browser.page_source
