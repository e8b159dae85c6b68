"""The per-execution scratchpad behind ``scratch.Key``/``Get``/``Set``/``SetX``/``MapSet``/``MapSetX``/``MapValues``."""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["Scratch"]


class Scratch:
    """Temporary key/value storage for one template execution (not shared, not cached)."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._lock = threading.RLock()

    def Key(self, k: str) -> bool:  # noqa: N802 - Go method names are part of the template API
        """True if ``k`` was set, even to nil."""
        with self._lock:
            return k in self._values

    def Get(self, k: str) -> Any:  # noqa: N802
        """The value at ``k``, or None."""
        with self._lock:
            return self._values.get(k)

    def Set(self, k: str, v: Any) -> str:  # noqa: N802
        """Store ``v`` at ``k``, overwriting. Renders as ""."""
        with self._lock:
            self._values[k] = v
        return ""

    def SetX(self, k: str, v: Any) -> str:  # noqa: N802
        """Store ``v`` at ``k`` unless ``k`` already exists."""
        with self._lock:
            self._values.setdefault(k, v)
        return ""

    def _map_set(self, k: str, mk: str, v: Any, overwrite: bool) -> str:
        with self._lock:
            m = self._values.setdefault(k, {})
            if not isinstance(m, dict):
                raise TypeError(f'"{k}" is not a map')
            if overwrite or mk not in m:
                m[mk] = v
        return ""

    def MapSet(self, k: str, mk: str, v: Any) -> str:  # noqa: N802
        """Store ``v`` under key ``mk`` of the map named ``k`` (created if missing)."""
        return self._map_set(k, mk, v, True)

    def MapSetX(self, k: str, mk: str, v: Any) -> str:  # noqa: N802
        """Like MapSet, but keep an existing ``mk``."""
        return self._map_set(k, mk, v, False)

    def MapValues(self, k: str) -> list[Any] | None:  # noqa: N802
        """The values of map ``k`` sorted by their keys (None if ``k`` is not a map)."""
        with self._lock:
            m = self._values.get(k)
            if not isinstance(m, dict):
                return None
            return [m[key] for key in sorted(m)]
