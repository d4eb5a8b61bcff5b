"""Object storage for lightweight messages, served locally (a stand-in for maester)."""

from __future__ import annotations

import threading
import uuid
from urllib.parse import urlsplit

from runtime.devtools.jsonhttp import JsonHandler, JsonServer


class ObjectStore:
    """``POST /objects`` and ``GET /objects/{id}`` behind a bearer token, kept in memory.

    It also stands in for the platform's attachment storage: attachments are objects read
    back at ``/objects/{id}?storage_type=maester`` with the type they were stored with.
    """

    def __init__(self, token: str, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.token = token
        self.objects: dict[str, bytes] = {}
        self.types: dict[str, str] = {}
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"store": self})
        self.server = JsonServer((host, port), handler)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ObjectStore:
        threading.Thread(target=self.server.serve_forever, name="object-store", daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(JsonHandler):
    store: ObjectStore

    def handle_method(self, method: str) -> None:
        body = self.read_body()
        if self.headers.get("Authorization") != f"Bearer {self.store.token}":
            self.reply(401, {"error": "Unauthorized"})
            return
        path = urlsplit(self.path).path
        if method == "POST" and path == "/objects":
            object_id = str(uuid.uuid4())
            with self.store.lock:
                self.store.objects[object_id] = body
                self.store.types[object_id] = self.headers.get("Content-Type") or ""
            self.reply(201, {"objectId": object_id})
        elif method == "GET" and path.startswith("/objects/"):
            object_id = path.rsplit("/", 1)[-1]
            with self.store.lock:
                found = self.store.objects.get(object_id)
                kind = self.store.types.get(object_id) or "application/octet-stream"
            if found is None:
                self.reply(404, {"error": "not found"})
            else:
                self.reply(200, found, {"Content-Type": kind})
        else:
            self.reply(404, {"error": f"no route for {method} {self.path}"})
