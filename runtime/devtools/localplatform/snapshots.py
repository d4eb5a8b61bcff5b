"""Steps' snapshots, kept by the local platform between runs and across its restarts.

A worker emits ``snapshot`` (the whole new snapshot) or ``updateSnapshot`` (fields to lay
over it); the platform keeps the result and hands it back as the step's ``snapshot`` when a
worker of that step starts, as the platform does. Here each one is a JSON file in the local
platform's data folder: ``{folder}/{flowId}/{stepId}.snapshot.json``, written whole and
renamed into place so that a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def default_folder() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "eio-runtime" / "local-platform"


class SnapshotStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, flow_id: str, step_id: str) -> Path:
        return (
            self.folder / _UNSAFE.sub("_", flow_id) / f"{_UNSAFE.sub('_', step_id)}.snapshot.json"
        )

    def load(self, flow_id: str, step_id: str) -> dict[str, Any] | None:
        try:
            value = json.loads(self.path(flow_id, step_id).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def apply(self, flow_id: str, step_id: str, event: str, payload: Any) -> dict[str, Any]:
        """Keep a step's snapshot event; the snapshot now held."""
        held = self.load(flow_id, step_id) or {}
        if not isinstance(payload, dict):
            return held
        snapshot = {**held, **payload} if event == "updateSnapshot" else payload
        path = self.path(flow_id, step_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, prefix=".snapshot-", delete=False, encoding="utf-8"
        ) as partial:
            json.dump(snapshot, partial)
        Path(partial.name).replace(path)
        return snapshot
