"""`meshctl kv get|put|delete|export|import`: `consul kv`, same flags, output and messages."""

from __future__ import annotations

import base64
import binascii
import json
import sys
from typing import Any

from meshctl.client import Client, ConsulError, KVPair
from meshctl.commands.common import (
    CommandError,
    consistency,
    dispatch,
    guarded,
    make_client,
    new_parser,
    out,
    parse,
    read_data_arg,
    tabwrite,
)


def _one_key(args: list[str], allow_empty: bool) -> str:
    if len(args) > 1:
        raise CommandError(f"Too many arguments (expected 1, got {len(args)})")
    key = args[0] if args else ""
    key = key[1:] if key.startswith("/") else key  # keys cannot start with "/": be nice, as consul is
    if not key and not allow_empty:
        raise CommandError("Error! Missing KEY argument")
    return key


def _write_raw(data: bytes) -> None:
    sys.stdout.flush()
    sys.stdout.buffer.write(data + b"\n")
    sys.stdout.buffer.flush()


def detailed(pair: KVPair, b64: bool = False) -> str:
    """`consul kv get -detailed`: the entry's fields in a tabwriter table."""
    value = base64.b64encode(pair.value or b"").decode() if b64 else (pair.value or b"").decode("utf-8", "replace")
    rows = [("CreateIndex", pair.create_index), ("Flags", pair.flags), ("Key", pair.key),
            ("LockIndex", pair.lock_index), ("ModifyIndex", pair.modify_index), ("Session", pair.session or "-"),
            ("Value", value)]
    return "\n".join(tabwrite(rows))


@guarded
def get(argv: list[str]) -> int:
    """kv get [-recurse] [-keys [-separator /]] [-detailed] [-base64] KEY"""
    p = new_parser("meshctl kv get", "Retrieve the value at KEY (or, with -recurse/-keys, under a prefix).")
    p.bool_flag("recurse", help="Recursively look at all keys prefixed with KEY")
    p.bool_flag("keys", help="List keys which start with KEY")
    p.flag("separator", default="/", help="With -keys: separator between keys (default /)")
    p.bool_flag("detailed", help="Show all the key's fields, not just the value")
    p.bool_flag("base64", help="Base64-encode the value")
    args, rest = parse(p, argv)
    key = _one_key(rest, allow_empty=args.recurse or args.keys)
    client = make_client(args)
    cons = consistency(args)
    try:
        if args.keys:
            for k in client.kv.keys(key, args.separator or None, consistency=cons).value:
                out(k)
            return 0
        if args.recurse:
            pairs = client.kv.list_prefix(key, consistency=cons).value
            for i, pair in enumerate(pairs):
                if args.detailed:
                    out(detailed(pair, args.base64))
                    if i < len(pairs) - 1:
                        out()
                elif args.base64:
                    out(f"{pair.key}:{base64.b64encode(pair.value or b'').decode()}")
                else:
                    _write_raw(pair.key.encode() + b":" + (pair.value or b""))
            return 0
        found = client.kv.get(key, consistency=cons).value
    except ConsulError as e:
        raise CommandError(f"Error querying Consul agent: {e}") from e
    if found is None:
        raise CommandError(f"Error! No key exists at: {key}")
    if args.detailed:
        out(detailed(found, args.base64))
    elif args.base64:
        out(base64.b64encode(found.value or b"").decode())
    else:
        _write_raw(found.value or b"")
    return 0


@guarded
def put(argv: list[str]) -> int:
    """kv put [-flags N] [-cas -modify-index N] [-acquire|-release -session S] [-base64] KEY [DATA|-|@file]"""
    p = new_parser("meshctl kv put", "Write DATA to KEY. DATA may be `-` (stdin) or `@file`.")
    p.flag("flags", type=int, default=0, help="Unsigned integer flags to store with the key")
    p.bool_flag("cas", help="Check-and-set: write only if the key's modify index is -modify-index")
    p.flag("modify-index", type=int, default=0, help="The index for -cas")
    p.bool_flag("acquire", help="Obtain a lock on the key (needs -session)")
    p.bool_flag("release", help="Release the lock on the key (needs -session)")
    p.flag("session", default="", help="Session for -acquire / -release")
    p.bool_flag("base64", help="DATA is base64-encoded")
    args, rest = parse(p, argv)
    if not rest:
        raise CommandError("Error! Missing KEY argument")
    if len(rest) > 2:
        raise CommandError(f"Error! Too many arguments (expected 1 or 2, got {len(rest)})")
    key = rest[0][1:] if rest[0].startswith("/") else rest[0]
    if not key:
        raise CommandError("Error! Missing KEY argument")
    data = read_data_arg(rest[1]) if len(rest) == 2 else b""
    if args.base64:
        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as e:
            raise CommandError(f"Error! Cannot base 64 decode data: {e}") from e
    if (args.release or args.acquire) and not args.session:
        raise CommandError("Error! Missing -session (required with -acquire and -release)")
    if args.cas and args.modify_index == 0:
        raise CommandError("Must specify -modify-index with -cas!")
    client = make_client(args)
    if args.cas:
        try:
            ok = client.kv.put(key, data, flags=args.flags, cas=args.modify_index)
        except ConsulError as e:
            raise CommandError(f"Error! Did not write to {key}: {e}") from e
        if not ok:
            raise CommandError(f"Error! Did not write to {key}: CAS failed")
        out(f"Success! Data written to: {key}")
        return 0
    for mode, verb in (("acquire", "acquired"), ("release", "released")):
        if getattr(args, mode):
            try:
                ok = client.kv.put(key, data, flags=args.flags, **{mode: args.session})
            except ConsulError as e:
                raise CommandError(f"Error! Failed writing data: {e}") from e
            if not ok:
                raise CommandError(f"Error! Did not {mode} lock")
            out(f"Success! Lock {verb} on: {key}")
            return 0
    try:
        client.kv.put(key, data, flags=args.flags)
    except ConsulError as e:
        raise CommandError(f"Error! Failed writing data: {e}") from e
    out(f"Success! Data written to: {key}")
    return 0


