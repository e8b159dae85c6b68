"""`meshctl snapshot save|restore|inspect`, as `consul snapshot`: a gzipped tar archive."""

from __future__ import annotations

import os

from meshctl.commands.common import (
    CommandError,
    columnize,
    dispatch,
    guarded,
    make_client,
    new_parser,
    out,
    parse,
)


def _one_file(rest: list[str]) -> str:
    if len(rest) != 1:
        raise CommandError(f"Exactly one argument expected: the snapshot file (got {len(rest)})")
    return rest[0]


@guarded
def save(argv: list[str]) -> int:
    """snapshot save [-stale] FILE"""
    args, rest = parse(new_parser("meshctl snapshot save", "Save a snapshot of the whole state."), argv)
    path = _one_file(rest)
    archive = make_client(args).snapshot.save(stale=args.stale)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(archive.data)
    with open(tmp, "rb") as f:
        _inspect_data(f.read())  # verify before replacing the target
    os.replace(tmp, path)
    out(f"Saved and verified snapshot to index {archive.index}")
    return 0


@guarded
def restore(argv: list[str]) -> int:
    """snapshot restore FILE"""
    args, rest = parse(new_parser("meshctl snapshot restore", "Restore a snapshot (replaces all state)."), argv)
    with open(_one_file(rest), "rb") as f:
        data = f.read()
    make_client(args).snapshot.restore(data)
    out("Restored snapshot")
    return 0


def _inspect_data(data: bytes) -> dict[str, object]:
    from meshctl.server.http.operator import read_archive

    try:
        meta, state = read_archive(data)
    except ValueError as e:
        raise CommandError(f"Error verifying snapshot: {e}") from e
    return {"ID": meta.get("ID", ""), "Size": meta.get("Size", 0), "Index": meta.get("Index", 0),
            "Term": meta.get("Term", 0), "Version": meta.get("Version", 1), "KV entries": len(state.get("KV", [])),
            "Nodes": len(state.get("Nodes", {})), "Sessions": len(state.get("Sessions", {}))}


@guarded
def inspect(argv: list[str]) -> int:
    """snapshot inspect FILE"""
    _, rest = parse(new_parser("meshctl snapshot inspect", "Show a snapshot's metadata.", http=False), argv)
    with open(_one_file(rest), "rb") as f:
        info = _inspect_data(f.read())
    for line in columnize([(k, str(v)) for k, v in info.items()], glue=" "):
        out(line)
    return 0


SUBCOMMANDS = {
    "save": (save, "Saves snapshot of Consul server state"),
    "restore": (restore, "Restores snapshot of Consul server state"),
    "inspect": (inspect, "Displays information about a Consul snapshot file"),
}


def main(argv: list[str]) -> int:
    """snapshot <save|restore|inspect>"""
    return dispatch("meshctl snapshot", argv, SUBCOMMANDS)
