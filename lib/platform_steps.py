"""The steps of the platform's own REST API component, so that its flows run unchanged.

Two generations, each as an action and a polling trigger, both on this connector's request
engine (lib/rest_call.py); they differ in how they read their configuration and shape what
they emit, not in how they send:

* the current steps, ``httpRequestAxios`` and ``httpRequestAxiosTrigger``: the fields of
  the ``httpRequest`` action (error policy, codes, retries, limits, files), and the output
  ``{statusCode, HTTPHeaders, responseBody}``, or ``attachmentUrl`` instead of
  ``responseBody`` for a file. The body is JSON when it parses (whatever its content type,
  as that component reads it), else the text; binary answers are stored as attachments.
  A 3xx that is not followed is an error unless ``ignoreErrorCodes`` lists it.
* the older steps, ``httpRequestAction`` and ``httpRequestTrigger`` with a ``reader``:
  ``dontThrowErrorFlg`` (a failed call is data: the answer, or ``errorCode`` and
  ``errorMessage`` when there was none), ``enableRebound`` (408, 423, 429, 500, 502, 503,
  504, or no answer: one ``rebound`` at once), ``splitResult`` (an array body is one
  message per item), ``followRedirect`` (``doNotFollowRedirects`` emits the 3xx),
  ``delay`` in seconds spread over ``callCount`` calls, ``requestTimeoutPeriod``; the
  output ``{headers, body, statusCode, statusMessage}``; a JSON or XML answer that does
  not parse is an error; images, PDF, office documents, CSV and octet-stream are stored
  as attachments (the body then has ``attachments`` instead of ``body``). A GET sends no
  body; a multipart body also carries the message's attachments, each as a file part
  named by its key.

Both take the credential the platform holds for them (``secretId``: ``ctx.http`` reads it
from the platform's secrets API and asks the platform to refresh it on a 401).
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lib.bodies import OptionalFile
from lib.http import read_limited
from lib.options import ATTACHMENT_LIMIT, MAX_REDIRECTS, MAX_WAIT_MS, Options, flag, options_from
from lib.request_plan import Value, plan_for
from lib.responses import BINARY_MARKERS, headers_of, parse_xml, store_answer
from lib.rest_call import Unreachable, call
from runtime import AsyncContext, AsyncResponse, InvalidInput, Message, StepError, bounded

REBOUND_CODES = frozenset({408, 423, 429, 500, 502, 503, 504})
"""The older steps' ``enableRebound`` sends the message back on these (and on no answer)."""
OLDER_BINARY = ("image", "msword", "msexcel", "pdf", "csv", "octet-stream", "binary")
NON_SUCCESS = frozenset(range(300, 600))
CURRENT_TIMEOUT_MS = 60_000
"""The current steps' timeout when none is set (``DEFAULT_TIME_OUT`` in their client)."""
AXIOS_REDIRECTS = 21
"""Redirects axios follows when the current steps set no ``maxRedirects``."""


async def run_current(ctx: AsyncContext, msg: Message, cfg: Mapping[str, Any]) -> None:
    """``httpRequestAxios`` and ``httpRequestAxiosTrigger``."""
    plan = plan_for(_with_reader(cfg))
    text_encoding = _node_encoding(cfg)
    options = current_options(cfg, oauth2=ctx.http.credentials.type == "oauth2")
    response = await call(ctx, msg, cfg, plan=plan, options=options)
    if response is not None:
        output = await _current_output(response, options, msg, cfg, text_encoding)
        await ctx.emit("data", output)


async def run_older(ctx: AsyncContext, msg: Message, cfg: Mapping[str, Any]) -> None:
    """``httpRequestAction``, and ``httpRequestTrigger`` given a ``reader``."""
    plan = plan_for(_with_reader(cfg))
    oauth2 = ctx.http.credentials.type == "oauth2"
    if oauth2:  # those steps take a 403 as a refused token too, and refresh it once
        ctx.http.refresh_on = frozenset({401, 403})
    options = older_options(cfg, oauth2=oauth2)
    files = {name: entry for name, entry in msg.attachments.items() if _url_of(entry)}
    if plan.content_type == "multipart/form-data" and plan.method != "GET" and files:
        # Those steps send the message's attachments as parts of a multipart body too.
        plan = dataclasses.replace(plan, body=_WithFiles(plan.body, files))
        options = dataclasses.replace(options, upload_file=True)
    try:
        response = await call(ctx, msg, cfg, plan=plan, options=options, body_on_get=False)
    except Unreachable as exc:
        if not flag(cfg.get("dontThrowErrorFlg")):
            raise
        await ctx.emit("data", {"body": {"errorCode": exc.code, "errorMessage": str(exc)}})
        return
    if response is None:
        return
    for message in await _older_outputs(response, options, msg, cfg):
        await ctx.emit("data", message)


