"""Check runners: http, tcp, udp, script, docker, alias; thresholds, output capping, the critical reaper.

A runner probes on its interval (first run staggered randomly within it, as Consul) and
hands each result to `StatusHandler`, which applies success_before_passing /
failures_before_warning / failures_before_critical before `LocalAgent.update_check`;
that writes to the store only when the status changes (output-only changes are deferred,
see local.py). Semantics follow Consul's agent/checks/check.go (consul-api.md §6).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import socket
import ssl
import time
import weakref
from typing import TYPE_CHECKING, Any

import aiohttp

from meshctl.server.agent.definitions import CheckDefinition, duration_seconds
from meshctl.server.periodic import Periodic

if TYPE_CHECKING:
    from meshctl.server.agent.local import LocalAgent

log = logging.getLogger(__name__)

MIN_INTERVAL = 1.0
DEFAULT_HTTP_TIMEOUT = 10.0
DEFAULT_TCP_TIMEOUT = 10.0
DEFAULT_UDP_TIMEOUT = 10.0
ALIAS_POLL = 1.0  # how often an alias check looks at the checks it mirrors
DEFAULT_SCRIPT_TIMEOUT = 30.0
DEFAULT_OUTPUT_MAX = 4096
USER_AGENT = "Consul Health Check"
REAP_PERIOD = 30.0
# one HTTP client session per agent, shared by its HTTP checks (keep-alive off, as Consul's)
_HTTP_SESSIONS: weakref.WeakKeyDictionary[LocalAgent, aiohttp.ClientSession] = weakref.WeakKeyDictionary()


def exit_status(code: int | None) -> str:
    """Nagios convention: 0 passing, 1 warning, anything else critical."""
    return {0: "passing", 1: "warning"}.get(code if code is not None else -1, "critical")


def cap_tail(data: bytes, limit: int) -> str:
    """Keep the last `limit` bytes, with Consul's `Captured <n> of <total> bytes` prefix when cut."""
    if len(data) <= limit:
        return data.decode("utf-8", "replace")
    return f"Captured {limit} of {len(data)} bytes\n...\n" + data[-limit:].decode("utf-8", "replace")


class StatusHandler:
    """Consecutive-result thresholds before a status flips (0 or 1 = immediately)."""

    def __init__(self, agent: LocalAgent, check: CheckDefinition) -> None:
        self.agent = agent
        self.check_id = check.check_id
        spec = check.spec
        self.success_before_passing = int(spec.get("SuccessBeforePassing") or 0)
        self.failures_before_critical = int(spec.get("FailuresBeforeCritical") or 0)
        self.failures_before_warning = int(spec.get("FailuresBeforeWarning") or self.failures_before_critical)
        self.successes = 0
        self.failures = 0

    async def update(self, status: str, output: str) -> None:
        if status in ("passing", "warning"):
            self.successes += 1
            self.failures = 0
            if self.successes >= self.success_before_passing:
                await self.agent.update_check(self.check_id, status, output)
            else:
                log.debug("check %s passed but has not reached its success threshold", self.check_id)
            return
        self.failures += 1
        self.successes = 0
        if self.failures >= self.failures_before_critical:
            await self.agent.update_check(self.check_id, "critical", output)
        elif self.failures >= self.failures_before_warning:
            await self.agent.update_check(self.check_id, "warning", output)
        else:
            log.debug("check %s failed but has not reached its failure threshold", self.check_id)


class PeriodicCheck(Periodic):
    """Run `probe()` every interval until stopped; subclasses implement `probe`."""

    default_timeout = 10.0

    def __init__(self, agent: LocalAgent, check: CheckDefinition) -> None:
        self.agent = agent
        self.check = check
        self.interval = max(MIN_INTERVAL, duration_seconds(check.interval))
        self.timeout = duration_seconds(check.timeout) or self.default_timeout
        self.output_max = int(check.spec.get("OutputMaxSize") or DEFAULT_OUTPUT_MAX)
        self.handler = StatusHandler(agent, check)

    async def run(self) -> None:
        """Probe at a fixed rate, the first probe at a random point of the first interval (as Consul)."""
        await asyncio.sleep(random.uniform(0, self.interval))  # stagger, as Consul
        while True:
            started = time.monotonic()
            try:
                status, output = await self.probe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a runner bug must not silence the check
                log.exception("check %s failed to run", self.check.check_id)
                status, output = "critical", f"check failed to run: {exc}"
            try:
                await self.handler.update(status, output)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("check %s: could not record result", self.check.check_id)
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def probe(self) -> tuple[str, str]:
        raise NotImplementedError


