"""Structured logs: JSON lines carrying the service, correlation id and trace id."""

from __future__ import annotations

import logging
import re
import sys

import structlog

_configured = False


_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def log_formatter(fmt: str = "json") -> logging.Formatter:
    """Renders structlog events and plain stdlib records alike, with the bound context."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


# the path of a privacy request names the person it is about (and its query whom their
# documents go to): what follows the prefix is left out of a logged URL
_PERSONAL_PATH = re.compile(r"(/privacy/(?:held|subjects)/)[^\s\"']*")


def without_personal_paths(text: str) -> str:
    """`text` with the person a privacy request's URL names cut out."""
    return _PERSONAL_PATH.sub(r"\1{subject}", text) if "/privacy/" in text else text


def _no_personal_paths(record: logging.LogRecord) -> bool:
    """httpx logs every request it makes by URL: a privacy request's is cut."""
    if isinstance(record.args, tuple) and any("/privacy/" in str(a) for a in record.args):
        record.args = tuple(without_personal_paths(str(a)) if "/privacy/" in str(a) else a
                            for a in record.args)  # a status stays a number for its %d
    return True


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    global _configured
    if _configured:
        return
    _configured = True
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(log_formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own lines repeat what the runtime and our request log already say
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("httpx").addFilter(_no_personal_paths)
