"""One configured HTTP call for a message: build it, send it under the error policy, emit it.

The action ``httpRequest`` and the polling trigger ``httpRequestTrigger`` both run this, as
``async def`` steps: on the worker's event loop, with the async ``ctx.http``.

Error policy (for the status codes in ``errorCodes``, and for timeouts and failures to
connect): ``byComponent`` retries up to ``maxRetries`` times, waiting what ``Retry-After``
asks or 1, 2, 4... seconds (a connection refused, or a name that does not resolve, only
``connectionRetries`` times: 2 by default); ``rebound`` sends the message back to the queue
for later; ``throwError`` fails at once; ``emit`` emits the response as data. Codes in
``ignoreErrorCodes`` are emitted as data first, whatever the policy; other non-2xx answers
are errors (or data with ``passNonSuccess``). A 401 is never the policy's business: the
credential's token is refreshed once and the request sent again.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Mapping
from typing import Any

import requests
import urllib3
from urllib3.exceptions import InsecureRequestWarning

from lib.bodies import FROM_MESSAGE, Body, content_type_of, encode, json_text
from lib.http import READ_SECONDS, HttpStatusError, kind_of, snippet, tenant_header, where
from lib.options import ATTACHMENT_LIMIT, Options, options_from
from lib.request_plan import Absent, Plan, plan_for
from lib.responses import output
from lib.templating import scope
from runtime import (
    AsyncAuthorizedSession,
    AsyncContext,
    AsyncResponse,
    AuthError,
    InvalidInput,
    Message,
    StepError,
    describe_failure,
    retry_after_seconds,
)

WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_BACKOFF = 60.0
MAX_RETRY_AFTER = 300.0
SNIPPET_BYTES = 1024

Encoder = functools.partial[Body]
"""``lib.bodies.encode`` with the step's upload settings bound: (content type, value)."""

_last_call: dict[str, float] = {}
_last_call_lock = threading.Lock()


class PolicyFailure(StepError):
    """The API kept failing with a code under the error policy, or could not be reached."""


class Unreachable(PolicyFailure):
    """No answer at all: refused, unknown host, reset, or timed out (``code`` says which,
    in the words Node.js uses, as the platform's steps report it)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


async def run(ctx: AsyncContext, msg: Message, cfg: Mapping[str, Any]) -> None:
    """Send the step's request for ``msg`` and emit what it gives (data or rebound)."""
    options = options_from(cfg, oauth2=ctx.http.credentials.type == "oauth2")
    response = await call(ctx, msg, cfg, plan=plan_for(cfg), options=options)
    if response is None:
        return
    message = await output(response, options, msg.attachments, str(msg.get("id") or ""))
    await ctx.emit("data", message)


async def call(
    ctx: AsyncContext,
    msg: Message,
    cfg: Mapping[str, Any],
    *,
    plan: Plan,
    options: Options,
    body_on_get: bool = True,
) -> AsyncResponse | None:
    """Build the request for ``msg``, send it under the error policy; the response to emit
    (open: the caller reads and closes it), or None when the message was sent back
    (``rebound`` emitted). Every step of the connector sends through here.

    Args:
        body_on_get: a GET of a ``reader`` configuration carries its body (as the platform's
            current steps send it); False for its older steps, which send none.
    """
    values = {**scope(msg, dict(cfg)), "flowVariables": dict(ctx.flow_variables)}
    build = functools.partial(
        _build, ctx, plan=plan, values=values, msg=msg, cfg=cfg, options=options,
        body_on_get=body_on_get,
    )  # fmt: skip
    # Reading the files to send blocks: off the event loop.
    request = await asyncio.to_thread(build) if options.upload_file else build()
    for part, reason in request["body"].skipped:
        ctx.log.warning("attachment_not_sent", part=part, reason=reason[:300])
    try:
        response = await _send(ctx, plan.method, request, options)
    finally:
        request["body"].close()
    if response is not None:
        ctx.log.info(
            "http_response",
            method=plan.method,
            status=response.status_code,
            attachment=options.download_attachment,
        )
    return response


