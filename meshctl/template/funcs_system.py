"""consul-template helpers that touch the host: env, plugin, writeToFile, sockaddr.

The env helpers are built per runner by :func:`make_env_funcs`, whose overlay (CONSUL_HTTP_ADDR ...
supplied by the runner) takes precedence over the process environment.
"""

from __future__ import annotations

import errno
import grp
import ipaddress
import os
import pwd
import shlex
import socket
import subprocess
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["PLUGIN_TIMEOUT", "make_env_funcs", "plugin", "sockaddr", "write_to_file"]

PLUGIN_TIMEOUT = 30.0


# --- env ------------------------------------------------------------------------------------


def make_env_funcs(overlay: Mapping[str, str] | None = None) -> dict[str, Callable[..., str]]:
    """Build ``env``, ``mustEnv`` and ``envOrDefault`` over ``overlay`` then ``os.environ``."""
    extra = dict(overlay or {})

    def env(name: str) -> str:
        """The variable's value ("" if unset)."""
        if name in extra:
            return extra[name]
        return os.environ.get(name, "")

    def must_env(name: str) -> str:
        """The variable's value; error if unset or empty."""
        val = extra.get(name, "") or os.environ.get(name, "")
        if val == "":
            raise ValueError(f"required environment variable {name} is empty")
        return val

    def env_or_default(name: str, default: str) -> str:
        """The variable's value if set (even empty), else ``default``."""
        if name in extra:
            return extra[name]
        return os.environ.get(name, default)

    return {"env": env, "mustEnv": must_env, "envOrDefault": env_or_default}


# --- plugin ---------------------------------------------------------------------------------


def plugin(name: str, *args: str) -> str:
    """Run executable ``name`` with the trimmed non-empty ``args``; return its trimmed stdout.

    Errors on start failure, non-zero exit (with stdout and stderr) or after 30 s (the process is killed).
    """
    if not name:
        return ""
    argv = [name]
    for a in args:
        if not isinstance(a, str):
            raise TypeError(f"plugin: wrong type for value; expected string; got {type(a).__name__}")
        if a.strip():
            argv.append(a.strip())
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=PLUGIN_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f'exec "{name}": did not finish in {PLUGIN_TIMEOUT:g}s') from None
    except OSError as e:
        raise RuntimeError(f'exec "{name}": {e.strerror or e}\n\nstdout:\n\n\n\nstderr:\n\n') from None
    out = proc.stdout.decode("utf-8", "surrogateescape")
    err = proc.stderr.decode("utf-8", "surrogateescape")
    if proc.returncode != 0:
        status = f"exit status {proc.returncode}" if proc.returncode > 0 else f"signal: {-proc.returncode}"
        raise RuntimeError(f'exec "{name}": {status}\n\nstdout:\n\n{out}\n\nstderr:\n\n{err}')
    return out.strip(" \t\n\r\v\f")


# --- writeToFile ----------------------------------------------------------------------------


def _lookup_id(value: str, by_name: Callable[[str], Any], attr: str, kind: str) -> int:
    try:
        return getattr(by_name(value), attr)
    except KeyError:
        if value.lstrip("-").isdigit():
            return int(value)
        raise LookupError(f"{kind}: unknown {kind} {value}") from None


