"""`-metrics-addr` of the tools: template (renders, errors, commands, dependencies) and lock (held, lost)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import requests
from devserver import free_port, wait_for
from metrics_support import meshctl_env, popen_meshctl, value

from meshctl.metrics import MetricsAddressError, parse_address

pytestmark = pytest.mark.integration


def _metrics(port: int) -> str:
    r = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    r.raise_for_status()
    return r.text


def _stop(proc) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except Exception:
            proc.kill()
            proc.wait()
    return proc.stdout.read() if proc.stdout else ""


def test_metrics_addr_parsing() -> None:
    assert parse_address(":9102") == ("127.0.0.1", 9102)
    assert parse_address("0.0.0.0:9") == ("0.0.0.0", 9)
    assert parse_address("[::1]:80") == ("::1", 80)
    for bad in ("9102", "host:port", "h:70000"):
        with pytest.raises(MetricsAddressError):
            parse_address(bad)


def test_template_counts_renders_errors_and_commands(shared_dev_server, tmp_path: Path) -> None:
    url = shared_dev_server.url
    requests.put(f"{url}/v1/kv/tm/k", data=b"one", timeout=5)
    requests.put(f"{url}/v1/kv/tm/j", data=b"not json", timeout=5)
    good, bad = tmp_path / "good.ctmpl", tmp_path / "bad.ctmpl"
    good.write_text('value={{ key "tm/k" }}\n')
    bad.write_text('{{ key "tm/j" | parseJSON }}\n')
    port = free_port()
    proc = popen_meshctl("template", "-template", f"{good}:{tmp_path / 'good.out'}:false",
                         "-template", f"{bad}:{tmp_path / 'bad.out'}", "-template-error-fatal=false",
                         "-metrics-addr", f"127.0.0.1:{port}", env=meshctl_env(shared_dev_server.addr))
    try:
        label = f"{good} => {tmp_path / 'good.out'}"
        wait_for(lambda: value(_metrics(port), "meshctl_template_renders_total", template=label) == 1, 30,
                 "the first render", log=lambda: proc.stdout.read() if proc.poll() is not None else "")
        text = _metrics(port)
        assert (value(text, "meshctl_template_render_errors_total") or 0) >= 1
        assert value(text, "meshctl_template_commands_total") == 1
        assert value(text, "meshctl_template_command_failures_total") == 1  # `false` exits 1
        assert value(text, "meshctl_template_dependencies") == 2
        assert 0 <= (value(text, "meshctl_template_seconds_since_last_render") or -1) < 300
        requests.put(f"{url}/v1/kv/tm/k", data=b"two", timeout=5)
        wait_for(lambda: value(_metrics(port), "meshctl_template_renders_total", template=label) == 2, 30,
                 "the re-render")
        assert (tmp_path / "good.out").read_text() == "value=two\n"
    finally:
        _stop(proc)


def test_lock_held_and_lost(shared_dev_server, tmp_path: Path) -> None:
    url = shared_dev_server.url
    port = free_port()
    proc = popen_meshctl("lock", "-reacquire", "-metrics-addr", f"127.0.0.1:{port}", "tm-lock", "sleep 300",
                         env=meshctl_env(shared_dev_server.addr))
    try:
        wait_for(lambda: value(_metrics(port), "meshctl_lock_held") == 1, 30, "the lock held")
        assert value(_metrics(port), "meshctl_lock_acquired_total") == 1
        assert value(_metrics(port), "meshctl_lock_lost_total") == 0
        requests.delete(f"{url}/v1/kv/tm-lock/.lock", timeout=5)  # someone removed the lock: it is lost
        wait_for(lambda: value(_metrics(port), "meshctl_lock_lost_total") == 1, 30, "the loss counted")
        wait_for(lambda: value(_metrics(port), "meshctl_lock_acquired_total") == 2, 60, "the lock taken again")
        assert value(_metrics(port), "meshctl_lock_held") == 1
    finally:
        _stop(proc)