def _build(
    ctx: AsyncContext,
    *,
    plan: Plan,
    values: dict[str, Any],
    msg: Message,
    cfg: Mapping[str, Any],
    options: Options,
    body_on_get: bool,
) -> dict[str, Any]:
    url = plan.url.value(values)
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput(
            f"field 'url' gave {kind_of(url)}; it must give the URL (or a path under the "
            "credential's base URL) as text"
        )
    url = ctx.http.absolute(url.strip())  # absolute from here on: every error names the host
    query = _texts(plan.query.value(values), "query")
    headers = {
        **tenant_header(ctx, cfg.get("tenantId")),
        **_texts(plan.headers.value(values), "headers"),
    }
    encoding = functools.partial(
        encode,
        upload_file=options.upload_file,
        file_limit=options.request_limit or ATTACHMENT_LIMIT,
        message_id=str(msg.get("id") or ""),
    )
    if plan.reader:
        body, query = _reader_body(
            plan, values, encoding, query, body_on_get=body_on_get, upload=options.upload_file
        )
    else:
        body = _body(plan, values, msg, encoding)
    if options.request_limit is not None and body.size > options.request_limit:
        body.close()
        raise InvalidInput(
            f"the request body is {body.size:,} bytes, more than the step's maxBodyLength "
            f"({options.request_limit:,})"
        )
    if body.content_type:
        given = next((k for k in headers if k.lower() == "content-type"), None)
        if given is None or body.content_type.startswith("multipart/"):
            headers.pop(given or "", None)
            headers["Content-Type"] = body.content_type
    if not options.verify_tls:
        # Our own warning, once per message, says it better than urllib3's on every request.
        urllib3.disable_warnings(InsecureRequestWarning)
        ctx.log.warning(
            "tls_verification_off",
            note="noStrictSSL is on: the API's certificate is not checked; anyone on the way "
            "can read and change this request",
        )
    return {"url": url, "params": query, "headers": headers, "body": body}


def _body(plan: Plan, values: dict[str, Any], msg: Message, encoding: Encoder) -> Body:
    """The body of this connector's own fields: an empty JSON, form or multipart body field
    sends the incoming message's body."""
    if plan.method not in WITH_BODY:
        return Body()
    kind = content_type_of(plan.content_type)
    empty = isinstance(plan.body, Absent)
    from_message = empty and kind in FROM_MESSAGE and plan.method != "DELETE"
    value = msg.body if from_message else plan.body.value(values)
    return Body() if value is None else encoding(kind, value)


def _reader_body(
    plan: Plan,
    values: dict[str, Any],
    encoding: Encoder,
    query: dict[str, Any],
    *,
    body_on_get: bool,
    upload: bool,
) -> tuple[Body, dict[str, Any]]:
    """The body of a platform ``reader`` configuration, as the platform's steps send it:
    only what the configuration holds (never the incoming message), rows of a GET's
    urlencoded body as its query, a raw text as that text."""
    if plan.method == "GET" and not body_on_get:
        return Body(), query
    value = plan.body.value(values)
    if value is None:
        return Body(), query
    kind = content_type_of(plan.content_type) if plan.content_type else ""
    if kind == "application/x-www-form-urlencoded" and plan.method == "GET":
        return Body(), {**query, **{k: _row_text(v) for k, v in value.items()}}
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return encoding(kind, value), query
    if kind == "application/octet-stream" and upload:
        return encoding(kind, value), query
    if isinstance(value, str):
        return Body(value.encode(), plan.content_type, len(value.encode())), query
    data = json_text(value).encode()
    return Body(data, plan.content_type or "application/json", len(data)), query


def _row_text(value: Any) -> str:
    """A form row's value as the platform sends it: objects and lists as JSON."""
    if isinstance(value, dict | list):
        return json_text(value)
    return _text(value)


async def _send(
    ctx: AsyncContext, method: str, request: dict[str, Any], options: Options
) -> AsyncResponse | None:
    session = ctx.http
    session.retries = 0  # the error policy below is the only retrying
    attempt = reconnects = 0
    while True:
        await _wait_turn(ctx, options.delay)
        try:
            response, problem, failure = await _attempt(session, method, request, options)
        except AuthError as exc:
            if options.policy == "rebound" and getattr(exc, "retryable", False):
                await ctx.emit("rebound", exc)
                return None
            raise
        if problem is None:
            return response
        if options.policy == "rebound":
            await ctx.emit("rebound", f"{problem}; trying again later")
            return None
        if failure is not None and failure != "ETIMEDOUT":
            if reconnects >= options.connection_retries:
                tries = "once" if reconnects == 0 else f"after {reconnects} retries"
                raise Unreachable(
                    f"{problem} (gave up {tries}; 'connectionRetries' up to 10 keeps trying "
                    "longer)",
                    failure,
                )
            reconnects += 1
            wait = min(MAX_BACKOFF, 2.0 ** (reconnects - 1))
            ctx.log.warning(
                "http_retry", attempt=reconnects, of=options.connection_retries, wait_s=wait
            )
            await asyncio.sleep(wait)
            continue
        calls = attempt + 1
        if calls >= max(1, options.max_retries):  # the platform's maxRetries counts every call
            tries = "after 1 call" if calls == 1 else f"after {calls} calls"
            if failure is not None:
                raise Unreachable(f"{problem} (gave up {tries})", failure)
            raise PolicyFailure(f"{problem} (gave up {tries})")
        asked = retry_after_seconds(response.headers) if response is not None else None
        wait = min(MAX_BACKOFF, 2.0**attempt) if asked is None else min(asked, MAX_RETRY_AFTER)
        attempt += 1
        ctx.log.warning("http_retry", attempt=attempt, of=options.max_retries, wait_s=wait)
        await asyncio.sleep(wait)  # cancelled with the step at its time limit