@guarded
def delete(argv: list[str]) -> int:
    """kv delete [-recurse] [-cas -modify-index N] KEY"""
    p = new_parser("meshctl kv delete", "Remove KEY (or, with -recurse, every key under the prefix).")
    p.bool_flag("recurse", help="Delete every key under the prefix KEY")
    p.bool_flag("cas", help="Delete only if the key's modify index is -modify-index")
    p.flag("modify-index", type=int, default=0, help="The index for -cas")
    args, rest = parse(p, argv)
    key = _one_key(rest, allow_empty=args.recurse)
    if args.cas and args.recurse:
        raise CommandError("Cannot specify both -cas and -recurse!")
    if args.cas and args.modify_index == 0:
        raise CommandError("Must specify -modify-index with -cas!")
    if args.modify_index and not args.cas:
        raise CommandError("Cannot specify -modify-index without -cas!")
    client = make_client(args)
    if args.recurse:
        try:
            client.kv.delete(key, recurse=True)
        except ConsulError as e:
            raise CommandError(f"Error! Did not delete prefix {key}: {e}") from e
        out(f"Success! Deleted keys with prefix: {key}")
        return 0
    if args.cas:
        try:
            ok = client.kv.delete(key, cas=args.modify_index)
        except ConsulError as e:
            raise CommandError(f"Error! Did not delete key {key}: {e}") from e
        if not ok:
            raise CommandError(f"Error! Did not delete key {key}: CAS failed")
        out(f"Success! Deleted key: {key}")
        return 0
    try:
        client.kv.delete(key)
    except ConsulError as e:
        raise CommandError(f"Error deleting key {key}: {e}") from e
    out(f"Success! Deleted key: {key}")
    return 0


def go_json(value: Any) -> str:
    """`json.MarshalIndent(v, "", "\\t")` as Go writes it (HTML characters escaped)."""
    text = json.dumps(value, indent="\t", ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def export_entries(client: Client, prefix: str, stale: bool = False) -> list[dict[str, Any]]:
    """Consul's export format: `[{"key", "flags", "value" (base64)}]`."""
    pairs = client.kv.list_prefix(prefix, consistency="stale" if stale else None).value
    return [{"key": p.key, "flags": p.flags, "value": base64.b64encode(p.value or b"").decode()} for p in pairs]


@guarded
def export(argv: list[str]) -> int:
    """kv export [PREFIX]"""
    p = new_parser("meshctl kv export", "Export the keys under PREFIX as JSON (the `consul kv import` format).")
    args, rest = parse(p, argv)
    prefix = _one_key(rest, allow_empty=True)
    client = make_client(args)
    try:
        entries = export_entries(client, prefix, args.stale)
    except ConsulError as e:
        raise CommandError(f"Error querying Consul agent: {e}") from e
    out(go_json(entries))
    return 0


@guarded
def import_(argv: list[str]) -> int:
    """kv import [-prefix P] [DATA|-|@file]"""
    p = new_parser("meshctl kv import", "Import keys from JSON made by `kv export` (`-` stdin, `@file`).")
    p.flag("prefix", default="", help="Prefix to prepend to every imported key")
    args, rest = parse(p, argv)
    if not rest:
        raise CommandError("Error! Missing DATA argument")
    if len(rest) > 1:
        raise CommandError(f"Error! Too many arguments (expected 1, got {len(rest)})")
    if rest[0] == "":
        raise CommandError("Error! Empty DATA argument")
    raw = read_data_arg(rest[0])
    try:
        entries = json.loads(raw)
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "key" in e for e in entries):
            raise ValueError("expected a list of {\"key\", \"flags\", \"value\"} objects")
    except ValueError as e:
        raise CommandError(f"Cannot unmarshal data: {e}") from e
    client = make_client(args)
    for entry in entries:
        key = args.prefix + str(entry["key"])
        try:
            value = base64.b64decode(entry.get("value") or "", validate=True)
        except (binascii.Error, ValueError) as e:
            raise CommandError(f"Error base 64 decoding value for key {entry['key']}: {e}") from e
        try:
            client.kv.put(key, value, flags=int(entry.get("flags") or 0))
        except ConsulError as e:
            raise CommandError(f"Error! Failed writing data for key {key}: {e}") from e
        out(f"Imported: {key}")
    return 0


SUBCOMMANDS = {
    "get": (get, "Retrieve or list data"),
    "put": (put, "Set or update data"),
    "delete": (delete, "Remove data"),
    "export": (export, "Export a tree as JSON"),
    "import": (import_, "Import a tree from JSON"),
}


def main(argv: list[str]) -> int:
    """`meshctl kv ...`"""
    return dispatch("meshctl kv", argv, SUBCOMMANDS)