@dataclass(frozen=True)
class _WithFiles:
    """A multipart body's rows, and a file part for each attachment, named by its key (one
    that cannot be fetched is left out and logged, as those steps do)."""

    rows: Value
    files: Mapping[str, Any]

    def value(self, scope: Mapping[str, Any]) -> Any:
        rows = self.rows.value(scope)
        parts = dict(rows) if isinstance(rows, Mapping) else {}
        for name, entry in self.files.items():
            parts[name] = OptionalFile(str(_url_of(entry)), name)
        return parts


def _url_of(entry: Any) -> str | None:
    url = entry.get("url") if isinstance(entry, Mapping) else None
    return url if isinstance(url, str) and url else None


def current_options(cfg: Mapping[str, Any], *, oauth2: bool) -> Options:
    """The current steps' options in the engine's terms. Unset, the timeout is 60 s and
    redirects are followed up to 21 times, as that component's code does (its form says
    100 s and 5: the code is what flows have run with)."""
    checked = dict(cfg)
    if _node_encoding(cfg):
        checked["responseEncoding"] = "utf8"  # decoded by the step itself, not the engine
    if cfg.get("requestTimeoutPeriod") in (None, "") and cfg.get("timeout") in (None, ""):
        checked["requestTimeoutPeriod"] = CURRENT_TIMEOUT_MS
    follow_default = cfg.get("maxRedirects") in (None, "")
    options = options_from(checked, oauth2=oauth2)
    return dataclasses.replace(
        options,
        max_redirects=AXIOS_REDIRECTS if follow_default else options.max_redirects,
        redirects_as_data=False,
    )


def older_options(cfg: Mapping[str, Any], *, oauth2: bool) -> Options:
    """The older steps' options in the engine's terms."""
    shared = ("noStrictSSL", "requestTimeoutPeriod", "connectionRetries")
    base = options_from({k: cfg[k] for k in shared if k in cfg}, oauth2=oauth2)
    rebound = flag(cfg.get("enableRebound"))
    keep_going = flag(cfg.get("dontThrowErrorFlg"))
    follow = str(cfg.get("followRedirect") or "followRedirects") != "doNotFollowRedirects"
    return dataclasses.replace(
        base,
        max_redirects=MAX_REDIRECTS if follow else 0,
        redirects_as_data=not follow,
        delay=_older_delay(cfg),
        max_retries=0,
        policy="rebound" if rebound else "byComponent",
        policy_codes=REBOUND_CODES if rebound else frozenset(),
        emit_codes=NON_SUCCESS - REBOUND_CODES if rebound and keep_going else frozenset(),
        pass_non_success=keep_going and not rebound,
    )


def _older_delay(cfg: Mapping[str, Any]) -> float:
    """Seconds between calls: ``delay`` (seconds) divided by ``callCount``."""
    delay, count = cfg.get("delay"), cfg.get("callCount")
    if count not in (None, "") and delay in (None, ""):
        raise InvalidInput("field 'callCount' needs 'delay' too: the calls are spread over it")
    if delay in (None, ""):
        return 0.0
    seconds = _positive_integer(delay, "delay")
    calls = 1 if count in (None, "") else _positive_integer(count, "callCount")
    between = seconds / calls
    if between * 1000 > MAX_WAIT_MS:
        raise InvalidInput(
            f"'delay' / 'callCount' is {between:g} s between calls; at most "
            f"{MAX_WAIT_MS // 1000} s (19 minutes, the platform's limit on a step's run)"
        )
    return between


def _positive_integer(raw: Any, name: str) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidInput(f"field {name!r} is {raw!r}; it must be a whole number above 0")
    return value


