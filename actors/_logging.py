"""Logging set-up for programs that run a node: text or one JSON object per line.

Library code only logs through ``logging.getLogger(__name__)``; this module is for the
``masterless`` command (and any program that wants the same output). `configure_logging`
installs one handler on the root logger that writes to stderr.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Literal

__all__ = ["LOG_FORMATS", "JsonFormatter", "TextFormatter", "configure_logging"]

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[str, ...] = ("text", "json")
"""The values ``--log-format`` accepts."""


class JsonFormatter(logging.Formatter):
    """Formats each record as one JSON object on one line.

    Keys: ``time`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``, ``node`` (the node id
    given at construction, or None), ``msg`` (the formatted message), and ``exc`` with the
    formatted traceback when the record carries an exception.

    Args:
        node: The id of the node this process runs, written into every line.
    """

    def __init__(self, node: str | None = None) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one line of JSON.

        Args:
            record: The log record.

        Returns:
            The JSON text, without a trailing newline.
        """
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "node": self.node,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        # default=str: a message argument may hold any object; the line must still be written.
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``2026-12-01 08:00:00,123 INFO actors._system [node-a] message``.

    Args:
        node: The id of the node this process runs, shown in brackets on every line.
    """

    def __init__(self, node: str | None = None) -> None:
        node_part = f" [{node}]" if node else ""
        super().__init__(f"%(asctime)s %(levelname)s %(name)s{node_part} %(message)s")


def configure_logging(
    level: str | int = "INFO",
    log_format: LogFormat = "text",
    *,
    node: str | None = None,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send every log record at ``level`` or above to ``stream`` (stderr by default).

    Replaces the handlers already on the root logger, so calling it twice does not double the
    output.

    Args:
        level: A level name (``"debug"``, ``"INFO"``...) or number.
        log_format: ``"text"`` or ``"json"`` (one JSON object per line).
        node: The node id written into every line.
        stream: Where to write; stderr when None.

    Returns:
        The installed handler.

    Raises:
        ValueError: Unknown level name or format.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}; use one of {list(LOG_FORMATS)}")
    numeric = parse_level(level)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(node) if log_format == "json" else TextFormatter(node))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    return handler


def parse_level(level: str | int) -> int:
    """The numeric logging level for a name such as ``"warning"`` (any case) or a number.

    Raises:
        ValueError: Not a known level name.
    """
    if isinstance(level, int):
        return level
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(
            f"unknown log level {level!r}; use one of debug, info, warning, error, critical"
        )
    return numeric
