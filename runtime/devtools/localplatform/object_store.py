"""Object storage for lightweight messages, served locally (a stand-in for maester)."""

from __future__ import annotations

import threading
import uuid

from runtime.devtools.jsonhttp import JsonHandler, JsonServer


class ObjectStore:
    """``POST /objects`` and ``GET /objects/{id}`` behind a bearer token, kept in memory."""

    def __init__(self, token: str, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.token = token
        self.objects: dict[str, bytes] = {}
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
        if method == "POST" and self.path == "/objects":
            object_id = str(uuid.uuid4())
            with self.store.lock:
                self.store.objects[object_id] = body
            self.reply(201, {"objectId": object_id})
        elif method == "GET" and self.path.startswith("/objects/"):
            with self.store.lock:
                found = self.store.objects.get(self.path.rsplit("/", 1)[-1])
            if found is None:
                self.reply(404, {"error": "not found"})
            else:
                self.reply(200, found)
        else:
            self.reply(404, {"error": f"no route for {method} {self.path}"})
