"""`meshctl monitor [-log-level info] [-log-json]`: follow an agent's log lines, as `consul monitor`.

Streams `/v1/agent/monitor` until interrupted (exit 0) or until the agent ends the stream
(exit 1, with Consul's "Remote side ended the monitor!" note). The level may be more verbose
than the agent's own: trace, debug, info, warn, err/error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import requests

from meshctl.client import Client
from meshctl.commands.common import CommandError, err, guarded, make_client, new_parser, no_args, out, parse

CHUNK = 4096


def stream_logs(client: Client, level: str, as_json: bool = False, timeout: float | None = None,
                stop: Callable[[], bool] | None = None) -> Iterator[str]:
    """The agent's log lines from `/v1/agent/monitor`, as they come, until the stream ends.

    `timeout` bounds each read (None: wait forever); `stop()` is asked between lines.
    A refused request raises CommandError with the agent's words.
    """
    params = [("loglevel", level)] + ([("logjson", "")] if as_json else [])
    url = f"{client.config.base_url}/v1/agent/monitor"
    try:
        resp = client.http.get(url, params=params, stream=True, timeout=(client.config.connect_timeout, timeout))
    except requests.RequestException as exc:
        raise CommandError(f"Error starting monitor: {exc}") from exc
    with resp:
        if resp.status_code != 200:
            raise CommandError(f"Error starting monitor: Unexpected response code: {resp.status_code} "
                               f"({resp.text.strip()})")
        try:
            for raw in resp.iter_lines(chunk_size=CHUNK):
                if stop is not None and stop():
                    return
                yield raw.decode("utf-8", "replace")
        except (requests.RequestException, OSError):
            return


@guarded
def main(argv: list[str]) -> int:
    """monitor [-log-level LEVEL] [-log-json]"""
    p = new_parser("meshctl monitor", "Show the log lines of a running agent, and follow them until interrupted.")
    p.flag("log-level", default="INFO", help="Log level of the messages to show: trace, debug, info (default), "
           "warn, error; may be more verbose than the agent's own")
    p.bool_flag("log-json", help="Stream the messages as JSON lines")
    args, rest = parse(p, argv)
    no_args(rest)
    client = make_client(args)
    try:
        for line in stream_logs(client, args.log_level, args.log_json):
            out(line)
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()
    out("")
    err("Remote side ended the monitor! This usually means that the\nremote side has exited or crashed.")
    return 1
