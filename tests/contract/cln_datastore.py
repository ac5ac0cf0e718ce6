"""lightningd's plugin datastore, for the lightningd stand-in (`cln_harness.FakeLightningd`).

Imitates Core Lightning's `datastore` and `listdatastore` RPCs as their manual pages state them:
a key is an array of strings (a single string is a one-element array) and has either a value or
children, never both; `datastore key [string] [hex] [mode] [generation]` with mode must-create
(the default) / must-replace / create-or-replace / must-append / create-or-append, generation only
with must-replace or must-append, errors 1202 (exists), 1203 (does not exist), 1204 (wrong
generation), 1205 (has children), 1206 (a parent has a value), -32602 (bad parameters); the
result is `{key, generation, hex, string}`. `listdatastore [key]` returns `{"datastore": [...]}`:
the key's own entry if it has a value, else its immediate children (a parent as `{key}` only).
Kept in a JSON file in the lightning directory, as lightningd keeps it in its database: it
outlives the plugin.
"""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Any

MODES = ("must-create", "must-replace", "create-or-replace", "must-append", "create-or-append")


class DatastoreError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _key(value: Any) -> tuple[str, ...]:
    key = [value] if isinstance(value, str) else value
    if not isinstance(key, list) or not all(isinstance(k, str) for k in key):
        raise DatastoreError(-32602, "key: should be a string or an array of strings")
    return tuple(key)


class Datastore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: dict[tuple[str, ...], tuple[bytes, int]] = {}  # key -> (value, generation)
        if path.exists():
            for e in json.loads(path.read_text()):
                self._data[tuple(e["key"])] = (bytes.fromhex(e["hex"]), e["generation"])

    def _flush(self) -> None:
        rows = [
            {"key": list(k), "hex": v.hex(), "generation": g} for k, (v, g) in self._data.items()
        ]
        self.path.write_text(json.dumps(rows))

    @staticmethod
    def _entry(key: tuple[str, ...], value: bytes, generation: int) -> dict:
        entry: dict[str, Any] = {"key": list(key), "generation": generation, "hex": value.hex()}
        with contextlib.suppress(UnicodeDecodeError):
            entry["string"] = value.decode()
        return entry

    def datastore(self, params: dict) -> dict:
        key = _key(params.get("key"))
        string, hexdata = params.get("string"), params.get("hex")
        mode, generation = params.get("mode", "must-create"), params.get("generation")
        if (string is None) == (hexdata is None) or mode not in MODES:
            raise DatastoreError(-32602, "give one of string or hex, and a valid mode")
        if generation is not None and mode not in ("must-replace", "must-append"):
            raise DatastoreError(-32602, "generation only with must-replace or must-append")
        value = string.encode() if string is not None else bytes.fromhex(hexdata)
        with self._lock:
            if any(key[:i] in self._data for i in range(1, len(key))):
                raise DatastoreError(1206, "Parent key has data")
            if any(k[: len(key)] == key and len(k) > len(key) for k in self._data):
                raise DatastoreError(1205, "Key has children")
            old = self._data.get(key)
            if old is not None and mode == "must-create":
                raise DatastoreError(1202, "Key already exists")
            if old is None and mode in ("must-replace", "must-append"):
                raise DatastoreError(1203, "Key does not exist")
            if generation is not None and old is not None and old[1] != generation:
                raise DatastoreError(1204, "generation is different")
            if old is not None and mode.endswith("append"):
                value = old[0] + value
            new = (value, 0 if old is None else old[1] + 1)
            self._data[key] = new
            self._flush()
        return self._entry(key, *new)

    def listdatastore(self, params: dict) -> dict:
        key = _key(params["key"]) if params.get("key") is not None else ()
        with self._lock:
            if key and key in self._data:
                return {"datastore": [self._entry(key, *self._data[key])]}
            children = sorted({k[: len(key) + 1] for k in self._data if k[: len(key)] == key})
            out = [
                self._entry(c, *self._data[c]) if c in self._data else {"key": list(c)}
                for c in children
                if len(c) > len(key)
            ]
        return {"datastore": out}