class HTTPCheck(PeriodicCheck):
    """2xx passing, 429 warning, anything else (or no answer) critical."""

    default_timeout = DEFAULT_HTTP_TIMEOUT

    async def probe(self) -> tuple[str, str]:
        spec = self.check.spec
        url = spec["HTTP"]
        method = (spec.get("Method") or "GET").upper()
        headers: list[tuple[str, str]] = [("User-Agent", USER_AGENT), ("Accept", "text/plain, text/*, */*")]
        for name, values in (spec.get("Header") or {}).items():
            headers = [h for h in headers if h[0].lower() != name.lower()]
            headers += [(name, str(v)) for v in (values if isinstance(values, list) else [values])]
        ssl_ctx: Any = None
        if url.startswith("https"):
            ssl_ctx = False if spec.get("TLSSkipVerify") else ssl.create_default_context()
        session = self.agent_session()
        try:
            async with session.request(method, url, headers=headers, data=spec.get("Body") or None,
                                       ssl=ssl_ctx, server_hostname=spec.get("TLSServerName") or None,
                                       timeout=aiohttp.ClientTimeout(total=self.timeout),
                                       allow_redirects=True) as resp:
                body = await resp.content.read(self.output_max + 1)
                code = resp.status
                line = f"{code} {resp.reason or ''}".strip()
        except TimeoutError:
            return "critical", f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
        except aiohttp.ClientError as exc:
            return "critical", f'{method} "{url}": {exc}'
        output = f"HTTP {method} {url}: {line} Output: {body[: self.output_max].decode('utf-8', 'replace')}"
        if 200 <= code < 300:
            return "passing", output
        if code == 429:
            return "warning", output
        return "critical", output

    def agent_session(self) -> aiohttp.ClientSession:
        """One client session per agent (keep-alive off, as Consul's checks)."""
        session = _HTTP_SESSIONS.get(self.agent)
        if session is None or session.closed:
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=0),
                                            auto_decompress=True)
            _HTTP_SESSIONS[self.agent] = session  # closed by close_shared()
        return session


class TCPCheck(PeriodicCheck):
    """A TCP connect: success passing, anything else critical."""

    default_timeout = DEFAULT_TCP_TIMEOUT

    async def probe(self) -> tuple[str, str]:
        target = self.check.spec["TCP"]
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), self.timeout)
        except TimeoutError:
            return "critical", f"dial tcp {target}: i/o timeout"
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            return "critical", f"dial tcp {target}: connect: {str(reason).lower()}"
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        return "passing", f"TCP connect {target}: Success"


class ScriptCheck(PeriodicCheck):
    """`args` executed directly, or legacy `script` through `sh -c`; exit code sets the status."""

    default_timeout = DEFAULT_SCRIPT_TIMEOUT

    def command(self) -> list[str]:
        spec = self.check.spec
        args = spec.get("Args")
        if args:
            return [str(a) for a in args]
        return [os.environ.get("SHELL") or "/bin/sh", "-c", str(spec["Script"])]

    async def probe(self) -> tuple[str, str]:
        cmd = self.command()
        try:
            proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.DEVNULL,
                                                        stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            return "critical", f"Check failed to start: {exc}"
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self.timeout)
        except TimeoutError:
            _kill_group(proc)
            out = b""
            try:
                out, _ = await asyncio.wait_for(proc.communicate(), 2)
            except (TimeoutError, ValueError):
                pass
            return "critical", f"Timed out ({self.check.timeout or '30s'}) running check\n{cap_tail(out, self.output_max)}"
        except asyncio.CancelledError:
            _kill_group(proc)
            raise
        return exit_status(proc.returncode), cap_tail(out, self.output_max)


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class DockerCheck(PeriodicCheck):
    """`docker exec` of the check's shell command or args in a container, via the docker SDK."""

    default_timeout = DEFAULT_SCRIPT_TIMEOUT
    client_factory: Any = None  # tests may inject a fake docker client

    def command(self) -> list[str]:
        spec = self.check.spec
        if spec.get("Args"):
            return [str(a) for a in spec["Args"]]
        return [spec.get("Shell") or "/bin/sh", "-c", str(spec.get("Script", ""))]

    def _client(self) -> Any:
        if self.client_factory is not None:
            return self.client_factory()
        import docker

        return docker.from_env(timeout=int(self.timeout) + 5)

    def run_exec(self) -> tuple[str, str]:
        """The blocking part (runs in a thread): exec_create, exec_start, exec_inspect."""
        container = self.check.spec["DockerContainerID"]
        client = self._client()
        api = getattr(client, "api", client)
        exec_id = api.exec_create(container, self.command(), stdout=True, stderr=True)["Id"]
        out = api.exec_start(exec_id, stream=False, demux=False) or b""
        code = api.exec_inspect(exec_id).get("ExitCode")
        return exit_status(code), cap_tail(out if isinstance(out, bytes) else str(out).encode(), self.output_max)

    async def probe(self) -> tuple[str, str]:
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.run_exec), self.timeout)
        except TimeoutError:
            return "critical", f"Timed out ({self.check.timeout or '30s'}) running check"
        except Exception as exc:
            return "critical", f"docker exec failed: {exc}"