async def _attempt(
    session: AsyncAuthorizedSession, method: str, request: dict[str, Any], options: Options
) -> tuple[AsyncResponse | None, str | None, str | None]:
    """One try: the response to emit and no problem, or what went wrong under the policy
    (with the closed response, for its Retry-After), and, when there was no answer at all,
    the failure's code (``ECONNREFUSED``, ``ETIMEDOUT``...). Failures outside the policy
    raise."""
    try:
        response = await session.request(
            method,
            request["url"],
            params=request["params"],
            headers=request["headers"],
            data=request["body"].data,
            stream=True,
            timeout=options.timeout,
            verify=options.verify_tls,
            allow_redirects=options.max_redirects > 0,
            max_redirects=max(options.max_redirects, 1),
        )
    except requests.exceptions.InvalidHeader:
        raise InvalidInput(
            "a request header's name or value has a line break or leading space; check the "
            "'headers' field (values are not shown, they may be keys)"
        ) from None
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema) as exc:  # fmt: skip
        raise InvalidInput(
            f"field 'url' gave {where(request['url'])!r}, which is not an http(s) URL "
            f"({type(exc).__name__})"
        ) from None
    except requests.TooManyRedirects:
        raise StepError(
            f"the API redirected more than {options.max_redirects} times; raise "
            "'maxRedirects' (at most 10) or call the final URL"
        ) from None
    except requests.exceptions.SSLError as exc:
        raise StepError(
            f"{method} {where(request['url'])}: the secure connection failed "
            f"({_tls_reason(exc)}); if the API's certificate is self-signed or issued by a "
            "private authority, add that authority to REQUESTS_CA_BUNDLE, or turn on "
            "'noStrictSSL' (unsafe)"
        ) from None
    except (requests.Timeout, requests.ConnectionError) as exc:
        unreachable = f"{method} {where(request['url'])}: {describe_failure(exc)}"
        code = _failure_code(exc)
        if options.policy in ("throwError", "emit"):
            raise Unreachable(unreachable, code) from None
        # A timeout (connecting or answering) is the policy's; a refusal has its own budget.
        return None, unreachable, code
    status = response.status_code
    if 200 <= status < 300 or (300 <= status < 400 and options.redirects_as_data):
        return response, None, None
    if status in options.emit_codes or options.pass_non_success:
        return response, None, None
    if status in options.policy_codes and options.policy == "emit":
        return response, None, None
    if status not in options.policy_codes or options.policy == "throwError":
        raise await _failure(response)
    return response, str(await _failure(response)), None


def _failure_code(error: BaseException) -> str:
    if isinstance(error, requests.Timeout):
        return "ETIMEDOUT"
    return {"connection refused": "ECONNREFUSED", "unknown host": "ENOTFOUND"}.get(
        describe_failure(error), "ECONNRESET"
    )


async def _failure(response: AsyncResponse) -> HttpStatusError:
    """The error for a refused request, with the start of the API's answer (reads, closes)."""
    start = b""
    try:
        async with asyncio.timeout(READ_SECONDS):
            async for chunk in response.iter_chunks(SNIPPET_BYTES):
                start = chunk
                break
    except (TimeoutError, requests.RequestException):
        pass
    finally:
        response.close()
    return HttpStatusError(response, snippet(start))


async def _wait_turn(ctx: AsyncContext, delay: float) -> None:
    """``delay`` between this step's calls, in this process, however many messages call."""
    if delay <= 0:
        return
    with _last_call_lock:
        now = time.monotonic()
        slot = max(now, _last_call.get(ctx.step, float("-inf")) + delay)
        _last_call[ctx.step] = slot
    await asyncio.sleep(slot - now)


def _texts(values: Any, name: str) -> dict[str, Any]:
    """Header and query values as text (a template or expression may give a number)."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InvalidInput(
            f"field {name!r} must give an object of names and values, not {kind_of(values)}"
        )
    return {
        str(k): [_text(i) for i in v] if isinstance(v, list) else _text(v)
        for k, v in values.items()
    }


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json_text(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _tls_reason(error: BaseException) -> str:
    text = str(error)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        detail = text.split("CERTIFICATE_VERIFY_FAILED]", 1)[-1].split("(_ssl", 1)[0]
        return (
            "its certificate could not be verified: " + detail.strip(" ]:")
            if detail
            else ("its certificate could not be verified")
        )
    return "TLS handshake failed"
