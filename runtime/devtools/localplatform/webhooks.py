"""Flows that start with the platform's webhook, called over HTTP, and request-reply.

``HEAD|GET|POST|PUT|PATCH|DELETE /hook/{flowId}[/more/path]`` on the local platform's port:
the request becomes the message the platform's webhook step emits (``body`` as JSON, a form's
fields or the text, ``headers``, ``query``, ``method``, ``url``, ``originalUrl``,
``additionalUrlPath``), published as the webhook node's data, so the router takes it to the
next steps. The caller gets ``{"requestId", "message": "thank you"}`` at once, unless the flow
is a request-reply flow (``local.requestReply``): then the message carries a ``reply_to``,
and the first ``httpReply`` of the execution is the HTTP answer (its ``statusCode``,
``headers`` and ``body``); an error before any reply is a 500 with the error's message; no
reply within ``local.replyTimeout`` (30 s) a 504 that says so. A body over the limit is a 413;
a flow that is not running, or does not start with a webhook, a 404 (HEAD says so too).

Replies come back on one queue per flow; each request waits for its own by the execution's
``threadId`` (the request id), so concurrent callers never get each other's answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from runtime.devtools.localplatform import messaging
from runtime.devtools.localplatform.flow import FlowSpec
from runtime.devtools.localplatform.graph import GraphFlow
from runtime.log import get_logger
from runtime.worker.amqp import AdminClient
from runtime.worker.transport import Properties

_log = get_logger(__name__)
_METHODS = {"HEAD", "GET", "POST", "PUT", "PATCH", "DELETE"}


def reply_key(flow: GraphFlow) -> str:
    return f"{flow.id}:webhook:reply"


def reply_queue(flow: GraphFlow) -> str:
    return f"{flow.id}:webhook:replies"


class _Waiting:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[dict[str, Any]] = loop.create_future()


class WebhookService:
    """Takes the flows' webhook calls; one publisher thread, one reply reader per flow."""

    def __init__(self, flows: list[GraphFlow]) -> None:
        self.flows = {f.id: f for f in flows if f.starts_with_webhook}
        self._steps = {f.id: f.step(f.first) for f in self.flows.values()}
        self._publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-publish")
        self._admin: AdminClient | None = None
        self._waiting: dict[str, _Waiting] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._readers: list[threading.Thread] = []

    def start(self) -> WebhookService:
        for flow in self.flows.values():
            step = self._steps[flow.id]
            with AdminClient(step.amqp_url, name="platform-webhooks") as admin:
                admin.declare_exchange(step.publish_exchange)  # a new broker has none yet
                admin.declare_queue(reply_queue(flow))
                admin.bind(reply_queue(flow), step.publish_exchange, reply_key(flow))
            if flow.local.request_reply:
                reader = threading.Thread(
                    target=self._read_replies, args=(flow,), name="webhook-replies", daemon=True
                )
                reader.start()
                self._readers.append(reader)
        return self

    def stop(self) -> None:
        self._stop.set()
        for reader in self._readers:
            reader.join(5)
        self._publisher.submit(self._close).result(10)
        self._publisher.shutdown()

    def _close(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
            self._admin = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        flow = self.flows.get(request.match_info["flow"])
        if request.method not in _METHODS:
            return web.json_response({"error": f"{request.method} is not taken"}, status=405)
        if flow is None:
            if request.method == "HEAD":
                return web.Response(status=404)
            return web.json_response(
                {"error": f"no running flow {request.match_info['flow']} starts with a webhook"},
                status=404,
            )
        if request.method == "HEAD":
            return web.Response(status=200)
        raw = await request.read()  # over the app's client_max_size: aiohttp answers 413
        request_id = str(uuid.uuid4())
        message = _message(request, raw, request_id)
        waiting = None
        if flow.local.request_reply:
            waiting = _Waiting(asyncio.get_running_loop())
            with self._lock:
                self._waiting[request_id] = waiting
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._publisher, self._publish, flow, message, request_id
            )
            if waiting is None:
                return web.json_response({"requestId": request_id, "message": "thank you"})
            try:
                reply = await asyncio.wait_for(waiting.future, flow.local.reply_timeout)
            except TimeoutError:
                return web.json_response(
                    {"error": f"flow {flow.id} sent no reply within "
                              f"{flow.local.reply_timeout:g} s", "requestId": request_id},
                    status=504,
                )  # fmt: skip
            return _response(reply, request_id)
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)

    def _publish(self, flow: GraphFlow, message: dict[str, Any], request_id: str) -> None:
        step = self._steps[flow.id]
        if self._admin is None:
            self._admin = AdminClient(step.amqp_url, name="platform-webhooks")
        headers: dict[str, Any] = {
            "messageId": request_id,
            "threadId": request_id,
            "taskId": flow.id,
            "execId": f"{flow.id}-exec",
            "stepId": flow.first.id,
            "userId": step.user_id,
            "workspaceId": step.workspace_id,
            "protocolVersion": 1,
            "start": int(time.time() * 1000),
        }
        if flow.local.request_reply:
            headers["reply_to"] = reply_key(flow)
        body = messaging.encode_for(step, message, 1)
        properties = Properties(headers=headers, content_type="application/json",
                                content_encoding="utf8", delivery_mode=2)  # fmt: skip
        data_key = step.routing_key("message")  # the webhook node's data: routed onwards
        try:
            self._admin.publish(step.publish_exchange, data_key, body, properties)
        except Exception:
            self._close()  # a new connection for the next request
            raise

    def _read_replies(self, flow: GraphFlow) -> None:
        step = self._steps[flow.id]
        while not self._stop.is_set():
            try:
                with AdminClient(step.amqp_url, name="platform-webhook-replies") as admin:
                    admin.consume(
                        reply_queue(flow),
                        lambda body, props: self._deliver(step, body, props),
                        stop=self._stop,
                    )
            except Exception as exc:  # noqa: BLE001 - the reader lives on; replies wait queued
                _log.warning("webhook_replies_reconnecting", flow=flow.id, error=str(exc))
                self._stop.wait(1.0)

    def _deliver(self, step: FlowSpec, body: bytes, props: Properties) -> None:
        thread = str(props.headers.get("threadId", ""))
        with self._lock:
            waiting = self._waiting.get(thread)
        if waiting is None:
            return  # its caller gave up (504) or it is a second reply: the first one counts
        event = messaging.read(step, "reply", body, props)
        waiting.loop.call_soon_threadsafe(_settle, waiting.future, event)