class UDPCheck(PeriodicCheck):
    """Consul's UDP check: send a datagram, then wait `timeout` for an answer.

    An answer or silence is passing ("UDP connect <addr>: Success": UDP has no handshake, so
    only a refusal says the port is closed); an ICMP port-unreachable, which the kernel hands
    back as ECONNREFUSED on the connected socket, or a failure to send is critical.
    """

    default_timeout = DEFAULT_UDP_TIMEOUT

    async def probe(self) -> tuple[str, str]:
        target = self.check.spec["UDP"]
        host, _, port = target.rpartition(":")
        loop = asyncio.get_running_loop()
        try:
            family, _, _, _, address = (await loop.getaddrinfo(host.strip("[]"), int(port),
                                                               type=socket.SOCK_DGRAM))[0]
        except (OSError, ValueError) as exc:
            return "critical", f"dial udp {target}: {exc}"
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            local = ""
            try:
                sock.connect(address)  # a UDP connect sends nothing: it makes ICMP errors reach us
                local_host, local_port = sock.getsockname()[:2]
                local = f"{local_host}:{local_port}"
                sock.send(b"")  # Consul's message is empty
                await asyncio.wait_for(loop.sock_recv(sock, 1), self.timeout)
            except TimeoutError:
                pass  # no answer, no refusal: up
            except OSError as exc:
                reason = (exc.strerror or str(exc)).lower()
                return "critical", f"read udp {local}->{target}: read: {reason}"
        return "passing", f"UDP connect {target}: Success"


class AliasCheck(PeriodicCheck):
    """Consul's alias check: the health of another service (or node), followed every second.

    The aliased checks are those of `AliasNode` (this agent's node by default): its node-level
    checks and, with `AliasService`, that service's checks. Critical wins, then warning; a
    service that is not registered is critical. This agent's node is read from the agent itself,
    another node from the catalog this server holds (client agents refuse those, see local.py).
    """

    def __init__(self, agent: LocalAgent, check: CheckDefinition) -> None:
        super().__init__(agent, check)
        self.interval = ALIAS_POLL
        self.node = check.spec.get("AliasNode") or agent.node_name
        self.service = check.spec.get("AliasService") or ""

    def _aliased(self) -> tuple[list[tuple[str, str, str, str]], bool]:
        """(name, status, output, service ID) of the node's checks, and whether the service exists."""
        if self.node == self.agent.node_name:
            checks = [(c.name, c.status, c.output, c.service_id) for c in self.agent.checks.values()
                      if c.check_id != self.check.check_id]
            return checks, self.service in self.agent.services
        state = self.agent.store.state
        checks = [(c["Name"], c["Status"], c["Output"], c["ServiceID"]) for c in state.checks.get(self.node, {}).values()]
        return checks, self.service in state.services.get(self.node, {})

    async def probe(self) -> tuple[str, str]:
        checks, found = self._aliased()
        status, output = "passing", "No checks found."
        for name, check_status, check_output, service_id in checks:
            if service_id and service_id != self.service:
                continue
            if check_status in ("critical", "warning"):
                if status != "critical":
                    status, output = check_status, f'Aliased check "{name}" failing: {check_output}'
            elif status == "passing":
                output = "All checks passing."
        if self.service and not found:
            return "critical", f"Service {self.service} could not be found on node {self.node}"
        return status, output


RUNNERS: dict[str, Any] = {"http": HTTPCheck, "tcp": TCPCheck, "udp": UDPCheck, "script": ScriptCheck,
                           "docker": DockerCheck, "alias": AliasCheck}


async def close_shared(agent: Any) -> None:
    """Close the agent's shared HTTP client session (on shutdown)."""
    session = _HTTP_SESSIONS.pop(agent, None)
    if session is not None and not session.closed:
        await session.close()


class CriticalReaper(Periodic):
    """Deregister services whose check stayed critical past deregister_critical_service_after."""

    failure = "critical-service reaper failed"
    logger = log

    def __init__(self, agent: LocalAgent, period: float = REAP_PERIOD) -> None:
        self.agent = agent
        self.period = period
        self.critical_since: dict[str, float] = {}

    async def tick(self) -> None:
        await self.reap(time.monotonic())

    async def reap(self, now: float) -> list[str]:
        """One pass; returns the service IDs removed."""
        removed: list[str] = []
        live = set()
        for cid, check in list(self.agent.checks.items()):
            after = duration_seconds(check.spec.get("DeregisterCriticalServiceAfter", "")) if check.spec else 0
            if not after or not check.service_id:
                continue
            live.add(cid)
            if check.status != "critical":
                self.critical_since.pop(cid, None)
                continue
            since = self.critical_since.setdefault(cid, now)
            if now - since >= after and check.service_id in self.agent.services:
                log.info("check %s critical for %.0fs: deregistering service %s", cid, now - since, check.service_id)
                await self.agent.remove_service(check.service_id)
                removed.append(check.service_id)
        for cid in list(self.critical_since):
            if cid not in live:
                del self.critical_since[cid]
        return removed
