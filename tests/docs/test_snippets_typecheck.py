"""The docs' snippets pass ``mypy --strict``: what the pages show type-checks as it is.

A reader who copies a snippet into a project checked with mypy must not meet errors the docs
never mention (the typed ``ask(..., reply_type=T)`` overloads exist for this).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SNIPPETS = ROOT / "docs" / "snippets"


def test_every_snippet_passes_mypy_strict() -> None:
    files = sorted(str(path) for path in SNIPPETS.glob("*.py"))
    assert len(files) >= 8, files
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *files],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"no issues found in {len(files)} source files" in result.stdout
