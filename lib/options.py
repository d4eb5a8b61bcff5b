"""The step's request options: limits, redirects, TLS, the error policy, read and checked.

Names and defaults are those of the platform's REST API component, so configurations carry
over: ``requestTimeoutPeriod`` (ms, default 100 000), ``maxRedirects`` (default 5, 0 = do
not follow), ``maxContentLength`` (default 20 MB, 100 MB with ``downloadAsAttachment``),
``maxBodyLength``, ``delay`` (ms between calls), ``maxRetries`` (at most 10),
``connectionRetries`` (ours: retries of a connection that failed, default 2),
``errorPolicy``, ``errorCodes``, ``ignoreErrorCodes``, ``responseEncoding``,
``noStrictSSL``, ``uploadFile``, ``downloadAsAttachment``. A value out of range is an error
naming the field and the range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime import InvalidInput

MB = 1024 * 1024
MAX_WAIT_MS = 19 * 60 * 1000
"""The platform's limit on one step's run, which bounds a timeout or a delay."""
DEFAULT_TIMEOUT_MS = 100_000
DEFAULT_REDIRECTS = 5
MAX_REDIRECTS = 10
RESPONSE_LIMIT = 20 * MB
ATTACHMENT_LIMIT = 100 * MB
MAX_RETRIES = 10
CONNECTION_RETRIES = 2
"""A refused connection (or a name that does not resolve) is tried again this often by
default: a flow rarely wants to wait minutes on an API that is not there."""
DEFAULT_ERROR_CODES = "408, 423, 429, 500-599"
POLICIES = ("byComponent", "rebound", "throwError", "emit")
ENCODINGS = ("utf8", "base64")


@dataclass(frozen=True)
class Options:
    timeout: float
    """Seconds to wait for the server (to connect, and between bytes of the answer)."""
    max_redirects: int
    verify_tls: bool
    response_limit: int
    request_limit: int | None
    delay: float
    max_retries: int
    connection_retries: int
    policy: str
    policy_codes: frozenset[int]
    emit_codes: frozenset[int]
    encoding: str
    upload_file: bool
    download_attachment: bool
    pass_non_success: bool
    redirects_as_data: bool = True
    """A 3xx answer that is not followed is emitted as data; else it is an error, unless
    its code is in ``ignoreErrorCodes`` (the platform's current steps)."""


def options_from(cfg: Mapping[str, Any], *, oauth2: bool = False) -> Options:
    attachment = flag(cfg.get("downloadAsAttachment"))
    response_default = ATTACHMENT_LIMIT if attachment else RESPONSE_LIMIT
    if cfg.get("requestTimeoutPeriod") not in (None, ""):
        timeout = _number(cfg, "requestTimeoutPeriod", 1, MAX_WAIT_MS) / 1000
    elif cfg.get("timeout") not in (None, ""):  # older configurations: seconds
        timeout = _number(cfg, "timeout", 0.001, MAX_WAIT_MS / 1000)
    else:
        timeout = DEFAULT_TIMEOUT_MS / 1000
    legacy_limit = cfg.get("maxResponseBytes")
    if cfg.get("maxContentLength") in (None, "") and legacy_limit not in (None, ""):
        response_limit = int(_number(cfg, "maxResponseBytes", 1, response_default))
    else:
        response_limit = int(
            _number(cfg, "maxContentLength", 1, response_default, response_default)
        )
    policy = str(cfg.get("errorPolicy") or "").strip()
    if not policy:
        policy = "rebound" if flag(cfg.get("reboundOnRateLimit")) else "byComponent"
    if policy not in POLICIES:
        raise InvalidInput(f"field 'errorPolicy' is {policy!r}; use one of {', '.join(POLICIES)}")
    encoding = str(cfg.get("responseEncoding") or "utf8").strip().lower().replace("-", "")
    if encoding not in ENCODINGS:
        raise InvalidInput(f"field 'responseEncoding' is {encoding!r}; use utf8 or base64")
    request_limit = cfg.get("maxBodyLength")
    return Options(
        timeout=timeout,
        max_redirects=int(_number(cfg, "maxRedirects", 0, MAX_REDIRECTS, DEFAULT_REDIRECTS)),
        verify_tls=not flag(cfg.get("noStrictSSL")),
        response_limit=response_limit,
        request_limit=(
            None
            if request_limit in (None, "")
            else int(_number(cfg, "maxBodyLength", 1, float("inf")))
        ),
        delay=_number(cfg, "delay", 0, MAX_WAIT_MS, 0) / 1000,
        max_retries=int(_number(cfg, "maxRetries", 0, MAX_RETRIES, MAX_RETRIES)),
        connection_retries=int(
            _number(cfg, "connectionRetries", 0, MAX_RETRIES, CONNECTION_RETRIES)
        ),
        policy=policy,
        policy_codes=codes(cfg, "errorCodes", DEFAULT_ERROR_CODES, oauth2=oauth2),
        emit_codes=codes(cfg, "ignoreErrorCodes", "", oauth2=oauth2),
        encoding=encoding,
        upload_file=flag(cfg.get("uploadFile")),
        download_attachment=attachment,
        pass_non_success=flag(cfg.get("passNonSuccess")),
    )


def codes(cfg: Mapping[str, Any], name: str, default: str, *, oauth2: bool) -> frozenset[int]:
    """Status codes from ``"408, 423, 500-599"``: codes and ranges, each above 299."""
    text = str(cfg.get(name) or default)
    found: set[int] = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        low, _, high = item.partition("-")
        try:
            start, end = int(low), int(high or low)
        except ValueError:
            raise InvalidInput(
                f"field {name!r}: {item!r} is not a status code or a range like 500-599"
            ) from None
        if not 300 <= start <= end <= 599:
            raise InvalidInput(
                f"field {name!r}: {item!r} must be codes from 300 to 599, the first of a range "
                "not above the second"
            )
        found.update(range(start, end + 1))
    if oauth2 and 401 in found:
        raise InvalidInput(
            f"field {name!r} holds 401, which an OAuth2 credential answers by refreshing its "
            "token; remove it"
        )
    return frozenset(found)


def _number(
    cfg: Mapping[str, Any], name: str, low: float, high: float, default: float | None = None
) -> float:
    raw = cfg.get(name)
    if raw in (None, ""):
        if default is None:
            raise InvalidInput(f"field {name!r} is empty")
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")
    if not low <= value <= high:
        upper = "" if high == float("inf") else f" and {_plain(high)}"
        between = f"between {_plain(low)}{upper}" if upper else f"at least {_plain(low)}"
        raise InvalidInput(f"field {name!r} is {raw!r}; it must be a number {between}")
    return value


def _plain(number: float) -> str:
    """20,971,520 rather than 2.09715e+07."""
    return f"{int(number):,}" if number == int(number) else f"{number:,}"


def flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1", "yes"))
