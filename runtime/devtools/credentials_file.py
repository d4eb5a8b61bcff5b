"""A credentials file for local runs: entries by source name, ``${ENV_VAR}`` references.

::

    {
      "xero": {"type": "oauth2", "provider": "xero", "clientId": "${XERO_CLIENT_ID}",
               "clientSecret": "${XERO_CLIENT_SECRET}", "refreshToken": "...", "tenantId": "..."}
    }

Refreshed tokens are written back atomically (a temporary file in the same folder, flushed
to disk, then renamed over the old one), with mode 0600, under a lock so two processes do
not interleave their writes, and only while the entry still holds the tokens they replace;
values that came from ``${ENV_VAR}`` stay references, so a secret kept in the environment
never lands in the file. Processes sharing the file refresh one at a time through
``lock()``, a lock file per entry beside it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from runtime import bounded
from runtime.auth.credentials import Credentials, keys_version
from runtime.auth.errors import KeysConflict
from runtime.auth.file_lock import FileLock
from runtime.auth.locks import DEFAULT_WAIT
from runtime.errors import ConfigError
from runtime.redact import SECRETS

FILE_LIMIT = 16 * 1024 * 1024
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class CredentialsFile:
    """Read and update one credentials file."""

    def __init__(self, path: str | Path, env: Mapping[str, str] | None = None) -> None:
        self.path = Path(path)
        self._env = os.environ if env is None else env

    def names(self) -> list[str]:
        return sorted(self._read())

    def entry(self, name: str) -> dict[str, Any]:
        """The named entry with every ``${ENV_VAR}`` resolved.

        Raises:
            ConfigError: no such entry, or a referenced variable is not set.
        """
        raw = self._read()
        if name not in raw:
            known = ", ".join(sorted(raw)) or "none"
            raise ConfigError(f"{self.path}: no credential named {name!r} (entries: {known})")
        value = raw[name]
        if not isinstance(value, dict):
            raise ConfigError(f"{self.path}: entry {name!r} must be a JSON object")
        resolved: dict[str, Any] = self._resolve(value, name)
        SECRETS.add_from(resolved)
        return resolved

    def load(self, name: str, *, complete: bool = True) -> Credentials:
        return Credentials.parse(self.entry(name), name=name, complete=complete)

    def save(self, name: str, keys: Mapping[str, Any], *, replaces: str | None = None) -> None:
        """Replace the entry's keys, keeping ``${ENV_VAR}`` references whose value is unchanged.

        Args:
            name: the entry.
            keys: the whole new entry.
            replaces: the ``keys_version`` the entry must still hold (None: do not compare).

        Raises:
            KeysConflict: the entry holds other tokens than those the keys replace.
        """
        with self._locked():
            raw = self._read() if self.path.exists() else {}
            old = raw.get(name) if isinstance(raw.get(name), dict) else {}
            if replaces is not None and old:
                held = keys_version(self._resolve_quietly(old, name))
                if held not in (None, replaces, keys_version(keys)):
                    raise KeysConflict(
                        f"{self.path}: entry {name!r} holds tokens another process saved since "
                        "these were refreshed; it was not overwritten"
                    )
            raw[name] = self._keep_references(dict(keys), old or {})
            self._write(raw)

    def lock(self, wait: float = DEFAULT_WAIT) -> FileLock:
        """The lock processes sharing this file take to refresh one of its entries."""
        return FileLock(self.path.parent, prefix=f".{self.path.name}.refresh-", wait=wait)

    # --- internals ---------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        try:
            data = bounded.loads(
                self.path.read_bytes(), what=f"credentials file {self.path}", limit=FILE_LIMIT
            )
        except FileNotFoundError:
            raise ConfigError(f"credentials file {self.path} does not exist") from None
        except bounded.OutOfBounds as exc:
            raise ConfigError(str(exc)) from None
        if not isinstance(data, dict):
            raise ConfigError(f"credentials file {self.path} must hold a JSON object of entries")
        return data

    def _resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, str):
            return _REFERENCE.sub(lambda m: self._variable(m.group(1), where), value)
        if isinstance(value, dict):
            return {k: self._resolve(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value

    def _resolve_quietly(self, value: dict[str, Any], where: str) -> dict[str, Any]:
        try:
            resolved: dict[str, Any] = self._resolve(value, where)
        except ConfigError:
            return value  # tokens are never ${ENV} references; the rest does not matter here
        return resolved

    def _variable(self, variable: str, where: str) -> str:
        value = self._env.get(variable)
        if value is None:
            raise ConfigError(
                f"{self.path}: {where} refers to ${{{variable}}}, which is not set; "
                f"export {variable} or put the value in the file"
            )
        return value

    def _keep_references(self, keys: dict[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
        kept = dict(keys)
        for field, original in old.items():
            if field in kept and _contains_reference(original):
                try:
                    resolved = self._resolve(original, field)
                except ConfigError:
                    continue
                if resolved == kept[field]:
                    kept[field] = original
        return kept

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, data: Mapping[str, Any]) -> None:
        folder = self.path.parent
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=folder)
        try:
            os.fchmod(handle, 0o600)
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=2, ensure_ascii=False)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _contains_reference(value: Any) -> bool:
    return isinstance(value, str) and _REFERENCE.search(value) is not None
