"""The built site has no broken internal link or anchor.

``mkdocs build --strict`` already rejects broken links written in Markdown; this test also
covers what the theme, mkdocstrings and raw HTML add, and checks every ``#fragment`` against
the ids present in the target page.
"""

from __future__ import annotations

import posixpath
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest


class _LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name"):
                self.ids.add(value)
            elif name in ("href", "src"):
                self.links.append(value)


def _parse(page: Path) -> _LinkCollector:
    collector = _LinkCollector()
    collector.feed(page.read_text(encoding="utf-8"))
    return collector


def _resolve(site: Path, page: Path, href: str) -> tuple[Path, str] | None:
    """The file and fragment an internal link points at; None for an external link."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or href.startswith("//"):
        return None
    path = unquote(parts.path)
    if not path:
        target = page
    else:
        # 404.html is served from any depth, so mkdocs writes its links from the site root.
        base = "" if path.startswith("/") else page.parent.relative_to(site).as_posix()
        joined = posixpath.normpath(posixpath.join(base, path.lstrip("/")))
        target = site / joined
        if path.endswith("/") or target.is_dir():
            target = target / "index.html"
    return target, unquote(parts.fragment)


def test_every_internal_link_and_anchor_resolves(built_site: Path) -> None:
    pages = sorted(built_site.rglob("*.html"))
    assert pages, "the site has no pages"
    parsed = {page: _parse(page) for page in pages}
    broken: list[str] = []
    for page, collector in parsed.items():
        for href in collector.links:
            resolved = _resolve(built_site, page, href)
            if resolved is None:
                continue
            target, fragment = resolved
            where = f"{page.relative_to(built_site)} -> {href}"
            if not target.resolve().is_relative_to(built_site.resolve()):
                broken.append(f"{where} (leaves the site)")
            elif not target.is_file():
                broken.append(f"{where} (no such file)")
            elif fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else _parse(target).ids
                if fragment not in ids:
                    broken.append(f"{where} (no anchor #{fragment})")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


@pytest.mark.parametrize(
    "page",
    [
        "index.html",
        "quickstart/index.html",
        "concepts/index.html",
        "protocol/index.html",
        "comparison/index.html",
        "benchmarks/index.html",
        "api/actors/index.html",
        "api/transport/index.html",
        "guides/pingpong/index.html",
        "guides/ask/index.html",
        "guides/supervision/index.html",
        "guides/security/index.html",
        "guides/deployment/index.html",
    ],
)
def test_page_is_built(built_site: Path, page: str) -> None:
    assert (built_site / page).is_file(), f"{page} is missing from the built site"


def test_concepts_page_has_the_dedup_sequence_diagram(built_site: Path) -> None:
    html = (built_site / "concepts" / "index.html").read_text(encoding="utf-8")
    assert 'class="mermaid"' in html
    assert "sequenceDiagram" in html
