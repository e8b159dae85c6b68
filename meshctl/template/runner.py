"""The loop, and the only place that knows all of it: data → which templates → quiescence →
render → commands / the -exec child.

Everything arrives on one queue (dependency data from the views, view errors, the child's
exit, signals, template files that changed) and is handled by the thread calling `run()`.
A pass executes the templates whose dependencies changed; a template is written only when
it had all its data; the commands of the templates that changed run after the pass, in
configuration order, once each.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from meshctl import __version__
from meshctl.child import Child, ChildError, exit_status, parse_signal
from meshctl.client import Client
from meshctl.exitcodes import (  # noqa: F401 (the tool's exit codes, re-exported)
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_INTERRUPT,
    EXIT_OK,
    EXIT_PARSE_FLAGS,
    EXIT_RUNNER,
)
from meshctl.process import run_command
from meshctl.selfhealth import Problem, SelfHealth
from meshctl.template.brain import Brain
from meshctl.template.config import Config, EnvConfig, TemplateConfig, WaitConfig, split_command
from meshctl.template.dedup import DedupDataQuery, DedupManager, Published, shareable, template_id
from meshctl.template.dependency import Dependency
from meshctl.template.renderer import RenderError, render
from meshctl.template.template import Execution, Template, TemplateError, read_source, syntax_for
from meshctl.template.watch import Watcher, WatchOptions

log = logging.getLogger(__name__)

EXIT_FLAGS = EXIT_PARSE_FLAGS  # the name the template command uses


FIRST_FETCH_BATCH = 0.1  # seconds to batch first answers of new dependencies


class RunnerError(Exception):
    """A fatal error while running: template, render, command or watch (exit code 14)."""


@dataclass
class TemplateState:
    """One configured template and what the runner knows about it."""

    config: TemplateConfig
    template: Template
    index: int
    rendered: bool = False  # rendered (or would have) at least once
    used: set[str] = field(default_factory=set)
    deps: dict[str, Dependency] = field(default_factory=dict)  # the used dependencies by identity
    missing: set[str] = field(default_factory=set)
    quiet_at: float | None = None  # quiescence: render when the clock passes this
    deadline: float | None = None  # ... and at the latest at this
    renders: int = 0  # times the file was written
    last_output: bytes | None = None  # -dry: what was printed last
    pending: Execution | None = None  # executed, not yet written
    failed: bool = False  # the last execution failed (error_fatal = false)
    error: str = ""  # why the last execution or write failed ("" when it worked)
    # -dedup: the keys the leader published for this template (None: nothing followed yet), and
    # whether this follower watches for itself because the published data cannot be used
    payload_keys: set[str] | None = None
    dedup_fallback: bool = False


def command_env(config: Config) -> dict[str, str]:
    """What templates' env and commands see on top of the process environment.

    The address and token fall back to the environment meshctl itself read them from, as
    consul-template's defaults do, so that they reach commands even through `env` filters.
    """
    c = config.consul
    env: dict[str, str] = {}
    address = c.address or os.environ.get("CONSUL_HTTP_ADDR", "")
    token = c.token or os.environ.get("CONSUL_HTTP_TOKEN") or os.environ.get("CONSUL_TOKEN", "")
    if address:
        env["CONSUL_HTTP_ADDR"] = address
    if token:
        env["CONSUL_HTTP_TOKEN"] = token
    if c.token_file:
        env["CONSUL_HTTP_TOKEN_FILE"] = c.token_file
    if c.auth:
        env["CONSUL_HTTP_AUTH"] = c.auth
    if c.ssl_enabled is not None:
        env["CONSUL_HTTP_SSL"] = str(c.ssl_enabled).lower()
    if c.ssl_verify is not None:
        env["CONSUL_HTTP_SSL_VERIFY"] = str(c.ssl_verify).lower()
    return env


def child_env(env_config: EnvConfig, consul_env: dict[str, str]) -> dict[str, str]:
    """A command's or the child's environment, as consul-template builds it.

    pristine: nothing inherited; else the process environment, kept by `allowlist` and then
    dropped by `denylist` (globs; deny wins). On top: `consul_env`, then `custom` — neither is
    filtered, so a command always knows how to reach Consul.
    """
    env: dict[str, str] = {} if env_config.pristine else dict(os.environ)
    if env_config.allowlist:
        env = {k: v for k, v in env.items() if any(fnmatch.fnmatchcase(k, g) for g in env_config.allowlist)}
    if env_config.denylist:
        env = {k: v for k, v in env.items() if not any(fnmatch.fnmatchcase(k, g) for g in env_config.denylist)}
    env.update(consul_env)
    for item in env_config.custom:
        k, _, v = item.partition("=")
        env[k] = v
    return env


def load_template(tc: TemplateConfig, env: dict[str, str], err_on_failed_lookup: bool) -> Template:
    """Parse one configured template (TemplateError when it does not parse)."""
    options: dict[str, Any] = {
        "left_delim": tc.left_delimiter or "{{", "right_delim": tc.right_delimiter or "}}",
        "error_on_missing_key": tc.error_on_missing_key, "function_denylist": tc.function_denylist,
        "sandbox_path": tc.sandbox_path, "env": env, "err_on_failed_lookup": err_on_failed_lookup,
    }
    if tc.contents is not None:
        return Template(tc.destination or "(contents)", tc.contents,
                        syntax=syntax_for(tc.destination, tc.syntax), **options)
    return Template.from_file(tc.source, syntax=tc.syntax, **options)


class Runner:
    """Runs the configured templates until stopped (or once)."""

    def __init__(self, config: Config, client: Client, *, stdout: IO[str] | None = None,
                 reload_config: Callable[[], Config] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.client = client
        self.stdout = stdout or sys.stdout
        self.reload_config = reload_config
        self.clock = clock
        self.events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.brain = Brain()
        self.watcher = Watcher(client, self._on_data, self._on_view_error, self._watch_options())
        self.env = command_env(config)
        self.states: list[TemplateState] = []
        self.child: Child | None = None
        self._child_gen = 0
        self._done = threading.Event()
        self._exit_code: int | None = None
        self._file_watch_stop = threading.Event()
        self._initial_done = False
        self._deferred: set[int] = set()
        self._defer_until: float | None = None
        self.passes = 0
        self.dedup: DedupManager | None = None
        self._dedup_gen = 0
        self._own: set[str] = set()  # dependencies whose data came from this instance's own watches
        self.health: SelfHealth | None = None
        self._fatal = ""  # the error that ends the run (the self-check's last output)

    # -- inputs (any thread) -------------------------------------------------------------

    def _watch_options(self) -> WatchOptions:
        c = self.config
        r = c.consul.retry
        return WatchOptions(wait=c.block_query_wait, max_stale=c.max_stale, retry_enabled=r.enabled,
                            retry_attempts=r.attempts, retry_backoff=r.backoff, retry_max_backoff=r.max_backoff)

    def _on_data(self, dep: Dependency, data: Any) -> None:
        self.events.put(("data", dep, data))

    def _on_view_error(self, dep: Dependency, exc: BaseException) -> None:
        self.events.put(("error", dep, exc))

    def signal(self, sig: int) -> None:
        """Deliver a signal to the loop (safe from a signal handler)."""
        self.events.put(("signal", sig))

    def stop(self, code: int = EXIT_OK) -> None:
        """Ask the loop to end with `code`."""
        self.events.put(("stop", code))

    # -- setup ---------------------------------------------------------------------------

    def _load_states(self, config: Config) -> list[TemplateState]:
        states = []
        for i, tc in enumerate(config.templates):
            try:
                tmpl = load_template(tc, self.env, config.err_on_failed_lookup)
            except TemplateError as e:
                raise RunnerError(str(e)) from None
            states.append(TemplateState(tc, tmpl, i))
        return states

    @staticmethod
    def _warn_unsupported(config: Config) -> None:
        for warning in config.warnings:
            log.warning("%s", warning)

    def _write_pid(self) -> None:
        if self.config.pid_file:
            try:
                with open(self.config.pid_file, "w") as f:
                    f.write(f"{os.getpid()}\n")
            except OSError as e:
                raise RunnerError(f"failed writing pid file {self.config.pid_file}: {e.strerror or e}") from None

    def _remove_pid(self) -> None:
        if self.config.pid_file:
            try:
                os.unlink(self.config.pid_file)
            except OSError:
                pass

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> int:
        """Run until done; the exit code."""
        try:
            self._warn_unsupported(self.config)
            if self.config.self_health.enabled and not self.config.parse_only:
                self.health = SelfHealth(self.client, self.config.self_health, "template", self.health_problems,
                                         ok_text="meshctl template: rendering").start()
            self.states = self._load_states(self.config)
            if self.config.parse_only:
                return EXIT_OK
            self._write_pid()
            self._start_dedup()
            self._start_file_watch()
            self._pass({s.index for s in self.states}, force=True)
            while self._exit_code is None:
                self._step()
            return self._exit_code
        except RunnerError as e:
            self._fatal = str(e)
            log.error("%s", e)
            print(f"meshctl template: {e}", file=sys.stderr)
            self._stop_child(immediately=True)
            return EXIT_RUNNER
        finally:
            if self.health is not None:  # a clean exit deregisters; a failed one leaves the reason
                self.health.stop(deregister=not self._fatal)
            self._file_watch_stop.set()
            self._stop_dedup()
            self.watcher.stop()
            self._remove_pid()

    def _next_timeout(self) -> float | None:
        times = [t for s in self.states for t in (s.quiet_at, s.deadline) if t is not None]
        if self._defer_until is not None:
            times.append(self._defer_until)
        if not times:
            return None
        return max(0.0, min(times) - self.clock())

    def _step(self) -> None:
        timeout = self._next_timeout()
        events: list[tuple[Any, ...]] = []
        try:
            events.append(self.events.get(timeout=timeout) if timeout != 0 else self.events.get_nowait())
        except queue.Empty:
            pass
        while True:  # drain: many views may have answered at once
            try:
                events.append(self.events.get_nowait())
            except queue.Empty:
                break
        dirty: set[int] = set()
        for ev in events:
            self._handle(ev, dirty)
            if self._exit_code is not None:
                return
        now = self.clock()
        fired = {s.index for s in self.states
                 if (s.quiet_at is not None and now >= s.quiet_at) or (s.deadline is not None and now >= s.deadline)}
        for i in fired:
            self.states[i].quiet_at = self.states[i].deadline = None
        # While first answers are still on their way, batch them: executing a large template
        # for each of 2,000 first answers would cost more than waiting a few milliseconds.
        dirty |= self._deferred
        if dirty and not fired and self._outstanding():
            if self._defer_until is None:
                self._defer_until = now + FIRST_FETCH_BATCH
            if now < self._defer_until:
                self._deferred = dirty
                return
        self._deferred = set()
        self._defer_until = None
        if dirty or fired:
            self._pass(dirty, fired=fired)

    def _outstanding(self) -> bool:
        """Whether a watched dependency has not answered yet."""
        return any(key not in self.brain for key in self.watcher.keys())

    def _handle(self, ev: tuple[Any, ...], dirty: set[int]) -> None:
        kind = ev[0]
        if kind == "data":
            _, dep, data = ev
            key = str(dep)
            if not self.watcher.watching(key):
                return  # a late answer for a dependency nobody uses any more
            self.brain.remember(key, data)
            if isinstance(dep, DedupDataQuery):
                self._follow(key, data, dirty)
                return
            self._own.add(key)
            dirty.update(s.index for s in self.states if key in s.used)
        elif kind == "dedup_leader":
            _, gen, index, _leader = ev
            if gen == self._dedup_gen and index < len(self.states):
                dirty.add(index)  # re-evaluate: start (or stop) watching its dependencies
        elif kind == "error":
            _, dep, exc = ev
            raise RunnerError(f"{dep}: {exc}")
        elif kind == "signal":
            self._on_signal(ev[1], dirty)
        elif kind == "child_exit":
            _, gen, code = ev
            if gen == self._child_gen and self._exit_code is None:
                log.info("child exited with %d", code)
                self._exit_code = code
        elif kind == "template_file":
            self._reload_template_file(ev[1], dirty)
        elif kind == "stop":
            self._stop_child()
            self._exit_code = ev[1]

    def _on_signal(self, sig: int, dirty: set[int]) -> None:
        c = self.config
        name = signal.Signals(sig).name
        if c.kill_signal and sig == parse_signal(c.kill_signal):
            log.info("received %s: stopping", name)
            self._stop_child(immediately=True)
            self._exit_code = EXIT_INTERRUPT
        elif c.graceful_signal and sig == parse_signal(c.graceful_signal):
            log.info("received %s: stopping gracefully", name)
            self._stop_child()
            self._exit_code = EXIT_OK
        elif c.reload_signal and sig == parse_signal(c.reload_signal):
            log.info("received %s: reloading configuration and templates", name)
            self._reload(dirty)
        elif self.child is not None and self.child.running:
            self.child.signal(sig)

    # -- a pass --------------------------------------------------------------------------

    def _wait_for(self, s: TemplateState) -> WaitConfig:
        if self.config.once:
            return WaitConfig()
        # a template's own wait applies when it is enabled; else the global one (as consul-template)
        if s.config.wait is not None and s.config.wait.enabled:
            return s.config.wait
        return self.config.wait

    def _all_rendered(self) -> bool:
        return all(s.rendered for s in self.states)

    def _pass(self, dirty: set[int], force: bool = False, fired: set[int] | None = None) -> None:
        """Execute the dirty (or fired) templates; write, then run commands and signal the child.

        Until every template has had all its data once, nothing is written: the first render
        writes all templates in one pass (and runs their commands once, after it).
        """
        self.passes += 1
        fired = fired or set()
        now = self.clock()
        quiescent = self._all_rendered()
        for s in self.states:
            if s.index not in dirty and s.index not in fired and not force:
                continue
            wait = self._wait_for(s)
            if quiescent and wait.enabled and s.index not in fired:
                # quiescence: every change pushes the render back by `min`, never past `max`
                if s.deadline is None:
                    s.deadline = now + max(wait.max, wait.min)
                s.quiet_at = min(now + wait.min, s.deadline)
                continue
            s.quiet_at = s.deadline = None
            s.pending = self._evaluate(s)
        self._sync_dependencies()
        if not self._initial_done:
            if any((s.pending is None and not s.failed) or (s.pending is not None and s.pending.missing)
                   for s in self.states):
                return
            self._initial_done = True
        commands: list[TemplateState] = []
        changed = False
        for s in self.states:
            ex, s.pending = s.pending, None
            if ex is None or ex.missing:
                continue
            if self._write(s, ex):
                changed = True
                if s.config.command:
                    commands.append(s)
        if not self.config.dry:
            self._run_commands(commands)
            self._exec_child(changed)
        if self.config.once and self._all_rendered() and self.config.exec is None:
            self._exit_code = EXIT_OK

    def _evaluate(self, s: TemplateState) -> Execution | None:
        """Execute one template and watch what it used; None on a non-fatal error."""
        try:
            ex = s.template.execute(self.brain)
        except TemplateError as e:
            if s.config.error_fatal:
                raise RunnerError(str(e)) from None
            log.error("%s (not fatal: keeping the last file)", e)
            s.failed = True
            s.error = str(e)
            return None
        s.failed = False
        s.error = ""
        s.used = set(ex.used)
        s.deps = dict(ex.used)
        s.missing = ex.missing
        for key, dep in ex.used.items():
            if not self.watcher.watching(key) and self._watch_locally(s, key, dep):
                self.watcher.add(dep)
        if self.dedup is not None and not self.dedup.is_leader(s.index):
            follow = self.dedup.data_dependency(s.index)
            if not self.watcher.watching(str(follow)):
                self.watcher.add(follow)
        if ex.missing:
            log.debug("%s: waiting for %d dependencies", s.config.label, len(ex.missing))
        else:
            self._publish(s, ex)
        return ex

    def _write(self, s: TemplateState, ex: Execution) -> bool:
        """Write a complete execution if it changed anything; True when the file was written."""
        if not s.config.destination and not self.config.dry:
            self.stdout.write(ex.output.decode("utf-8", "surrogateescape"))
            self.stdout.flush()
            s.rendered = True
            return False
        if self.config.dry and ex.output == s.last_output:
            s.rendered = True
            return False
        s.last_output = ex.output
        try:
            result = render(s.config.destination, ex.output, perms=s.config.perms, backup=s.config.backup,
                            create_dest_dirs=s.config.create_dest_dirs, dry=self.config.dry,
                            dry_stream=self.stdout, uid=s.config.uid, gid=s.config.gid)
        except RenderError as e:
            if s.config.error_fatal:
                raise RunnerError(str(e)) from None
            log.error("%s", e)
            s.error = str(e)
            return False
        s.rendered = True
        if result.did_render:
            s.renders += 1
            log.info("rendered %s", s.config.label)
        return result.did_render

    def health_problems(self) -> list[Problem]:
        """What is wrong right now, for the self-check (`-register-service`); called from its thread."""
        if self._fatal:
            return [Problem("critical", f"meshctl template stopped: {self._fatal}")]
        problems = [Problem("critical", f"{s.config.label}: {s.error}") for s in list(self.states) if s.error]
        failing, stale = self.watcher.problems()
        problems += [Problem("critical", f"store unreachable ({key}: {err})") for key, err in sorted(failing.items())]
        problems += [Problem("warning", f"{key} is {behind:.1f}s stale (max-stale {self.config.max_stale:g}s)")
                     for key, behind in sorted(stale.items())]
        waiting = [s.config.label for s in list(self.states) if not s.rendered]
        if waiting and not problems and self._initial_done is False and self.passes > 0:
            problems.append(Problem("passing", f"waiting for data: {', '.join(waiting)}"))
        return problems

    def _sync_dependencies(self) -> None:
        """Stop the views nobody needs any more (no template uses them, or a -dedup leader
        watches them for us), and forget the data no template uses."""
        used: set[str] = set()
        local: set[str] = set()
        for s in self.states:
            used |= s.used
            local.update(key for key, dep in s.deps.items() if self._watch_locally(s, key, dep))
            if self.dedup is not None and not self.dedup.is_leader(s.index):
                local.add(str(self.dedup.data_dependency(s.index)))
        for key in self.watcher.keys():
            if key not in local:
                self.watcher.remove(key)
                self._own.discard(key)
                if key not in used:
                    self.brain.forget(key)

    # -- de-duplication ------------------------------------------------------------------------

    def _start_dedup(self) -> None:
        c = self.config
        if not c.dedup.enabled or c.once:  # -once never de-duplicates (consul-template)
            return
        self._dedup_gen += 1
        gen = self._dedup_gen
        ids = [template_id(s.config.source, s.template.text, s.config.destination) for s in self.states]
        self.dedup = DedupManager(self.client, c.dedup, ids,
                                  lambda index, leader: self.events.put(("dedup_leader", gen, index, leader)))
        self.dedup.start()

    def _stop_dedup(self) -> None:
        dedup, self.dedup = self.dedup, None
        if dedup is not None:
            dedup.stop()

    def _restart_dedup(self) -> None:
        """After a reload: new template IDs mean new locks."""
        if self.dedup is None and not self.config.dedup.enabled:
            return
        self._stop_dedup()
        for s in self.states:
            s.payload_keys, s.dedup_fallback = None, False
        self._start_dedup()

    def _watch_locally(self, s: TemplateState, key: str, dep: Dependency) -> bool:
        """Whether this instance queries `dep` itself for template `s` (always, without -dedup)."""
        if self.dedup is None or not shareable(dep) or s.dedup_fallback or self.dedup.is_leader(s.index):
            return True
        # what the leader did not publish (a key chosen by this instance's environment) we watch
        return s.payload_keys is not None and key not in s.payload_keys

    def _follow(self, key: str, published: Published | None, dirty: set[int]) -> None:
        """A template's data key changed: take the leader's data, or watch for ourselves."""
        if self.dedup is None or published is None:
            return  # no data yet (or the leader just changed): keep rendering from what we have
        for s in self.states:
            if str(self.dedup.data_dependency(s.index)) != key or self.dedup.is_leader(s.index):
                continue
            reason = published.unusable
            if not reason and published.version != __version__:
                reason = f"published by meshctl {published.version}, this is {__version__}"
            elif not reason and published.template != s.template.id:
                reason = "published for a different template text"
            if reason:
                if not s.dedup_fallback:
                    log.warning("%s: de-duplication data unusable (%s): watching the dependencies here",
                                s.config.label, reason)
                    s.dedup_fallback = True
                    dirty.add(s.index)
                continue
            if s.dedup_fallback:
                log.info("%s: following the de-duplication leader again", s.config.label)
                s.dedup_fallback = False
            for k, v in published.data.items():
                if k not in self._own:  # what we watch ourselves is at least as fresh
                    self.brain.remember(k, v)
            s.payload_keys = set(published.data)
            dirty.add(s.index)
            dirty.update(o.index for o in self.states if o.used & s.payload_keys)

    def _publish(self, s: TemplateState, ex: Execution) -> None:
        """As the leader: publish the data of a complete execution, once our own watches answered."""
        if self.dedup is None or not self.dedup.is_leader(s.index):
            return
        data: dict[str, Any] = {}
        for key, dep in ex.used.items():
            if not shareable(dep):
                continue
            if key not in self._own:
                return  # just elected: wait for our own answers rather than republish the old data
            data[key] = self.brain.recall(key)[0]
        self.dedup.publish(s.index, s.template.id, data)

    # -- commands and the child ------------------------------------------------------------

    def _run_commands(self, states: list[TemplateState]) -> None:
        seen: set[str] = set()
        for s in states:
            cmd = s.config.command
            assert cmd is not None
            ident = repr(cmd)
            if ident in seen:
                continue
            seen.add(ident)
            try:
                self._run_command(cmd, s.config.command_timeout, child_env(s.config.env, self.env))
            except RunnerError as e:
                if s.config.error_fatal:
                    raise
                log.error("%s", e)

    def _run_command(self, cmd: list[str] | str, timeout: float, env: dict[str, str]) -> None:
        argv, _ = split_command(cmd)
        log.info("executing command %r", cmd)
        try:
            code = run_command(argv, env=env, timeout=timeout or None)
        except OSError as e:
            raise RunnerError(f"failed to execute command {cmd!r}: {e.strerror or e}") from None
        except subprocess.TimeoutExpired:
            raise RunnerError(f"command {cmd!r} did not finish within {timeout:g}s") from None
        if code != 0:
            raise RunnerError(f"failed to execute command {cmd!r}: exit status {exit_status(code)}")

    def _exec_env(self) -> tuple[dict[str, str | None], bool]:
        ex = self.config.exec
        assert ex is not None
        return dict(child_env(ex.env, self.env)), False

    def _exec_child(self, changed: bool) -> None:
        ex = self.config.exec
        if ex is None or not self._all_rendered():
            return
        if self.child is None:
            argv, _ = split_command(ex.command or [])
            env, inherit = self._exec_env()
            self.child = Child(argv, env=env, inherit_env=inherit, stdin=True,
                               kill_signal=parse_signal(ex.kill_signal), kill_timeout=ex.kill_timeout,
                               reload_signal=parse_signal(ex.reload_signal) if ex.reload_signal else None,
                               splay=ex.splay, parent_death_signal=signal.SIGTERM)
            self._start_child()
        elif changed:
            if self.child.reload_signal is not None:
                threading.Thread(target=self.child.reload, name="exec-reload", daemon=True).start()
            else:
                log.info("restarting child (no reload signal)")
                self._child_gen += 1
                self.child.stop()
                self._start_child()

    def _start_child(self) -> None:
        assert self.child is not None
        gen = self._child_gen
        try:
            self.child.start()
        except ChildError as e:
            raise RunnerError(str(e)) from None
        self.child.on_exit_once(lambda code: self.events.put(("child_exit", gen, exit_status(code))))

    def _stop_child(self, immediately: bool = False) -> None:
        child = self.child
        if child is None or not child.running:
            return
        self._child_gen += 1
        # the kill signal to its process group, SIGKILL after the kill timeout; what the leader
        # leaves behind in the group (a pipeline's other members) gets the rest of it
        child.stop(immediately=immediately)

    # -- reloads ------------------------------------------------------------------------

    def _reload(self, dirty: set[int]) -> None:
        try:
            config = self.reload_config() if self.reload_config else self.config
            self._warn_unsupported(config)
            states = self._load_states(config)
        except Exception as e:  # a bad edit must not take the running service down
            log.error("reload failed, keeping the running configuration: %s", e)
            return
        old = {(s.config.source, s.config.contents, s.config.destination): s for s in self.states}
        for s in states:
            prev = old.get((s.config.source, s.config.contents, s.config.destination))
            if prev is not None:
                s.rendered = prev.rendered
        self.config = config
        self.states = states
        self._restart_dedup()
        self._pass(set(), force=True)

    def _reload_template_file(self, path: str, dirty: set[int]) -> None:
        for s in self.states:
            if s.config.source and os.path.abspath(s.config.source) == path:
                try:
                    if read_source(path) == s.template.text:
                        continue
                    s.template = load_template(s.config, self.env, self.config.err_on_failed_lookup)
                except OSError as e:
                    log.warning("template %s changed but cannot be read: %s", path, e)
                    continue
                except TemplateError as e:
                    log.error("template %s changed but does not parse; keeping the previous one: %s", path, e)
                    continue
                log.info("template %s changed: re-rendering", path)
                s.quiet_at = s.deadline = None
                self._restart_dedup()
                self._pass({s.index}, fired={s.index})

    def _start_file_watch(self) -> None:
        if not self.config.watch_templates:
            return
        paths = sorted({os.path.abspath(s.config.source) for s in self.states if s.config.source})
        if not paths:
            return
        threading.Thread(target=self._file_watch, args=(paths,), name="watch-templates", daemon=True).start()

    def _file_watch(self, paths: list[str]) -> None:
        import watchfiles

        dirs = sorted({os.path.dirname(p) for p in paths})
        wanted = set(paths)
        first = True
        try:
            for changes in watchfiles.watch(*dirs, stop_event=self._file_watch_stop, debounce=50, step=20,
                                            rust_timeout=200, yield_on_timeout=True):
                if first:  # the watch is armed now: catch edits made while it was starting
                    first = False
                    changed = wanted
                else:
                    changed = {os.path.abspath(p) for _, p in changes} & wanted
                for path in sorted(changed):
                    self.events.put(("template_file", path))
        except Exception as e:  # the watch is a convenience; rendering goes on without it
            log.warning("watching template files failed: %s", e)


def jitter(seconds: float) -> float:
    """A random delay in [0, seconds)."""
    return random.random() * seconds