def _settle(future: asyncio.Future[dict[str, Any]], event: dict[str, Any]) -> None:
    if not future.done():
        future.set_result(event)


def _message(request: web.Request, raw: bytes, request_id: str) -> dict[str, Any]:
    """The message the platform's webhook step emits for this request."""
    return {
        "id": request_id,
        "body": _body(request.content_type, raw),
        "headers": {k.lower(): v for k, v in request.headers.items()},
        "query": dict(request.query),
        "method": request.method,
        "url": str(request.url),
        "originalUrl": request.path_qs,
        "additionalUrlPath": request.match_info.get("more", ""),
        "attachments": {},
    }


def _body(content_type: str, raw: bytes) -> Any:
    if not raw:
        return {}
    text = raw.decode("utf-8", errors="replace")
    if content_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(text, keep_blank_values=True))
    try:
        return json.loads(text)
    except ValueError:
        return text


def _response(event: dict[str, Any], request_id: str) -> web.Response:
    payload = event["payload"]
    if event["event"] == "error reply":
        message = payload.get("message") if isinstance(payload, dict) else str(payload)
        return web.json_response({"error": message, "requestId": request_id}, status=500)
    if not isinstance(payload, dict):
        return web.json_response(payload)
    status = int(payload.get("statusCode") or 200)
    headers = {str(k): str(v) for k, v in (payload.get("headers") or {}).items()}
    body = payload.get("body")
    structured = isinstance(body, (dict, list)) or body is None
    if not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json" if structured else "text/plain"
    text = json.dumps(body if body is not None else {}) if structured else str(body)
    return web.Response(status=status, body=text.encode(), headers=headers)