def _with_reader(cfg: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(cfg.get("reader"), dict):
        raise InvalidInput(
            "field 'reader' is missing: this step takes the request as the platform's REST API "
            'view writes it ({"method": ..., "url": ..., "headers": [...], "body": ...})'
        )
    return cfg


def _attachment_limit(options: Options, cfg: Mapping[str, Any]) -> int:
    explicit = cfg.get("maxContentLength") not in (None, "")
    return options.response_limit if explicit else ATTACHMENT_LIMIT


NODE_TEXT_ENCODINGS = {
    "latin1": "latin-1", "binary": "latin-1", "ascii": "ascii", "utf16le": "utf-16-le",
    "ucs2": "utf-16-le", "hex": "hex", "base64url": "base64url",
}  # fmt: skip
"""``responseEncoding`` values other than utf8 and base64 that Node.js decodes a body with,
as the platform's current steps pass them to axios: the body is decoded so, then read as
JSON when it parses."""


def _node_encoding(cfg: Mapping[str, Any]) -> str | None:
    name = str(cfg.get("responseEncoding") or "").strip().lower().replace("-", "")
    return NODE_TEXT_ENCODINGS.get(name)


def _decoded(raw: bytes, encoding: str) -> str:
    if encoding == "hex":
        return raw.hex()
    if encoding == "base64url":
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    if encoding == "ascii":  # Node keeps the low seven bits of each byte
        return bytes(b & 0x7F for b in raw).decode("ascii")
    return raw.decode(encoding, errors="replace")


async def _current_output(
    response: AsyncResponse,
    options: Options,
    msg: Message,
    cfg: Mapping[str, Any],
    text_encoding: str | None = None,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "statusCode": response.status_code,
        "HTTPHeaders": headers_of(response),
    }
    message: dict[str, Any] = {"body": result, "attachments": {}}
    kind = response.headers.get("Content-Type", "").lower()
    binary = (
        any(marker in kind for marker in BINARY_MARKERS)
        and options.encoding != "base64"
        and text_encoding is None
    )
    if options.download_attachment or binary:
        name, entry = await store_answer(
            response, _attachment_limit(options, cfg), str(msg.get("id") or "")
        )
        result["attachmentUrl"] = entry["url"]
        message["attachments"][name] = entry
        return message
    raw = await read_limited(response, options.response_limit, seconds=options.timeout * 3)
    if options.encoding == "base64":
        result["responseBody"] = base64.b64encode(raw).decode()
        return message
    text = (
        _decoded(raw, text_encoding)
        if text_encoding is not None
        else raw.decode(response.encoding or "utf-8", errors="replace")
    )
    try:  # as axios reads it: JSON whenever the text parses, whatever the content type
        result["responseBody"] = bounded.loads(text, what="the response") if text.strip() else ""
    except bounded.TooDeep as exc:
        raise StepError(str(exc)) from None
    except bounded.OutOfBounds:
        result["responseBody"] = text
    return message


async def _older_outputs(
    response: AsyncResponse, options: Options, msg: Message, cfg: Mapping[str, Any]
) -> list[dict[str, Any]]:
    result: dict[str, Any] = {
        "headers": headers_of(response),
        "statusCode": response.status_code,
        "statusMessage": response.reason or "",
    }
    kind = response.headers.get("Content-Type", "").lower()
    if any(marker in kind for marker in OLDER_BINARY):
        name, entry = await store_answer(
            response, _attachment_limit(options, cfg), str(msg.get("id") or "")
        )
        entry = {**entry, "size": str(entry["size"])}  # a header's text there, as it came
        return [{"body": {**result, "attachments": entry}, "attachments": {name: entry}}]
    raw = await read_limited(response, options.response_limit, seconds=options.timeout * 3)
    if raw:
        result["body"] = _older_body(response, raw, kind)
    carried = dict(msg.attachments)
    if flag(cfg.get("splitResult")) and isinstance(result.get("body"), list):
        items = result["body"]
        return [{"body": {**result, "body": item}, "attachments": carried} for item in items]
    return [{"body": result, "attachments": carried}]


def _older_body(response: AsyncResponse, raw: bytes, kind: str) -> Any:
    """By content type; a JSON or XML answer that does not parse fails the message, as it
    does on the platform (a flow mapping its fields would get nothing)."""
    if "json" in kind or not kind:
        try:
            return bounded.loads(raw, what="the response")
        except bounded.OutOfBounds as exc:
            if kind:
                raise StepError(f"the answer says it is JSON ({kind}) but is not: {exc}") from None
    if "xml" in kind:
        parsed = parse_xml(raw)
        if parsed is None:
            raise StepError(
                f"the answer says it is XML ({kind}) but is not well-formed; nothing was emitted"
            )
        return parsed
    return raw.decode(response.encoding or "utf-8", errors="replace")
