"""Prometheus metrics of the companion tools (`template`, `registrator`, `lock`): `-metrics-addr`.

Off by default. `-metrics-addr 127.0.0.1:9102` (or `:9102`, which means 127.0.0.1, never every
interface; `0.0.0.0:9102` must be asked for) serves the tool's registry as Prometheus text on
`/metrics` from a daemon thread, as prometheus_client's own exporter does.

    tool = ToolMetrics("template")
    renders = tool.counter("renders", "Templates written", ["template"])
    tool.serve("127.0.0.1:9102")
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import start_http_server

log = logging.getLogger(__name__)

FLAG_HELP = "Serve Prometheus metrics on this host:port (e.g. 127.0.0.1:9102; ':9102' is loopback); off by default"


class MetricsAddressError(ValueError):
    """A -metrics-addr that is not host:port."""


def parse_address(text: str) -> tuple[str, int]:
    """`host:port`, `:port` (127.0.0.1) or `[v6]:port` -> (host, port)."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep:
        raise MetricsAddressError(f"-metrics-addr {text!r}: expected host:port")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise MetricsAddressError(f"-metrics-addr {text!r}: bad port {port_text!r}") from None
    if not 0 <= port < 65536:
        raise MetricsAddressError(f"-metrics-addr {text!r}: port out of range")
    return host, port


class ToolMetrics:
    """One tool's registry: metrics named `meshctl_<tool>_<name>`, served by `serve()`."""

    def __init__(self, tool: str) -> None:
        self.tool = tool
        self.registry = CollectorRegistry(auto_describe=True)
        self.server: Any = None
        self.address: tuple[str, int] | None = None

    def name(self, short: str) -> str:
        return f"meshctl_{self.tool}_{short}"

    def counter(self, short: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(self.name(short), help_text, list(labels), registry=self.registry)

    def gauge(self, short: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(self.name(short), help_text, list(labels), registry=self.registry)

    def gauge_function(self, short: str, help_text: str, fn: Callable[[], float]) -> Gauge:
        """A gauge computed when scraped (e.g. seconds since something happened)."""
        g = Gauge(self.name(short), help_text, registry=self.registry)
        g.set_function(fn)
        return g

    def register(self, collector: Any) -> None:
        """A custom collector (its `collect()` runs on each scrape)."""
        self.registry.register(collector)

    def serve(self, address: str | None) -> tuple[str, int] | None:
        """Start the exporter on `address` (None or "": off); the (host, port) it listens on."""
        if not address:
            return None
        host, port = parse_address(address)
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        bound = server.server_address
        self.server, self.address = server, (host, int(bound[1]))
        log.info("metrics on http://%s:%d/metrics", host, self.address[1])
        return self.address

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def serve_or_exit(metrics: ToolMetrics, address: str | None, errors: Callable[[str], Any]) -> bool:
    """Start the exporter; False (after telling `errors`) when the address is bad or taken."""
    try:
        metrics.serve(address)
    except (MetricsAddressError, OSError) as exc:
        errors(f"cannot serve metrics: {exc}")
        return False
    return True


def add_flag(parser: Any, names: Iterable[str] = ("metrics-addr",)) -> None:
    """The `-metrics-addr` flag on a FlagParser."""
    parser.flag(*names, dest="metrics_addr", default=None, help=FLAG_HELP)


__all__ = ["FLAG_HELP", "MetricsAddressError", "ToolMetrics", "add_flag", "parse_address", "serve_or_exit"]
