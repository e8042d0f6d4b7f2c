"""Shared fixtures for the documentation tests: the repository root and a built site."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"
MKDOCS_BUILD_TIMEOUT = 180


def mkdocs_executable() -> list[str]:
    """Run mkdocs with the interpreter running the tests, so the venv's plugins are used."""
    return [sys.executable, "-m", "mkdocs"]


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built with ``mkdocs build --strict`` into a temporary directory."""
    site = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [*mkdocs_executable(), "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=MKDOCS_BUILD_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    )
    return site
