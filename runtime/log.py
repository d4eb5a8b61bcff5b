"""Logging: structlog, JSON lines in containers, readable lines in a terminal, secrets removed.

Every record, from our loggers and from libraries using the standard ``logging`` module
(pika, urllib3), goes through the same chain, and the redaction step runs last before
rendering, after tracebacks were turned into text, so nothing escapes it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from runtime.redact import redact

LogFormat = Literal["json", "console", "auto"]

_LEVELS = {"trace": 5, "debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40}
_LEVELS |= {"fatal": 50, "critical": 50}


def _redact_record(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    cleaned: EventDict = redact(event_dict)
    return cleaned


def _logger_field(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    # Our loggers carry their name as "logger_name" (structlog reserves "logger" in
    # get_logger's signature); print it under the same key as standard-library records.
    name = event_dict.pop("logger_name", None)
    if name is not None:
        event_dict["logger"] = name
    return event_dict


def _static_fields(fields: Mapping[str, str]) -> Processor:
    def add(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
        for key, value in fields.items():
            event_dict.setdefault(key, value)
        return event_dict

    return add


def parse_level(value: str | None) -> int:
    """Turn a LOG_LEVEL value (name or number) into a logging level; unknown names are info."""
    if not value:
        return logging.INFO
    if value.isdigit():
        return int(value)
    return _LEVELS.get(value.strip().lower(), logging.INFO)


def choose_format(requested: str | None, stream: TextIO) -> Literal["json", "console"]:
    """JSON unless a person is watching a terminal, or the caller asked otherwise."""
    if requested in ("json", "console"):
        return requested  # type: ignore[return-value]
    return "console" if stream.isatty() else "json"


def configure(
    *,
    fmt: str | None = None,
    level: str | None = None,
    stream: TextIO | None = None,
    static: Mapping[str, str] | None = None,
) -> None:
    """Configure structlog and the standard logging module for this process.

    Args:
        fmt: ``json``, ``console`` or ``auto``; defaults to the ``LOG_FORMAT`` variable.
        level: a level name; defaults to the ``LOG_LEVEL`` variable, else ``info``.
        stream: where log lines go; standard error by default, so stdout stays for results.
        static: fields added to every record (flow, step and container ids).
    """
    out = stream or sys.stderr
    chosen = choose_format(fmt or os.environ.get("LOG_FORMAT"), out)
    threshold = parse_level(level or os.environ.get("LOG_LEVEL"))
    renderer: Processor
    if chosen == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _logger_field,
        _static_fields(static or {}),
        structlog.processors.format_exc_info,
        _redact_record,
    ]
    if chosen == "json":
        shared.append(structlog.processors.EventRenamer("msg"))
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(threshold)
    # pika and urllib3 narrate every frame and connection at INFO/DEBUG.
    for chatty in ("pika", "urllib3"):
        logging.getLogger(chatty).setLevel(max(threshold, logging.WARNING))
    handler.addFilter(_QuietPika(threshold))


class _QuietPika(logging.Filter):
    """pika's warnings and errors, told as DEBUG lines: an outage is the runtime's to tell,
    once a loss, a reconnect and a round of attempts (runtime.worker.amqp), where pika
    writes several lines, one with a traceback, for each connection it loses or cannot
    open. Seen only with ``LOG_LEVEL=DEBUG``."""

    def __init__(self, threshold: int) -> None:
        super().__init__()
        self._shown = threshold <= logging.DEBUG

    def filter(self, record: logging.LogRecord) -> bool:
        pika = record.name == "pika" or record.name.startswith("pika.")
        if record.levelno >= logging.CRITICAL or not pika:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return self._shown


def get_logger(name: str, **context: Any) -> structlog.typing.FilteringBoundLogger:
    """A logger named for its part of the runtime, with fields bound once."""
    # A lazy proxy: it picks up the configuration in force when it first logs, so module-level
    # loggers made at import time still follow configure().
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(
        logger_name=name, **context
    )
    return logger
