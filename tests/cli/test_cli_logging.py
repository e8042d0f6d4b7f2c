"""The log formatters and configure_logging (in-process)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from actors._logging import JsonFormatter, configure_logging, parse_level


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def test_json_lines_carry_time_level_logger_node_and_message(restore_root_logger: None) -> None:
    stream = io.StringIO()
    configure_logging("debug", "json", node="node-a", stream=stream)
    log = logging.getLogger("actors.test")
    log.info("hello %s", "world")
    log.debug("multi\nline %r", {"k": b"v"})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    first, second, third = (json.loads(line) for line in lines)
    assert first["msg"] == "hello world"
    assert (first["level"], first["logger"], first["node"]) == ("INFO", "actors.test", "node-a")
    assert first["time"].endswith("+00:00") and "T" in first["time"]
    assert second["msg"] == "multi\nline {'k': b'v'}"
    assert third["level"] == "ERROR"
    assert "ValueError: boom" in third["exc"]


def test_configure_logging_replaces_its_handler(restore_root_logger: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", "text", node="n", stream=first)
    configure_logging("warning", "text", node="n", stream=second)
    logging.getLogger("x").warning("once")
    logging.getLogger("x").info("filtered")
    assert first.getvalue() == ""
    assert second.getvalue().splitlines()[0].endswith(" WARNING x [n] once")
    assert len(second.getvalue().splitlines()) == 1


def test_a_non_serializable_argument_still_gives_a_line() -> None:
    record = logging.LogRecord("l", logging.INFO, __file__, 1, "%s", (object(),), None)
    assert json.loads(JsonFormatter(None).format(record))["msg"].startswith("<object object")


@pytest.mark.parametrize(("name", "level"), [("debug", 10), ("WARNING", 30), (40, 40)])
def test_levels(name: str | int, level: int) -> None:
    assert parse_level(name) == level


def test_bad_level_and_format() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        parse_level("chatty")
    with pytest.raises(ValueError, match="unknown log format"):
        configure_logging("info", "xml")  # type: ignore[arg-type]
