"""The brain: the latest data of every dependency, keyed by the dependency's identity string."""

from __future__ import annotations

import threading
from typing import Any

from meshctl.template.dependency import Dependency


class Brain:
    """A thread-safe cache: `remember(dep, data)`, `recall(dep) -> (data, ok)`, `forget(dep)`."""

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._lock = threading.Lock()

    def remember(self, dep: Dependency | str, data: Any) -> None:
        """Store the latest data of `dep` (None is data too: e.g. a key that does not exist)."""
        with self._lock:
            self._data[str(dep)] = data

    def recall(self, dep: Dependency | str) -> tuple[Any, bool]:
        """(data, True) when `dep` has data, else (None, False)."""
        with self._lock:
            key = str(dep)
            if key in self._data:
                return self._data[key], True
            return None, False

    def forget(self, dep: Dependency | str) -> None:
        """Drop the data of a dependency nobody uses any more."""
        with self._lock:
            self._data.pop(str(dep), None)

    def __contains__(self, dep: object) -> bool:
        with self._lock:
            return str(dep) in self._data

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
