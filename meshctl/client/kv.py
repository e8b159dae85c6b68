"""`client.kv`: /v1/kv reads and writes."""

from __future__ import annotations

from typing import Unpack, cast

from meshctl.client.client import Area, quote_key
from meshctl.client.query import Params, QueryArgs, QueryOptions, query_options
from meshctl.client.records import KVEntry
from meshctl.client.types import KVPair, Reply


def _check_key(key: str) -> str:
    if key.startswith("/"):  # as the Go client: such keys cannot be addressed over HTTP
        raise ValueError("Invalid key. Key must not begin with a '/'")
    return quote_key(key)


def _to_bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _entries(data: object) -> list[KVPair]:
    return [KVPair.from_json(d) for d in cast(list[KVEntry], data or [])]


def _entry(data: object) -> KVPair | None:
    entries = cast(list[KVEntry], data or [])
    return KVPair.from_json(entries[0]) if entries else None


def _key_names(data: object) -> list[str]:
    return list(cast(list[str], data or []))


def _none() -> KVPair | None:
    return None


def _empty_pairs() -> list[KVPair]:
    return []


def _empty_keys() -> list[str]:
    return []


class KV(Area):
    """Key/value store: get, list_prefix, keys, put, delete. Reads take `QueryOptions` (or its keywords)."""

    def get(self, key: str, *, options: QueryOptions | None = None,
            **args: Unpack[QueryArgs]) -> Reply[KVPair | None]:
        """One entry, or `value=None` (and `found=False`) when the key does not exist."""
        if not key:
            raise ValueError("Missing key name")
        return self._client._query(f"kv/{_check_key(key)}", query_options(options, args), _entry, missing=_none)

    def list_prefix(self, prefix: str = "", *, options: QueryOptions | None = None,
                    **args: Unpack[QueryArgs]) -> Reply[list[KVPair]]:
        """Every entry under `prefix` (`?recurse`), sorted by key; `[]` when there is none."""
        return self._client._query(f"kv/{_check_key(prefix)}", query_options(options, args), _entries,
                                   params=[("recurse", "")], missing=_empty_pairs)

    def keys(self, prefix: str = "", separator: str | None = None, *, options: QueryOptions | None = None,
             **args: Unpack[QueryArgs]) -> Reply[list[str]]:
        """Key names under `prefix`, truncated after `separator` when given; `[]` when none."""
        params: Params = [("keys", "")]
        if separator:
            params.append(("separator", separator))
        return self._client._query(f"kv/{_check_key(prefix)}", query_options(options, args), _key_names,
                                   params=params, missing=_empty_keys)

    def put(self, key: str, value: bytes | str | None = None, *, flags: int | None = None,
            cas: int | None = None, acquire: str | None = None, release: str | None = None,
            dc: str | None = None) -> bool:
        """Write a value; with cas/acquire/release, whether that operation succeeded."""
        if not key:
            raise ValueError("Missing key name")
        params: Params = []
        for name, arg in (("flags", flags), ("cas", cas), ("acquire", acquire), ("release", release)):
            if arg is not None:
                params.append((name, str(arg)))
        return bool(self._client._write("PUT", f"kv/{_check_key(key)}", params=params,
                                        data=_to_bytes(value) or b"", dc=dc))

    def delete(self, key: str, recurse: bool = False, *, cas: int | None = None, dc: str | None = None) -> bool:
        """Delete a key (or, with recurse, everything under the prefix); False when a CAS fails."""
        if not key and not recurse:
            raise ValueError("Missing key name")
        params: Params = []
        if recurse:
            params.append(("recurse", ""))
        if cas is not None:
            params.append(("cas", str(cas)))
        return bool(self._client._write("DELETE", f"kv/{_check_key(key)}", params=params, dc=dc))
