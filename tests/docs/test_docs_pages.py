"""Code on the Quickstart and Guides pages comes from files the test suite executes.

Python code blocks on those pages may only include files from ``docs/snippets/`` (whole, or a
``--8<-- [start:name]`` section of one), and ``test_snippets.py`` runs every such file. So no
code block on those pages can drift from code that works.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
SNIPPETS = DOCS / "snippets"

EXECUTED_PAGES = sorted([DOCS / "quickstart.md", *(DOCS / "guides").glob("*.md")])
FENCE = re.compile(
    r"^(?P<fence>```+)(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=fence)\s*$", re.M | re.S
)
INCLUDE = re.compile(r'^--8<-- "(?P<file>[^":]+)(?::(?P<section>[\w-]+))?"$')


def code_blocks(page: Path) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block on a Markdown page."""
    text = page.read_text(encoding="utf-8")
    return [(m["lang"], m["body"]) for m in FENCE.finditer(text)]


def test_the_executed_pages_exist() -> None:
    assert DOCS / "quickstart.md" in EXECUTED_PAGES
    assert len(EXECUTED_PAGES) >= 6, EXECUTED_PAGES


@pytest.mark.parametrize("page", EXECUTED_PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_python_blocks_are_snippet_includes(page: Path) -> None:
    for lang, body in code_blocks(page):
        if lang not in ("python", "py"):
            continue
        lines = [line.strip() for line in body.strip().splitlines()]
        for line in lines:
            match = INCLUDE.match(line)
            assert match, (
                f"{page.name}: a python block must only include a file from docs/snippets/ "
                f"(so a test runs it); found {line!r}"
            )
            snippet = SNIPPETS / match["file"]
            assert snippet.is_file(), f"{page.name}: {snippet} does not exist"
            section = match["section"]
            if section:
                source = snippet.read_text(encoding="utf-8")
                assert f"--8<-- [start:{section}]" in source, f"{snippet.name}: no {section}"
                assert f"--8<-- [end:{section}]" in source, f"{snippet.name}: no end {section}"