def write_to_file(path: str, user: str, group: str, perms: str, *args: str) -> str:
    """Write (or with flag "append" append; "newline" adds "\\n") the piped content to ``path``.

    ``user``/``group`` are names or ids ("" keeps the current ones); ``perms`` is an octal string.
    The parent directory is created when missing; a symlinked target or parent directory is refused.
    Returns "".
    """
    if len(args) not in (1, 2):
        raise TypeError(f"writeToFile: wrong number of arguments, expected 5 or 6, but got {len(args) + 4}")
    flags = args[0] if len(args) == 2 else ""
    content = args[-1]
    if not isinstance(content, str):
        raise TypeError(f"writeToFile: content must be a string, got {type(content).__name__}")
    try:
        mode = int(perms, 8)
        if mode < 0 or mode >= 2**32:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f'strconv.ParseUint: parsing "{perms}": invalid syntax') from None
    mode &= 0o7777

    parent = os.path.dirname(path) or "."
    if os.path.islink(parent):
        raise PermissionError(
            f"writeToFile: refusing to write {path}: parent directory {parent} is a symlink"
        )
    if os.path.islink(path):
        raise PermissionError(f"writeToFile: refusing to write {path}: it is a symlink")
    os.makedirs(parent, exist_ok=True)

    uid = -1 if user == "" else _lookup_id(user, pwd.getpwnam, "pw_uid", "user")
    gid = -1 if group == "" else _lookup_id(group, grp.getgrnam, "gr_gid", "group")

    append = "append" in flags
    oflags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | (os.O_APPEND if append else os.O_TRUNC)
    try:
        fd = os.open(path, oflags, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise PermissionError(f"writeToFile: refusing to write {path}: it is a symlink") from None
        raise
    with os.fdopen(fd, "wb") as f:
        data = content + ("\n" if "newline" in flags else "")
        f.write(data.encode("utf-8", "surrogateescape"))
        if uid != -1 or gid != -1:
            os.fchown(f.fileno(), uid, gid)
        os.fchmod(f.fileno(), mode)
    return ""


# --- sockaddr -------------------------------------------------------------------------------

_SIOCGIFADDR = 0x8915
_SIOCGIFNETMASK = 0x891B
_SIOCGIFFLAGS = 0x8913
_IFF_UP = 0x1


def _ipv4_of(name: str) -> tuple[str, int, bool] | None:
    import fcntl
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("256s", name.encode()[:15])
        try:
            addr = socket.inet_ntoa(fcntl.ioctl(s.fileno(), _SIOCGIFADDR, req)[20:24])
            mask = socket.inet_ntoa(fcntl.ioctl(s.fileno(), _SIOCGIFNETMASK, req)[20:24])
            flags = struct.unpack("H", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, req)[16:18])[0]
        except OSError:
            return None
    return addr, ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen, bool(flags & _IFF_UP)


def _interface_addrs() -> list[dict[str, Any]]:
    """Every (interface, address) pair: IPv4 via ioctl, IPv6 via /proc/net/if_inet6."""
    found: list[dict[str, Any]] = []
    for _, name in socket.if_nameindex():
        v4 = _ipv4_of(name)
        if v4:
            found.append({"name": name, "ip": ipaddress.ip_address(v4[0]), "prefix": v4[1], "up": v4[2]})
    try:
        with open("/proc/net/if_inet6") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 6:
                    continue
                hexaddr, prefix, name = parts[0], int(parts[2], 16), parts[5]
                ip = ipaddress.IPv6Address(bytes.fromhex(hexaddr))
                found.append({"name": name, "ip": ip, "prefix": prefix, "up": True})
    except OSError:
        pass
    return found


def _default_iface() -> str | None:
    try:
        with open("/proc/net/route") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if len(parts) > 1 and parts[1] == "00000000":
                    return parts[0]
    except OSError:
        pass
    return None


def _forwardable(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast or ip.is_reserved)


_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598, counted as private by go-sockaddr


def _rfc6890(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if ip.version == 4 and ip in _SHARED_ADDRESS_SPACE:
        return True
    return ip.is_private


def _sorted(addrs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    default = _default_iface()
    # default interface first, then IPv4 before IPv6, then larger networks (smaller prefix) first
    return sorted(addrs, key=lambda a: (a["name"] != default, a["ip"].version, a["prefix"]))


def _select(private: bool | None, name: str | None = None, forwardable: bool = True) -> list[str]:
    addrs = [a for a in _interface_addrs() if a["up"]]
    if name is not None:
        addrs = [a for a in addrs if a["name"] == name]
    if forwardable:
        addrs = [a for a in addrs if _forwardable(a["ip"])]
    if private is not None:
        addrs = [a for a in addrs if _rfc6890(a["ip"]) == private]
    return [str(a["ip"]) for a in _sorted(addrs)]


def _first(ips: list[str]) -> str:
    return ips[0] if ips else ""


_SOCKADDR: dict[str, Callable[..., str]] = {
    "GetPrivateIP": lambda: _first(_select(True)),
    "GetPrivateIPs": lambda: " ".join(_select(True)),
    "GetPublicIP": lambda: _first(_select(False)),
    "GetPublicIPs": lambda: " ".join(_select(False)),
    "GetInterfaceIP": lambda name: _first(_select(None, name)),
    "GetInterfaceIPs": lambda name: " ".join(_select(None, name, forwardable=False)),
}


def sockaddr(*args: str) -> str:
    """A small subset of go-sockaddr templates: GetPrivateIP(s), GetPublicIP(s), GetInterfaceIP(s) "if"."""
    words = shlex.split(" ".join(args))
    if not words or words[0] not in _SOCKADDR:
        raise ValueError(f"sockaddr: unsupported template {' '.join(args)!r}")
    fn = _SOCKADDR[words[0]]
    try:
        return fn(*words[1:])
    except TypeError:
        raise ValueError(f"sockaddr: wrong arguments for {words[0]}: {' '.join(args)!r}") from None
