"""What every client subcommand shares: the HTTP flag table, Go-style parsing, output, errors."""

from __future__ import annotations

import sys
from argparse import Namespace
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from meshctl.client import Client, ConfigError, Consistency, ConsulError
from meshctl.client.config import resolve_config
from meshctl.flags import FlagParser

# One row per connection flag every client subcommand accepts: (names..., dest, help).
HTTP_FLAGS: list[tuple[tuple[str, ...], str, str]] = [
    (("http-addr", "consul-addr", "addr"), "http_addr",
     "The address and port of the Consul HTTP agent (http://, https:// or unix://); env CONSUL_HTTP_ADDR"),
    (("token",), "token", "ACL token to use in the request; env CONSUL_HTTP_TOKEN"),
    (("token-file",), "token_file", "File containing the ACL token; env CONSUL_HTTP_TOKEN_FILE"),
    (("datacenter", "dc"), "datacenter", "Name of the datacenter to query (default: the agent's)"),
    (("ca-file",), "ca_file", "CA file to verify the agent's certificate; env CONSUL_CACERT"),
    (("ca-path",), "ca_path", "Directory of CA certificates; env CONSUL_CAPATH"),
    (("client-cert",), "client_cert", "Client certificate for TLS; env CONSUL_CLIENT_CERT"),
    (("client-key",), "client_key", "Client key for TLS; env CONSUL_CLIENT_KEY"),
    (("tls-server-name",), "tls_server_name", "Server name to verify (SNI); env CONSUL_TLS_SERVER_NAME"),
]


class CommandError(Exception):
    """A user-facing failure: its message is printed as one line on stderr, exit status 1."""


def new_parser(prog: str, description: str, http: bool = True) -> FlagParser:
    """A Go-style flag parser, with the shared HTTP flags unless `http=False`."""
    parser = FlagParser(prog=prog, description=description)
    if http:
        group = parser.add_argument_group("HTTP API options")
        for names, dest, help_text in HTTP_FLAGS:
            flags = [f"{p}{n}" for n in names for p in ("-", "--")]
            group.add_argument(*flags, dest=dest, default=None, help=help_text)
        parser.bool_flag("stale", help="Allow any server (not only the leader) to answer reads")
    return parser


def parse(parser: FlagParser, argv: Sequence[str]) -> tuple[Namespace, list[str]]:
    """Parse like Go's `flag` package: flags first, the rest (from the first non-flag) is positional.

    A boolean flag never swallows the next word (`-recurse foo`), and a value flag takes the
    next word even when it starts with a dash (`-reason -x`).
    """
    actions = parser._option_string_actions
    argv = list(argv)
    flags: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            i += 1
            break
        if not tok.startswith("-") or tok == "-":
            break
        name, eq, _ = tok.partition("=")
        action = actions.get(name)
        if action is not None and not eq:
            if action.nargs == "?":
                tok = f"{name}=true"
            elif action.nargs is None and i + 1 < len(argv):
                i += 1
                tok = f"{name}={argv[i]}"
        flags.append(tok)
        i += 1
    return parser.parse_args(flags), argv[i:]


def make_client(args: Namespace) -> Client:
    """A client from the HTTP flags (falling back to the environment)."""
    try:
        config = resolve_config(
            args.http_addr, args.token, args.datacenter, token_file=args.token_file, ca_file=args.ca_file,
            ca_path=args.ca_path, client_cert=args.client_cert, client_key=args.client_key,
            tls_server_name=args.tls_server_name,
        )
    except ConfigError as e:
        raise CommandError(f"Error initializing client: {e}") from e
    return Client(config=config)


def consistency(args: Namespace) -> Consistency | None:
    """The read consistency the `-stale` flag asks for."""
    return "stale" if getattr(args, "stale", False) else None


def no_args(rest: Sequence[str]) -> None:
    """Refuse positional arguments, as Consul's commands that take none do."""
    if rest:
        raise CommandError(f"Too many arguments (expected 0, got {len(rest)})")


def out(text: str = "") -> None:
    """One line on stdout, flushed: progress lines must reach a pipe as they happen (Go's stdout is unbuffered)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def err(text: str) -> None:
    """One line on stderr."""
    sys.stderr.write(text.rstrip("\n") + "\n")


def columnize(rows: Sequence[Sequence[Any]], glue: str = "  ") -> list[str]:
    """Left-aligned columns joined by two spaces (like ryanuber/columnize); the last isn't padded."""
    if not rows:
        return []
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(max(len(r) for r in cells))]
    lines = []
    for row in cells:
        padded = [c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row)]
        lines.append(glue.join(padded).rstrip())
    return lines


def tabwrite(rows: Sequence[Sequence[Any]], padding: int = 6) -> list[str]:
    """Go's text/tabwriter with minwidth 0 and `padding` spaces (as `consul kv get -detailed`)."""
    cells = [[str(c) for c in row] for row in rows]
    ncols = max((len(r) for r in cells), default=0)
    widths = [max((len(r[i]) for r in cells if i < len(r) - 1), default=0) + padding for i in range(ncols)]
    return ["".join(c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row)) for row in cells]


Handler = Callable[[list[str]], int]


def dispatch(prog: str, argv: Sequence[str], subcommands: Mapping[str, tuple[Handler, str]]) -> int:
    """Run `prog <sub> ...` from a {name: (handler, synopsis)} table."""
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help", "-help", "help"):
        stream = sys.stdout if argv else sys.stderr
        stream.write(f"Usage: {prog} <subcommand> [options] [args]\n\nSubcommands:\n")
        for line in columnize([(f"    {name}", synopsis) for name, (_, synopsis) in subcommands.items()]):
            stream.write(line + "\n")
        return 0 if argv else 1
    entry = subcommands.get(argv[0])
    if entry is None:
        err(f"{prog}: unknown subcommand {argv[0]!r} (expected one of: {', '.join(subcommands)})")
        return 1
    return entry[0](argv[1:])


def guarded(fn: Handler) -> Handler:
    """Turn CommandError / ConsulError / ConfigError / ValueError into one stderr line and exit status 1."""

    def wrapper(argv: list[str]) -> int:
        try:
            return fn(argv)
        except CommandError as e:
            err(str(e))
        except ConfigError as e:
            err(f"Error initializing client: {e}")
        except ConsulError as e:
            err(f"Error querying Consul agent: {e}")
        except ValueError as e:  # invalid user input the client library rejected
            err(f"Error! {e}")
        except BrokenPipeError:
            return 1
        return 1

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def read_data_arg(arg: str, stdin: Any = None) -> bytes:
    """`consul kv put`'s value argument: `@file` reads a file, `-` reads stdin, else literal."""
    if not arg:
        return b""
    if arg[0] == "@":
        try:
            with open(arg[1:], "rb") as f:
                return f.read()
        except OSError as e:
            raise CommandError(f"Error! Failed to read file: {e.strerror or e}: {arg[1:]}") from e
    if arg == "-":
        stream = stdin or sys.stdin.buffer
        try:
            return stream.read()
        except OSError as e:
            raise CommandError(f"Error! Failed to read stdin: {e}") from e
    return arg.encode()
