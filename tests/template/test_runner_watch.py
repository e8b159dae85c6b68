"""The long-running runner as a real process: re-render on change, quiescence, commands, signals, reloads."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from ctrun import Proc, dev_agent, file_is, read, wait_until

from meshctl.client import Client


@pytest.fixture(scope="module")
def consul(tmp_path_factory):
    for server in dev_agent(tmp_path_factory):
        yield from _with_client(server)


def _with_client(server):
    c = Client(server.addr)
    yield server.addr, c
    c.close()


def lines(path) -> list[str]:
    return (read(path) or "").splitlines()


def test_change_rerenders_only_the_templates_that_use_it(consul, tmp_path):
    addr, c = consul
    c.kv.put("w1/a", "a1")
    c.kv.put("w1/b", "b1")
    (tmp_path / "a.ctmpl").write_text('{{ key "w1/a" }}')
    (tmp_path / "b.ctmpl").write_text('{{ key "w1/b" }}')
    p = Proc(addr, "-template", "a.ctmpl:a.txt:echo a >> log", "-template", "b.ctmpl:b.txt:echo b >> log",
             cwd=tmp_path)
    try:
        wait_until(lambda: lines(tmp_path / "log") == ["a", "b"], what="first render", proc=p)
        b_before = os.stat(tmp_path / "b.txt")
        c.kv.put("w1/a", "a2")
        wait_until(file_is(tmp_path / "a.txt", "a2"), what="a re-render", proc=p)
        wait_until(lambda: lines(tmp_path / "log") == ["a", "b", "a"], what="a's command", proc=p)
        b_after = os.stat(tmp_path / "b.txt")
        assert (b_before.st_ino, b_before.st_mtime_ns) == (b_after.st_ino, b_after.st_mtime_ns)
    finally:
        p.stop()


def test_flapping_check_output_does_not_rewrite_or_run_command(consul, tmp_path):
    addr, c = consul

    def reg(output: str, port: int = 80) -> None:
        c.catalog.register({"Node": "flap-n1", "Address": "10.8.0.1",
                            "Service": {"ID": "flap-1", "Service": "flap", "Port": port},
                            "Check": {"CheckID": "fc", "Name": "c", "Status": "passing", "ServiceID": "flap-1",
                                      "Output": output}})

    reg("ok 1")
    (tmp_path / "in.ctmpl").write_text('{{ range service "flap" }}{{ .Address }}:{{ .Port }}{{ end }}')
    p = Proc(addr, "-template", "in.ctmpl:out.txt:echo ran >> log", "-log-level", "debug", cwd=tmp_path)
    try:
        wait_until(file_is(tmp_path / "out.txt", "10.8.0.1:80"), proc=p, what="first render")
        wait_until(lambda: lines(tmp_path / "log") == ["ran"], proc=p, what="command")
        ino = os.stat(tmp_path / "out.txt").st_ino
        for i in range(5):
            reg(f"ok {i + 2}")
        reg("ok", port=81)  # a real change, after the flapping ones
        wait_until(file_is(tmp_path / "out.txt", "10.8.0.1:81"), proc=p, what="real change")
        wait_until(lambda: lines(tmp_path / "log") == ["ran", "ran"], proc=p, what="second command")
        assert os.stat(tmp_path / "out.txt").st_ino != ino
        assert p.output().count("rendered in.ctmpl") == 2
    finally:
        p.stop()


def test_quiescence_renders_once_after_the_burst(consul, tmp_path):
    addr, c = consul
    c.kv.put("w3/k", "0")
    (tmp_path / "in.ctmpl").write_text('{{ key "w3/k" }}')
    # min 2 s: far longer than a write takes even on a loaded machine, so the burst stays one
    # burst; max 120 s: a render within the wait below came from the quiet period, not the cap
    p = Proc(addr, "-template", "in.ctmpl:out.txt:cat out.txt >> log; echo >> log", "-wait", "2s:120s",
             cwd=tmp_path)
    try:
        wait_until(lambda: lines(tmp_path / "log") == ["0"], proc=p, what="first render (not delayed)")
        for i in range(1, 6):
            c.kv.put("w3/k", str(i))
            time.sleep(0.1)
        last = time.monotonic()
        wait_until(lambda: lines(tmp_path / "log") == ["0", "5"], timeout=60, proc=p, what="quiet render")
        done = time.monotonic()
        # (the runner may see the last write a moment before put() returns)
        assert done - last >= 1.8, "rendered before min of quiet"
        time.sleep(0.3)
        assert lines(tmp_path / "log") == ["0", "5"]
    finally:
        p.stop()


def test_quiescence_max_caps_the_delay(consul, tmp_path):
    addr, c = consul
    c.kv.put("w4/k", "0")
    (tmp_path / "in.ctmpl").write_text('{{ key "w4/k" }}')
    # a write every 0.2 s never leaves the 2 s min of quiet: only the 5 s max can render
    p = Proc(addr, "-template", "in.ctmpl:out.txt", "-wait", "2s:5s", cwd=tmp_path)
    stop = threading.Event()
    try:
        wait_until(file_is(tmp_path / "out.txt", "0"), proc=p, what="first render")

        def writer() -> None:
            i = 0
            while not stop.is_set():
                i += 1
                c.kv.put("w4/k", str(i))
                stop.wait(0.2)

        t0 = time.monotonic()
        th = threading.Thread(target=writer)
        th.start()
        wait_until(lambda: read(tmp_path / "out.txt") not in ("0", None), timeout=60, proc=p,
                   what="render at max, the writes still going")
        elapsed = time.monotonic() - t0
        assert elapsed >= 4.5, elapsed  # not before the max
    finally:
        stop.set()
        p.stop()


def test_sigterm_stops_gracefully_with_exit_0_and_sigint_with_12(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "in.ctmpl").write_text("static")
    for sig, code in ((signal.SIGTERM, 0), (signal.SIGINT, 12)):
        out = tmp_path / f"out-{sig}.txt"
        p = Proc(addr, "-template", f"in.ctmpl:{out.name}", "-pid-file", "ct.pid", cwd=tmp_path)
        try:
            wait_until(file_is(out, "static"), proc=p, what="render")
            p.signal(sig)
            assert p.wait(15) == code
            assert not (tmp_path / "ct.pid").exists()
        finally:
            p.stop()


def test_sighup_rereads_the_template(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "in.ctmpl").write_text("one")
    p = Proc(addr, "-template", "in.ctmpl:out.txt", cwd=tmp_path)
    try:
        wait_until(file_is(tmp_path / "out.txt", "one"), proc=p, what="render")
        (tmp_path / "in.ctmpl").write_text("two")
        p.signal(signal.SIGHUP)
        wait_until(file_is(tmp_path / "out.txt", "two"), proc=p, what="reload")
    finally:
        p.stop()


def test_watch_templates_rerenders_on_edit_and_survives_a_broken_edit(consul, tmp_path):
    addr, c = consul
    c.kv.put("w5/k", "v")
    (tmp_path / "in.ctmpl").write_text('1 {{ key "w5/k" }}')
    p = Proc(addr, "-template", "in.ctmpl:out.txt", "-watch-templates", "-log-level", "info", cwd=tmp_path)
    try:
        wait_until(file_is(tmp_path / "out.txt", "1 v"), proc=p, what="render")
        (tmp_path / "in.ctmpl").write_text('2 {{ key "w5/k" }}')
        wait_until(file_is(tmp_path / "out.txt", "2 v"), proc=p, what="edit picked up")
        (tmp_path / "in.ctmpl").write_text("3 {{ if }}")
        wait_until(lambda: "does not parse" in p.output(), proc=p, what="parse error logged")
        assert read(tmp_path / "out.txt") == "2 v"
        (tmp_path / "in.ctmpl").write_text('4 {{ key "w5/k" }}')
        wait_until(file_is(tmp_path / "out.txt", "4 v"), proc=p, what="fixed edit")
    finally:
        p.stop()


def test_file_function_follows_the_file(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "data.txt").write_text("first")
    (tmp_path / "in.ctmpl").write_text(f'[{{{{ file "{tmp_path / "data.txt"}" }}}}]')
    p = Proc(addr, "-template", "in.ctmpl:out.txt", cwd=tmp_path)
    try:
        wait_until(file_is(tmp_path / "out.txt", "[first]"), proc=p, what="render")
        (tmp_path / "data.txt").write_text("second!")
        wait_until(file_is(tmp_path / "out.txt", "[second!]"), proc=p, what="file change")
    finally:
        p.stop()


def test_readers_never_see_a_partial_file(consul, tmp_path):
    addr, c = consul
    big = "x" * 200_000
    c.kv.put("w6/k", "0")
    (tmp_path / "in.ctmpl").write_text('{{ key "w6/k" }}' + big + '{{ key "w6/k" }}')
    p = Proc(addr, "-template", "in.ctmpl:out.txt", cwd=tmp_path)
    bad: list[int] = []
    stop = threading.Event()
    try:
        wait_until(lambda: (read(tmp_path / "out.txt") or "").startswith("0x"), proc=p, what="render")

        def reader() -> None:
            while not stop.is_set():
                data = read(tmp_path / "out.txt")
                if data is None or len(data) < len(big) + 2 or data[0] != data[-1]:
                    bad.append(len(data or ""))

        th = threading.Thread(target=reader)
        th.start()
        for i in range(1, 10):
            c.kv.put("w6/k", str(i))
            wait_until(lambda i=i: (read(tmp_path / "out.txt") or "").startswith(str(i)), proc=p, what=f"v{i}")
        stop.set()
        th.join()
        assert bad == []
        assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] == []
    finally:
        stop.set()
        p.stop()
